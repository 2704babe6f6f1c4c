//! `ferrograd eval`: scores a saved model on its instance's test split.
//!
//! The instance is regenerated from `(seed, n_hidden)`, the architecture is
//! built with the data's dimensions, the saved tensors (weights, BatchNorm
//! scale/shift and running statistics) are loaded over it, and the test split
//! is predicted in inference mode: the score equals the one `ferrograd train`
//! printed for the run that wrote the model.

use crate::cli::{emit, usage};
use ferrograd::engine::Rng;
use ferrograd::nn::Mlp;
use ferrograd::train::{load_model, mse_of, score, Score, TaskConfig, TaskData};
use std::path::{Path, PathBuf};

/// Options of `ferrograd eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The model file written by `ferrograd train --out DIR` (DIR/model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Hidden layers of the saved model (as passed to `train`).
    #[arg(long, default_value_t = 4)]
    n_hidden: usize,
    /// The instance seed of the run that trained the model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// What `eval` measured.
struct Evaluation {
    score: Score,
    val_loss: f64,
}

/// The hidden-layer count recorded in a saved model's metadata (`widths`
/// lists input, hidden... and output widths), if present.
fn saved_n_hidden(path: &Path) -> Option<usize> {
    let (_, metadata) = ferrograd::io::load_safetensors(path).ok()?;
    let widths = metadata.get("widths")?;
    let count = widths.split(',').count();
    count.checked_sub(2)
}

fn evaluate(args: &Args) -> Result<Evaluation, String> {
    if args.model.is_dir() {
        return Err(format!(
            "{} is a directory; pass the model file inside it: --model {}",
            args.model.display(),
            args.model.join("model.safetensors").display()
        ));
    }
    if !args.model.is_file() {
        return Err(format!(
            "no model file at {}; pass the model.safetensors that `ferrograd train --out DIR` wrote",
            args.model.display()
        ));
    }
    if args.n_hidden == 0 {
        return Err("--n-hidden must be at least 1".to_string());
    }
    if let Some(saved) = saved_n_hidden(&args.model) {
        if saved != args.n_hidden {
            return Err(format!(
                "{} holds a model with {saved} hidden layers; rerun with --n-hidden {saved}",
                args.model.display()
            ));
        }
    }
    let config = TaskConfig {
        n_hidden: args.n_hidden,
        seed: args.seed,
        ..TaskConfig::default()
    };
    let data = TaskData::generate(&config).map_err(|e| e.to_string())?;
    let (input, output) = (data.train.inputs.dims()[1], data.train.targets.dims()[1]);
    // The initial values are overwritten by the saved tensors.
    let mut model =
        Mlp::task(input, output, config.n_hidden, config.dtype, &mut Rng::new(0)).map_err(|e| e.to_string())?;
    load_model(&mut model, &args.model).map_err(|e| e.to_string())?;
    let prediction = model.predict(&data.test.inputs).map_err(|e| e.to_string())?;
    let score = score(&prediction, &data.test.targets, &data.test.clean).map_err(|e| e.to_string())?;
    let val_loss = mse_of(&model, &data.val).map_err(|e| e.to_string())?;
    Ok(Evaluation { score, val_loss })
}

/// Runs `ferrograd eval`: 0 on success, 2 for a missing or mismatched model.
pub fn run(args: &Args) -> i32 {
    let e = match evaluate(args) {
        Ok(e) => e,
        Err(message) => return usage(message),
    };
    let text = if args.json {
        serde_json::json!({
            "model": args.model.display().to_string(),
            "n_hidden": args.n_hidden,
            "seed": args.seed,
            "quality": e.score.quality,
            "test_loss": e.score.test_loss,
            "eps2": e.score.eps2,
            "val_loss": e.val_loss,
        })
        .to_string()
            + "\n"
    } else {
        format!(
            "model {} (n_hidden={} seed={})\n  quality      {:>12}\n  test loss    {:>12.6}\n  eps2         {:>12.6}\n  val loss     {:>12.6}\n",
            args.model.display(),
            args.n_hidden,
            args.seed,
            e.score.quality,
            e.score.test_loss,
            e.score.eps2,
            e.val_loss
        )
    };
    emit(&text);
    0
}
