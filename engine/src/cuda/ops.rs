//! The engine's ops on CUDA tensors: each checks nothing the CPU entry
//! point has not checked already, picks the kernel for the dtype, and
//! launches it on the tensor's GPU. The CPU entry points in `ops/*.rs`
//! call these when their input lives on a GPU.

use super::backend::{backend, Backend, BLOCK};
use super::memory::{CudaStorage, RawBuffer};
use crate::ops::reduce::ReduceOp;
use crate::storage::Storage;
use crate::{BinaryOp, DType, Device, Error, Result, Shape, Tensor, UnaryOp};
use std::ffi::c_void;

/// Kernel arguments: pointers to the (already bound) values, in order.
macro_rules! args {
    ($($a:ident),* $(,)?) => {
        [$( &$a as *const _ as *mut c_void ),*]
    };
}
pub(crate) use args;

/// The largest rank the strided kernels accept.
pub const MAX_RANK: usize = 8;

/// Dims and up to three operands' strides and offsets; mirrors `Strided`
/// in ptx/cuda/common.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StridedArgs {
    dims: [i64; MAX_RANK],
    s0: [i64; MAX_RANK],
    s1: [i64; MAX_RANK],
    s2: [i64; MAX_RANK],
    off0: i64,
    off1: i64,
    off2: i64,
    rank: i32,
    pad: i32,
}

impl StridedArgs {
    fn new(dims: &[usize], strides: [&[usize]; 3], offsets: [usize; 3]) -> Result<StridedArgs> {
        if dims.len() > MAX_RANK {
            return Err(Error::invalid(
                "cuda",
                format!(
                    "rank {} is more than the CUDA backend's strided kernels take ({MAX_RANK}); reshape first",
                    dims.len()
                ),
            ));
        }
        let mut s = StridedArgs {
            rank: dims.len() as i32,
            off0: offsets[0] as i64,
            off1: offsets[1] as i64,
            off2: offsets[2] as i64,
            ..StridedArgs::default()
        };
        for (d, &n) in dims.iter().enumerate() {
            s.dims[d] = n as i64;
            s.s0[d] = strides[0].get(d).map_or(0, |&v| v as i64);
            s.s1[d] = strides[1].get(d).map_or(0, |&v| v as i64);
            s.s2[d] = strides[2].get(d).map_or(0, |&v| v as i64);
        }
        Ok(s)
    }
}

/// The GPU buffer of a CUDA tensor.
pub(crate) fn buf(t: &Tensor) -> &CudaStorage {
    match t.storage() {
        Storage::Cuda(s) => s,
        _ => panic!("a CUDA op was handed a CPU tensor; the entry point checks devices first"),
    }
}

/// The GPU ordinal of a CUDA tensor.
pub(crate) fn ordinal(t: &Tensor) -> usize {
    buf(t).ordinal()
}

pub(crate) fn wrap(s: CudaStorage, shape: Shape) -> Tensor {
    Tensor::from_storage(Storage::Cuda(s), shape).expect("kernels size their outputs to the shape")
}

/// The `_f32` or `_f64` variant of a kernel.
pub(crate) fn pick(dtype: DType, f32_name: &'static str, f64_name: &'static str) -> &'static str {
    match dtype {
        DType::F32 => f32_name,
        DType::F64 => f64_name,
    }
}

/// Blocks for a grid-stride loop over `n` elements.
pub(crate) fn blocks(n: usize) -> u32 {
    n.div_ceil(BLOCK as usize).clamp(1, 65_535 * 16) as u32
}

/// A tensor like `t` (shape, dtype, device) filled with `value`.
pub(crate) fn full_like(t: &Tensor, value: f64) -> Result<Tensor> {
    full(ordinal(t), t.shape().clone(), value, t.dtype())
}

fn launch(b: &Backend, kernel: &'static str, n: usize, args: &[*mut c_void]) -> Result<()> {
    // SAFETY: every caller binds `args` in the kernel's parameter order with
    // the kernel's types, and sizes the buffers for `n` elements.
    unsafe { b.launch(kernel, blocks(n), BLOCK, args) }
}

// ----- moving data ---------------------------------------------------------

