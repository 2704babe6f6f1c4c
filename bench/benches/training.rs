//! The training step as the trainer runs it, at the task's shapes (f32,
//! batch 128): one full step (gather the batch, fused forward and backward,
//! clipped Adam over every tensor, in-place update) on tracks 4 and 18; and
//! one clipped-Adam step alone over all of track 4's and track 18's tensors.
//!
//! Run with `cargo bench -p ferrograd-bench --bench training`. The
//! end-to-end seconds per epoch come from `bench/src/bin/task_epochs.rs`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::engine::{DType, Rng, Tensor};
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

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = train_step, adam_step
}
criterion_main!(benches);
