//! Seconds per epoch of the task protocol (`docs/task.md` section 3) in
//! ferrograd: clipped Adam (lr 1e-3, clip 1), f32, a chosen track and batch
//! size, a few warm-up epochs, then the median over timed epochs. Also times
//! the engine's GEMM at the task's hidden-layer shape, so the peer table can
//! put each framework's per-epoch time next to its GEMM rate.
//!
//! ```text
//! cargo run --release -p ferrograd-bench --bin task_epochs -- \
//!     --n-hidden 4 --batch 128 --epochs 30 --warmup 3 --threads 2 [--json] [--no-gemm]
//! ```
//!
//! Early stopping is disabled (patience larger than the run) so every run
//! does the same number of epochs; each epoch still validates and keeps the
//! best model, as the protocol does.

use ferrograd::engine::isa;
use ferrograd::engine::ops::matmul::{gemm_into, MatRef};
use ferrograd::engine::Rng;
use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{TaskConfig, Trainer};
use ferrograd_bench::{flops_per_epoch, median, peak_rss_bytes, task_widths};
use std::time::Instant;

struct Args {
    n_hidden: usize,
    batch: usize,
    epochs: usize,
    warmup: usize,
    threads: usize,
    seed: u64,
    json: bool,
    /// Skip the GEMM timing (for profiling runs under callgrind).
    no_gemm: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        n_hidden: 4,
        batch: 128,
        epochs: 30,
        warmup: 3,
        threads: 2,
        seed: 0,
        json: false,
        no_gemm: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" || flag == "--no-gemm" {
            a.json |= flag == "--json";
            a.no_gemm |= flag == "--no-gemm";
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--n-hidden" => a.n_hidden = num(&value)?,
            "--batch" => a.batch = num(&value)?,
            "--epochs" => a.epochs = num(&value)?.max(1),
            "--warmup" => a.warmup = num(&value)?,
            "--threads" => a.threads = num(&value)?.max(1),
            "--seed" => a.seed = num(&value)? as u64,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// GFLOP/s of the engine's GEMM at 128x256x256 (a hidden layer's forward on
/// a batch of 128, weight read transposed) on one thread with the active
/// instruction set, as the fused step calls it (each of its two halves runs on
/// one core): median of 21 rounds of 50 calls.
fn gemm_gflops() -> f64 {
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..128 * 256).map(|_| rng.normal() as f32).collect();
    let w: Vec<f32> = (0..256 * 256).map(|_| rng.normal() as f32).collect();
    let mut c = vec![0.0f32; 128 * 256];
    let (a, b) = (MatRef::row_major(&x, 128, 256), MatRef::row_major(&w, 256, 256).t());
    let mut rounds = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        for _ in 0..50 {
            gemm_into(&mut c, a, b, false);
            std::hint::black_box(&mut c);
        }
        rounds.push(t.elapsed().as_secs_f64() / 50.0);
    }
    2.0 * 128.0 * 256.0 * 256.0 / median(&rounds) / 1e9
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("task_epochs: {e}");
            std::process::exit(2);
        }
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("the global thread pool is set once, here");
    let config = TaskConfig {
        n_hidden: args.n_hidden,
        seed: args.seed,
        batch_size: args.batch,
        max_epochs: args.warmup + args.epochs,
        patience: usize::MAX / 2,
        ..TaskConfig::default()
    };
    let info = catalog::lookup("clipped_adam").expect("clipped_adam is in the catalog");
    let optimizer = (info.build)(&HyperParams::defaults(info)).expect("defaults are valid");
    let n_train = config.data.n_train;
    let n_val = config.data.n_val;
    let mut trainer = Trainer::new(config, optimizer).expect("the task builds");
    let mut times = Vec::with_capacity(args.epochs);
    let mut last_val = f64::NAN;
    let mut train = || {
        for e in 0..args.warmup + args.epochs {
            let t = Instant::now();
            let m = trainer.run_epoch().expect("training runs");
            if e >= args.warmup {
                times.push(t.elapsed().as_secs_f64());
            }
            last_val = m.val_loss;
        }
    };
    // Each epoch runs in `ops::in_pool`: with two threads or more, the
    // step's halves go to the engine's spinning pair helper.
    train();
    let per_epoch = median(&times);
    let widths = task_widths(1, 2, args.n_hidden);
    let flops = flops_per_epoch(&widths, 2, n_train, args.batch, n_val);
    let gemm = if args.no_gemm { f64::NAN } else { gemm_gflops() };
    let peak = peak_rss_bytes().map_or(f64::NAN, |b| b as f64 / (1 << 20) as f64);
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    if args.json {
        println!(
            "{{\"framework\":\"ferrograd\",\"n_hidden\":{},\"batch\":{},\"threads\":{},\"epochs\":{},\
             \"ms_per_epoch_median\":{:.4},\"ms_per_epoch_min\":{:.4},\"flops_per_epoch\":{},\
             \"gemm_gflops\":{:.2},\"peak_rss_mib\":{:.1},\"last_val_loss\":{},\"isa\":\"{}\"}}",
            args.n_hidden,
            args.batch,
            args.threads,
            args.epochs,
            per_epoch * 1e3,
            min * 1e3,
            flops,
            gemm,
            peak,
            last_val,
            isa::active()
        );
    } else {
        println!(
            "track {} batch {} threads {}: {:.2} ms/epoch median (min {:.2}) over {} epochs; \
             {:.3} GFLOP/epoch = {:.1} GFLOP/s; GEMM 128x256x256 {:.1} GFLOP/s; peak RSS {:.1} MiB; val {:.5}; {}",
            args.n_hidden,
            args.batch,
            args.threads,
            per_epoch * 1e3,
            min * 1e3,
            args.epochs,
            flops / 1e9,
            flops / per_epoch / 1e9,
            gemm,
            peak,
            last_val,
            isa::active()
        );
    }
}