/// `t` on `device` (a copy unless it is already there).
pub fn to_device(t: &Tensor, device: Device) -> Result<Tensor> {
    match (t.device(), device) {
        (a, b) if a == b => Ok(t.clone()),
        (Device::Cpu, Device::Cuda(i)) => {
            let s = match t.dtype() {
                DType::F32 => CudaStorage::from_host(i, t.as_slice::<f32>()?)?,
                DType::F64 => CudaStorage::from_host(i, t.as_slice::<f64>()?)?,
            };
            Ok(wrap(s, t.shape().clone()))
        }
        (Device::Cuda(_), Device::Cpu) => to_host(t),
        (Device::Cuda(_), Device::Cuda(j)) => to_device(&to_host(t)?, Device::Cuda(j)),
        (Device::Cpu, Device::Cpu) => unreachable!("equal devices returned above"),
    }
}

/// A CPU copy of a CUDA tensor.
pub fn to_host(t: &Tensor) -> Result<Tensor> {
    let s = buf(t);
    match s.dtype() {
        DType::F32 => Tensor::from_vec(s.to_host::<f32>()?, t.shape().clone()),
        DType::F64 => Tensor::from_vec(s.to_host::<f64>()?, t.shape().clone()),
    }
}

/// A tensor of `shape` filled with `value` on GPU `ordinal`.
pub fn full(ordinal: usize, shape: Shape, value: f64, dtype: DType) -> Result<Tensor> {
    let count = shape.checked_numel("full")?;
    let out = CudaStorage::alloc(ordinal, dtype, count)?;
    if count > 0 {
        let b = backend(ordinal)?;
        let (n, ptr) = (count as i64, out.device_ptr());
        launch(&b, pick(dtype, "fill_f32", "fill_f64"), count, &args![n, value, ptr])?;
    }
    Ok(wrap(out, shape))
}

/// The same values in another dtype.
pub fn cast(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() == dtype {
        return Ok(t.clone());
    }
    let i = ordinal(t);
    let out = CudaStorage::alloc(i, dtype, t.numel())?;
    if t.numel() > 0 {
        let b = backend(i)?;
        let (n, x, y) = (t.numel() as i64, buf(t).device_ptr(), out.device_ptr());
        let kernel = pick(t.dtype(), "cast_f32_f64", "cast_f64_f32");
        launch(&b, kernel, t.numel(), &args![n, x, y])?;
    }
    Ok(wrap(out, t.shape().clone()))
}

// ----- elementwise -----------------------------------------------------------

/// The kernel's op code and scalar parameters for a [`UnaryOp`]
/// (`unary_apply` in ptx/cuda/elementwise.cu). The codes come from the one
/// table ptx/cuda/op_codes.h, through `ferrograd_ptx::op_codes`.
pub(crate) fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    use ferrograd_ptx::op_codes::*;
    match op {
        UnaryOp::Neg => (UNARY_NEG, 0.0, 0.0),
        UnaryOp::Abs => (UNARY_ABS, 0.0, 0.0),
        UnaryOp::Exp => (UNARY_EXP, 0.0, 0.0),
        UnaryOp::Log => (UNARY_LOG, 0.0, 0.0),
        UnaryOp::Sqrt => (UNARY_SQRT, 0.0, 0.0),
        UnaryOp::Rsqrt => (UNARY_RSQRT, 0.0, 0.0),
        UnaryOp::Square => (UNARY_SQUARE, 0.0, 0.0),
        UnaryOp::Recip => (UNARY_RECIP, 0.0, 0.0),
        UnaryOp::Relu => (UNARY_RELU, 0.0, 0.0),
        UnaryOp::LeakyRelu(s) => (UNARY_LEAKY_RELU, s, 0.0),
        UnaryOp::Sigmoid => (UNARY_SIGMOID, 0.0, 0.0),
        UnaryOp::Tanh => (UNARY_TANH, 0.0, 0.0),
        UnaryOp::Gelu => (UNARY_GELU, 0.0, 0.0),
        UnaryOp::Silu => (UNARY_SILU, 0.0, 0.0),
        UnaryOp::Sin => (UNARY_SIN, 0.0, 0.0),
        UnaryOp::Cos => (UNARY_COS, 0.0, 0.0),
        UnaryOp::Sign => (UNARY_SIGN, 0.0, 0.0),
        UnaryOp::Clamp(lo, hi) => (UNARY_CLAMP, lo, hi),
        UnaryOp::AddScalar(c) => (UNARY_ADD_SCALAR, c, 0.0),
        UnaryOp::MulScalar(c) => (UNARY_MUL_SCALAR, c, 0.0),
        UnaryOp::PowScalar(p) => (UNARY_POW_SCALAR, p, 0.0),
        UnaryOp::GtScalar(c) => (UNARY_GT_SCALAR, c, 0.0),
        UnaryOp::LtScalar(c) => (UNARY_LT_SCALAR, c, 0.0),
    }
}

