//! The training step as the trainer runs it, at the task's shapes (f32,
//! batch 128): one full step (gather the batch, fused forward and backward,
//! clipped Adam over every tensor, in-place update) on tracks 4 and 18; and
//! one clipped-Adam step alone over all of track 4's and track 18's tensors;
//! and each elementwise optimizer stage over track 4's tensors, in its
//! one-pass form against its tensor-operation form.
//!
//! Run with `cargo bench -p ferrograd-bench --bench training`. The
//! end-to-end seconds per epoch come from `bench/src/bin/task_epochs.rs`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::optim::basic::{AddDecayedWeights, ScaleByAdam};
use ferrograd::optim::modern::{ScaleByBelief, ScaleByLion};
use ferrograd::optim::onepass::TensorOpsReference;
use ferrograd::optim::torch_family::{
    ScaleByAdadelta, ScaleByAdagrad, ScaleByAdamax, ScaleByNadam, ScaleByRadam, ScaleByRmsprop, TorchMomentum,
};
use ferrograd::optim::transform::StepInfo;
use ferrograd::optim::{catalog, HyperParams, StepContext, TaskOptimizer};
use ferrograd::train::{TaskConfig, Trainer};
use std::time::Duration;

fn adam() -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup("clipped_adam").expect("clipped_adam is in the catalog");
    (info.build)(&HyperParams::defaults(info)).expect("defaults are valid")
}

/// One training step of the protocol on a batch of 128.
fn train_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    for track in [4usize, 18] {
        let config = TaskConfig {
            n_hidden: track,
            ..TaskConfig::default()
        };
        let mut trainer = Trainer::new(config, adam()).expect("the task builds");
        let batch: Vec<usize> = (0..128).map(|i| (i * 7) % 1000).collect();
        for _ in 0..3 {
            trainer.step_on(&batch).expect("a step runs"); // warm-up: buffers sized
        }
        g.bench_with_input(BenchmarkId::new("track", track), &track, |b, _| {
            b.iter(|| black_box(trainer.step_on(&batch).expect("a step runs")))
        });
    }
    g.finish();
}

/// One clipped-Adam step over every tensor of the task model (the optimizer
/// sees frozen tensors and running statistics too, as the protocol says).
fn adam_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("adam_step");
    for track in [4usize, 18] {
        let config = TaskConfig {
            n_hidden: track,
            ..TaskConfig::default()
        };
        let trainer = Trainer::new(config, adam()).expect("the task builds");
        let params = trainer.model.tensors();
        let mut rng = Rng::new(5);
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| Tensor::rand_normal(p.shape().clone(), 0.0, 1.0, DType::F32, &mut rng).unwrap())
            .collect();
        let mut opt = adam();
        opt.init_state(0, &trainer.model.layout()).unwrap();
        let ctx = StepContext::default();
        let elements: usize = params.iter().map(Tensor::numel).sum();
        g.throughput(Throughput::Elements(elements as u64));
        g.bench_with_input(BenchmarkId::new("track", track), &track, |b, _| {
            // Dropping the updates before the next step lets the optimizer reuse their buffers, as the trainer does.
            b.iter(|| drop(black_box(opt.step(&params, &grads, &ctx).unwrap())))
        });
    }
    g.finish();
}

/// The elementwise stages with a one-pass CPU step, with PyTorch's (or
/// the paper's) defaults (Adam's was one pass before these).
fn one_pass_stages() -> Vec<(&'static str, Box<dyn TensorOpsReference>)> {
    vec![
        ("sgd_momentum", Box::new(TorchMomentum::new(0.9, 0.0, false))),
        ("sgd_nesterov", Box::new(TorchMomentum::new(0.9, 0.0, true))),
        ("adagrad", Box::new(ScaleByAdagrad::new(0.0, 1e-10))),
        ("rmsprop", Box::new(ScaleByRmsprop::new(0.99, 1e-8, false))),
        ("rmsprop_centered", Box::new(ScaleByRmsprop::new(0.99, 1e-8, true))),
        ("adadelta", Box::new(ScaleByAdadelta::new(0.9, 1e-6))),
        ("nadam", Box::new(ScaleByNadam::new(0.9, 0.999, 1e-8, 4e-3))),
        ("radam", Box::new(ScaleByRadam::new(0.9, 0.999, 1e-8))),
        ("adamax", Box::new(ScaleByAdamax::new(0.9, 0.999, 1e-8))),
        ("adabelief", Box::new(ScaleByBelief::new(0.9, 0.999, 1e-16))),
        ("lion", Box::new(ScaleByLion::new(0.9, 0.99))),
        ("adam", Box::new(ScaleByAdam::new(0.9, 0.999, 1e-8, false))),
        ("weight_decay", Box::new(AddDecayedWeights { rate: 0.01, mask: None })),
    ]
}

/// Each one-pass stage's step over every tensor of track 4's model (f32),
/// as `tensor_ops/NAME` (the reference form) and `one_pass/NAME`. Every
/// iteration gets gradients of its own (copied outside the timing, from one
/// of two random sets in turn), as the trainer hands over buffers nobody
/// else holds; the step number stays at 10 (past the first-step special
/// cases).
fn stage_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage_step");
    let config = TaskConfig {
        n_hidden: 4,
        ..TaskConfig::default()
    };
    let params = Trainer::new(config, adam()).expect("the task builds").model.tensors();
    let mut rng = Rng::new(5);
    let mut draw = || -> Vec<Tensor> {
        params
            .iter()
            .map(|p| Tensor::rand_normal(p.shape().clone(), 0.0, 1.0, DType::F32, &mut rng).unwrap())
            .collect()
    };
    // Two gradient sets in turn: with one, the moments would converge onto
    // it and AdaBelief's `g - m` (and centered RMSprop's `s - a^2`) sink
    // into subnormals, which time the FPU's slow path, not the sweeps.
    let grad_sets = [draw(), draw()];
    let turn = std::cell::Cell::new(0usize);
    let fresh = || -> Vec<Tensor> {
        turn.set(turn.get() + 1);
        grad_sets[turn.get() % 2]
            .iter()
            .map(|t| Tensor::from_vec(t.to_vec::<f32>().unwrap(), t.shape().clone()).unwrap())
            .collect()
    };
    let ctx = StepContext::default();
    let info = StepInfo {
        count: 10,
        params: &params,
        ctx: &ctx,
    };
    let elements: usize = params.iter().map(Tensor::numel).sum();
    g.throughput(Throughput::Elements(elements as u64));
    for (name, mut stage) in one_pass_stages() {
        g.bench_function(BenchmarkId::new("tensor_ops", name), |b| {
            b.iter_batched(
                fresh,
                |u| stage.update_with_tensor_ops(u, &info).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("one_pass", name), |b| {
            b.iter_batched(fresh, |u| stage.update(u, &info).unwrap(), BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = train_step, adam_step, stage_step
}
criterion_main!(benches);
