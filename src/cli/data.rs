//! `ferrograd data`: writes an instance's data as NumPy `.npy` files, so
//! that other tools (NumPy, PyTorch) can train on exactly the same samples.

use crate::cli::{emit, usage};
use ferrograd::datasets::{generate, write_npy, Matrix, NpyArray, RffConfig, Split};
use std::path::{Path, PathBuf};

/// Options of `ferrograd data`.
#[derive(clap::Args)]
pub struct Args {
    /// The instance seed (the same as `train --seed`; the data does not depend on --n-hidden).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the list of written files as JSON.
    #[arg(long)]
    json: bool,
}

/// The part of each file name after the split, and what it holds.
const KINDS: [(&str, &str); 3] = [
    ("x", "inputs, each coordinate uniform in (-1, 1]"),
    ("y", "noisy targets y = f(x) + noise_std * N(0,1)"),
    ("f", "noise-free function values f(x)"),
];

fn matrices(split: &Split) -> [&Matrix; 3] {
    [&split.inputs, &split.targets, &split.clean]
}

fn write(args: &Args) -> Result<serde_json::Value, String> {
    let config = RffConfig::default();
    let data = generate(&config, args.seed).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.out).map_err(|e| {
        format!(
            "cannot create directory {}: {e}; pass a writable --out",
            args.out.display()
        )
    })?;
    let mut files = Vec::new();
    for (split_name, split) in [("train", &data.train), ("val", &data.val), ("test", &data.test)] {
        for ((kind, about), matrix) in KINDS.iter().zip(matrices(split)) {
            let name = format!("{split_name}_{kind}.npy");
            write_npy(args.out.join(&name), &NpyArray::from(matrix)).map_err(|e| e.to_string())?;
            files.push(serde_json::json!({
                "file": name,
                "split": split_name,
                "shape": [matrix.rows(), matrix.cols()],
                "dtype": "<f8",
                "about": about,
            }));
        }
    }
    let meta = serde_json::json!({
        "format": "ferrograd-data",
        "seed": args.seed,
        "about": "The benchmark task's random-Fourier-feature regression instance (docs/task.md section 1): \
                  float64 .npy arrays in C order, one row per sample. The task's score threshold is \
                  eps2 = 4 / n_test * sum((test_y - test_f)^2).",
        "config": {
            "input_dims": config.input_dims,
            "output_dims": config.output_dims,
            "n_features": config.n_features,
            "lengthscale": config.lengthscale,
            "noise_std": config.noise_std,
            "n_train": config.n_train,
            "n_val": config.n_val,
            "n_test": config.n_test,
        },
        "files": files,
    });
    let meta_path = args.out.join("meta.json");
    let text = serde_json::to_string_pretty(&meta).expect("JSON values serialise") + "\n";
    ferrograd::datasets::atomic::write_atomic(&meta_path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(meta)
}

fn listing(out: &Path, meta: &serde_json::Value) -> String {
    let mut text = format!("wrote to {}:\n", out.display());
    for f in meta["files"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "  {:<12} {:>9}  {}\n",
            f["file"].as_str().unwrap_or(""),
            format!("{}x{}", f["shape"][0], f["shape"][1]),
            f["about"].as_str().unwrap_or("")
        ));
    }
    text.push_str("  meta.json    (this list, the seed and the generator settings)\n");
    text
}

/// Runs `ferrograd data`: 0 on success, 2 if the files cannot be written.
pub fn run(args: &Args) -> i32 {
    match write(args) {
        Ok(meta) => {
            emit(&if args.json {
                meta.to_string() + "\n"
            } else {
                listing(&args.out, &meta)
            });
            0
        }
        Err(message) => usage(message),
    }
}
