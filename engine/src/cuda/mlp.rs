//! The task model's training step on the GPU, one launch per layer and
//! pass (kernels in `ptx/cuda/mlp.cu`): the GPU twin of the CPU's fused
//! step (`src/train/fused.rs` in the facade), with the same arithmetic.
//!
//! Every function here writes into buffers the caller keeps between steps
//! (nothing is allocated) and only queues work on the GPU's stream
//! (nothing waits for the device). Activations and gradients of hidden
//! layers are feature-major: a `[features, n]` buffer holds feature `f` of
//! the batch's `n` samples in row `f`.

use super::backend::{backend, BLOCK};
use super::memory::RawBuffer;
use super::ops::{args, blocks, buf, pick};
use crate::storage::Storage;
use crate::{DType, Device, Error, Result, Tensor};
use std::ffi::c_void;

/// How a layer's input matrix (`n` samples of `features` values) lies in
/// its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major `[rows, features]` data, the batch being rows
    /// `first..first + n` (the data set's inputs and targets).
    SampleMajor {
        /// The batch's first row.
        first: usize,
    },
    /// A feature-major `[features, n]` buffer (a hidden layer's output).
    FeatureMajor,
}

/// A layer's input (or the targets): `n` samples of `features` values.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The buffer.
    pub data: &'a Tensor,
    /// Samples in the batch.
    pub n: usize,
    /// Values per sample.
    pub features: usize,
    /// Where they are in `data`.
    pub layout: Layout,
}

impl Batch<'_> {
    /// `(pointer to sample 0's first value, stride between samples, stride
    /// between features)`, after checking the buffer holds the batch.
    fn operand(&self, op: &'static str) -> Result<(u64, i64, i64)> {
        let (offset, needed, strides) = match self.layout {
            Layout::SampleMajor { first } => (
                first * self.features,
                (first + self.n) * self.features,
                (self.features as i64, 1),
            ),
            Layout::FeatureMajor => (0, self.n * self.features, (1, self.n as i64)),
        };
        if self.data.numel() < needed {
            return Err(Error::invalid(
                op,
                format!(
                    "the batch needs {needed} values but its buffer {} holds {}",
                    self.data.shape(),
                    self.data.numel()
                ),
            ));
        }
        let bytes = offset * self.data.dtype().size_in_bytes();
        Ok((buf(self.data).device_ptr() + bytes as u64, strides.0, strides.1))
    }
}

/// What a hidden layer's training forward keeps for its backward pass, each
/// sized for the largest batch (`act` and `out` hold `features * n`
/// values, the statistics `features`).
#[derive(Debug, Clone)]
pub struct HiddenSaved {
    /// `relu(x W^T + b)`, feature-major.
    pub act: Tensor,
    /// The BatchNorm output (the next layer's input), feature-major.
    pub out: Tensor,
    /// Batch mean per feature.
    pub mean: Tensor,
    /// Biased batch variance per feature.
    pub var: Tensor,
    /// `1 / sqrt(var + eps)` per feature.
    pub inv_std: Tensor,
}

impl HiddenSaved {
    /// Zeroed buffers on GPU `ordinal` for `features` features and batches
    /// of up to `n` samples.
    pub fn new(ordinal: usize, features: usize, n: usize, dtype: DType) -> Result<HiddenSaved> {
        let zeros = |len: usize| super::ops::full(ordinal, [len].into(), 0.0, dtype);
        Ok(HiddenSaved {
            act: zeros(features * n)?,
            out: zeros(features * n)?,
            mean: zeros(features)?,
            var: zeros(features)?,
            inv_std: zeros(features)?,
        })
    }
}

/// A Linear layer's parameters: `weight[out, in]`, `bias[out]`.
#[derive(Debug, Clone, Copy)]
pub struct LinearParams<'a> {
    /// `[out, in]`.
    pub weight: &'a Tensor,
    /// `[out]`.
    pub bias: &'a Tensor,
}

/// A BatchNorm's affine parameters, each `[features]`.
#[derive(Debug, Clone, Copy)]
pub struct NormParams<'a> {
    /// The scale (gamma).
    pub scale: &'a Tensor,
    /// The shift (beta).
    pub shift: &'a Tensor,
}

