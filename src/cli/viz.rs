//! `ferrograd viz`: optimizer trajectories on 2-D test functions, as an SVG
//! over the function's contour map (with `f - min f` per step, log scale,
//! below it) and/or as JSON.

use ferrograd::optim::catalog;
use ferrograd::race::grid::{self, canonical_number, HpOption};
use ferrograd::viz::{self, plot, Function, VizError};
use std::path::PathBuf;

/// Options of `ferrograd viz`.
#[derive(clap::Args)]
pub struct Args {
    /// The surface: rosenbrock, beale, himmelblau, saddle, quadratic or rastrigin.
    #[arg(long, default_value = "rosenbrock")]
    function: String,
    /// Comma-separated optimizers (see `ferrograd optimizers`); by default the
    /// task's two clipped baselines.
    #[arg(long, value_name = "LIST", default_value = "sgd,clipped_adam")]
    optimizers: String,
    /// [OPTIMIZER.]KEY=VALUE[,VALUE...]: override a hyperparameter (without
    /// OPTIMIZER: of every listed optimizer that has KEY); several
    /// values draw several paths (repeatable).
    #[arg(long = "hp", value_name = "[OPT.]KEY=V[,V]")]
    hps: Vec<String>,
    /// Set `lr` of every optimizer that has one (an --hp for lr wins).
    /// Default: a rate suited to the function (0.02 on rosenbrock); the
    /// catalog's defaults are the papers' and PyTorch's, chosen for neither
    /// these surfaces nor the task. `--lr default` keeps the catalog's.
    #[arg(long, value_parser = parse_lr)]
    lr: Option<LrChoice>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Starting point `x,y` (default: the function's own).
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true)]
    start: Option<String>,
    /// The SVG to write (default: FUNCTION.svg, unless --json is given).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the trajectories as JSON on stdout (step, x, y, f, update).
    #[arg(long)]
    json: bool,
}

/// What `--lr` asked for.
#[derive(Clone, Copy, Debug)]
enum LrChoice {
    /// This rate for every optimizer.
    Rate(f64),
    /// Each optimizer's catalog default.
    CatalogDefaults,
}

fn parse_lr(text: &str) -> Result<LrChoice, String> {
    if text == "default" {
        return Ok(LrChoice::CatalogDefaults);
    }
    match text.parse::<f64>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(LrChoice::Rate(lr)),
        _ => Err(format!("expected a positive number or `default`, got {text:?}")),
    }
}

/// Runs `ferrograd viz`.
pub fn run(args: &Args) -> i32 {
    match visualise(args) {
        Ok(()) => 0,
        Err(e @ VizError::Usage(_)) => super::usage(e),
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn parse_start(text: &str) -> Result<(f64, f64), VizError> {
    let bad = || {
        VizError::Usage(format!(
            "--start {text:?}: expected two finite numbers x,y, e.g. -1.5,2"
        ))
    };
    let (x, y) = text.split_once(',').ok_or_else(bad)?;
    let x: f64 = x.trim().parse().map_err(|_| bad())?;
    let y: f64 = y.trim().parse().map_err(|_| bad())?;
    if !(x.is_finite() && y.is_finite()) {
        return Err(bad());
    }
    Ok((x, y))
}

/// The `--hp` options, plus `lr` for every optimizer with an `lr` that no
/// `--hp` sets: `--lr`'s rate, or the function's suggested one.
fn hp_options(args: &Args, function: Function) -> Result<Vec<HpOption>, VizError> {
    let usage = |e: ferrograd::race::RaceError| VizError::Usage(e.to_string());
    let mut options: Vec<HpOption> = args
        .hps
        .iter()
        .map(|h| HpOption::parse(h))
        .collect::<Result<_, _>>()
        .map_err(usage)?;
    let lr = match args.lr {
        Some(LrChoice::Rate(lr)) => Some(lr),
        Some(LrChoice::CatalogDefaults) => None,
        None => Some(function.suggested_lr()),
    };
    if let Some(lr) = lr {
        for name in args.optimizers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let has_lr = catalog::find(name).is_some_and(|info| info.hyperparams.iter().any(|h| h.name == "lr"));
            let overridden = options.iter().any(|o| o.applies_to(name) && o.key == "lr");
            if has_lr && !overridden {
                options.push(HpOption {
                    optimizer: Some(name.to_string()),
                    key: "lr".into(),
                    values: vec![canonical_number(lr)],
                });
            }
        }
    }
    Ok(options)
}

fn visualise(args: &Args) -> Result<(), VizError> {
    let function = Function::parse(&args.function)?;
    let start = match &args.start {
        Some(text) => parse_start(text)?,
        None => function.default_start(),
    };
    if args.steps == 0 {
        return Err(VizError::Usage("--steps must be at least 1".into()));
    }
    let entrants =
        grid::entrants(&args.optimizers, &hp_options(args, function)?).map_err(|e| VizError::Usage(e.to_string()))?;
    let paths = entrants
        .iter()
        .map(|e| viz::trajectory(function, e, start, args.steps))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let out = args
        .out
        .clone()
        .or_else(|| (!args.json).then(|| PathBuf::from(format!("{}.svg", function.name()))));
    if let Some(path) = out {
        let svg = plot::render(function, &paths, args.steps).map_err(|source| VizError::Optimizer {
            entrant: "contour map".into(),
            source,
        })?;
        ferrograd::datasets::atomic::write_atomic(&path, svg.as_bytes())
            .map_err(|e| VizError::Usage(format!("cannot write {}: {e}", path.display())))?;
        if !args.json {
            for p in &paths {
                let last = p.points.last().expect("a trajectory has its start point");
                let note = p.stopped.as_deref().unwrap_or("");
                eprintln!(
                    "{:<24} end ({:.4}, {:.4})  f = {:.6e}  {note}",
                    p.entrant, last.x, last.y, last.f
                );
            }
            eprintln!("wrote {}", path.display());
        }
    }
    if args.json {
        super::emit(&format!("{}\n", viz::to_json(function, start, args.steps, &paths)));
    }
    Ok(())
}
