//! Fused kernels for the hidden layer of the task's MLP,
//! `Linear -> ReLU -> BatchNorm1d`, forward and backward, on activations
//! stored **feature-major**: a `[features, batch]` buffer whose row `f` holds
//! feature `f` for every sample of the batch.
//!
//! Why feature-major: BatchNorm reduces over the batch for each feature, so
//! each of its sums runs over one contiguous row; and splitting a layer
//! between two threads by features gives each thread a contiguous block of
//! rows (`split_at_mut`), with no shared writes.
//!
//! Why fused: written as separate tensor ops, bias, ReLU and BatchNorm make
//! about ten passes over the activations and allocate a buffer for each; here
//! the forward makes three passes (bias and ReLU with the mean, the variance,
//! the normalisation) and the backward two, into buffers the caller owns.
//!
//! Sums run over eight interleaved partial sums ([`lane_sum`]) so that the
//! compiler can vectorise them; the order is fixed, so results are the same
//! bit for bit on every run and whatever the number of threads.

use crate::Element;

/// How many partial sums [`lane_sum`] keeps (one AVX register of f32).
const LANES: usize = 8;

/// `sum_i f(x[i], y[i])` over equal-length slices, accumulated in
/// eight (`LANES`) interleaved partial sums that are added at the end in a fixed
/// order (vectorisable, and deterministic).
#[inline(always)]
pub fn lane_sum<T: Element>(x: &[T], y: &[T], f: impl Fn(T, T) -> T) -> T {
    debug_assert_eq!(x.len(), y.len());
    let mut acc = [T::zero(); LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(xs[l], ys[l]);
        }
    }
    for (l, (&p, &q)) in xr.iter().zip(yr).enumerate() {
        acc[l] = acc[l] + f(p, q);
    }
    // Pairwise: ((0+1)+(2+3)) + ((4+5)+(6+7)).
    let (a, b) = (acc[0] + acc[1], acc[2] + acc[3]);
    let (c, d) = (acc[4] + acc[5], acc[6] + acc[7]);
    (a + b) + (c + d)
}

/// Per-feature parameters of one hidden layer: the Linear bias and the
/// BatchNorm scale and shift, each `[features]`.
#[derive(Debug, Clone, Copy)]
pub struct LayerParams<'a, T> {
    /// Linear bias `b`.
    pub bias: &'a [T],
    /// BatchNorm scale `gamma`.
    pub scale: &'a [T],
    /// BatchNorm shift `beta`.
    pub shift: &'a [T],
}

/// Per-feature batch statistics of a training forward, kept for the
/// backward and for the running statistics; each `[features]`.
#[derive(Debug)]
pub struct BatchStats<'a, T> {
    /// Batch mean of the activation.
    pub mean: &'a mut [T],
    /// Biased batch variance of the activation.
    pub var: &'a mut [T],
    /// `1 / sqrt(var + eps)`.
    pub inv_std: &'a mut [T],
}

crate::per_isa! {
/// Training forward of `BatchNorm(ReLU(z + b))` for a block of features.
///
/// `act` holds `z = x W^T` (feature-major, `[features, n]`) on entry and the
/// activation `a = relu(z + b)` on exit (the backward needs it); `out`
/// receives `y = (a - mean) * inv_std * scale + shift`. NaN passes through
/// ReLU, as in the engine's `relu`.
pub fn bias_relu_batchnorm_train / bias_relu_batchnorm_train_on <T: Element> (
    act: &mut [T],
    out: &mut [T],
    p: LayerParams<'_, T>,
    stats: BatchStats<'_, T>,
    n: usize,
    eps: f64,
) {
    let inv_n = T::one() / T::from_f64(n as f64);
    let rows = act.chunks_exact_mut(n).zip(out.chunks_exact_mut(n));
    for (f, (a, y)) in rows.enumerate() {
        let b = p.bias[f];
        for v in a.iter_mut() {
            let z = *v + b;
            *v = if z > T::zero() || z.is_nan() { z } else { T::zero() };
        }
        let mean = lane_sum(a, a, |v, _| v) * inv_n;
        // The variance from centred values (two passes): stable for any mean.
        let var = lane_sum(a, a, |v, _| (v - mean) * (v - mean)) * inv_n;
        let inv_std = T::one() / (var + T::from_f64(eps)).sqrt();
        let (scale, shift) = (inv_std * p.scale[f], p.shift[f]);
        for (o, &v) in y.iter_mut().zip(a.iter()) {
            *o = (v - mean) * scale + shift;
        }
        stats.mean[f] = mean;
        stats.var[f] = var;
        stats.inv_std[f] = inv_std;
    }
}
}