/// The kernel's op code for a [`BinaryOp`] (`binary_apply` in
/// ptx/cuda/elementwise.cu; the table is ptx/cuda/op_codes.h).
pub(crate) fn binary_code(op: BinaryOp) -> i32 {
    use ferrograd_ptx::op_codes::*;
    match op {
        BinaryOp::Add => BINARY_ADD,
        BinaryOp::Sub => BINARY_SUB,
        BinaryOp::Mul => BINARY_MUL,
        BinaryOp::Div => BINARY_DIV,
        BinaryOp::Pow => BINARY_POW,
        BinaryOp::Maximum => BINARY_MAXIMUM,
        BinaryOp::Minimum => BINARY_MINIMUM,
        BinaryOp::Eq => BINARY_EQ,
        BinaryOp::Ne => BINARY_NE,
        BinaryOp::Lt => BINARY_LT,
        BinaryOp::Le => BINARY_LE,
        BinaryOp::Gt => BINARY_GT,
        BinaryOp::Ge => BINARY_GE,
    }
}

fn unary_into(x: &CudaStorage, y: u64, op: UnaryOp) -> Result<()> {
    if x.is_empty() {
        return Ok(());
    }
    let b = backend(x.ordinal())?;
    let (code, p0, p1) = unary_code(op);
    let (n, xp) = (x.len() as i64, x.device_ptr());
    launch(
        &b,
        pick(x.dtype(), "unary_f32", "unary_f64"),
        x.len(),
        &args![n, code, p0, p1, xp, y],
    )
}

/// `op` applied to every element.
pub fn unary(t: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let x = buf(t);
    let out = CudaStorage::alloc(x.ordinal(), x.dtype(), x.len())?;
    unary_into(x, out.device_ptr(), op)?;
    Ok(wrap(out, t.shape().clone()))
}

/// `op` applied in place (the kernel reads and writes the same buffer).
pub fn unary_in_place(storage: &mut Storage, op: UnaryOp) -> Result<()> {
    let Storage::Cuda(x) = storage else {
        panic!("unary_in_place: not a CUDA storage")
    };
    unary_into(x, x.device_ptr(), op)
}

/// `op` with broadcasting; `shape` is the broadcast output shape.
pub fn binary(a: &Tensor, rhs: &Tensor, op: BinaryOp, shape: &Shape) -> Result<Tensor> {
    let i = ordinal(a);
    let out = CudaStorage::alloc(i, a.dtype(), shape.numel())?;
    if shape.numel() > 0 {
        let b = backend(i)?;
        let (n, code) = (shape.numel() as i64, binary_code(op));
        let (ap, bp, op_) = (buf(a).device_ptr(), buf(rhs).device_ptr(), out.device_ptr());
        if a.shape() == shape && rhs.shape() == shape {
            let kernel = pick(a.dtype(), "binary_contig_f32", "binary_contig_f64");
            launch(&b, kernel, shape.numel(), &args![n, code, ap, bp, op_])?;
        } else {
            let (sa, sb) = (a.shape().broadcast_strides(shape), rhs.shape().broadcast_strides(shape));
            let s = StridedArgs::new(shape.dims(), [&sa, &sb, &[]], [0; 3])?;
            launch(
                &b,
                pick(a.dtype(), "binary_f32", "binary_f64"),
                shape.numel(),
                &args![n, code, s, ap, bp, op_],
            )?;
        }
    }
    Ok(wrap(out, shape.clone()))
}

