//! `ferrograd train`: the benchmark task end to end, with a progress bar,
//! a summary, optional output files and resumable checkpoints.

use crate::cli::usage;
use ferrograd::engine::{DType, Device};
use ferrograd::optim::{catalog, HyperParams, TaskOptimizer};
use ferrograd::race::grid::split_hp_target;
use ferrograd::train::{read_checkpoint, save_model, EpochMetrics, RunSettings, Summary, TaskConfig, Trainer};
use ferrograd::Error;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Options of `ferrograd train`. The run's settings (track, seed,
/// optimizer, `--hp`, `--max-epochs`, `--dtype`) are `Option`s so that a
/// resume can tell a flag given from a flag left out: left out, it is the
/// checkpoint's; given, it must agree with the checkpoint.
#[derive(clap::Args)]
pub struct Args {
    /// Hidden layers of width 256 (the task's tracks: 4, 7, 10, 14, 18)
    /// [default: 4, or the resumed checkpoint's].
    #[arg(long)]
    n_hidden: Option<usize>,
    /// The instance seed (data, init and shuffles derive from it)
    /// [default: 0, or the resumed checkpoint's].
    #[arg(long)]
    seed: Option<u64>,
    /// The optimizer (see `ferrograd optimizers`) [default: the catalog's
    /// default, or the resumed checkpoint's].
    #[arg(long)]
    optimizer: Option<String>,
    /// A hyperparameter override, `key=value` or `OPTIMIZER.key=value`
    /// (repeatable; on a resume, each must agree with the checkpoint's).
    #[arg(long = "hp", value_name = "[OPT.]KEY=VALUE")]
    hps: Vec<String>,
    /// Where to train: cpu, cuda (GPU 0) or cuda:N (needs the `cuda` feature
    /// and a GPU; without one this is an error, exit code 2). A resumed run
    /// may move to another device.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The element type: f32 (the task's) or f64 (for checking a device or
    /// an optimizer against rounding) [default: f32, or the resumed
    /// checkpoint's; a resume may change it, continuing from the same state].
    #[arg(long, value_parser = ["f32", "f64"])]
    dtype: Option<String>,
    /// On a GPU, run each training step as launches one by one instead of
    /// replaying it as one CUDA graph (the same numbers either way).
    #[arg(long)]
    no_cuda_graph: bool,
    /// Print one JSON summary on stdout (no progress bar).
    #[arg(long)]
    json: bool,
    /// Write metrics.jsonl, summary.json, model.safetensors and checkpoints here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the interrupted run whose --out directory this is, with the
    /// settings its checkpoint records (no other flag needed).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Checkpoint every N epochs (with --out or --resume).
    #[arg(long, default_value_t = 10)]
    checkpoint_every: usize,
    /// Write the initial parameters to this safetensors file.
    #[arg(long, value_name = "FILE")]
    init_out: Option<PathBuf>,
    /// Epoch budget (the task's is 1000; lower it only for quick
    /// experiments) [default: 1000, or the resumed checkpoint's].
    #[arg(long)]
    max_epochs: Option<usize>,
    /// Stop after this many epochs in this invocation (simulates an
    /// interruption; resume later with --resume).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
    /// No progress bar, no summary table.
    #[arg(long)]
    quiet: bool,
}

/// The settings of a run: from the flags and defaults, or, on a resume,
/// from the checkpoint (with any flag given checked against it).
struct RunSpec {
    n_hidden: usize,
    seed: u64,
    optimizer: String,
    /// Every hyperparameter's value.
    hps: HyperParams,
    max_epochs: usize,
    dtype: DType,
}

