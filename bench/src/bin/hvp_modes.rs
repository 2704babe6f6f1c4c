//! The cost of a Hessian-vector product by each mode, relative to one
//! gradient, at the task's shapes (batch 128, width 256, f32): the same
//! three computations as `benches/hvp.rs`, but *interleaved* (gradient,
//! reverse-over-reverse, forward-over-reverse, again and again) and
//! reported as medians of the per-round ratios. On a shared machine, load
//! drifts between criterion's back-to-back blocks and moves each block's
//! time on its own; a ratio taken within one round sees the same load on
//! both sides.
//!
//! ```text
//! cargo run --release -p ferrograd-bench --bin hvp_modes -- [ROUNDS]
//! ```

use ferrograd::autograd::{HvpMode, Var};
use ferrograd::datasets::RffConfig;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::{self, Mlp};
use ferrograd::optim::Curvature;
use ferrograd::train::BatchCurvature;
use ferrograd_bench::median;
use std::time::Instant;

const BATCH: usize = 128;

/// A task model with `n_hidden` layers, a random batch and a random direction.
fn setup(n_hidden: usize) -> (Mlp, Var, Var, Vec<Tensor>) {
    let data = RffConfig::default();
    let mut rng = Rng::new(0);
    let model = Mlp::task(data.input_dims, data.output_dims, n_hidden, DType::F32, &mut rng).unwrap();
    let mut normal = |dims: Vec<usize>| Tensor::rand_normal(dims, 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let x = Var::constant(normal(vec![BATCH, data.input_dims]));
    let y = Var::constant(normal(vec![BATCH, data.output_dims]));
    let direction = model.tensors().iter().map(|t| normal(t.dims().to_vec())).collect();
    (model, x, y, direction)
}

/// Seconds taken by `work`.
fn seconds(work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    start.elapsed().as_secs_f64()
}

/// One round: (gradient, reverse-over-reverse, forward-over-reverse) seconds.
fn round(model: &Mlp, x: &Var, y: &Var, direction: &[Tensor]) -> [f64; 3] {
    let gradient = seconds(|| {
        let vars = model.vars();
        let (prediction, _) = model.functional_forward(x, &vars, true).unwrap();
        std::hint::black_box(nn::sse(&prediction, y).unwrap().backward().unwrap());
    });
    let by = |mode| {
        seconds(|| {
            let mut hook = BatchCurvature::new(model, x, y).with_mode(mode);
            std::hint::black_box(hook.hvp(direction).unwrap());
        })
    };
    [
        gradient,
        by(HvpMode::ReverseOverReverse),
        by(HvpMode::ForwardOverReverse),
    ]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(40, |r| r.parse().expect("ROUNDS is a number"));
    println!("| track | gradient | hvp reverse-over-reverse | hvp forward-over-reverse | RoR / gradient | FoR / gradient | FoR / RoR |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n_hidden in [4, 10] {
        let (model, x, y, direction) = setup(n_hidden);
        for _ in 0..3 {
            round(&model, &x, &y, &direction); // warm-up
        }
        let times: Vec<[f64; 3]> = (0..rounds).map(|_| round(&model, &x, &y, &direction)).collect();
        let column = |i: usize| median(&times.iter().map(|t| t[i]).collect::<Vec<_>>());
        let ratio = |a: usize, b: usize| median(&times.iter().map(|t| t[a] / t[b]).collect::<Vec<_>>());
        println!(
            "| {n_hidden} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}x | {:.2}x | {:.2} |",
            1e3 * column(0),
            1e3 * column(1),
            1e3 * column(2),
            ratio(1, 0),
            ratio(2, 0),
            ratio(2, 1)
        );
    }
}