/// `cond ? on_true : on_false` with broadcasting to `shape`.
pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor, shape: &Shape) -> Result<Tensor> {
    let i = ordinal(cond);
    let out = CudaStorage::alloc(i, cond.dtype(), shape.numel())?;
    if shape.numel() > 0 {
        let b = backend(i)?;
        let sc = cond.shape().broadcast_strides(shape);
        let st = on_true.shape().broadcast_strides(shape);
        let sf = on_false.shape().broadcast_strides(shape);
        let s = StridedArgs::new(shape.dims(), [&sc, &st, &sf], [0; 3])?;
        let n = shape.numel() as i64;
        let (c, t, f, o) = (
            buf(cond).device_ptr(),
            buf(on_true).device_ptr(),
            buf(on_false).device_ptr(),
            out.device_ptr(),
        );
        launch(
            &b,
            pick(cond.dtype(), "select_f32", "select_f64"),
            shape.numel(),
            &args![n, s, c, t, f, o],
        )?;
    }
    Ok(wrap(out, shape.clone()))
}

/// `dst[offsets[1] + idx . dst_strides] = src[offsets[0] + idx . src_strides]`
/// over every index of `dims`.
fn strided_copy(
    src: &CudaStorage,
    dst: &CudaStorage,
    dims: &[usize],
    src_strides: &[usize],
    dst_strides: &[usize],
    offsets: [usize; 2],
) -> Result<()> {
    let n: usize = dims.iter().product();
    if n == 0 {
        return Ok(());
    }
    let b = backend(src.ordinal())?;
    let s = StridedArgs::new(dims, [src_strides, dst_strides, &[]], [offsets[0], offsets[1], 0])?;
    let (n64, sp, dp) = (n as i64, src.device_ptr(), dst.device_ptr());
    launch(
        &b,
        pick(src.dtype(), "strided_copy_f32", "strided_copy_f64"),
        n,
        &args![n64, s, sp, dp],
    )
}

/// A contiguous copy of `t` read through `strides` from `offset`, as `dims`.
fn gather_strided(t: &Tensor, offset: usize, strides: &[usize], dims: Vec<usize>) -> Result<Tensor> {
    let shape = Shape::new(dims);
    let out = CudaStorage::alloc(ordinal(t), t.dtype(), shape.numel())?;
    strided_copy(buf(t), &out, shape.dims(), strides, &shape.strides(), [offset, 0])?;
    Ok(wrap(out, shape))
}

/// Axes reordered (a strided copy).
pub fn permute(t: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let in_strides = t.shape().strides();
    let dims: Vec<usize> = axes.iter().map(|&a| t.dims()[a]).collect();
    let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
    gather_strided(t, 0, &strides, dims)
}

/// `t` materialised at the broadcast shape `shape`.
pub fn broadcast_to(t: &Tensor, shape: &Shape) -> Result<Tensor> {
    gather_strided(t, 0, &t.shape().broadcast_strides(shape), shape.dims().to_vec())
}

/// The slice `start..start + len` along axis `a`.
pub fn narrow(t: &Tensor, a: usize, start: usize, len: usize) -> Result<Tensor> {
    let strides = t.shape().strides();
    let mut dims = t.dims().to_vec();
    dims[a] = len;
    gather_strided(t, start * strides[a], &strides, dims)
}

/// Tensors joined along axis `a` (shapes checked by the caller): one
/// strided copy per input into its slice of the output.
pub fn concat(tensors: &[Tensor], a: usize) -> Result<Tensor> {
    let first = &tensors[0];
    let mut dims = first.dims().to_vec();
    dims[a] = tensors.iter().map(|t| t.dims()[a]).sum();
    let shape = Shape::new(dims);
    let out = CudaStorage::alloc(ordinal(first), first.dtype(), shape.numel())?;
    let out_strides = shape.strides();
    let mut at = 0;
    for t in tensors {
        strided_copy(
            buf(t),
            &out,
            t.dims(),
            &t.shape().strides(),
            &out_strides,
            [0, at * out_strides[a]],
        )?;
        at += t.dims()[a];
    }
    Ok(wrap(out, shape))
}

