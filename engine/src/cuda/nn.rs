//! Fused layer kernels and random fills on the GPU: BatchNorm1d (training
//! forward with running statistics, inference forward, backward) and
//! counter-based uniform / normal fills.

use super::backend::{backend, BLOCK};
use super::memory::CudaStorage;
use super::ops::{args, blocks, buf, ordinal, pick, wrap};
use crate::{DType, Device, Error, Result, Shape, Tensor};
use std::ffi::c_void;

/// What the BatchNorm training forward returns.
#[derive(Debug, Clone)]
pub struct BatchNormForward {
    /// The normalised, scaled and shifted output, `[n, c]`.
    pub y: Tensor,
    /// The batch mean per channel, `[c]`.
    pub mean: Tensor,
    /// `1 / sqrt(biased batch variance + eps)` per channel, `[c]`.
    pub inv_std: Tensor,
}

/// The BatchNorm backward's gradients.
#[derive(Debug, Clone)]
pub struct BatchNormGrads {
    /// Gradient with respect to the input, `[n, c]`.
    pub dx: Tensor,
    /// Gradient with respect to the scale, `[c]`.
    pub dscale: Tensor,
    /// Gradient with respect to the shift, `[c]`.
    pub dshift: Tensor,
}

fn check_nc(x: &Tensor, op: &'static str) -> Result<(usize, usize)> {
    if !x.is_cuda() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: x.device(),
            rhs: Device::Cuda(0),
        });
    }
    x.matrix_dims(op)
}

fn check_vec(t: &Tensor, x: &Tensor, c: usize, op: &'static str) -> Result<()> {
    x.check_same_kind(t, op)?;
    if t.dims() != [c] {
        return Err(Error::invalid(
            op,
            format!("per-channel tensors must have shape [{c}], got {}", t.shape()),
        ));
    }
    Ok(())
}

/// Training-mode BatchNorm over `x[n, c]`; when `running` is given, its
/// `(mean, var)` are updated in place with `momentum` (unbiased variance).
pub fn batchnorm_train(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    eps: f64,
    momentum: f64,
    running: Option<(&mut Tensor, &mut Tensor)>,
) -> Result<BatchNormForward> {
    let (n, c) = check_nc(x, "batchnorm")?;
    check_vec(scale, x, c, "batchnorm")?;
    check_vec(shift, x, c, "batchnorm")?;
    if n == 0 {
        return Err(Error::invalid("batchnorm", "needs at least one row"));
    }
    let i = ordinal(x);
    let (y, mean, inv_std) = (
        CudaStorage::alloc(i, x.dtype(), n * c)?,
        CudaStorage::alloc(i, x.dtype(), c)?,
        CudaStorage::alloc(i, x.dtype(), c)?,
    );
    let (rm, rv) = match running {
        Some((m, v)) => {
            check_vec(m, x, c, "batchnorm")?;
            check_vec(v, x, c, "batchnorm")?;
            (
                super::ops::buf(&make_unique(m)?).device_ptr(),
                super::ops::buf(&make_unique(v)?).device_ptr(),
            )
        }
        None => (0u64, 0u64),
    };
    let b = backend(i)?;
    let (n64, c64) = (n as i64, c as i64);
    let (xp, sp, hp, yp, mp, ip) = (
        buf(x).device_ptr(),
        buf(scale).device_ptr(),
        buf(shift).device_ptr(),
        y.device_ptr(),
        mean.device_ptr(),
        inv_std.device_ptr(),
    );
    let kernel = pick(x.dtype(), "batchnorm_fwd_f32", "batchnorm_fwd_f64");
    // SAFETY: arguments in `batchnorm_fwd`'s order; buffers sized n*c and c.
    unsafe {
        b.launch(
            kernel,
            c.min(1 << 20) as u32,
            BLOCK,
            &args![n64, c64, eps, momentum, xp, sp, hp, yp, mp, ip, rm, rv],
        )?
    };
    Ok(BatchNormForward {
        y: wrap(y, Shape::new([n, c])),
        mean: wrap(mean, Shape::new([c])),
        inv_std: wrap(inv_std, Shape::new([c])),
    })
}

/// A tensor whose buffer no other tensor shares (copying if it was), so a
/// kernel may write it in place; returns a handle sharing that buffer.
fn make_unique(t: &mut Tensor) -> Result<Tensor> {
    t.unique_storage("batch_norm")?;
    Ok(t.clone())
}

