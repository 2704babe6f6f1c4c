//! The task model's training step written out by hand: forward, sum of
//! squared errors and backward of `[Linear -> ReLU -> BatchNorm1d] x n,
//! Linear` with fused kernels (`ferrograd_engine::ops::fused`) and GEMMs
//! into buffers that live as long as the trainer.
//!
//! It computes exactly what the autograd path (`Mlp::forward`, `nn::sse`,
//! `Var::backward`) computes, up to floating-point rounding (the tests check
//! the two against each other in f64), but:
//!
//! * **no allocation in steady state**: every activation, statistic and
//!   gradient buffer is sized on the first step and reused;
//! * **three passes per layer instead of about twenty**: bias, ReLU and
//!   BatchNorm are fused, and no tape is recorded;
//! * **no wasted products**: the weight gradients of frozen layers and the
//!   input gradient of the first layer are never computed;
//! * **two cores**: each layer is split into two fixed halves by features
//!   (feature-major activations make each half a contiguous block), run
//!   through `ops::join`. The split does not depend on the thread count, so
//!   the numbers are identical on one thread or two.

use crate::engine::ops::fused::{
    add_row_bias, bias_relu_batchnorm_backward, bias_relu_batchnorm_eval, bias_relu_batchnorm_train, lane_sum,
    row_sums, BatchStats, LayerGrads, LayerParams,
};
use crate::engine::ops::matmul::{gemm_into, MatRef};
use crate::engine::ops::{in_pool, join};
use crate::engine::storage::CpuSlice;
use crate::engine::{DType, Result, Tensor};
use crate::nn::{Activation, Mlp, Role, BN_EPS, BN_MOMENTUM};

/// Below this many multiply-adds a GEMM (and its layer) runs as one piece:
/// handing half of it to the other thread would cost more than it saves.
const SPLIT_MIN_WORK: usize = 1 << 16;

/// Per-layer buffers, feature-major (`[features, batch]`), sized for the
/// largest batch seen so far.
#[derive(Default)]
struct Layer<T> {
    /// `relu(x W^T + b)` (hidden layers): what the BatchNorm backward needs.
    act: Vec<T>,
    /// The layer's output: the BatchNorm output, or the prediction for the last layer.
    out: Vec<T>,
    mean: Vec<T>,
    var: Vec<T>,
    inv_std: Vec<T>,
}

/// Buffers of one dtype.
#[derive(Default)]
struct Buffers<T> {
    input: Vec<T>,
    target: Vec<T>,
    layers: Vec<Layer<T>>,
    /// Two gradient buffers used in turn, layer by layer.
    grad: [Vec<T>; 2],
    /// Gradients of frozen per-feature parameters (computed, then ignored).
    scratch: [Vec<T>; 3],
    /// The batch size the buffers are currently cut for.
    n: usize,
}

/// The fused step's working memory. Holds no state between steps beyond
/// buffer capacity, so checkpoints need not save it.
#[derive(Default)]
pub(crate) struct FusedWorkspace {
    f32: Buffers<f32>,
    f64: Buffers<f64>,
}

impl FusedWorkspace {
    /// Whether `model` is a shape this path computes: ReLU hidden layers with
    /// BatchNorm (every `Mlp::task` model).
    pub(crate) fn supports(model: &Mlp) -> bool {
        model.activation() == Activation::Relu && model.norms().len() + 1 == model.linears().len()
    }

    /// Forward and backward at `params` (all tensors in the task's order)
    /// on rows `batch` of `(inputs, targets)`: writes the gradient of the sum
    /// of squared errors into `grads` (zero for frozen tensors) and returns
    /// that sum. The new running statistics are kept for
    /// [`FusedWorkspace::store_running_stats`].
    pub(crate) fn train_step(
        &mut self,
        model: &Mlp,
        params: &[Tensor],
        inputs: &Tensor,
        targets: &Tensor,
        batch: &[usize],
        grads: &mut [Tensor],
    ) -> Result<f64> {
        // On a pool thread: the step's dozen joins then cost no hand-off each.
        in_pool(|| match inputs.dtype() {
            DType::F32 => self.f32.train_step(model, params, inputs, targets, batch, grads),
            DType::F64 => self.f64.train_step(model, params, inputs, targets, batch, grads),
        })
    }