/// `before` and `after` zeros around `t` along axis `a`.
pub fn pad_zeros(t: &Tensor, a: usize, before: usize, after: usize) -> Result<Tensor> {
    let mut dims = t.dims().to_vec();
    dims[a] += before + after;
    let out = full(ordinal(t), Shape::new(dims), 0.0, t.dtype())?;
    let out_strides = out.shape().strides();
    strided_copy(
        buf(t),
        buf(&out),
        t.dims(),
        &t.shape().strides(),
        &out_strides,
        [0, before * out_strides[a]],
    )?;
    Ok(out)
}

/// `dst += src` (same shape and dtype), in place.
pub fn add_assign(dst: &mut Storage, src: &Tensor) -> Result<()> {
    let Storage::Cuda(d) = dst else {
        panic!("add_assign: not a CUDA storage")
    };
    let s = buf(src);
    if s.is_empty() {
        return Ok(());
    }
    let b = backend(d.ordinal())?;
    let (n, x, y) = (s.len() as i64, s.device_ptr(), d.device_ptr());
    launch(
        &b,
        pick(s.dtype(), "add_assign_f32", "add_assign_f64"),
        s.len(),
        &args![n, x, y],
    )
}

/// `dst = src` (same shape and dtype), in place.
pub fn copy_from(dst: &mut Storage, src: &Tensor) -> Result<()> {
    let Storage::Cuda(d) = dst else {
        panic!("copy_from: not a CUDA storage")
    };
    let s = buf(src);
    let strides = Shape::new([s.len()]).strides();
    strided_copy(s, d, &[s.len()], &strides, &strides, [0, 0])
}

// ----- reductions ------------------------------------------------------------

/// The kernels' op code for a [`ReduceOp`] (`red_fold` in
/// ptx/cuda/common.cuh; the table is ptx/cuda/op_codes.h).
fn reduce_code(op: ReduceOp) -> i32 {
    use ferrograd_ptx::op_codes::*;
    match op {
        ReduceOp::Sum => REDUCE_SUM,
        ReduceOp::Max => REDUCE_MAX,
        ReduceOp::Min => REDUCE_MIN,
    }
}

/// Folds x viewed as [outer, len, inner] over the middle axis into
/// [outer, inner]: one pass, or two (per-chunk partials, then those) when
/// few long rows would leave the GPU idle.
fn reduce_middle(x: &CudaStorage, outer: usize, len: usize, inner: usize, op: ReduceOp) -> Result<CudaStorage> {
    let b = backend(x.ordinal())?;
    let kernel = pick(x.dtype(), "reduce_f32", "reduce_f64");
    let code = reduce_code(op);
    let rows = outer * inner;
    const CHUNK: usize = 4096;
    let (src, len) = if rows < 128 && len > 2 * CHUNK {
        let chunks = len.div_ceil(CHUNK);
        let partial = CudaStorage::alloc(x.ordinal(), x.dtype(), rows * chunks)?;
        let (o, l, i, c, xp, pp) = (
            outer as i64,
            len as i64,
            inner as i64,
            CHUNK as i64,
            x.device_ptr(),
            partial.device_ptr(),
        );
        // SAFETY: arguments in `reduce`'s order; partial holds outer*chunks*inner.
        unsafe {
            b.launch(
                kernel,
                (rows * chunks).min(1 << 20) as u32,
                BLOCK,
                &args![o, l, i, c, code, xp, pp],
            )?
        };
        (Some(partial), chunks)
    } else {
        (None, len)
    };
    let input = src.as_ref().unwrap_or(x);
    let out = CudaStorage::alloc(x.ordinal(), x.dtype(), rows)?;
    if rows > 0 {
        let chunk = len.max(1) as i64;
        let (o, l, i, xp, op_) = (
            outer as i64,
            len as i64,
            inner as i64,
            input.device_ptr(),
            out.device_ptr(),
        );
        // SAFETY: arguments in `reduce`'s order; out holds outer*inner.
        unsafe {
            b.launch(
                kernel,
                rows.min(1 << 20) as u32,
                BLOCK,
                &args![o, l, i, chunk, code, xp, op_],
            )?
        };
    }
    Ok(out)
}

