//! How far one rounding error carries in training: the task's run as
//! `ferrograd train` makes it (same seed, default optimizer), once more with
//! the first hidden layer's initial weights each moved by one part in
//! `1/rel` (about one rounding: `--rel 1e-15` in f64, `1e-7` in f32), all on
//! the CPU. The per-epoch losses of the moved run are written like
//! `ferrograd train --out DIR` writes them (`metrics.jsonl`, and the test
//! loss in `summary.json`), so they can be compared with the unmoved run the
//! way any two runs are (`bench/cuda_emu_train.py`): this is the spread any
//! other summation order (another device's kernels) must be measured
//! against.
//!
//! ```text
//! cargo run --release -p ferrograd-bench --bin rounding_spread -- \
//!     --n-hidden 4 --seed 0 --epochs 30 --dtype f64 --rel 1e-15 --out DIR
//! ```

use ferrograd::engine::{DType, Result};
use ferrograd::nn::Role;
use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{TaskConfig, Trainer};
use std::fmt::Write as _;
use std::path::PathBuf;

struct Args {
    n_hidden: usize,
    seed: u64,
    epochs: usize,
    dtype: DType,
    rel: f64,
    out: PathBuf,
}

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        n_hidden: 4,
        seed: 0,
        epochs: 30,
        dtype: DType::F64,
        rel: 1e-15,
        out: PathBuf::from("rounding-spread"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--n-hidden" => args.n_hidden = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--epochs" => args.epochs = value.parse().map_err(|e| bad(&e))?,
            "--rel" => args.rel = value.parse().map_err(|e| bad(&e))?,
            "--out" => args.out = PathBuf::from(value),
            "--dtype" => {
                args.dtype = match value.as_str() {
                    "f32" => DType::F32,
                    "f64" => DType::F64,
                    _ => return Err(bad(&"expected f32 or f64")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown flag {flag} (see the doc comment of bench/src/bin/rounding_spread.rs)"
                ))
            }
        }
    }
    Ok(args)
}

/// Trains the moved run and returns its metrics.jsonl and summary.json.
fn moved_run(args: &Args) -> Result<(String, String)> {
    let info = catalog::lookup(catalog::DEFAULT)?;
    let optimizer = (info.build)(&HyperParams::defaults(info))?;
    let config = TaskConfig {
        n_hidden: args.n_hidden,
        seed: args.seed,
        max_epochs: args.epochs,
        dtype: args.dtype,
        ..TaskConfig::default()
    };
    let mut trainer = Trainer::new(config, optimizer)?;
    let weight = trainer.model.tensor_mut(Role::Weight(0));
    match args.dtype {
        DType::F64 => weight.update_in_place(|w: &mut [f64]| w.iter_mut().for_each(|x| *x *= 1.0 + args.rel))?,
        _ => weight.update_in_place(|w: &mut [f32]| w.iter_mut().for_each(|x| *x *= 1.0 + args.rel as f32))?,
    }
    let mut metrics = String::new();
    while !trainer.finished() {
        let m = trainer.run_epoch()?;
        let _ = writeln!(
            metrics,
            "{{\"epoch\": {}, \"train_loss\": {:?}, \"val_loss\": {:?}}}",
            m.epoch, m.train_loss, m.val_loss
        );
    }
    let s = trainer.summary()?;
    let summary = format!(
        "{{\"test_loss\": {:?}, \"quality\": {}, \"best_epoch\": {}, \"rel\": {:?}}}\n",
        s.test_loss, s.quality, s.best_epoch, args.rel
    );
    Ok((metrics, summary))
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rounding_spread: {e}");
            std::process::exit(2);
        }
    };
    let (metrics, summary) = match moved_run(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rounding_spread: {e}");
            std::process::exit(1);
        }
    };
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        let tmp = args.out.join(format!(".{name}.tmp"));
        std::fs::create_dir_all(&args.out)
            .and_then(|_| std::fs::write(&tmp, text))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .unwrap_or_else(|e| {
                eprintln!("rounding_spread: cannot write {}: {e}", path.display());
                std::process::exit(1);
            });
    };
    write("metrics.jsonl", &metrics);
    write("summary.json", &summary);
}