/// A trained hidden layer's gradient buffers (shaped like its parameters).
#[derive(Debug)]
pub struct HiddenGrads<'a> {
    /// d loss / d weight, `[out, in]`.
    pub weight: &'a mut Tensor,
    /// d loss / d bias.
    pub bias: &'a mut Tensor,
    /// d loss / d BatchNorm scale.
    pub scale: &'a mut Tensor,
    /// d loss / d BatchNorm shift.
    pub shift: &'a mut Tensor,
}

/// Checks that `t` is on GPU `ordinal` with `dtype` and holds at least
/// `len` values.
fn check(t: &Tensor, ordinal: usize, dtype: DType, len: usize, what: &str, op: &'static str) -> Result<()> {
    if t.device() != Device::Cuda(ordinal) {
        return Err(Error::DeviceMismatch {
            op,
            lhs: Device::Cuda(ordinal),
            rhs: t.device(),
        });
    }
    if t.dtype() != dtype {
        return Err(Error::invalid(
            op,
            format!("{what} is {:?} but the layer is {dtype:?}", t.dtype()),
        ));
    }
    if t.numel() < len {
        return Err(Error::invalid(
            op,
            format!("{what} holds {} values; the layer needs {len}", t.numel()),
        ));
    }
    Ok(())
}

/// The device address of a buffer a kernel will write, after making its
/// storage unshared (so no other tensor sees the write).
fn write_ptr(t: &mut Tensor) -> Result<u64> {
    match t.unique_storage("fused MLP step")? {
        Storage::Cuda(s) => Ok(s.device_ptr()),
        _ => unreachable!("checked to be on a GPU first"),
    }
}

/// `(ordinal, dtype)` of a layer from its weight.
fn layer_kind(weight: &Tensor, op: &'static str) -> Result<(usize, DType)> {
    match weight.device() {
        Device::Cuda(i) => Ok((i, weight.dtype())),
        other => Err(Error::DeviceMismatch {
            op,
            lhs: other,
            rhs: Device::Cuda(0),
        }),
    }
}

/// A hidden layer's training forward, `BatchNorm(relu(x W^T + b))` with
/// batch statistics, into `saved` (see [`HiddenSaved`]).
pub fn hidden_forward_train(
    x: Batch<'_>,
    linear: LinearParams<'_>,
    norm: NormParams<'_>,
    saved: &mut HiddenSaved,
    eps: f64,
) -> Result<()> {
    hidden_forward(x, linear, norm, HiddenMode::Train(saved), eps)
}

/// A hidden layer's inference forward with running statistics, into `out`
/// (feature-major, `features * n` values).
pub fn hidden_forward_eval(
    x: Batch<'_>,
    linear: LinearParams<'_>,
    norm: NormParams<'_>,
    running: (&Tensor, &Tensor),
    out: &mut Tensor,
    eps: f64,
) -> Result<()> {
    hidden_forward(x, linear, norm, HiddenMode::Eval { running, out }, eps)
}

enum HiddenMode<'a> {
    Train(&'a mut HiddenSaved),
    Eval {
        running: (&'a Tensor, &'a Tensor),
        out: &'a mut Tensor,
    },
}

