//! The task model's fused GPU kernels (`cuda::mlp`, `ptx/cuda/mlp.cu`) and
//! the multi-tensor clipped Adam (`ops::multi_tensor`), in f64, against
//! references written here from the definitions, one plain loop per
//! formula:
//!
//! * hidden layer: `a = relu(x W^T + b)`, batch mean and biased variance,
//!   `y = (a - mean) / sqrt(var + eps) * scale + shift`;
//! * its backward (BatchNorm1d's gradient, e.g. Ioffe and Szegedy 2015,
//!   section 3): with `dy = dz_up W_up`, `xhat = (a - mean) inv_std`,
//!   `da = scale inv_std (dy - mean(dy) - xhat mean(dy xhat))`,
//!   `dz = da` where `a > 0`, `d scale = sum dy xhat`, `d shift = sum dy`,
//!   `d bias = sum dz`, `dW = dz^T x`;
//! * output layer: `p = x W^T + b`, `dz = 2 (p - t)`, `sse = sum (p - t)^2`.
//!
//! Shapes are odd on purpose (batches that are not multiples of a warp,
//! more rows than threads in a block), inputs read from the middle of a
//! larger sample-major buffer. f64 results must agree to 1e-12 relative
//! (the sums run in another order than the references'). The emulated
//! device runs these in CI, in its race mode too.
#![cfg(feature = "cuda")]

use ferrograd_engine::cuda::mlp::{
    blend_running_stats, hidden_backward, hidden_forward_eval, hidden_forward_train, linear_grads, output_forward,
    Batch, HiddenGrads, HiddenSaved, Layout, LinearParams, NormParams,
};
use ferrograd_engine::ops::multi_tensor::{
    clipped_adam_in_place, clipped_adam_replayed, AdamTensors, ClippedAdamConstants, ClippedAdamHyper, MultiTensorTable,
};
use ferrograd_engine::{cuda, DType, Device, Error, Rng, Tensor};

const EPS: f64 = 1e-5;

fn gpu(test: &str) -> Option<Device> {
    cuda::device_or_skip(test)
}

fn random(rng: &mut Rng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    Tensor::rand_uniform([len], lo, hi, DType::F64, rng)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn on(dev: Device, v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap().to_device(dev).unwrap()
}

fn zeros(dev: Device, len: usize) -> Tensor {
    Tensor::zeros([len], DType::F64).unwrap().to_device(dev).unwrap()
}

fn host(t: &Tensor) -> Vec<f64> {
    t.to_device(Device::Cpu).unwrap().to_vec::<f64>().unwrap()
}

fn matrix(dev: Device, v: &[f64], rows: usize, cols: usize) -> Tensor {
    Tensor::from_vec(v.to_vec(), [rows, cols])
        .unwrap()
        .to_device(dev)
        .unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert!(
        got.len() >= want.len(),
        "{what}: {} values, want {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::abs_diff_eq!(g, w, epsilon = 1e-12 * scale),
            "{what}[{i}]: gpu {g} vs reference {w}"
        );
    }
}

/// One hidden layer's reference forward: `(a, y, mean, var, inv_std)`,
/// feature-major, from sample-major `x[n, k]`.
struct Forward {
    a: Vec<f64>,
    y: Vec<f64>,
    mean: Vec<f64>,
    var: Vec<f64>,
    inv_std: Vec<f64>,
}

#[allow(clippy::too_many_arguments)]
fn reference_forward(
    x: &[f64],
    n: usize,
    k: usize,
    c: usize,
    w: &[f64],
    b: &[f64],
    scale: &[f64],
    shift: &[f64],
) -> Forward {
    let mut f = Forward {
        a: vec![0.0; c * n],
        y: vec![0.0; c * n],
        mean: vec![0.0; c],
        var: vec![0.0; c],
        inv_std: vec![0.0; c],
    };
    for j in 0..c {
        for r in 0..n {
            let z: f64 = (0..k).map(|q| x[r * k + q] * w[j * k + q]).sum::<f64>() + b[j];
            f.a[j * n + r] = z.max(0.0);
        }
        let col = &f.a[j * n..(j + 1) * n];
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let inv_std = 1.0 / (var + EPS).sqrt();
        for r in 0..n {
            f.y[j * n + r] = (f.a[j * n + r] - mean) * inv_std * scale[j] + shift[j];
        }
        (f.mean[j], f.var[j], f.inv_std[j]) = (mean, var, inv_std);
    }
    f
}