    /// Blends the last training step's batch statistics into `model`'s
    /// running statistics, in place.
    pub(crate) fn store_running_stats(&self, model: &mut Mlp) -> Result<()> {
        match model.tensor(Role::Weight(0)).dtype() {
            DType::F32 => self.f32.store_running_stats(model),
            DType::F64 => self.f64.store_running_stats(model),
        }
    }

    /// Inference-mode mean squared error of `model` on `(inputs, targets)`.
    pub(crate) fn eval_mse(&mut self, model: &Mlp, inputs: &Tensor, targets: &Tensor) -> Result<f64> {
        in_pool(|| match inputs.dtype() {
            DType::F32 => self.f32.eval_mse(model, inputs, targets),
            DType::F64 => self.f64.eval_mse(model, inputs, targets),
        })
    }
}

/// The model's tensors by position in the task's order, from a list (the
/// parameters an optimizer asked to probe) or from the model itself
/// (without collecting them into a new vector).
trait Params {
    fn at(&self, index: usize) -> &Tensor;
}

impl Params for [Tensor] {
    fn at(&self, index: usize) -> &Tensor {
        &self[index]
    }
}

impl Params for Mlp {
    fn at(&self, index: usize) -> &Tensor {
        self.tensor(self.role(index))
    }
}

/// Grows `v` to at least `len` elements (never shrinks, so a smaller last
/// batch reuses the same memory).
fn ensure<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

/// Row `r` of the row-major `[rows, cols]` data goes to column `slot` of the
/// feature-major `[cols, n]` buffer.
fn gather_transposed<T: Copy>(src: &[T], cols: usize, rows: impl Iterator<Item = usize>, dst: &mut [T], n: usize) {
    for (slot, r) in rows.enumerate() {
        for c in 0..cols {
            dst[c * n + slot] = src[r * cols + c];
        }
    }
}

/// `c = a * b`, split into two fixed halves by the rows of `a` (and `c`)
/// when the product is large enough to pay for the second thread.
fn gemm_split<T: CpuSlice>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let (m, k, n) = (a.n_rows(), a.n_cols(), b.n_cols());
    if m < 2 || m * k * n < SPLIT_MIN_WORK {
        return gemm_into(c, a, b, false);
    }
    let half = m / 2;
    let (c0, c1) = c.split_at_mut(half * n);
    join(
        || gemm_into(c0, a.rows(0, half), b, false),
        || gemm_into(c1, a.rows(half, m - half), b, false),
    );
}

impl<T: CpuSlice + Default> Buffers<T> {
    /// Cuts the buffers for `model` and batch size `n`, growing them if needed.
    fn prepare(&mut self, model: &Mlp, n: usize) {
        self.n = n;
        let linears = model.linears();
        let n_in = linears[0].in_features();
        let n_out = linears.last().expect("an Mlp has layers").out_features();
        ensure(&mut self.input, n_in * n);
        ensure(&mut self.target, n_out * n);
        if self.layers.len() < linears.len() {
            self.layers.resize_with(linears.len(), Layer::default);
        }
        let mut widest = n_in;
        for (layer, lin) in self.layers.iter_mut().zip(linears) {
            let w = lin.out_features();
            widest = widest.max(w);
            ensure(&mut layer.act, w * n);
            ensure(&mut layer.out, w * n);
            for v in [&mut layer.mean, &mut layer.var, &mut layer.inv_std] {
                ensure(v, w);
            }
        }
        for g in &mut self.grad {
            ensure(g, widest * n);
        }
        for s in &mut self.scratch {
            ensure(s, widest);
        }
    }