/// Reduction over `axes` (sorted, distinct); `shape` is the result shape.
pub fn reduce(t: &Tensor, axes: &[usize], op: ReduceOp, shape: Shape) -> Result<Tensor> {
    let mut dims = t.dims().to_vec();
    let mut current: Option<CudaStorage> = None;
    // Fold each maximal run of consecutive axes in one launch, last run first.
    let mut k = axes.len();
    while k > 0 {
        let hi = axes[k - 1];
        let mut lo = hi;
        k -= 1;
        while k > 0 && axes[k - 1] + 1 == lo {
            lo -= 1;
            k -= 1;
        }
        let outer: usize = dims[..lo].iter().product();
        let len: usize = dims[lo..=hi].iter().product();
        let inner: usize = dims[hi + 1..].iter().product();
        let next = reduce_middle(current.as_ref().unwrap_or_else(|| buf(t)), outer, len, inner, op)?;
        dims[lo..=hi].iter_mut().for_each(|d| *d = 1);
        current = Some(next);
    }
    match current {
        Some(s) => Ok(wrap(s, shape)),
        None => Ok(t.reshape(shape)?), // no axes: nothing to fold
    }
}

/// Softmax (or log_softmax) along axis `a`.
pub fn softmax(t: &Tensor, a: usize, log: bool) -> Result<Tensor> {
    let x = buf(t);
    let out = CudaStorage::alloc(x.ordinal(), x.dtype(), x.len())?;
    let outer: usize = t.dims()[..a].iter().product();
    let len = t.dims()[a];
    let inner: usize = t.dims()[a + 1..].iter().product();
    let rows = outer * inner;
    if rows > 0 && len > 0 {
        let b = backend(x.ordinal())?;
        let (o, l, i, lg, xp, yp) = (
            outer as i64,
            len as i64,
            inner as i64,
            log as i32,
            x.device_ptr(),
            out.device_ptr(),
        );
        let kernel = pick(x.dtype(), "softmax_f32", "softmax_f64");
        // SAFETY: arguments in `softmax`'s order; out has x's length.
        unsafe { b.launch(kernel, rows.min(1 << 20) as u32, BLOCK, &args![o, l, i, lg, xp, yp])? };
    }
    Ok(wrap(out, t.shape().clone()))
}

// ----- matmul ----------------------------------------------------------------