crate::per_isa! {
/// Inference forward `(relu(z + b) - running_mean) / sqrt(running_var + eps)
/// * scale + shift`, in place on a feature-major block (`z` in, `y` out).
pub fn bias_relu_batchnorm_eval / bias_relu_batchnorm_eval_on <T: Element> (
    act: &mut [T],
    p: LayerParams<'_, T>,
    running_mean: &[T],
    running_var: &[T],
    n: usize,
    eps: f64,
) {
    for (f, a) in act.chunks_exact_mut(n).enumerate() {
        let inv_std = T::one() / (running_var[f] + T::from_f64(eps)).sqrt();
        let (b, mean, scale, shift) = (p.bias[f], running_mean[f], inv_std * p.scale[f], p.shift[f]);
        for v in a.iter_mut() {
            let z = *v + b;
            let r = if z > T::zero() || z.is_nan() { z } else { T::zero() };
            *v = (r - mean) * scale + shift;
        }
    }
}
}

/// Gradients of one hidden layer's per-feature parameters, each `[features]`.
#[derive(Debug)]
pub struct LayerGrads<'a, T> {
    /// d loss / d bias.
    pub bias: &'a mut [T],
    /// d loss / d scale.
    pub scale: &'a mut [T],
    /// d loss / d shift.
    pub shift: &'a mut [T],
}

crate::per_isa! {
/// Backward of [`bias_relu_batchnorm_train`] for a block of features.
///
/// `grad` holds `d loss / d y` on entry and `d loss / d z` on exit (the
/// gradient at the Linear output, which the caller turns into the weight and
/// input gradients with two GEMMs). `act` and `stats` are what the forward
/// kept. With `xhat = (a - mean) * inv_std` (BatchNorm's standard result,
/// the batch statistics differentiated too):
///
/// ```text
/// d shift = sum(dy)        d scale = sum(dy * xhat)
/// da = scale * inv_std * (dy - d shift / n - xhat * d scale / n)
/// dz = da where a > 0, else 0        d bias = sum(dz)
/// ```
pub fn bias_relu_batchnorm_backward / bias_relu_batchnorm_backward_on <T: Element> (
    grad: &mut [T],
    act: &[T],
    p: LayerParams<'_, T>,
    mean: &[T],
    inv_std: &[T],
    g: LayerGrads<'_, T>,
    n: usize,
) {
    let inv_n = T::one() / T::from_f64(n as f64);
    for (f, (dy, a)) in grad.chunks_exact_mut(n).zip(act.chunks_exact(n)).enumerate() {
        let (mu, istd) = (mean[f], inv_std[f]);
        let dshift = lane_sum(dy, dy, |d, _| d);
        let dscale = lane_sum(dy, a, |d, v| d * (v - mu)) * istd;
        let (k, mean_dy, mean_dxhat) = (p.scale[f] * istd, dshift * inv_n, dscale * inv_n);
        for (d, &v) in dy.iter_mut().zip(a) {
            let xhat = (v - mu) * istd;
            let da = k * (*d - mean_dy - xhat * mean_dxhat);
            // a > 0 exactly where ReLU passed z through (a NaN passes no gradient).
            *d = if v > T::zero() { da } else { T::zero() };
        }
        g.shift[f] = dshift;
        g.scale[f] = dscale;
        g.bias[f] = lane_sum(dy, dy, |d, _| d);
    }
}
}

crate::per_isa! {
/// Adds `bias[f]` to row `f` of a feature-major block (the output layer,
/// which has no ReLU or BatchNorm).
pub fn add_row_bias / add_row_bias_on <T: Element> (out: &mut [T], bias: &[T], n: usize) {
    for (row, &b) in out.chunks_exact_mut(n).zip(bias) {
        row.iter_mut().for_each(|v| *v = *v + b);
    }
}
}