fn hidden_forward(
    x: Batch<'_>,
    linear: LinearParams<'_>,
    norm: NormParams<'_>,
    mode: HiddenMode<'_>,
    eps: f64,
) -> Result<()> {
    let op = "mlp hidden forward";
    let (ordinal, dtype) = layer_kind(linear.weight, op)?;
    let (c, k) = linear.weight.matrix_dims(op)?;
    let n = x.n;
    check_input(&x, ordinal, dtype, k, op)?;
    for (t, what) in [(linear.bias, "bias"), (norm.scale, "scale"), (norm.shift, "shift")] {
        check(t, ordinal, dtype, c, what, op)?;
    }
    let (xp, xs_r, xs_k) = x.operand(op)?;
    let (wp, bp, sp, hp) = (
        buf(linear.weight).device_ptr(),
        buf(linear.bias).device_ptr(),
        buf(norm.scale).device_ptr(),
        buf(norm.shift).device_ptr(),
    );
    let (act, out, mean, var, inv_std, rm, rv, training) = match mode {
        HiddenMode::Train(s) => {
            check(&s.act, ordinal, dtype, c * n, "act", op)?;
            check(&s.out, ordinal, dtype, c * n, "out", op)?;
            for (t, what) in [(&s.mean, "mean"), (&s.var, "var"), (&s.inv_std, "inv_std")] {
                check(t, ordinal, dtype, c, what, op)?;
            }
            let ptrs = (
                write_ptr(&mut s.act)?,
                write_ptr(&mut s.out)?,
                write_ptr(&mut s.mean)?,
                write_ptr(&mut s.var)?,
                write_ptr(&mut s.inv_std)?,
            );
            (ptrs.0, ptrs.1, ptrs.2, ptrs.3, ptrs.4, 0u64, 0u64, 1i32)
        }
        HiddenMode::Eval { running, out } => {
            check(running.0, ordinal, dtype, c, "running mean", op)?;
            check(running.1, ordinal, dtype, c, "running var", op)?;
            check(out, ordinal, dtype, c * n, "out", op)?;
            let (rm, rv) = (buf(running.0).device_ptr(), buf(running.1).device_ptr());
            (0, write_ptr(out)?, 0, 0, 0, rm, rv, 0)
        }
    };
    let (n64, k64, c64) = (n as i64, k as i64, c as i64);
    let kernel = pick(dtype, "mlp_hidden_fwd_f32", "mlp_hidden_fwd_f64");
    // SAFETY: arguments in `mlp_hidden_fwd`'s order; every buffer was
    // checked to hold what the kernel reads or writes for n samples, c
    // features and k inputs; null pointers are the ones the mode leaves out.
    unsafe {
        backend(ordinal)?.launch(
            kernel,
            c as u32,
            BLOCK,
            &args![n64, k64, c64, xp, xs_r, xs_k, wp, bp, sp, hp, act, out, mean, var, inv_std, rm, rv, eps, training],
        )
    }
}

fn check_input(x: &Batch<'_>, ordinal: usize, dtype: DType, k: usize, op: &'static str) -> Result<()> {
    if x.features != k {
        return Err(Error::invalid(
            op,
            format!("the input has {} features but the weight takes {k}", x.features),
        ));
    }
    if x.n == 0 {
        return Err(Error::invalid(op, "the batch is empty"));
    }
    check(x.data, ordinal, dtype, 0, "the input", op)
}

/// The output Linear and the loss: `pred = x W^T + b` (feature-major, when
/// given), `dz = 2 (pred - target)` (feature-major, when given: the loss's
/// gradient) and the sum of squared errors into `sse[slot]`.
pub fn output_forward(
    x: Batch<'_>,
    linear: LinearParams<'_>,
    targets: Batch<'_>,
    pred: Option<&mut Tensor>,
    dz: Option<&mut Tensor>,
    (sse, slot): (&mut Tensor, usize),
) -> Result<()> {
    let op = "mlp output forward";
    let (ordinal, dtype) = layer_kind(linear.weight, op)?;
    let (c, k) = linear.weight.matrix_dims(op)?;
    let n = x.n;
    if x.layout != Layout::FeatureMajor || !matches!(targets.layout, Layout::SampleMajor { .. }) {
        return Err(Error::invalid(
            op,
            "the input must be feature-major and the targets sample-major",
        ));
    }
    check_input(&x, ordinal, dtype, k, op)?;
    check(linear.bias, ordinal, dtype, c, "bias", op)?;
    if targets.n != n || targets.features != c {
        return Err(Error::invalid(
            op,
            format!(
                "{} targets of {} values for {n} predictions of {c}",
                targets.n, targets.features
            ),
        ));
    }
    check(targets.data, ordinal, dtype, 0, "the targets", op)?;
    let (tp, _, _) = targets.operand(op)?;
    let (xp, _, _) = x.operand(op)?;
    let out_ptr = |t: Option<&mut Tensor>, what| -> Result<u64> {
        match t {
            Some(t) => {
                check(t, ordinal, dtype, c * n, what, op)?;
                write_ptr(t)
            }
            None => Ok(0),
        }
    };
    let (pp, dp) = (out_ptr(pred, "pred")?, out_ptr(dz, "dz")?);
    check(sse, ordinal, dtype, slot + 1, "the loss slots", op)?;
    let sp = write_ptr(sse)? + (slot * dtype.size_in_bytes()) as u64;
    let (wp, bp) = (buf(linear.weight).device_ptr(), buf(linear.bias).device_ptr());
    let (n64, k64, c64) = (n as i64, k as i64, c as i64);
    let kernel = pick(dtype, "mlp_output_fwd_f32", "mlp_output_fwd_f64");
    // SAFETY: arguments in `mlp_output_fwd`'s order; buffers checked above.
    unsafe { backend(ordinal)?.launch(kernel, 1, BLOCK, &args![n64, k64, c64, xp, wp, bp, tp, pp, dp, sp]) }
}