/// `op(a) * op(b)` for 2-D `a`, `b` (shapes checked by the caller) with the
/// tiled GEMM; a transpose is a swap of strides, not a copy.
pub fn matmul_t(a: &Tensor, ta: bool, rhs: &Tensor, tb: bool) -> Result<Tensor> {
    let (ar, ac) = (a.dims()[0], a.dims()[1]);
    let (br, bc) = (rhs.dims()[0], rhs.dims()[1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    // Element (i, p) of op(A) lives at i * a_row + p * a_col.
    let (a_row, a_col) = if ta { (1, ac) } else { (ac, 1) };
    let (b_row, b_col) = if tb { (1, bc) } else { (bc, 1) };
    let out = CudaStorage::alloc(ordinal(a), a.dtype(), m * n)?;
    if m * n > 0 {
        gemm(buf(a), buf(rhs), &out, (m, n, k), (a_row, a_col), (b_row, b_col))?;
    }
    Ok(wrap(out, Shape::new([m, n])))
}

/// C = op(A) op(B) on raw buffers (see ptx/cuda/gemm.cu for the strides).
pub(crate) fn gemm(
    a: &CudaStorage,
    b_: &CudaStorage,
    c: &CudaStorage,
    (m, n, k): (usize, usize, usize),
    (a_row, a_col): (usize, usize),
    (b_row, b_col): (usize, usize),
) -> Result<()> {
    let b = backend(a.ordinal())?;
    let grid = (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1);
    if grid.1 > 65_535 {
        return Err(Error::invalid(
            "matmul",
            format!("{m} rows is more than the CUDA GEMM's grid takes (4M)"),
        ));
    }
    let (m, n, k) = (m as i64, n as i64, k as i64);
    let (ar, ac, br, bc) = (a_row as i64, a_col as i64, b_row as i64, b_col as i64);
    let (ap, bp, cp) = (a.device_ptr(), b_.device_ptr(), c.device_ptr());
    let kernel = pick(a.dtype(), "gemm_f32", "gemm_f64");
    // SAFETY: arguments in `gemm`'s order; c holds m * n elements and the
    // strides stay inside a and b for i < m, p < k, j < n.
    unsafe { b.launch_grid(kernel, grid, 256, &args![m, n, k, ap, ar, ac, bp, br, bc, cp]) }
}

// ----- indexing --------------------------------------------------------------

fn indices_buffer(ordinal: usize, indices: &[usize]) -> Result<RawBuffer> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    RawBuffer::from_slice(ordinal, &v)
}

/// Rows `indices` of `t` (bounds checked by the caller).
pub fn index_select(t: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let row_len: usize = t.dims()[1..].iter().product();
    let mut dims = t.dims().to_vec();
    dims[0] = indices.len();
    let shape = Shape::new(dims);
    let out = CudaStorage::alloc(ordinal(t), t.dtype(), shape.numel())?;
    if shape.numel() > 0 {
        let b = backend(ordinal(t))?;
        let idx = indices_buffer(ordinal(t), indices)?;
        let (rows, rl, ip, xp, op_) = (
            indices.len() as i64,
            row_len as i64,
            idx.device_ptr(),
            buf(t).device_ptr(),
            out.device_ptr(),
        );
        launch(
            &b,
            pick(t.dtype(), "index_select_f32", "index_select_f64"),
            shape.numel(),
            &args![rows, rl, ip, xp, op_],
        )?;
        // `idx` goes back to the cache in stream order: no need to wait.
    }
    Ok(wrap(out, shape))
}

/// Row k of `t` added into row `indices[k]` of a `rows`-row result, in a
/// fixed order per destination row (deterministic, no atomics).
pub fn index_add(t: &Tensor, indices: &[usize], rows: usize) -> Result<Tensor> {
    let row_len: usize = t.dims()[1..].iter().product();
    let mut dims = t.dims().to_vec();
    dims[0] = rows;
    let shape = Shape::new(dims);
    // CSR on the host: for each destination row, its source rows in order.
    let mut starts = vec![0usize; rows + 1];
    for &i in indices {
        starts[i + 1] += 1;
    }
    for r in 0..rows {
        starts[r + 1] += starts[r];
    }
    let mut fill = starts.clone();
    let mut src = vec![0usize; indices.len()];
    for (k, &i) in indices.iter().enumerate() {
        src[fill[i]] = k;
        fill[i] += 1;
    }
    let out = CudaStorage::alloc(ordinal(t), t.dtype(), shape.numel())?;
    if shape.numel() > 0 {
        let b = backend(ordinal(t))?;
        let (sb, srcb) = (indices_buffer(ordinal(t), &starts)?, indices_buffer(ordinal(t), &src)?);
        let (r, rl, sp, srp, xp, op_) = (
            rows as i64,
            row_len as i64,
            sb.device_ptr(),
            srcb.device_ptr(),
            buf(t).device_ptr(),
            out.device_ptr(),
        );
        launch(
            &b,
            pick(t.dtype(), "index_add_f32", "index_add_f64"),
            shape.numel(),
            &args![r, rl, sp, srp, xp, op_],
        )?;
    }
    Ok(wrap(out, shape))
}

/// `out[i] = t[i, labels[i]]` for a matrix `t`.
pub fn gather(t: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let classes = t.dims()[1];
    let out = CudaStorage::alloc(ordinal(t), t.dtype(), labels.len())?;
    if !labels.is_empty() {
        let b = backend(ordinal(t))?;
        let lb = indices_buffer(ordinal(t), labels)?;
        let (n, c, lp, xp, op_) = (
            labels.len() as i64,
            classes as i64,
            lb.device_ptr(),
            buf(t).device_ptr(),
            out.device_ptr(),
        );
        launch(
            &b,
            pick(t.dtype(), "gather_f32", "gather_f64"),
            labels.len(),
            &args![n, c, lp, xp, op_],
        )?;
    }
    Ok(wrap(out, Shape::new([labels.len()])))
}

/// `out[i, labels[i]] = t[i]`, zeros elsewhere.
pub fn scatter(t: &Tensor, labels: &[usize], classes: usize) -> Result<Tensor> {
    let shape = Shape::new([labels.len(), classes]);
    let out = CudaStorage::alloc(ordinal(t), t.dtype(), shape.numel())?;
    if shape.numel() > 0 {
        let b = backend(ordinal(t))?;
        let lb = indices_buffer(ordinal(t), labels)?;
        let (n, c, lp, vp, op_) = (
            labels.len() as i64,
            classes as i64,
            lb.device_ptr(),
            buf(t).device_ptr(),
            out.device_ptr(),
        );
        launch(
            &b,
            pick(t.dtype(), "scatter_f32", "scatter_f64"),
            shape.numel(),
            &args![n, c, lp, vp, op_],
        )?;
    }
    Ok(wrap(out, shape))
}

/// The sizes of one unfold/fold; mirrors `ConvGeometry` in ptx/cuda/conv.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvGeometry {
    n: i64,
    c: i64,
    h: i64,
    w: i64,
    oh: i64,
    ow: i64,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    ph: i64,
    pw: i64,
    dh: i64,
    dw: i64,
}