impl RunSpec {
    /// The hyperparameters that differ from the catalog's defaults, as
    /// `key=value` (what the summary reports).
    fn overrides(&self) -> Vec<String> {
        let Ok(info) = catalog::lookup(&self.optimizer) else {
            return Vec::new();
        };
        let defaults = HyperParams::defaults(info);
        self.hps
            .values()
            .iter()
            .filter(|(k, v)| defaults.values().get(*k).is_none_or(|d| d.to_bits() != v.to_bits()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// `given` if the flag was given, else the checkpoint's value, else
/// `default`; a given flag that disagrees with the checkpoint is an error
/// naming both values. `flag` is how a value is shown: `--seed ` or
/// `--hp lr=`.
fn pick<T: PartialEq + std::fmt::Display>(
    flag: &str,
    given: Option<T>,
    saved: Option<T>,
    default: T,
) -> Result<T, String> {
    match (given, saved) {
        (Some(g), Some(s)) if g != s => Err(format!(
            "{flag}{g} contradicts the checkpoint being resumed, which has {flag}{s}; \
             leave the flag out to continue that run, or start a new one with --out"
        )),
        (Some(g), _) => Ok(g),
        (None, Some(s)) => Ok(s),
        (None, None) => Ok(default),
    }
}

/// Hyperparameters of optimizer `name`: its defaults with the `--hp`
/// overrides applied; also the names the overrides set.
fn hyperparams(name: &str, hps: &[String]) -> Result<(HyperParams, Vec<String>), String> {
    let info = catalog::lookup(name).map_err(|e| e.to_string())?;
    let mut values = HyperParams::defaults(info);
    let mut keys = Vec::new();
    for hp in hps {
        let (target, value) = hp
            .split_once('=')
            .ok_or_else(|| format!("--hp {hp:?}: expected [OPTIMIZER.]KEY=VALUE, e.g. lr=1e-3"))?;
        let (optimizer, key) = split_hp_target(target);
        if let Some(other) = optimizer.filter(|&o| o != name) {
            return Err(format!("--hp {hp:?} is for {other}, but the optimizer is {name}"));
        }
        values
            .set_from_str(&format!("{key}={value}"))
            .map_err(|e| e.to_string())?;
        keys.push(key.to_string());
    }
    Ok((values, keys))
}

/// The run's settings from `args`, and from the checkpoint in `--resume`'s
/// directory when there is one; what neither gives is
/// [`TaskConfig::default`]'s.
fn resolve(args: &Args) -> Result<RunSpec, String> {
    let saved = match &args.resume {
        Some(dir) => Some(read_checkpoint(dir).map_err(|e| e.to_string())?),
        None => None,
    };
    let run = saved.as_ref().and_then(|c| c.run.as_ref());
    let optimizer = pick(
        "--optimizer ",
        args.optimizer.clone(),
        saved.as_ref().map(|c| c.optimizer.clone()),
        catalog::DEFAULT.to_string(),
    )?;
    let hps = resolve_hyperparams(&optimizer, &args.hps, run)?;
    let defaults = TaskConfig::default();
    let dtype = match args.dtype.as_deref().or(run.map(|r| r.dtype.as_str())) {
        None => defaults.dtype,
        Some("f32") => DType::F32,
        Some("f64") => DType::F64,
        Some(other) => return Err(format!("the checkpoint's dtype {other:?} is neither f32 nor f64")),
    };
    Ok(RunSpec {
        n_hidden: pick(
            "--n-hidden ",
            args.n_hidden,
            saved.as_ref().map(|c| c.n_hidden),
            defaults.n_hidden,
        )?,
        seed: pick("--seed ", args.seed, saved.as_ref().map(|c| c.seed), defaults.seed)?,
        max_epochs: pick(
            "--max-epochs ",
            args.max_epochs,
            run.map(|r| r.max_epochs),
            defaults.max_epochs,
        )?,
        dtype,
        optimizer,
        hps,
    })
}

/// The hyperparameters of `optimizer`: the checkpoint's where `run` has
/// them (each `--hp` given must agree), else the defaults with the `--hp`
/// overrides.
fn resolve_hyperparams(
    optimizer: &str,
    overrides: &[String],
    run: Option<&RunSettings>,
) -> Result<HyperParams, String> {
    let (mut hps, given) = hyperparams(optimizer, overrides)?;
    if let Some(saved) = run.and_then(RunSettings::hyperparameter_values) {
        for key in &given {
            let value = hps.get(key).map_err(|e| e.to_string())?;
            pick(&format!("--hp {key}="), Some(value), saved.get(key).copied(), value)?;
        }
        for (key, value) in &saved {
            hps.set(key, *value)
                .map_err(|e| format!("the checkpoint's hyperparameter {key}={value}: {e}"))?;
        }
    }
    Ok(hps)
}

/// The device `--device` names (`cpu`, `cuda` or `cuda:N`), if it can be used.
fn check_device(device: &str) -> Result<Device, String> {
    let ordinal = match device {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Some(0),
        other => other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()),
    };
    match ordinal {
        Some(i) => Device::cuda(i).map_err(|e| e.to_string()),
        None => Err(format!("unknown device {device:?}; use cpu, cuda or cuda:N")),
    }
}

/// Runs `ferrograd train`.
pub fn run(args: &Args) -> i32 {
    let device = match check_device(&args.device) {
        Ok(d) => d,
        Err(message) => return usage(message),
    };
    let spec = match resolve(args) {
        Ok(spec) => spec,
        Err(message) => return usage(message),
    };
    let optimizer = match catalog::lookup(&spec.optimizer).and_then(|info| (info.build)(&spec.hps)) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    if spec.n_hidden == 0 || spec.max_epochs == 0 || args.checkpoint_every == 0 {
        return usage("--n-hidden, --max-epochs and --checkpoint-every must be at least 1");
    }
    let config = TaskConfig {
        n_hidden: spec.n_hidden,
        seed: spec.seed,
        max_epochs: spec.max_epochs,
        device,
        dtype: spec.dtype,
        cuda_graph: !args.no_cuda_graph,
        ..TaskConfig::default()
    };
    let out_dir = args.resume.clone().or_else(|| args.out.clone());
    match train(args, &spec, config, optimizer, out_dir.as_deref()) {
        Ok(Some(summary)) => {
            report(args, &spec, &summary);
            0
        }
        Ok(None) => 0,
        Err(Failure::Usage(e)) => usage(e),
        Err(Failure::Training(e)) => {
            eprintln!("error: {e}");
            1
        }
    }
}

enum Failure {
    Usage(Error),
    Training(Error),
}

fn train(
    args: &Args,
    spec: &RunSpec,
    config: TaskConfig,
    optimizer: Box<dyn TaskOptimizer>,
    out: Option<&Path>,
) -> Result<Option<Summary>, Failure> {
    let device = config.device;
    let mut trainer = Trainer::new(config, optimizer).map_err(|e| Failure::Usage(e.into()))?;
    trainer.set_hyperparameters(spec.hps.values().iter().map(|(k, v)| (k.to_string(), *v)).collect());
    if let Some(path) = &args.init_out {
        save_model(&trainer.model, path).map_err(Failure::Usage)?;
    }
    let mut history = Vec::new();
    if let Some(dir) = &args.resume {
        trainer.load_checkpoint(dir).map_err(Failure::Usage)?;
        if device != Device::Cpu {
            // The checkpoint loads onto the CPU; train where this run asked.
            trainer.to_device(device).map_err(|e| Failure::Usage(e.into()))?;
        }
        history = crate::cli::metrics::read_history(&dir.join("metrics.jsonl"), trainer.epochs_run())
            .map_err(Failure::Usage)?;
    }
    let bar = progress_bar(args, spec, &trainer);
    let mut ran = 0;
    while !trainer.finished() {
        if args.stop_after.is_some_and(|n| ran >= n) {
            bar.abandon_with_message("stopped early (--stop-after); continue with --resume");
            return Ok(None);
        }
        let metrics = match trainer.run_epoch() {
            Ok(m) => m,
            Err(e) => {
                bar.abandon();
                if let Some(dir) = out {
                    // Keep the best model found before the failure.
                    let _ = std::fs::create_dir_all(dir);
                    let _ = save_model(&trainer.best_model, &dir.join("model.safetensors"));
                }
                return Err(Failure::Training(e.into()));
            }
        };
        ran += 1;
        update_bar(&bar, &metrics);
        history.push(metrics);
        if let Some(dir) = out {
            if trainer.epochs_run() % args.checkpoint_every == 0 || trainer.finished() {
                save_progress(&trainer, &history, dir).map_err(Failure::Training)?;
            }
        }
    }
    bar.finish_and_clear();
    let summary = trainer.summary().map_err(|e| Failure::Training(e.into()))?;
    if let Some(dir) = out {
        save_progress(&trainer, &history, dir).map_err(Failure::Training)?;
        save_model(&trainer.best_model, &dir.join("model.safetensors")).map_err(Failure::Training)?;
        let json = summary_json(args, spec, &summary).to_string();
        ferrograd::datasets::atomic::write_atomic(&dir.join("summary.json"), json.as_bytes())
            .map_err(|e| Failure::Training(e.into()))?;
    }
    Ok(Some(summary))
}

/// Writes the metrics, then the checkpoint, then the best model. In that
/// order a kill between two writes leaves metrics.jsonl with at least the
/// checkpoint's epochs (a resume keeps the first of them), never fewer.
pub(super) fn save_progress(trainer: &Trainer, history: &[EpochMetrics], dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    crate::cli::metrics::write_history(&dir.join("metrics.jsonl"), history)?;
    trainer.save_checkpoint(dir)?;
    save_model(&trainer.best_model, &dir.join("model.safetensors"))
}

fn progress_bar(args: &Args, spec: &RunSpec, trainer: &Trainer) -> ProgressBar {
    if args.json || args.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(spec.max_epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]")
            .expect("valid template"),
    );
    bar.set_position(trainer.epochs_run() as u64);
    bar
}

fn update_bar(bar: &ProgressBar, m: &EpochMetrics) {
    bar.set_position(m.epoch as u64 + 1);
    bar.set_message(format!(
        "train {:.4} val {:.4} best {:.4}@{}",
        m.train_loss, m.val_loss, m.best_val_loss, m.best_epoch
    ));
}

fn summary_json(args: &Args, spec: &RunSpec, s: &Summary) -> serde_json::Value {
    let mut json = serde_json::json!({
        "optimizer": spec.optimizer,
        "hp": spec.overrides(),
        "n_hidden": spec.n_hidden,
        "seed": spec.seed,
        "device": args.device,
        "dtype": spec.dtype.to_string(),
    });
    if let (Some(json), serde_json::Value::Object(numbers)) = (json.as_object_mut(), summary_numbers(s)) {
        json.extend(numbers);
    }
    json
}

/// A run's results as `train --json` and summary.json report them (and
/// `ferrograd serve` streams them).
pub(super) fn summary_numbers(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "quality": s.quality,
        "recalibrated_quality": s.recalibrated_quality,
        "test_loss": s.test_loss,
        "eps2": s.eps2,
        "epochs": s.epochs,
        "best_epoch": s.best_epoch,
        "best_val_loss": s.best_val_loss,
        "seconds": s.seconds,
        "seconds_per_epoch": s.seconds_per_epoch,
    })
}

fn report(args: &Args, spec: &RunSpec, s: &Summary) {
    if args.json {
        println!("{}", summary_json(args, spec, s));
    } else if !args.quiet {
        println!(
            "track n_hidden={} seed={} optimizer={}",
            spec.n_hidden, spec.seed, spec.optimizer
        );
        println!("  quality      {:>12}", s.quality);
        println!(
            "  recalibrated {:>12}  (BatchNorm statistics of the training set)",
            s.recalibrated_quality
        );
        println!("  test loss    {:>12.6}", s.test_loss);
        println!("  eps2         {:>12.6}", s.eps2);
        println!("  epochs       {:>12}  (best {})", s.epochs, s.best_epoch);
        println!(
            "  wall time    {:>11.2}s  ({:.1} ms/epoch)",
            s.seconds,
            1e3 * s.seconds_per_epoch
        );
    }
}