/// A hidden layer's backward, from the layer above (`upper`'s weight and
/// its `dz_up`, `[c_up, n]`): writes this layer's `dz` (`[c, n]`) and, for a
/// trained layer (`grads` given), its parameter gradients; `x` is the
/// layer's input in the forward.
pub fn hidden_backward(
    upper: &Tensor,
    dz_up: &Tensor,
    saved: &HiddenSaved,
    norm: NormParams<'_>,
    x: Batch<'_>,
    dz: &mut Tensor,
    grads: Option<HiddenGrads<'_>>,
) -> Result<()> {
    let op = "mlp hidden backward";
    let (ordinal, dtype) = layer_kind(upper, op)?;
    let (c_up, c) = upper.matrix_dims(op)?;
    let (n, k) = (x.n, x.features);
    check_input(&x, ordinal, dtype, k, op)?;
    check(dz_up, ordinal, dtype, c_up * n, "dz of the layer above", op)?;
    check(&saved.act, ordinal, dtype, c * n, "act", op)?;
    for (t, what) in [
        (&saved.mean, "mean"),
        (&saved.inv_std, "inv_std"),
        (norm.scale, "scale"),
    ] {
        check(t, ordinal, dtype, c, what, op)?;
    }
    check(dz, ordinal, dtype, c * n, "dz", op)?;
    let (xp, xs_r, xs_k) = x.operand(op)?;
    let [gb, gs, gh, gw] = match grads {
        Some(g) => {
            for (t, len, what) in [
                (&*g.bias, c, "bias gradient"),
                (&*g.scale, c, "scale gradient"),
                (&*g.shift, c, "shift gradient"),
                (&*g.weight, c * k, "weight gradient"),
            ] {
                check(t, ordinal, dtype, len, what, op)?;
            }
            [
                write_ptr(g.bias)?,
                write_ptr(g.scale)?,
                write_ptr(g.shift)?,
                write_ptr(g.weight)?,
            ]
        }
        None => [0; 4],
    };
    let (wp, dup, ap, mp, ip, sp, dzp) = (
        buf(upper).device_ptr(),
        buf(dz_up).device_ptr(),
        buf(&saved.act).device_ptr(),
        buf(&saved.mean).device_ptr(),
        buf(&saved.inv_std).device_ptr(),
        buf(norm.scale).device_ptr(),
        write_ptr(dz)?,
    );
    let (n64, c64, cu64, k64) = (n as i64, c as i64, c_up as i64, k as i64);
    let kernel = pick(dtype, "mlp_hidden_bwd_f32", "mlp_hidden_bwd_f64");
    // SAFETY: arguments in `mlp_hidden_bwd`'s order; buffers checked above;
    // the gradient pointers are all null or all valid.
    unsafe {
        backend(ordinal)?.launch(
            kernel,
            c as u32,
            BLOCK,
            &args![n64, c64, cu64, wp, dup, ap, mp, ip, sp, k64, xp, xs_r, xs_k, dzp, gb, gs, gh, gw],
        )
    }
}