#[test]
fn hidden_forward_and_running_statistics_match_the_definition() {
    let Some(dev) = gpu("cuda_mlp") else { return };
    let mut rng = Rng::new(1);
    for (n, k, c) in [(37usize, 7usize, 5usize), (300, 3, 4)] {
        let first = 11;
        let rows = random(&mut rng, (first + n + 5) * k, -1.0, 1.0);
        let x = &rows[first * k..(first + n) * k];
        let (w, b) = (random(&mut rng, c * k, -0.8, 0.8), random(&mut rng, c, -0.3, 0.3));
        let (scale, shift) = (random(&mut rng, c, 0.5, 1.5), random(&mut rng, c, -0.5, 0.5));
        let want = reference_forward(x, n, k, c, &w, &b, &scale, &shift);

        let data = matrix(dev, &rows, first + n + 5, k);
        let input = Batch {
            data: &data,
            n,
            features: k,
            layout: Layout::SampleMajor { first },
        };
        let (wt, bt) = (matrix(dev, &w, c, k), on(dev, &b));
        let (st, ht) = (on(dev, &scale), on(dev, &shift));
        let linear = LinearParams { weight: &wt, bias: &bt };
        let norm = NormParams { scale: &st, shift: &ht };
        let mut saved = HiddenSaved::new(0, c, n, DType::F64).unwrap();
        hidden_forward_train(input, linear, norm, &mut saved, EPS).unwrap();
        assert_close("act", &host(&saved.act), &want.a);
        assert_close("out", &host(&saved.out), &want.y);
        assert_close("mean", &host(&saved.mean), &want.mean);
        assert_close("var", &host(&saved.var), &want.var);
        assert_close("inv_std", &host(&saved.inv_std), &want.inv_std);

        // Running statistics: r (1 - m) + batch m, the variance unbiased.
        let (rm0, rv0) = (random(&mut rng, c, -1.0, 1.0), random(&mut rng, c, 0.5, 2.0));
        let (mut rm, mut rv) = (on(dev, &rm0), on(dev, &rv0));
        blend_running_stats(&saved, n, &mut rm, &mut rv, 0.1).unwrap();
        let unbias = n as f64 / (n - 1) as f64;
        let want_rm: Vec<f64> = (0..c).map(|j| rm0[j] * 0.9 + want.mean[j] * 0.1).collect();
        let want_rv: Vec<f64> = (0..c).map(|j| rv0[j] * 0.9 + want.var[j] * unbias * 0.1).collect();
        assert_close("running mean", &host(&rm), &want_rm);
        assert_close("running var", &host(&rv), &want_rv);

        // Inference with those running statistics.
        let mut out = zeros(dev, c * n);
        hidden_forward_eval(input, linear, norm, (&rm, &rv), &mut out, EPS).unwrap();
        let mut want_eval = vec![0.0; c * n];
        for j in 0..c {
            for r in 0..n {
                let is = 1.0 / (want_rv[j] + EPS).sqrt();
                want_eval[j * n + r] = (want.a[j * n + r] - want_rm[j]) * is * scale[j] + shift[j];
            }
        }
        assert_close("eval out", &host(&out), &want_eval);
    }
}