    fn train_step(
        &mut self,
        model: &Mlp,
        params: &[Tensor],
        inputs: &Tensor,
        targets: &Tensor,
        batch: &[usize],
        grads: &mut [Tensor],
    ) -> Result<f64> {
        let n = batch.len();
        self.prepare(model, n);
        let (n_in, n_out) = (inputs.dims()[1], targets.dims()[1]);
        gather_transposed(inputs.as_slice::<T>()?, n_in, batch.iter().copied(), &mut self.input, n);
        gather_transposed(
            targets.as_slice::<T>()?,
            n_out,
            batch.iter().copied(),
            &mut self.target,
            n,
        );
        self.forward(model, params, n, true)?;
        let sse = self.loss_gradient(n_out, n);
        self.backward(model, params, grads, n)?;
        Ok(sse)
    }

    /// The forward pass, layer by layer, into `self.layers[i].out`. In
    /// training mode BatchNorm uses (and keeps) the batch statistics; in
    /// inference mode the running ones from `params`.
    fn forward<P: Params + ?Sized>(&mut self, model: &Mlp, params: &P, n: usize, training: bool) -> Result<()> {
        let n_lin = model.linears().len();
        for i in 0..n_lin {
            let weight = params.at(2 * i);
            let (w_out, w_in) = (weight.dims()[0], weight.dims()[1]);
            let w = MatRef::row_major(weight.as_slice::<T>()?, w_out, w_in);
            let bias = params.at(2 * i + 1).as_slice::<T>()?;
            let (done, rest) = self.layers.split_at_mut(i);
            let x = match done.last() {
                Some(prev) => &prev.out[..w_in * n],
                None => &self.input[..w_in * n],
            };
            let x = MatRef::row_major(x, w_in, n);
            let layer = &mut rest[0];
            if i + 1 == n_lin {
                // The output layer: a plain Linear.
                let out = &mut layer.out[..w_out * n];
                gemm_into(out, w, x, false);
                add_row_bias(out, bias, n);
                continue;
            }
            let bn = 2 * n_lin + 4 * i;
            let p = LayerParams {
                bias,
                scale: params.at(bn).as_slice::<T>()?,
                shift: params.at(bn + 1).as_slice::<T>()?,
            };
            if training {
                hidden_forward_train(layer, w, x, p, n);
            } else {
                let (rm, rv) = (params.at(bn + 2).as_slice::<T>()?, params.at(bn + 3).as_slice::<T>()?);
                let out = &mut layer.out[..w_out * n];
                gemm_split(out, w, x);
                bias_relu_batchnorm_eval(out, p, rm, rv, n, BN_EPS);
            }
        }
        Ok(())
    }

    /// The sum of squared errors of the prediction, and its gradient
    /// `2 (prediction - target)` into `grad[0]`.
    fn loss_gradient(&mut self, n_out: usize, n: usize) -> f64 {
        let pred = &self.layers.last().expect("an Mlp has layers").out[..n_out * n];
        let target = &self.target[..n_out * n];
        let two = T::from_f64(2.0);
        for ((g, &p), &t) in self.grad[0].iter_mut().zip(pred).zip(target) {
            *g = (p - t) * two;
        }
        lane_sum(pred, target, |p, t| (p - t) * (p - t)).to_f64()
    }

