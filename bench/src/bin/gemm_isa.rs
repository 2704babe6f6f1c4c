//! The engine's GEMM per instruction set and thread count, at the task's
//! shapes and 1024^3, in one process: every variant of a shape runs once per
//! round, the rounds alternate through the variants, and each figure is the
//! median over rounds of each round's median call (so a noisy minute hits
//! every variant alike).
//!
//! ```text
//! cargo run --release -p ferrograd-bench --bin gemm_isa -- [--rounds 15] [--json]
//! ```
//!
//! Prints one line per shape, ISA and thread count: median GFLOP/s
//! (`2 m n k / median seconds per call`), and the lowest and highest round.

use ferrograd::engine::isa::Isa;
use ferrograd::engine::ops::matmul::{gemm_into_with, MatRef};
use ferrograd::engine::ops::with_threads;
use ferrograd::engine::Rng;
use ferrograd_bench::median;
use std::time::Instant;

/// `(m, k, n, A read transposed, B read transposed)`, as in benches/matmul.rs.
const SHAPES: [(usize, usize, usize, bool, bool); 4] = [
    (128, 256, 256, false, false),
    (256, 128, 256, true, false),
    (128, 256, 256, false, true),
    (1024, 1024, 1024, false, false),
];

fn id((m, k, n, ta, tb): (usize, usize, usize, bool, bool)) -> String {
    let ops = match (ta, tb) {
        (false, false) => "",
        (true, false) => "_tn",
        (false, true) => "_nt",
        (true, true) => "_tt",
    };
    format!("{m}x{k}x{n}{ops}")
}

/// Seconds per call of one variant: the median over the calls of ~40 ms
/// (at least 3), each timed alone, as bench/gemm_peer.py times PyTorch, so
/// that a call the scheduler interrupted is an outlier, not a share of the
/// figure.
fn seconds_per_call(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: &mut [f32], isa: Isa, threads: usize) -> f64 {
    let flops = 2.0 * (a.n_rows() * a.n_cols() * b.n_cols()) as f64;
    let calls = ((4e9 / flops) as usize).clamp(3, 2000);
    let times: Vec<f64> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            gemm_into_with(c, a, b, false, isa, threads);
            std::hint::black_box(&mut *c);
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(&times)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut json) = (15usize, false);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--json" => json = true,
            _ => panic!("unknown flag {flag}"),
        }
    }
    let mut rng = Rng::new(1);
    for shape in SHAPES {
        let (m, k, n, ta, tb) = shape;
        let a_data: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
        let b_data: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
        let a = if ta {
            MatRef::row_major(&a_data, k, m).t()
        } else {
            MatRef::row_major(&a_data, m, k)
        };
        let b = if tb {
            MatRef::row_major(&b_data, n, k).t()
        } else {
            MatRef::row_major(&b_data, k, n)
        };
        let mut c = vec![0.0f32; m * n];
        let variants: Vec<(Isa, usize)> = Isa::available()
            .into_iter()
            .filter(|&i| i != Isa::Scalar)
            .flat_map(|i| [(i, 1), (i, 2)])
            .collect();
        let mut times = vec![Vec::new(); variants.len()];
        with_threads(2, || {
            for _ in 0..rounds + 1 {
                for (t, &(isa, threads)) in times.iter_mut().zip(&variants) {
                    t.push(seconds_per_call(a, b, &mut c, isa, threads));
                }
            }
        });
        let flops = 2.0 * (m * n * k) as f64;
        for (t, (isa, threads)) in times.iter_mut().zip(variants) {
            t.remove(0); // the warm-up round
            let gf: Vec<f64> = t.iter().map(|s| flops / s / 1e9).collect();
            let (lo, hi) = gf.iter().fold((f64::MAX, 0.0f64), |(l, h), &g| (l.min(g), h.max(g)));
            let med = median(&gf);
            if json {
                println!(
                    "{{\"shape\":\"{}\",\"isa\":\"{isa}\",\"threads\":{threads},\"gflops\":{med:.1},\"low\":{lo:.1},\"high\":{hi:.1}}}",
                    id(shape)
                );
            } else {
                println!(
                    "{:<18} {isa:<7} {threads} thread(s): {med:6.1} GFLOP/s [{lo:.0}-{hi:.0}]",
                    id(shape)
                );
            }
        }
    }
}