#[test]
fn output_layer_loss_and_its_gradient_match_the_definition() {
    let Some(dev) = gpu("cuda_mlp") else { return };
    let mut rng = Rng::new(2);
    let (n, k, c, first) = (45usize, 6usize, 3usize, 4usize);
    let x = random(&mut rng, k * n, -1.0, 1.0); // feature-major [k, n]
    let (w, b) = (random(&mut rng, c * k, -1.0, 1.0), random(&mut rng, c, -0.5, 0.5));
    let targets = random(&mut rng, (first + n) * c, -2.0, 2.0);
    let (mut pred, mut dz, mut sse) = (vec![0.0; c * n], vec![0.0; c * n], 0.0);
    for j in 0..c {
        for r in 0..n {
            let p: f64 = (0..k).map(|q| x[q * n + r] * w[j * k + q]).sum::<f64>() + b[j];
            let d = p - targets[(first + r) * c + j];
            (pred[j * n + r], dz[j * n + r]) = (p, 2.0 * d);
            sse += d * d;
        }
    }
    let (xt, wt, bt) = (on(dev, &x), matrix(dev, &w, c, k), on(dev, &b));
    let tt = matrix(dev, &targets, first + n, c);
    let (mut pg, mut dg, mut sg) = (zeros(dev, c * n), zeros(dev, c * n), zeros(dev, 4));
    let input = Batch {
        data: &xt,
        n,
        features: k,
        layout: Layout::FeatureMajor,
    };
    let y = Batch {
        data: &tt,
        n,
        features: c,
        layout: Layout::SampleMajor { first },
    };
    let linear = LinearParams { weight: &wt, bias: &bt };
    output_forward(input, linear, y, Some(&mut pg), Some(&mut dg), (&mut sg, 2)).unwrap();
    assert_close("pred", &host(&pg), &pred);
    assert_close("dz", &host(&dg), &dz);
    let slots = host(&sg);
    assert_close("sse", &slots[2..3], &[sse]);
    assert_eq!(
        (slots[0], slots[1], slots[3]),
        (0.0, 0.0, 0.0),
        "only slot 2 is written"
    );

    // The output layer's own gradients from that dz.
    let (mut gw, mut gb) = (matrix(dev, &vec![0.0; c * k], c, k), zeros(dev, c));
    linear_grads(&dg, input, &mut gw, &mut gb).unwrap();
    let want_gb: Vec<f64> = (0..c).map(|j| dz[j * n..(j + 1) * n].iter().sum()).collect();
    let want_gw: Vec<f64> = (0..c * k)
        .map(|i| (0..n).map(|r| dz[(i / k) * n + r] * x[(i % k) * n + r]).sum())
        .collect();
    assert_close("output bias grad", &host(&gb), &want_gb);
    assert_close("output weight grad", &host(&gw), &want_gw);
}

#[test]
fn hidden_backward_matches_the_definition_trained_or_frozen() {
    let Some(dev) = gpu("cuda_mlp") else { return };
    let mut rng = Rng::new(3);
    for (n, k, c, c_up) in [(37usize, 5usize, 6usize, 4usize), (290, 2, 3, 2)] {
        let x = random(&mut rng, n * k, -1.0, 1.0); // sample-major [n, k]
        let (w, b) = (random(&mut rng, c * k, -0.8, 0.8), random(&mut rng, c, -0.3, 0.3));
        let (scale, shift) = (random(&mut rng, c, 0.5, 1.5), random(&mut rng, c, -0.5, 0.5));
        let f = reference_forward(&x, n, k, c, &w, &b, &scale, &shift);
        let w_up = random(&mut rng, c_up * c, -1.0, 1.0);
        let dz_up = random(&mut rng, c_up * n, -1.0, 1.0);
        let (mut dz, mut g_bias, mut g_scale, mut g_shift) =
            (vec![0.0; c * n], vec![0.0; c], vec![0.0; c], vec![0.0; c]);
        for j in 0..c {
            let dy: Vec<f64> = (0..n)
                .map(|r| (0..c_up).map(|u| dz_up[u * n + r] * w_up[u * c + j]).sum())
                .collect();
            let xhat: Vec<f64> = (0..n).map(|r| (f.a[j * n + r] - f.mean[j]) * f.inv_std[j]).collect();
            let sum_dy: f64 = dy.iter().sum();
            let sum_dy_xhat: f64 = dy.iter().zip(&xhat).map(|(d, h)| d * h).sum();
            for r in 0..n {
                let da = scale[j] * f.inv_std[j] * (dy[r] - sum_dy / n as f64 - xhat[r] * sum_dy_xhat / n as f64);
                dz[j * n + r] = if f.a[j * n + r] > 0.0 { da } else { 0.0 };
            }
            (g_scale[j], g_shift[j]) = (sum_dy_xhat, sum_dy);
            g_bias[j] = dz[j * n..(j + 1) * n].iter().sum();
        }
        let g_w: Vec<f64> = (0..c * k)
            .map(|i| (0..n).map(|r| dz[(i / k) * n + r] * x[r * k + i % k]).sum())
            .collect();

        let xt = matrix(dev, &x, n, k);
        let input = Batch {
            data: &xt,
            n,
            features: k,
            layout: Layout::SampleMajor { first: 0 },
        };
        let (wt, bt, st, ht) = (matrix(dev, &w, c, k), on(dev, &b), on(dev, &scale), on(dev, &shift));
        let norm = NormParams { scale: &st, shift: &ht };
        let mut saved = HiddenSaved::new(0, c, n, DType::F64).unwrap();
        hidden_forward_train(input, LinearParams { weight: &wt, bias: &bt }, norm, &mut saved, EPS).unwrap();
        let (wu, du) = (matrix(dev, &w_up, c_up, c), on(dev, &dz_up));
        let mut gw = matrix(dev, &vec![0.0; c * k], c, k);
        let (mut gb, mut gs, mut gh) = (zeros(dev, c), zeros(dev, c), zeros(dev, c));
        let mut dzt = zeros(dev, c * n);
        let grads = HiddenGrads {
            weight: &mut gw,
            bias: &mut gb,
            scale: &mut gs,
            shift: &mut gh,
        };
        hidden_backward(&wu, &du, &saved, norm, input, &mut dzt, Some(grads)).unwrap();
        assert_close("dz", &host(&dzt), &dz);
        assert_close("bias grad", &host(&gb), &g_bias);
        assert_close("scale grad", &host(&gs), &g_scale);
        assert_close("shift grad", &host(&gh), &g_shift);
        assert_close("weight grad", &host(&gw), &g_w);

        // Frozen: the same dz, no gradient written anywhere.
        let mut frozen_dz = zeros(dev, c * n);
        hidden_backward(&wu, &du, &saved, norm, input, &mut frozen_dz, None).unwrap();
        assert_eq!(host(&frozen_dz), host(&dzt), "a frozen layer's dz is the trained one's");
    }
}