    /// Backpropagates `grad[0]` (d loss / d prediction) through every layer,
    /// writing parameter gradients into `grads` (trainable tensors only).
    fn backward(&mut self, model: &Mlp, params: &[Tensor], grads: &mut [Tensor], n: usize) -> Result<()> {
        let n_lin = model.linears().len();
        let first_frozen = n_lin - model.frozen();
        let (lin_grads, bn_grads) = grads.split_at_mut(2 * n_lin);
        for i in (0..n_lin).rev() {
            let trainable = i < first_frozen;
            let weight = &params[2 * i];
            let (w_out, w_in) = (weight.dims()[0], weight.dims()[1]);
            let x = match i {
                0 => &self.input[..w_in * n],
                _ => &self.layers[i - 1].out[..w_in * n],
            };
            let x = MatRef::row_major(x, w_in, n);
            let [gw, gb] = &mut lin_grads[2 * i..2 * i + 2] else {
                unreachable!("two tensors per Linear")
            };
            let [g_cur, g_next] = &mut self.grad;
            let gw = if trainable { Some(gw.as_mut_slice::<T>()?) } else { None };
            if i + 1 == n_lin {
                // The loss gradient, d loss / d z of the output layer. The
                // layer below computes its d loss / d y = W^T dz itself.
                let dz = &g_cur[..w_out * n];
                if trainable {
                    row_sums(dz, gb.as_mut_slice::<T>()?, n);
                }
                if let Some(gw) = gw {
                    gemm_split(gw, MatRef::row_major(dz, w_out, n), x.t());
                }
            } else {
                let bn = 2 * n_lin + 4 * i;
                let p = LayerParams {
                    bias: params[2 * i + 1].as_slice::<T>()?,
                    scale: params[bn].as_slice::<T>()?,
                    shift: params[bn + 1].as_slice::<T>()?,
                };
                let [gscale, gshift, ..] = &mut bn_grads[4 * i..4 * i + 4] else {
                    unreachable!("four tensors per BatchNorm")
                };
                let [s0, s1, s2] = &mut self.scratch;
                let g = if trainable {
                    LayerGrads {
                        bias: gb.as_mut_slice::<T>()?,
                        scale: gscale.as_mut_slice::<T>()?,
                        shift: gshift.as_mut_slice::<T>()?,
                    }
                } else {
                    LayerGrads {
                        bias: &mut s0[..w_out],
                        scale: &mut s1[..w_out],
                        shift: &mut s2[..w_out],
                    }
                };
                // `g_cur` holds d loss / d z of the layer above; this layer's
                // d loss / d y, then d loss / d z, goes into `g_next`.
                let upper = &params[2 * (i + 1)];
                let w_up = MatRef::row_major(upper.as_slice::<T>()?, upper.dims()[0], w_out);
                let dz_up = MatRef::row_major(&g_cur[..upper.dims()[0] * n], upper.dims()[0], n);
                let dz = &mut g_next[..w_out * n];
                hidden_backward(&self.layers[i], dz, (w_up, dz_up), x, p, g, gw, n);
                self.grad.swap(0, 1);
            }
        }
        Ok(())
    }

    fn store_running_stats(&self, model: &mut Mlp) -> Result<()> {
        let n = self.n;
        let (keep, take) = (T::from_f64(1.0 - BN_MOMENTUM), T::from_f64(BN_MOMENTUM));
        // PyTorch's running variance is the unbiased batch variance.
        let unbias = T::from_f64(n as f64 / (n - 1) as f64);
        for (i, layer) in self.layers.iter().enumerate().take(model.norms().len()) {
            let (running_mean, running_var) = model.running_stats_mut(i);
            let rm = running_mean.as_mut_slice::<T>()?;
            for (r, &m) in rm.iter_mut().zip(&layer.mean) {
                *r = *r * keep + m * take;
            }
            let rv = running_var.as_mut_slice::<T>()?;
            for (r, &v) in rv.iter_mut().zip(&layer.var) {
                *r = *r * keep + (v * unbias) * take;
            }
        }
        Ok(())
    }

    fn eval_mse(&mut self, model: &Mlp, inputs: &Tensor, targets: &Tensor) -> Result<f64> {
        let n = inputs.dims()[0];
        let saved_n = self.n;
        self.prepare(model, n);
        self.n = saved_n; // the running-statistics batch size stays the training one
        let (n_in, n_out) = (inputs.dims()[1], targets.dims()[1]);
        gather_transposed(inputs.as_slice::<T>()?, n_in, 0..n, &mut self.input, n);
        gather_transposed(targets.as_slice::<T>()?, n_out, 0..n, &mut self.target, n);
        self.forward(model, model, n, false)?;
        let pred = &self.layers.last().expect("an Mlp has layers").out[..n_out * n];
        let sse = lane_sum(pred, &self.target[..n_out * n], |p, t| (p - t) * (p - t));
        Ok(sse.to_f64() / (n * n_out) as f64)
    }
}