crate::per_isa! {
/// `out[f] = sum of row f` for a feature-major block (the bias gradient of
/// the output layer).
pub fn row_sums / row_sums_on <T: Element> (x: &[T], out: &mut [T], n: usize) {
    for (o, row) in out.iter_mut().zip(x.chunks_exact(n)) {
        *o = lane_sum(row, row, |v, _| v);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_adds_every_element_once() {
        for len in [0usize, 1, 7, 8, 9, 23, 64] {
            let x: Vec<f64> = (0..len).map(|i| (i * i) as f64).collect();
            let want: f64 = x.iter().sum();
            assert_eq!(lane_sum(&x, &x, |v, _| v), want, "len {len}");
            let dot = lane_sum(&x, &x, |a, b| a * b);
            assert_eq!(dot, x.iter().map(|v| v * v).sum::<f64>());
        }
    }

    /// The forward on two features against the definition, written out.
    #[test]
    fn train_forward_matches_the_definition() {
        let n = 4;
        let z = [1.0f64, -2.0, 3.0, 6.0, 0.5, 0.5, 0.5, 0.5];
        let (bias, scale, shift) = ([0.0, -0.5], [2.0, 1.0], [0.25, -1.0]);
        let mut act = z.to_vec();
        let mut out = vec![0.0; 8];
        let (mut mean, mut var, mut inv_std) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        let p = LayerParams {
            bias: &bias,
            scale: &scale,
            shift: &shift,
        };
        let stats = BatchStats {
            mean: &mut mean,
            var: &mut var,
            inv_std: &mut inv_std,
        };
        bias_relu_batchnorm_train(&mut act, &mut out, p, stats, n, 1e-5);
        // Feature 0: relu -> [1, 0, 3, 6], mean 2.5, biased var 5.25.
        assert_eq!(&act[..4], &[1.0, 0.0, 3.0, 6.0]);
        assert_eq!((mean[0], var[0]), (2.5, 5.25));
        let s = 1.0 / (5.25f64 + 1e-5).sqrt();
        for (o, a) in out[..4].iter().zip([1.0, 0.0, 3.0, 6.0]) {
            assert!((o - ((a - 2.5) * s * 2.0 + 0.25)).abs() < 1e-12);
        }
        // Feature 1: z + b = 0 everywhere, so relu gives 0, var 0, y = shift.
        assert_eq!(&act[4..], &[0.0; 4]);
        assert!(out[4..].iter().all(|&y| y == -1.0));
    }

    /// Every kernel gives the same bits on every available instruction set
    /// (the policy of `crate::isa`: only the GEMM's bits depend on it), in
    /// f32 and f64, on a block whose rows are not a multiple of any register.
    #[test]
    fn every_isa_gives_the_same_bits() {
        fn run<T: Element>(isa: crate::isa::Isa) -> Vec<u64> {
            let (features, n) = (13, 131);
            let mut rng = crate::Rng::new(11);
            let mut draw = |len: usize| -> Vec<T> { (0..len).map(|_| T::from_f64(rng.normal())).collect() };
            let (z, dy) = (draw(features * n), draw(features * n));
            let (bias, scale, shift) = (draw(features), draw(features), draw(features));
            let p = LayerParams {
                bias: &bias,
                scale: &scale,
                shift: &shift,
            };
            let (mut act, mut out) = (z.clone(), vec![T::zero(); features * n]);
            let mut st = [
                vec![T::zero(); features],
                vec![T::zero(); features],
                vec![T::zero(); features],
            ];
            let [mean, var, inv_std] = &mut st;
            let stats = BatchStats { mean, var, inv_std };
            bias_relu_batchnorm_train_on(isa, &mut act, &mut out, p, stats, n, 1e-5);
            let mut grad = dy.clone();
            let mut g = [
                vec![T::zero(); features],
                vec![T::zero(); features],
                vec![T::zero(); features],
            ];
            let [gb, gs, gh] = &mut g;
            let grads = LayerGrads {
                bias: gb,
                scale: gs,
                shift: gh,
            };
            bias_relu_batchnorm_backward_on(isa, &mut grad, &act, p, &st[0], &st[2], grads, n);
            let mut eval = z.clone();
            bias_relu_batchnorm_eval_on(isa, &mut eval, p, &st[0], &st[1], n, 1e-5);
            let mut biased = z.clone();
            add_row_bias_on(isa, &mut biased, &bias, n);
            let mut sums = vec![T::zero(); features];
            row_sums_on(isa, &dy, &mut sums, n);
            [act, out, grad, eval, biased, sums]
                .iter()
                .chain(st.iter())
                .chain(g.iter())
                .flatten()
                .map(|v| Element::to_f64(*v).to_bits())
                .collect()
        }
        for isa in crate::isa::Isa::available() {
            assert_eq!(run::<f32>(isa), run::<f32>(crate::isa::Isa::Scalar), "f32 on {isa}");
            assert_eq!(run::<f64>(isa), run::<f64>(crate::isa::Isa::Scalar), "f64 on {isa}");
        }
    }
}