impl ConvGeometry {
    fn new(image: [usize; 4], window: &crate::Window2d, oh: usize, ow: usize) -> ConvGeometry {
        let [n, c, h, w] = image.map(|d| d as i64);
        let i = |v: usize| v as i64;
        ConvGeometry {
            n,
            c,
            h,
            w,
            oh: i(oh),
            ow: i(ow),
            kh: i(window.kernel.0),
            kw: i(window.kernel.1),
            sh: i(window.stride.0),
            sw: i(window.stride.1),
            ph: i(window.padding.0),
            pw: i(window.padding.1),
            dh: i(window.dilation.0),
            dw: i(window.dilation.1),
        }
    }
}

/// Launches `kernel` (`unfold_*` or `fold_*`) writing `len` elements of a
/// fresh `out_shape` tensor from `src`.
fn conv_launch(src: &Tensor, geometry: ConvGeometry, kernel: &'static str, out_shape: Shape) -> Result<Tensor> {
    let len = out_shape.numel();
    let out = CudaStorage::alloc(ordinal(src), src.dtype(), len)?;
    if len > 0 {
        let b = backend(ordinal(src))?;
        let (sp, op_) = (buf(src).device_ptr(), out.device_ptr());
        launch(&b, kernel, len, &args![geometry, sp, op_])?;
    }
    Ok(wrap(out, out_shape))
}

/// im2col of a `[n, c, h, w]` image batch into `[n, c * taps, oh * ow]`
/// (shapes checked by the caller).
pub fn unfold(t: &Tensor, window: &crate::Window2d, oh: usize, ow: usize) -> Result<Tensor> {
    let &[n, c, h, w] = t.dims() else {
        unreachable!("unfold checks the rank")
    };
    let geometry = ConvGeometry::new([n, c, h, w], window, oh, ow);
    let shape = Shape::new([n, c * window.taps(), oh * ow]);
    conv_launch(t, geometry, pick(t.dtype(), "unfold_f32", "unfold_f64"), shape)
}

/// col2im of `[n, c * taps, oh * ow]` columns into `[n, c, height, width]`
/// (shapes checked by the caller).
pub fn fold(t: &Tensor, window: &crate::Window2d, oh: usize, ow: usize, height: usize, width: usize) -> Result<Tensor> {
    let (n, c) = (t.dims()[0], t.dims()[1] / window.taps());
    let geometry = ConvGeometry::new([n, c, height, width], window, oh, ow);
    conv_launch(
        t,
        geometry,
        pick(t.dtype(), "fold_f32", "fold_f64"),
        Shape::new([n, c, height, width]),
    )
}