/// A hidden layer's training forward: `z = W x`, then bias, ReLU and
/// BatchNorm, in two halves by output features.
fn hidden_forward_train<T: CpuSlice>(
    layer: &mut Layer<T>,
    w: MatRef<'_, T>,
    x: MatRef<'_, T>,
    p: LayerParams<'_, T>,
    n: usize,
) {
    let rows = w.n_rows();
    let half = if rows * w.n_cols() * n >= SPLIT_MIN_WORK {
        rows / 2
    } else {
        rows
    };
    let (a0, a1) = layer.act[..rows * n].split_at_mut(half * n);
    let (y0, y1) = layer.out[..rows * n].split_at_mut(half * n);
    let (m0, m1) = layer.mean[..rows].split_at_mut(half);
    let (v0, v1) = layer.var[..rows].split_at_mut(half);
    let (s0, s1) = layer.inv_std[..rows].split_at_mut(half);
    let part = |start: usize, len: usize, act: &mut [T], out: &mut [T], stats: BatchStats<'_, T>| {
        if len == 0 {
            return;
        }
        gemm_into(act, w.rows(start, len), x, false);
        let p = LayerParams {
            bias: &p.bias[start..start + len],
            scale: &p.scale[start..start + len],
            shift: &p.shift[start..start + len],
        };
        bias_relu_batchnorm_train(act, out, p, stats, n, BN_EPS);
    };
    let first = BatchStats {
        mean: m0,
        var: v0,
        inv_std: s0,
    };
    if half == rows {
        // Too small to split: no hand-off at all.
        return part(0, rows, a0, y0, first);
    }
    let second = BatchStats {
        mean: m1,
        var: v1,
        inv_std: s1,
    };
    join(
        || part(0, half, a0, y0, first),
        || part(half, rows - half, a1, y1, second),
    );
}