#[test]
fn undersized_buffers_and_cpu_tensors_are_typed_errors() {
    let Some(dev) = gpu("cuda_mlp") else { return };
    let (n, k, c) = (8usize, 3usize, 2usize);
    let x = matrix(dev, &[0.5; 24], n, k);
    let (w, b, s, h) = (
        matrix(dev, &[0.1; 6], c, k),
        zeros(dev, c),
        zeros(dev, c),
        zeros(dev, c),
    );
    let linear = LinearParams { weight: &w, bias: &b };
    let norm = NormParams { scale: &s, shift: &h };
    let batch = |first: usize| Batch {
        data: &x,
        n,
        features: k,
        layout: Layout::SampleMajor { first },
    };
    let mut saved = HiddenSaved::new(0, c, n, DType::F64).unwrap();
    // The batch runs past the end of its buffer.
    let e = hidden_forward_train(batch(1), linear, norm, &mut saved, EPS).unwrap_err();
    assert!(e.to_string().contains("holds 24"), "{e}");
    // Buffers made for a smaller batch.
    let mut small = HiddenSaved::new(0, c, n - 1, DType::F64).unwrap();
    let e = hidden_forward_train(batch(0), linear, norm, &mut small, EPS).unwrap_err();
    assert!(e.to_string().contains("act holds 14 values; the layer needs 16"), "{e}");
    // A CPU weight.
    let cpu_w = Tensor::zeros([c, k], DType::F64).unwrap();
    let e = hidden_forward_train(
        batch(0),
        LinearParams {
            weight: &cpu_w,
            bias: &b,
        },
        norm,
        &mut saved,
        EPS,
    )
    .unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e}");
    // A one-sample batch has no unbiased variance.
    let (mut rm, mut rv) = (zeros(dev, c), zeros(dev, c));
    let e = blend_running_stats(&saved, 1, &mut rm, &mut rv, 0.1).unwrap_err();
    assert!(e.to_string().contains("at least 2"), "{e}");
    // Nothing above launched anything that failed: the device still works.
    hidden_forward_train(batch(0), linear, norm, &mut saved, EPS).unwrap();
    assert_eq!(host(&saved.act).len(), c * n);
}

/// The multi-tensor launch's view of parallel lists of tensors.
fn adam_tensors<'a>(
    params: &'a mut [Tensor],
    grads: &'a [Tensor],
    m: &'a mut [Tensor],
    v: &'a mut [Tensor],
) -> Vec<AdamTensors<'a>> {
    params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut().zip(v.iter_mut()))
        .map(|((param, grad), (m, v))| AdamTensors { param, grad, m, v })
        .collect()
}

/// Clipped Adam from its definition (optim/src/adam.rs), one element.
fn adam_reference(k: &ClippedAdamConstants, g: f64, m: &mut f64, v: &mut f64) -> f64 {
    let g = g.max(k.lo).min(k.hi);
    *m = *m * k.b1 + g * k.nb1;
    *v = *v * k.b2 + (g * g) * k.nb2;
    (*m * k.inv_c1) / ((*v * k.inv_c2).sqrt() + k.eps) * k.neg_lr
}