/// Inference-mode BatchNorm with running statistics.
pub fn batchnorm_eval(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let (n, c) = check_nc(x, "batchnorm_eval")?;
    for t in [scale, shift, running_mean, running_var] {
        check_vec(t, x, c, "batchnorm_eval")?;
    }
    let y = CudaStorage::alloc(ordinal(x), x.dtype(), n * c)?;
    if n * c > 0 {
        let b = backend(ordinal(x))?;
        let (n64, c64) = (n as i64, c as i64);
        let (xp, sp, hp, mp, vp, yp) = (
            buf(x).device_ptr(),
            buf(scale).device_ptr(),
            buf(shift).device_ptr(),
            buf(running_mean).device_ptr(),
            buf(running_var).device_ptr(),
            y.device_ptr(),
        );
        let kernel = pick(x.dtype(), "batchnorm_eval_f32", "batchnorm_eval_f64");
        // SAFETY: arguments in `batchnorm_eval`'s order.
        unsafe {
            b.launch(
                kernel,
                blocks(n * c),
                BLOCK,
                &args![n64, c64, eps, xp, sp, hp, mp, vp, yp],
            )?
        };
    }
    Ok(wrap(y, Shape::new([n, c])))
}

/// BatchNorm backward from the forward's saved `mean` and `inv_std`.
pub fn batchnorm_backward(x: &Tensor, dy: &Tensor, fwd: &BatchNormForward, scale: &Tensor) -> Result<BatchNormGrads> {
    let (n, c) = check_nc(x, "batchnorm_backward")?;
    x.check_same_kind(dy, "batchnorm_backward")?;
    if dy.shape() != x.shape() {
        return Err(Error::ShapeMismatch {
            op: "batchnorm_backward",
            lhs: x.shape().clone(),
            rhs: dy.shape().clone(),
            hint: "dy must have x's shape",
        });
    }
    for t in [&fwd.mean, &fwd.inv_std, scale] {
        check_vec(t, x, c, "batchnorm_backward")?;
    }
    let i = ordinal(x);
    let (dx, ds, dh) = (
        CudaStorage::alloc(i, x.dtype(), n * c)?,
        CudaStorage::alloc(i, x.dtype(), c)?,
        CudaStorage::alloc(i, x.dtype(), c)?,
    );
    let b = backend(i)?;
    let (n64, c64) = (n as i64, c as i64);
    let (xp, dyp, mp, ip, sp, dxp, dsp, dhp) = (
        buf(x).device_ptr(),
        buf(dy).device_ptr(),
        buf(&fwd.mean).device_ptr(),
        buf(&fwd.inv_std).device_ptr(),
        buf(scale).device_ptr(),
        dx.device_ptr(),
        ds.device_ptr(),
        dh.device_ptr(),
    );
    let kernel = pick(x.dtype(), "batchnorm_bwd_f32", "batchnorm_bwd_f64");
    // SAFETY: arguments in `batchnorm_bwd`'s order.
    unsafe {
        b.launch(
            kernel,
            c.clamp(1, 1 << 20) as u32,
            BLOCK,
            &args![n64, c64, xp, dyp, mp, ip, sp, dxp, dsp, dhp],
        )?
    };
    Ok(BatchNormGrads {
        dx: wrap(dx, Shape::new([n, c])),
        dscale: wrap(ds, Shape::new([c])),
        dshift: wrap(dh, Shape::new([c])),
    })
}

/// Values uniform in `[low, high)` on GPU `ordinal`; element `i` depends
/// only on `(seed, i)`. Not the CPU [`Rng`](crate::Rng)'s stream.
pub fn rand_uniform(
    ordinal: usize,
    shape: impl Into<Shape>,
    low: f64,
    high: f64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(Error::invalid(
            "rand_uniform",
            format!("need finite low <= high, got [{low}, {high})"),
        ));
    }
    fill_random(
        ordinal,
        shape.into(),
        dtype,
        seed,
        low,
        high,
        pick(dtype, "rng_uniform_f32", "rng_uniform_f64"),
    )
}

/// Normal values with `mean` and `std` on GPU `ordinal` (Box-Muller over
/// the same counter-based generator as [`rand_uniform`]).
pub fn rand_normal(
    ordinal: usize,
    shape: impl Into<Shape>,
    mean: f64,
    std: f64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(Error::invalid(
            "rand_normal",
            format!("need finite mean and std >= 0, got {mean}, {std}"),
        ));
    }
    fill_random(
        ordinal,
        shape.into(),
        dtype,
        seed,
        mean,
        std,
        pick(dtype, "rng_normal_f32", "rng_normal_f64"),
    )
}

fn fill_random(
    ordinal: usize,
    shape: Shape,
    dtype: DType,
    seed: u64,
    a: f64,
    b_: f64,
    kernel: &'static str,
) -> Result<Tensor> {
    let count = shape.checked_numel(kernel)?;
    let out = CudaStorage::alloc(ordinal, dtype, count)?;
    if count > 0 {
        let b = backend(ordinal)?;
        let (n, p) = (count as i64, out.device_ptr());
        // SAFETY: arguments in `rng_*`'s order (n, seed, a, b, out).
        unsafe { b.launch(kernel, blocks(count), BLOCK, &args![n, seed, a, b_, p])? };
    }
    Ok(wrap(out, shape))
}
