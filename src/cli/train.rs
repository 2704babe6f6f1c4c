//! `ferrograd train`: the benchmark task end to end, with a progress bar,
//! a summary, optional output files and resumable checkpoints.

use crate::cli::usage;
use ferrograd::engine::{DType, Device};
use ferrograd::optim::{catalog, HyperParams, TaskOptimizer};
use ferrograd::race::grid::split_hp_target;
use ferrograd::train::{save_model, EpochMetrics, Summary, TaskConfig, Trainer};
use ferrograd::Error;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Options of `ferrograd train`.
#[derive(clap::Args)]
pub struct Args {
    /// Hidden layers of width 256 (the task's tracks: 4, 7, 10, 14, 18).
    #[arg(long, default_value_t = 4)]
    n_hidden: usize,
    /// The instance seed (data, init and shuffles derive from it).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The optimizer (see `ferrograd optimizers`).
    #[arg(long, default_value = catalog::DEFAULT)]
    optimizer: String,
    /// A hyperparameter override, `key=value` or `OPTIMIZER.key=value` (repeatable).
    #[arg(long = "hp", value_name = "[OPT.]KEY=VALUE")]
    hps: Vec<String>,
    /// Where to train: cpu, cuda (GPU 0) or cuda:N (needs the `cuda` feature
    /// and a GPU; without one this is an error, exit code 2).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The element type: f32 (the task's) or f64 (for checking a device or
    /// an optimizer against rounding).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    dtype: String,
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
    /// Continue the interrupted run whose --out directory this is.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Checkpoint every N epochs (with --out or --resume).
    #[arg(long, default_value_t = 10)]
    checkpoint_every: usize,
    /// Write the initial parameters to this safetensors file.
    #[arg(long, value_name = "FILE")]
    init_out: Option<PathBuf>,
    /// Epoch budget (the task's is 1000; lower it only for quick experiments).
    #[arg(long, default_value_t = 1000)]
    max_epochs: usize,
    /// Stop after this many epochs in this invocation (simulates an
    /// interruption; resume later with --resume).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
    /// No progress bar, no summary table.
    #[arg(long)]
    quiet: bool,
}

/// Builds the optimizer from its name and `--hp` overrides.
pub fn build_optimizer(name: &str, hps: &[String]) -> Result<Box<dyn TaskOptimizer>, String> {
    let info = catalog::lookup(name).map_err(|e| e.to_string())?;
    let mut values = HyperParams::defaults(info);
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
    }
    (info.build)(&values).map_err(|e| e.to_string())
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
    let optimizer = match build_optimizer(&args.optimizer, &args.hps) {
        Ok(o) => o,
        Err(message) => return usage(message),
    };
    if args.n_hidden == 0 || args.max_epochs == 0 || args.checkpoint_every == 0 {
        return usage("--n-hidden, --max-epochs and --checkpoint-every must be at least 1");
    }
    let config = TaskConfig {
        n_hidden: args.n_hidden,
        seed: args.seed,
        max_epochs: args.max_epochs,
        device,
        dtype: if args.dtype == "f64" { DType::F64 } else { DType::F32 },
        cuda_graph: !args.no_cuda_graph,
        ..TaskConfig::default()
    };
    let out_dir = args.resume.clone().or_else(|| args.out.clone());
    match train(args, config, optimizer, out_dir.as_deref()) {
        Ok(Some(summary)) => {
            report(args, &summary);
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
    config: TaskConfig,
    optimizer: Box<dyn TaskOptimizer>,
    out: Option<&Path>,
) -> Result<Option<Summary>, Failure> {
    let device = config.device;
    let mut trainer = Trainer::new(config, optimizer).map_err(|e| Failure::Usage(e.into()))?;
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
    let bar = progress_bar(args, &trainer);
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
        let json = summary_json(args, &summary).to_string();
        ferrograd::datasets::atomic::write_atomic(&dir.join("summary.json"), json.as_bytes())
            .map_err(|e| Failure::Training(e.into()))?;
    }
    Ok(Some(summary))
}

fn save_progress(trainer: &Trainer, history: &[EpochMetrics], dir: &Path) -> Result<(), Error> {
    trainer.save_checkpoint(dir)?;
    crate::cli::metrics::write_history(&dir.join("metrics.jsonl"), history)?;
    save_model(&trainer.best_model, &dir.join("model.safetensors"))
}

fn progress_bar(args: &Args, trainer: &Trainer) -> ProgressBar {
    if args.json || args.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(args.max_epochs as u64);
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

fn summary_json(args: &Args, s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "optimizer": args.optimizer,
        "hp": args.hps,
        "n_hidden": args.n_hidden,
        "seed": args.seed,
        "device": args.device,
        "dtype": args.dtype,
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

fn report(args: &Args, s: &Summary) {
    if args.json {
        println!("{}", summary_json(args, s));
    } else if !args.quiet {
        println!(
            "track n_hidden={} seed={} optimizer={}",
            args.n_hidden, args.seed, args.optimizer
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