#[test]
fn clipped_adam_in_one_launch_matches_the_definition_over_steps() {
    let Some(dev) = gpu("cuda_mlp") else { return };
    // On the emulated device (no fused multiply-add) the kernel must give
    // the CPU's bits exactly: its bias corrections come from the step count
    // on the device by the same repeated squaring as Rust's powi.
    let exact = matches!(dev, Device::Cuda(i) if cuda::is_emulated(i));
    let mut rng = Rng::new(4);
    // Sizes across the kernel's 2048-element chunks, and an empty tensor.
    let sizes = [3usize, 2048, 2049, 0, 5000];
    let hyper = ClippedAdamHyper {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        clip: 0.5,
    };
    let mut params: Vec<Vec<f64>> = sizes.iter().map(|&s| random(&mut rng, s, -1.0, 1.0)).collect();
    let mut ms: Vec<Vec<f64>> = sizes.iter().map(|&s| vec![0.0; s]).collect();
    let mut vs = ms.clone();
    let mut p_dev: Vec<Tensor> = params.iter().map(|p| on(dev, p)).collect();
    let mut m_dev: Vec<Tensor> = sizes.iter().map(|&s| zeros(dev, s)).collect();
    let mut v_dev: Vec<Tensor> = sizes.iter().map(|&s| zeros(dev, s)).collect();
    let mut table = MultiTensorTable::default();
    // Late steps too: the bias corrections' powers over many squarings.
    for step in [1u64, 2, 3, 1000, 1001, 123_457] {
        let k = ClippedAdamConstants::new(hyper.lr, (hyper.beta1, hyper.beta2), hyper.eps, hyper.clip, step);
        let grads: Vec<Vec<f64>> = sizes.iter().map(|&s| random(&mut rng, s, -2.0, 2.0)).collect();
        let g_dev: Vec<Tensor> = grads.iter().map(|g| on(dev, g)).collect();
        for i in 0..sizes.len() {
            for e in 0..sizes[i] {
                params[i][e] += adam_reference(&k, grads[i][e], &mut ms[i][e], &mut vs[i][e]);
            }
        }
        let mut tensors = adam_tensors(&mut p_dev, &g_dev, &mut m_dev, &mut v_dev);
        clipped_adam_in_place(&mut tensors, &hyper, step, &mut table).unwrap();
        for i in 0..sizes.len() {
            for (what, got, want) in [
                ("param", &p_dev[i], &params[i]),
                ("m", &m_dev[i], &ms[i]),
                ("v", &v_dev[i], &vs[i]),
            ] {
                let got = host(got);
                if exact {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(want), "step {step} {what} {i}: not the CPU's bits");
                } else {
                    assert_close(&format!("step {step} {what} {i}"), &got, want);
                }
            }
        }
    }
    // A replay fits only the step after the last one, on the same tensors.
    let g_dev: Vec<Tensor> = sizes.iter().map(|&s| zeros(dev, s)).collect();
    let mut tensors = adam_tensors(&mut p_dev, &g_dev, &mut m_dev, &mut v_dev);
    assert!(
        !clipped_adam_replayed(&mut tensors, 5, &mut table).unwrap(),
        "wrong step"
    );
    assert!(clipped_adam_replayed(&mut tensors, 123_458, &mut table).unwrap());
    assert!(
        !clipped_adam_replayed(&mut tensors[1..], 123_459, &mut table).unwrap(),
        "other tensors"
    );
    // CPU tensors are refused with a message saying where they go instead.
    let (mut p, g, mut m, mut v) = (
        Tensor::zeros([2], DType::F64).unwrap(),
        Tensor::zeros([2], DType::F64).unwrap(),
        Tensor::zeros([2], DType::F64).unwrap(),
        Tensor::zeros([2], DType::F64).unwrap(),
    );
    let mut cpu = [AdamTensors {
        param: &mut p,
        grad: &g,
        m: &mut m,
        v: &mut v,
    }];
    let e = clipped_adam_in_place(&mut cpu, &hyper, 1, &mut MultiTensorTable::default()).unwrap_err();
    assert!(e.to_string().contains("CPU pass"), "{e}");
}