/// The output Linear's own gradients, when it is trained: `bias` and
/// `weight` from its `dz` (`[c, n]`) and its feature-major input `x`.
pub fn linear_grads(dz: &Tensor, x: Batch<'_>, weight: &mut Tensor, bias: &mut Tensor) -> Result<()> {
    let op = "mlp linear gradients";
    let (ordinal, dtype) = layer_kind(dz, op)?;
    let (c, k) = weight.matrix_dims(op)?;
    let n = x.n;
    if x.layout != Layout::FeatureMajor {
        return Err(Error::invalid(op, "the input must be feature-major"));
    }
    check_input(&x, ordinal, dtype, k, op)?;
    check(dz, ordinal, dtype, c * n, "dz", op)?;
    check(weight, ordinal, dtype, c * k, "weight gradient", op)?;
    check(bias, ordinal, dtype, c, "bias gradient", op)?;
    let (xp, _, _) = x.operand(op)?;
    let (dp, bp, wp) = (buf(dz).device_ptr(), write_ptr(bias)?, write_ptr(weight)?);
    let (n64, c64, k64) = (n as i64, c as i64, k as i64);
    let kernel = pick(dtype, "mlp_linear_grads_f32", "mlp_linear_grads_f64");
    // SAFETY: arguments in `mlp_linear_grads`' order; buffers checked above.
    unsafe { backend(ordinal)?.launch(kernel, c as u32, BLOCK, &args![n64, c64, k64, dp, xp, bp, wp]) }
}

/// Blends a training forward's batch statistics (`saved.mean`,
/// `saved.var`, from a batch of `n`) into the running ones, in place:
/// `r = r (1 - momentum) + batch momentum`, the variance unbiased by
/// `n / (n - 1)` (as PyTorch's BatchNorm1d).
pub fn blend_running_stats(
    saved: &HiddenSaved,
    n: usize,
    running_mean: &mut Tensor,
    running_var: &mut Tensor,
    momentum: f64,
) -> Result<()> {
    let op = "mlp running statistics";
    let (ordinal, dtype) = layer_kind(running_mean, op)?;
    let c = running_mean.numel();
    if n < 2 {
        return Err(Error::invalid(
            op,
            "a batch of one sample has no unbiased variance; use batches of at least 2",
        ));
    }
    check(running_var, ordinal, dtype, c, "running var", op)?;
    check(&saved.mean, ordinal, dtype, c, "mean", op)?;
    check(&saved.var, ordinal, dtype, c, "var", op)?;
    let (mp, vp) = (buf(&saved.mean).device_ptr(), buf(&saved.var).device_ptr());
    let (rm, rv) = (write_ptr(running_mean)?, write_ptr(running_var)?);
    let (c64, n64) = (c as i64, n as i64);
    let kernel = pick(dtype, "mlp_running_stats_f32", "mlp_running_stats_f64");
    // SAFETY: arguments in `mlp_running_stats`' order; buffers checked above.
    unsafe {
        backend(ordinal)?.launch(
            kernel,
            super::ops::blocks(c),
            BLOCK,
            &args![c64, n64, momentum, mp, vp, rm, rv],
        )
    }
}

/// The step cursor of an epoch on the device: the step's index in the
/// epoch, then the epoch's order of the training rows (i64 each). Kernels
/// read the step from it ([`batch_gather`]) and advance it
/// ([`step_finish`]), so the same launches serve every step.
pub struct StepCursor {
    ordinal: usize,
    rows: usize,
    buffer: RawBuffer,
}

impl std::fmt::Debug for StepCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepCursor(cuda:{}, {} rows)", self.ordinal, self.rows)
    }
}

impl StepCursor {
    /// A cursor on GPU `ordinal` for orders of `rows` rows.
    pub fn new(ordinal: usize, rows: usize) -> Result<StepCursor> {
        Ok(StepCursor {
            ordinal,
            rows,
            buffer: RawBuffer::from_slice(ordinal, &vec![0i64; rows + 1])?,
        })
    }

