//! Micro-benchmarks of the engine's non-GEMM kernels at the task's shapes
//! (batch 128, width 256, f32): elementwise and broadcast ops, reductions,
//! and BatchNorm forward + backward, both as the fused kernel the training
//! step uses and as the composition of tensor ops autograd records.
//!
//! Run with `cargo bench -p ferrograd-bench --bench ops`. Throughput is in
//! elements of the largest operand (`Gelem/s`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferrograd::autograd::Var;
use ferrograd::engine::ops::fused::{
    bias_relu_batchnorm_backward, bias_relu_batchnorm_train, BatchStats, LayerGrads, LayerParams,
};
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::BatchNorm1d;
use std::time::Duration;

const BATCH: usize = 128;
const WIDTH: usize = 256;

fn normal(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, DType::F32, rng).expect("valid shape")
}

/// Elementwise and broadcast ops: what a bias add, a ReLU and a BatchNorm
/// normalisation cost one op at a time, each allocating its output.
fn elementwise(c: &mut Criterion) {
    let mut rng = Rng::new(0);
    let x = normal(&[BATCH, WIDTH], &mut rng);
    let y = normal(&[BATCH, WIDTH], &mut rng);
    let row = normal(&[WIDTH], &mut rng);
    let col = normal(&[BATCH, 1], &mut rng);
    let mut g = c.benchmark_group("elementwise");
    g.throughput(Throughput::Elements((BATCH * WIDTH) as u64));
    g.bench_function("relu_128x256", |b| b.iter(|| black_box(x.relu())));
    g.bench_function("add_128x256", |b| b.iter(|| black_box(x.add(&y).unwrap())));
    g.bench_function("add_row_broadcast_128x256+256", |b| {
        b.iter(|| black_box(x.add(&row).unwrap()))
    });
    g.bench_function("mul_col_broadcast_128x256*128x1", |b| {
        b.iter(|| black_box(x.mul(&col).unwrap()))
    });
    g.bench_function("clamp_128x256", |b| b.iter(|| black_box(x.clamp(-1.0, 1.0).unwrap())));
    let mut z = x.clone();
    g.bench_function("mul_scalar_in_place_128x256", |b| {
        b.iter(|| z.unary_in_place(ferrograd::engine::UnaryOp::MulScalar(0.999)))
    });
    g.finish();
}

/// Reductions over the batch axis (BatchNorm's mean) and the feature axis.
fn reductions(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let x = normal(&[BATCH, WIDTH], &mut rng);
    let mut g = c.benchmark_group("reduce");
    g.throughput(Throughput::Elements((BATCH * WIDTH) as u64));
    g.bench_function("sum_axis0_128x256", |b| {
        b.iter(|| black_box(x.sum(Some(&[0]), false).unwrap()))
    });
    g.bench_function("sum_axis1_128x256", |b| {
        b.iter(|| black_box(x.sum(Some(&[1]), false).unwrap()))
    });
    g.bench_function("var_axis0_128x256", |b| {
        b.iter(|| black_box(x.var(Some(&[0]), false, false).unwrap()))
    });
    g.bench_function("sum_all_128x256", |b| b.iter(|| black_box(x.sum_all())));
    g.finish();
}

/// bias + ReLU + BatchNorm, forward and backward, for one hidden layer:
/// fused (feature-major buffers, what the trainer runs) against the tensor
/// ops that autograd records and differentiates.
fn batchnorm(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let mut g = c.benchmark_group("batchnorm");
    g.throughput(Throughput::Elements((BATCH * WIDTH) as u64));

    let z: Vec<f32> = normal(&[WIDTH, BATCH], &mut rng).to_vec().unwrap();
    let dy: Vec<f32> = normal(&[WIDTH, BATCH], &mut rng).to_vec().unwrap();
    let (bias, scale, shift) = (vec![0.1f32; WIDTH], vec![1.0f32; WIDTH], vec![0.0f32; WIDTH]);
    let (mut act, mut out, mut grad) = (z.clone(), vec![0.0f32; WIDTH * BATCH], dy.clone());
    let (mut mean, mut var, mut inv_std) = (vec![0.0f32; WIDTH], vec![0.0f32; WIDTH], vec![0.0f32; WIDTH]);
    let (mut gb, mut gs, mut gh) = (vec![0.0f32; WIDTH], vec![0.0f32; WIDTH], vec![0.0f32; WIDTH]);
    let p = LayerParams {
        bias: &bias,
        scale: &scale,
        shift: &shift,
    };
    g.bench_function("fused_bias_relu_bn_forward_backward", |b| {
        b.iter(|| {
            act.copy_from_slice(&z);
            let stats = BatchStats {
                mean: &mut mean,
                var: &mut var,
                inv_std: &mut inv_std,
            };
            bias_relu_batchnorm_train(&mut act, &mut out, p, stats, BATCH, 1e-5);
            grad.copy_from_slice(&dy);
            let grads = LayerGrads {
                bias: &mut gb,
                scale: &mut gs,
                shift: &mut gh,
            };
            bias_relu_batchnorm_backward(&mut grad, &act, p, &mean, &inv_std, grads, BATCH);
            black_box(&grad);
        })
    });

    let bn = BatchNorm1d::new(WIDTH, DType::F32).unwrap();
    let x = normal(&[BATCH, WIDTH], &mut rng);
    let upstream = Var::constant(normal(&[BATCH, WIDTH], &mut rng));
    g.bench_function("autograd_bias_relu_bn_forward_backward", |b| {
        b.iter(|| {
            let (xv, bv) = (
                Var::parameter(x.clone()),
                Var::parameter(Tensor::zeros([WIDTH], DType::F32).unwrap()),
            );
            let (sv, hv) = (Var::parameter(bn.scale.clone()), Var::parameter(bn.shift.clone()));
            let h = xv.add(&bv).unwrap().relu().unwrap();
            let (y, _, _) = bn.forward_train(&h, &sv, &hv).unwrap();
            let loss = y.mul(&upstream).unwrap().sum_all().unwrap();
            black_box(loss.backward().unwrap());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = elementwise, reductions, batchnorm
}
criterion_main!(benches);