/// A hidden layer's backward up to its Linear output, in two halves by
/// features, each on its own thread: d loss / d y of its features from the
/// layer above (`W_up^T dz_up`, rows of the product), BatchNorm and ReLU
/// backward into `dz` (d loss / d z) and, for a trained layer, the weight
/// gradient `dW = dz x^T`. One hand-off per layer for all three (the
/// product's halves are the ones a separate split GEMM would make).
#[allow(clippy::too_many_arguments)]
fn hidden_backward<T: CpuSlice>(
    layer: &Layer<T>,
    dz: &mut [T],
    (w_up, dz_up): (MatRef<'_, T>, MatRef<'_, T>),
    x: MatRef<'_, T>,
    p: LayerParams<'_, T>,
    g: LayerGrads<'_, T>,
    gw: Option<&mut [T]>,
    n: usize,
) {
    let rows = p.bias.len();
    let k = x.n_rows();
    // Multiply-adds of the two products: `W_up^T dz_up`, and `dW` if trained.
    let work = rows * n * (w_up.n_rows() + if gw.is_some() { k } else { 0 });
    let half = if work >= SPLIT_MIN_WORK { rows / 2 } else { rows };
    let part = |start: usize, len: usize, dz: &mut [T], g: LayerGrads<'_, T>, gw: Option<&mut [T]>| {
        if len == 0 {
            return;
        }
        let range = start..start + len;
        let p = LayerParams {
            bias: &p.bias[range.clone()],
            scale: &p.scale[range.clone()],
            shift: &p.shift[range.clone()],
        };
        let act = &layer.act[start * n..(start + len) * n];
        gemm_into(dz, w_up.t().rows(start, len), dz_up, false);
        bias_relu_batchnorm_backward(dz, act, p, &layer.mean[range.clone()], &layer.inv_std[range], g, n);
        if let Some(gw) = gw {
            gemm_into(gw, MatRef::row_major(dz, len, n), x.t(), false);
        }
    };
    let (dz0, dz1) = dz.split_at_mut(half * n);
    let (b0, b1) = g.bias.split_at_mut(half);
    let (c0, c1) = g.scale.split_at_mut(half);
    let (h0, h1) = g.shift.split_at_mut(half);
    let (w0, w1) = match gw {
        Some(gw) => {
            let (w0, w1) = gw.split_at_mut(half * k);
            (Some(w0), Some(w1))
        }
        None => (None, None),
    };
    let g0 = LayerGrads {
        bias: b0,
        scale: c0,
        shift: h0,
    };
    if half == rows {
        return part(0, rows, dz0, g0, w0);
    }
    let g1 = LayerGrads {
        bias: b1,
        scale: c1,
        shift: h1,
    };
    join(|| part(0, half, dz0, g0, w0), || part(half, rows - half, dz1, g1, w1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::Var;
    use crate::engine::Rng;
    use crate::nn::sse;

    /// A model with every parameter random (BatchNorm scale and shift too,
    /// and running statistics away from their initial values).
    fn random_model(widths: &[usize], frozen: usize, rng: &mut Rng) -> Mlp {
        let mut m = Mlp::new(widths, Activation::Relu, frozen, DType::F64, rng).unwrap();
        for i in 0..m.tensor_count() {
            let role = m.role(i);
            let t = m.tensor(role);
            let (lo, hi) = match role {
                Role::RunningVar(_) => (0.5, 2.0),
                Role::Weight(_) => (-0.3, 0.3),
                _ => (-1.0, 1.0),
            };
            *m.tensor_mut(role) = Tensor::rand_uniform(t.shape().clone(), lo, hi, DType::F64, rng).unwrap();
        }
        m
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                approx::abs_diff_eq!(x, y, epsilon = 1e-10 * scale),
                "{what}[{i}]: fused {x} vs autograd {y}"
            );
        }
    }

    /// The fused step's loss, gradients, running statistics and inference
    /// MSE equal autograd's in f64, on a narrow model (one piece per layer)
    /// and a task-width one (layers split in two halves), with frozen layers.
    #[test]
    fn fused_step_matches_autograd() {
        let mut rng = Rng::new(11);
        for (widths, frozen, n) in [(&[1usize, 8, 6, 2][..], 1, 5), (&[1, 256, 256, 256, 2][..], 2, 37)] {
            let model = random_model(widths, frozen, &mut rng);
            let rows = 50;
            let inputs = Tensor::rand_uniform([rows, 1], -1.0, 1.0, DType::F64, &mut rng).unwrap();
            let targets = Tensor::rand_normal([rows, 2], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let batch: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % rows).collect();

            let vars = model.vars();
            let x = Var::constant(inputs.index_select(&batch).unwrap());
            let y = Var::constant(targets.index_select(&batch).unwrap());
            let (pred, stats) = model.functional_forward(&x, &vars, true).unwrap();
            let loss = sse(&pred, &y).unwrap();
            let auto = loss.backward().unwrap();

            let mut ws = FusedWorkspace::default();
            let mut grads: Vec<Tensor> = model
                .tensors()
                .iter()
                .map(Tensor::zeros_like)
                .collect::<Result<_>>()
                .unwrap();
            let params = model.tensors();
            let got = ws
                .train_step(&model, &params, &inputs, &targets, &batch, &mut grads)
                .unwrap();
            close(&[got], &[loss.value().to_scalar().unwrap()], "loss");
            for (i, (v, g)) in vars.iter().zip(&grads).enumerate() {
                let want = auto.get(v).cloned().unwrap_or_else(|| v.value().zeros_like().unwrap());
                close(
                    &g.to_vec::<f64>().unwrap(),
                    &want.to_vec::<f64>().unwrap(),
                    &format!("grad of tensor {i}"),
                );
            }
            let mut updated = model.clone();
            ws.store_running_stats(&mut updated).unwrap();
            let mut reference = model.clone();
            reference.set_running_stats(stats).unwrap();
            for i in 0..model.norms().len() {
                for role in [Role::RunningMean(i), Role::RunningVar(i)] {
                    close(
                        &updated.tensor(role).to_vec::<f64>().unwrap(),
                        &reference.tensor(role).to_vec::<f64>().unwrap(),
                        &format!("{role:?}"),
                    );
                }
            }
            let mse = ws.eval_mse(&model, &inputs, &targets).unwrap();
            let autograd_mse = model
                .predict(&inputs)
                .unwrap()
                .sub(&targets)
                .unwrap()
                .square()
                .unwrap()
                .mean(None, false)
                .unwrap();
            close(&[mse], &[autograd_mse.to_scalar().unwrap()], "eval mse");
        }
    }

    /// Training through the fused step and the catalog's (fused) Adam gives
    /// the same bits on one thread and on two: losses of every epoch and the
    /// optimizer's moments after them.
    #[test]
    fn training_is_independent_of_the_thread_count() {
        use crate::optim::{catalog, HyperParams};
        use crate::train::{TaskConfig, Trainer};
        let run = |threads: usize| {
            crate::engine::ops::with_threads(threads, || {
                let config = TaskConfig {
                    n_hidden: 4,
                    max_epochs: 3,
                    ..TaskConfig::default()
                };
                let info = catalog::lookup("clipped_adam").unwrap();
                let optimizer = (info.build)(&HyperParams::defaults(info)).unwrap();
                let mut trainer = Trainer::new(config, optimizer).unwrap();
                let mut bits = Vec::new();
                for _ in 0..3 {
                    let m = trainer.run_epoch().unwrap();
                    bits.extend([m.train_loss.to_bits(), m.val_loss.to_bits()]);
                }
                for t in trainer.optimizer().state().tensors.values() {
                    bits.extend(t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()));
                }
                bits
            })
        };
        let one = run(1);
        assert!(one.len() > 100_000, "the moments of every tensor are compared");
        assert!(one == run(2), "1 and 2 threads differ");
    }

    /// The same step twice gives the same bits, and a shared gradient buffer
    /// (an optimizer that kept the last gradients) is never written into.
    #[test]
    fn repeatable_and_copy_on_write() {
        let mut rng = Rng::new(3);
        let model = random_model(&[1, 256, 256, 256, 2], 2, &mut rng);
        let inputs = Tensor::rand_uniform([64, 1], -1.0, 1.0, DType::F64, &mut rng).unwrap();
        let targets = Tensor::rand_normal([64, 2], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let batch: Vec<usize> = (0..32).collect();
        let params = model.tensors();
        let mut ws = FusedWorkspace::default();
        let mut grads: Vec<Tensor> = params
            .iter()
            .map(Tensor::zeros_like)
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let first = ws
            .train_step(&model, &params, &inputs, &targets, &batch, &mut grads)
            .unwrap();
        let kept: Vec<Tensor> = grads.clone();
        let snapshot: Vec<Vec<f64>> = kept.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
        let other: Vec<usize> = (32..64).collect();
        ws.train_step(&model, &params, &inputs, &targets, &other, &mut grads)
            .unwrap();
        for (k, s) in kept.iter().zip(&snapshot) {
            assert_eq!(&k.to_vec::<f64>().unwrap(), s, "a kept gradient changed");
        }
        let again = ws
            .train_step(&model, &params, &inputs, &targets, &batch, &mut grads)
            .unwrap();
        assert_eq!(first.to_bits(), again.to_bits());
        for (g, s) in grads.iter().zip(&snapshot) {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g.to_vec::<f64>().unwrap()), bits(s));
        }
    }
}