    /// Starts an epoch (or a single step) over `order` (at most `rows`
    /// training rows): step 0 next. One copy to the device.
    pub fn start(&self, order: &[usize]) -> Result<()> {
        if order.len() > self.rows {
            return Err(Error::invalid(
                "step cursor",
                format!("an order of {} rows for a cursor of {}", order.len(), self.rows),
            ));
        }
        if let Some(&bad) = order.iter().find(|&&r| r >= self.rows) {
            return Err(Error::invalid(
                "step cursor",
                format!("row {bad} of {}: out of range", self.rows),
            ));
        }
        let mut words = vec![0i64; self.rows + 1];
        for (w, &r) in words[1..].iter_mut().zip(order) {
            *w = r as i64;
        }
        self.buffer.write(&words)
    }
}

/// The current step's batch: rows `order[step * stride + r]`, `r < n`, of
/// the sample-major training inputs `x` and targets `y` into `batch_x` and
/// `batch_y` (sample-major, `n` rows); `x` and `y` must have at least the
/// cursor's rows.
pub fn batch_gather(
    cursor: &StepCursor,
    (n, stride): (usize, usize),
    (x, y): (&Tensor, &Tensor),
    batch_x: &mut Tensor,
    batch_y: &mut Tensor,
) -> Result<()> {
    let op = "mlp batch gather";
    let (ordinal, dtype) = layer_kind(x, op)?;
    let ((rows, input), (rows_y, output)) = (x.matrix_dims(op)?, y.matrix_dims(op)?);
    if rows != rows_y || rows < cursor.rows || cursor.ordinal != ordinal {
        return Err(Error::invalid(
            op,
            format!(
                "{rows} input rows, {rows_y} target rows, a cursor for {} rows on cuda:{}",
                cursor.rows, cursor.ordinal
            ),
        ));
    }
    check(y, ordinal, dtype, 0, "the targets", op)?;
    check(batch_x, ordinal, dtype, n * input, "the batch's inputs", op)?;
    check(batch_y, ordinal, dtype, n * output, "the batch's targets", op)?;
    let (cp, xp, yp) = (cursor.buffer.device_ptr(), buf(x).device_ptr(), buf(y).device_ptr());
    let (bx, by) = (write_ptr(batch_x)?, write_ptr(batch_y)?);
    let (n64, s64, in64, out64, r64) = (n as i64, stride as i64, input as i64, output as i64, cursor.rows as i64);
    let kernel = pick(dtype, "mlp_batch_gather_f32", "mlp_batch_gather_f64");
    // SAFETY: arguments in `mlp_batch_gather`'s order; the batch buffers
    // hold n rows; the cursor holds rows + 1 words, its order only rows of
    // x and y (checked by `StepCursor::start`), and the kernel reads no
    // entry past `rows`.
    unsafe {
        backend(ordinal)?.launch(
            kernel,
            blocks(n * (input + output)),
            BLOCK,
            &args![n64, s64, r64, cp, xp, in64, yp, out64, bx, by],
        )
    }
}

/// The step's end: `losses[step] = sse[0]` (no loss is written for a step
/// past the slots), and the cursor on to the next step.
pub fn step_finish(cursor: &StepCursor, sse: &Tensor, losses: &mut Tensor) -> Result<()> {
    let op = "mlp step finish";
    let (ordinal, dtype) = layer_kind(sse, op)?;
    let steps = losses.numel();
    check(sse, ordinal, dtype, 1, "the step's loss", op)?;
    check(losses, ordinal, dtype, 1, "the loss slots", op)?;
    if cursor.ordinal != ordinal {
        return Err(Error::invalid(op, "the cursor is on another GPU"));
    }
    let (cp, sp, lp) = (cursor.buffer.device_ptr(), buf(sse).device_ptr(), write_ptr(losses)?);
    let slots = steps as i64;
    let kernel = pick(dtype, "mlp_step_finish_f32", "mlp_step_finish_f64");
    // SAFETY: arguments in `mlp_step_finish`'s order; one thread writes the
    // cursor word and at most one of the `slots` slots.
    unsafe { backend(ordinal)?.launch(kernel, 1, 32, &args![cp, sp, lp, slots]) }
}
