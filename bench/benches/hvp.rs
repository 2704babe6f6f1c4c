//! The cost of a Hessian-vector product relative to one gradient, at the
//! task's shapes (batch 128, width 256, tracks 4 and 10, f32), as the
//! Trainer computes them:
//!
//! - `gradient`: forward in training mode, sum of squared errors, backward;
//! - `gradient_create_graph`: the same with the backward pass recorded
//!   (`backward_with(true)`), the first half of an hvp;
//! - `hvp`: `BatchCurvature::hvp` by reverse-over-reverse (forward, recorded
//!   backward, `<g, v>`, backward of that): what Sophia, AdaHessian and
//!   Newton-CG pay per probe in the Trainer;
//! - `hvp_forward_over_reverse`: the same product with the direction attached
//!   as the parameters' tangents, one forward and one plain backward pass,
//!   every op also computing its tangent.
//!
//! Run with `cargo bench -p ferrograd-bench --bench hvp`; the ratio of the
//! medians is what `bench/RESULTS.md` quotes (theory: 2-4 gradients).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferrograd::autograd::{HvpMode, Var};
use ferrograd::datasets::RffConfig;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::{self, Mlp};
use ferrograd::optim::Curvature;
use ferrograd::train::BatchCurvature;
use std::time::Duration;

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

fn gradient(model: &Mlp, x: &Var, y: &Var, create_graph: bool) -> usize {
    let vars = model.vars();
    let (prediction, _) = model.functional_forward(x, &vars, true).unwrap();
    let grads = nn::sse(&prediction, y).unwrap().backward_with(create_graph).unwrap();
    vars.iter().filter(|v| grads.get(v).is_some()).count()
}

fn bench_hvp(c: &mut Criterion) {
    let mut group = c.benchmark_group("hvp");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for n_hidden in [4, 10] {
        let (model, x, y, direction) = setup(n_hidden);
        group.bench_function(format!("track{n_hidden}/gradient"), |b| {
            b.iter(|| black_box(gradient(&model, &x, &y, false)))
        });
        group.bench_function(format!("track{n_hidden}/gradient_create_graph"), |b| {
            b.iter(|| black_box(gradient(&model, &x, &y, true)))
        });
        group.bench_function(format!("track{n_hidden}/hvp"), |b| {
            b.iter(|| black_box(BatchCurvature::new(&model, &x, &y).hvp(&direction).unwrap()))
        });
        group.bench_function(format!("track{n_hidden}/hvp_forward_over_reverse"), |b| {
            b.iter(|| {
                let mut hook = BatchCurvature::new(&model, &x, &y).with_mode(HvpMode::ForwardOverReverse);
                black_box(hook.hvp(&direction).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_hvp);
criterion_main!(benches);
