//! Elementwise ops: unary maps, binary ops with NumPy broadcasting,
//! comparisons, and `where`.

use super::{for_each_strided, layout, Layout, PARALLEL_THRESHOLD};
use crate::storage::CpuSlice;
use crate::{alloc, with_dtype, Element, Result, Shape, Tensor};
use num_traits::Zero;
use rayon::prelude::*;

/// The `c` in GELU's tanh approximation: sqrt(2/pi) (Hendrycks and Gimpel, 2016).
pub const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient in GELU's tanh approximation.
pub const GELU_A: f64 = 0.044_715;

/// A function applied to each element independently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `e^x`
    Exp,
    /// natural log
    Log,
    /// square root
    Sqrt,
    /// `1/sqrt(x)`
    Rsqrt,
    /// `x^2`
    Square,
    /// `1/x`
    Recip,
    /// `max(x, 0)`
    Relu,
    /// `x` if `x > 0` else `slope * x`
    LeakyRelu(f64),
    /// `1/(1+e^-x)`
    Sigmoid,
    /// hyperbolic tangent
    Tanh,
    /// GELU, tanh form: `0.5 x (1 + tanh(c (x + a x^3)))`
    Gelu,
    /// `x * sigmoid(x)`
    Silu,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// -1, 0 or 1 (NaN stays NaN)
    Sign,
    /// `min(max(x, lo), hi)`; NaN stays NaN
    Clamp(f64, f64),
    /// `x + c`
    AddScalar(f64),
    /// `x * c`
    MulScalar(f64),
    /// `x ^ p`
    PowScalar(f64),
    /// 1 if `x > c` else 0
    GtScalar(f64),
    /// 1 if `x < c` else 0
    LtScalar(f64),
}

impl UnaryOp {
    /// Applies the op to one value.
    #[inline(always)]
    pub fn apply<T: Element>(self, x: T) -> T {
        let f = |v: f64| T::from_f64(v);
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => x.sqrt().recip(),
            UnaryOp::Square => x * x,
            UnaryOp::Recip => x.recip(),
            // NaN propagates, as in PyTorch: a diverged run must not be masked.
            UnaryOp::Relu => {
                if x > T::zero() || x.is_nan() {
                    x
                } else {
                    T::zero()
                }
            }
            UnaryOp::LeakyRelu(s) => {
                if x > T::zero() || x.is_nan() {
                    x
                } else {
                    x * f(s)
                }
            }
            UnaryOp::Sigmoid => T::one() / (T::one() + (-x).exp()),
            UnaryOp::Tanh => x.engine_tanh(),
            UnaryOp::Gelu => {
                let inner = f(GELU_C) * (x + f(GELU_A) * x * x * x);
                f(0.5) * x * (T::one() + inner.engine_tanh())
            }
            UnaryOp::Silu => x / (T::one() + (-x).exp()),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Sign => {
                if x > T::zero() {
                    T::one()
                } else if x < T::zero() {
                    -T::one()
                } else {
                    x // keeps 0, -0 and NaN
                }
            }
            // NaN stays NaN: a clamp must not turn a diverged value into an
            // ordinary one (`f64::max` alone would return `lo`).
            UnaryOp::Clamp(lo, hi) => {
                if x.is_nan() {
                    x
                } else {
                    x.max(f(lo)).min(f(hi))
                }
            }
            UnaryOp::AddScalar(c) => x + f(c),
            UnaryOp::MulScalar(c) => x * f(c),
            UnaryOp::PowScalar(p) => x.powf(f(p)),
            UnaryOp::GtScalar(c) => bool_to(x > f(c)),
            UnaryOp::LtScalar(c) => bool_to(x < f(c)),
        }
    }
}

/// A function of two elements, applied with broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
    /// 1 if `a == b` else 0
    Eq,
    /// 1 if `a != b` else 0
    Ne,
    /// 1 if `a < b` else 0
    Lt,
    /// 1 if `a <= b` else 0
    Le,
    /// 1 if `a > b` else 0
    Gt,
    /// 1 if `a >= b` else 0
    Ge,
}

impl BinaryOp {
    /// The op's name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
        }
    }

    /// Applies the op to one pair.
    #[inline(always)]
    pub fn apply<T: Element>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Maximum => {
                if a >= b || a.is_nan() {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Minimum => {
                if a <= b || a.is_nan() {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Eq => bool_to(a == b),
            BinaryOp::Ne => bool_to(a != b),
            BinaryOp::Lt => bool_to(a < b),
            BinaryOp::Le => bool_to(a <= b),
            BinaryOp::Gt => bool_to(a > b),
            BinaryOp::Ge => bool_to(a >= b),
        }
    }
}

#[inline]
fn bool_to<T: Element>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}

/// Maps `f` over a slice, in parallel chunks when it is large.
pub(crate) fn map_slice<T: Element>(src: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    if src.len() >= PARALLEL_THRESHOLD {
        let mut out = vec![T::zero(); src.len()];
        out.par_chunks_mut(PARALLEL_THRESHOLD / 4)
            .zip(src.par_chunks(PARALLEL_THRESHOLD / 4))
            .for_each(|(o, s)| o.iter_mut().zip(s).for_each(|(o, &x)| *o = f(x)));
        out
    } else {
        src.iter().map(|&x| f(x)).collect()
    }
}

/// `out[i] = f(x[i], y[i])` over equal-length slices, in parallel when large.
fn zip_map<T: Element, F: Fn(T, T) -> T + Sync>(x: &[T], y: &[T], f: &F) -> Vec<T> {
    if x.len() >= PARALLEL_THRESHOLD {
        let mut out = vec![T::zero(); x.len()];
        let chunk = PARALLEL_THRESHOLD / 4;
        out.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk).zip(y.par_chunks(chunk)))
            .for_each(|(o, (xs, ys))| {
                for ((o, &p), &q) in o.iter_mut().zip(xs).zip(ys) {
                    *o = f(p, q);
                }
            });
        return out;
    }
    x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
}

/// A broadcasting binary kernel for one (inlined) function `f`. An output
/// larger than both operands (`[n, 1]` against `[1, m]`) is allocated
/// fallibly; one the size of an operand is allocated as that operand was.
fn binary_with<T: CpuSlice, F: Fn(T, T) -> T + Sync>(
    a: &Tensor,
    b: &Tensor,
    out_shape: &Shape,
    op: &'static str,
    f: F,
) -> Result<Vec<T>> {
    let (x, y) = (a.data::<T>(), b.data::<T>());
    let f = &f;
    let n = out_shape.numel(); // checked by Shape::broadcast
    Ok(match (layout(a.shape(), out_shape), layout(b.shape(), out_shape)) {
        (Layout::Full, Layout::Full) => zip_map(x, y, f),
        (Layout::Full, Layout::Scalar) => map_slice(x, |p| f(p, y[0])),
        (Layout::Scalar, Layout::Full) => map_slice(y, |q| f(x[0], q)),
        (Layout::Full, Layout::Tail(len)) => by_rows(op, n, x.chunks(len), |out, row| {
            out.extend(row.iter().zip(y).map(|(&p, &q)| f(p, q)))
        })?,
        (Layout::Tail(len), Layout::Full) => by_rows(op, n, y.chunks(len), |out, row| {
            out.extend(x.iter().zip(row).map(|(&p, &q)| f(p, q)))
        })?,
        (Layout::Full, Layout::Spread(inner)) => by_rows(op, n, x.chunks(inner).zip(y), |out, (row, &q)| {
            out.extend(row.iter().map(|&p| f(p, q)))
        })?,
        (Layout::Spread(inner), Layout::Full) => by_rows(op, n, y.chunks(inner).zip(x), |out, (row, &p)| {
            out.extend(row.iter().map(|&q| f(p, q)))
        })?,
        _ if n == 0 => Vec::new(),
        _ => {
            let sa = a.shape().broadcast_strides(out_shape);
            let sb = b.shape().broadcast_strides(out_shape);
            let groups = broadcast_groups(out_shape.dims(), &sa, &sb);
            let mut out = alloc::with_capacity(op, n)?;
            let Some((&(run, [a_runs, b_runs]), outer)) = groups.split_last() else {
                out.push(f(x[0], y[0])); // every axis has length 1
                return Ok(out);
            };
            let outer_dims: Vec<usize> = outer.iter().map(|&(len, _)| len).collect();
            let [outer_a, outer_b] = group_strides(&groups);
            for_each_strided(&outer_dims, [&outer_a, &outer_b], |_, [i, j]| {
                let (xs, ys) = (
                    &x[i..i + if a_runs { run } else { 1 }],
                    &y[j..j + if b_runs { run } else { 1 }],
                );
                match (a_runs, b_runs) {
                    (true, true) => out.extend(xs.iter().zip(ys).map(|(&p, &q)| f(p, q))),
                    (true, false) => out.extend(xs.iter().map(|&p| f(p, ys[0]))),
                    (false, true) => out.extend(ys.iter().map(|&q| f(xs[0], q))),
                    (false, false) => out.extend(std::iter::repeat_n(f(xs[0], ys[0]), run)),
                }
            });
            out
        }
    })
}

/// The output axes of a broadcast with size-1 axes dropped and neighbours
/// merged where each operand either runs along both (its axis is full) or
/// is constant along both (broadcast): `(length, [a runs, b runs])` per
/// group. Both operands are contiguous, so merged full axes step by one.
fn broadcast_groups(dims: &[usize], sa: &[usize], sb: &[usize]) -> Vec<(usize, [bool; 2])> {
    let mut groups: Vec<(usize, [bool; 2])> = Vec::new();
    for (d, &len) in dims.iter().enumerate().filter(|&(_, &len)| len != 1) {
        let runs = [sa[d] != 0, sb[d] != 0];
        match groups.last_mut() {
            Some((merged, r)) if *r == runs => *merged *= len,
            _ => groups.push((len, runs)),
        }
    }
    groups
}

/// Each operand's strides over all groups but the last: row-major over the
/// groups it runs along, 0 where it is broadcast.
fn group_strides(groups: &[(usize, [bool; 2])]) -> [Vec<usize>; 2] {
    std::array::from_fn(|operand| {
        let mut strides = vec![0; groups.len()];
        let mut step = 1;
        for (g, &(len, runs)) in groups.iter().enumerate().rev() {
            if runs[operand] {
                strides[g] = step;
                step *= len;
            }
        }
        strides.truncate(groups.len() - 1);
        strides
    })
}

/// The `n` outputs of a broadcast written row by row: `fill(out, row)`
/// appends each row's values to one buffer allocated up front. Each row
/// is a slice iterator of known length, so the loop is a plain (and
/// vectorisable) one rather than a growing collect.
fn by_rows<T, R>(
    op: &'static str,
    n: usize,
    rows: impl Iterator<Item = R>,
    fill: impl Fn(&mut Vec<T>, R),
) -> Result<Vec<T>> {
    let mut out = alloc::with_capacity(op, n)?;
    for row in rows {
        fill(&mut out, row);
    }
    debug_assert_eq!(out.len(), n, "{op}: the rows gave a different count");
    Ok(out)
}

/// Dispatches on the op once, outside the loop, so each kernel is a tight
/// loop over one known function.
fn binary_kernel<T: CpuSlice>(a: &Tensor, b: &Tensor, out_shape: &Shape, op: BinaryOp) -> Result<Vec<T>> {
    macro_rules! specialise {
        ($($v:ident),*) => {
            match op {
                $(BinaryOp::$v => binary_with(a, b, out_shape, op.name(), |p: T, q: T| BinaryOp::$v.apply(p, q)),)*
            }
        };
    }
    specialise!(Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge)
}

/// Applies a unary op with the dispatch hoisted out of the loop.
fn unary_kernel<T: CpuSlice>(x: &[T], op: UnaryOp) -> Vec<T> {
    macro_rules! specialise {
        (plain: $($v:ident),*; with: $($w:ident($($arg:ident),*)),*) => {
            match op {
                $(UnaryOp::$v => map_slice(x, |p| UnaryOp::$v.apply(p)),)*
                $(UnaryOp::$w($($arg),*) => map_slice(x, move |p| UnaryOp::$w($($arg),*).apply(p)),)*
            }
        };
    }
    specialise!(
        plain: Neg, Abs, Exp, Log, Sqrt, Rsqrt, Square, Recip, Relu, Sigmoid, Tanh, Gelu, Silu, Sin, Cos, Sign;
        with: LeakyRelu(s), Clamp(lo, hi), AddScalar(c), MulScalar(c), PowScalar(p), GtScalar(c), LtScalar(c)
    )
}

/// `dst += src`, element by element. Cut into two fixed halves through
/// [`super::join`] when the slices are long and a second thread is awake
/// ([`super::pair_is_awake`]): applying an optimizer's updates to a model
/// is then as parallel as computing them.
pub(crate) fn add_in_place<T: Element>(dst: &mut [T], src: &[T]) {
    debug_assert_eq!(dst.len(), src.len());
    if dst.len() >= super::PAIR_SPLIT && super::pair_is_awake() {
        let half = dst.len() / 2;
        let (d0, d1) = dst.split_at_mut(half);
        let (s0, s1) = src.split_at(half);
        super::join(|| add_serial(d0, s0), || add_serial(d1, s1));
    } else {
        add_serial(dst, src);
    }
}

fn add_serial<T: Element>(dst: &mut [T], src: &[T]) {
    for (a, &b) in dst.iter_mut().zip(src) {
        *a = *a + b;
    }
}

/// Applies `f` to every element in place, in parallel chunks when large
/// (the same chunks and the same function as [`map_slice`], so the same bits).
fn map_in_place<T: Element>(x: &mut [T], f: impl Fn(T) -> T + Sync) {
    if x.len() >= PARALLEL_THRESHOLD {
        x.par_chunks_mut(PARALLEL_THRESHOLD / 4)
            .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
    } else {
        x.iter_mut().for_each(|v| *v = f(*v));
    }
}

/// [`unary_kernel`] writing over its input.
fn unary_in_place_kernel<T: CpuSlice>(x: &mut [T], op: UnaryOp) {
    macro_rules! specialise {
        (plain: $($v:ident),*; with: $($w:ident($($arg:ident),*)),*) => {
            match op {
                $(UnaryOp::$v => map_in_place(x, |p| UnaryOp::$v.apply(p)),)*
                $(UnaryOp::$w($($arg),*) => map_in_place(x, move |p| UnaryOp::$w($($arg),*).apply(p)),)*
            }
        };
    }
    specialise!(
        plain: Neg, Abs, Exp, Log, Sqrt, Rsqrt, Square, Recip, Relu, Sigmoid, Tanh, Gelu, Silu, Sin, Cos, Sign;
        with: LeakyRelu(s), Clamp(lo, hi), AddScalar(c), MulScalar(c), PowScalar(p), GtScalar(c), LtScalar(c)
    )
}

impl Tensor {
    /// Applies a [`UnaryOp`] to every element.
    /// Fails only on a GPU (out of memory, a failed launch); on the CPU the
    /// result is always `Ok`.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, op);
        }
        Ok(with_dtype!(self.dtype(), T => {
            let out = unary_kernel(self.data::<T>(), op);
            Tensor::from_typed(out, self.shape().clone())
        }))
    }

    /// Applies a [`UnaryOp`] to every element in place, giving the same
    /// values as [`Tensor::unary`] without allocating (unless the buffer is
    /// shared, when it is copied first, as in [`Tensor::update_in_place`]).
    pub fn unary_in_place(&mut self, op: UnaryOp) -> Result<()> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_in_place(self.unique_storage("unary_in_place")?, op);
        }
        with_dtype!(self.dtype(), T => unary_in_place_kernel(self.as_mut_slice::<T>()?, op));
        Ok(())
    }

    /// Applies a [`BinaryOp`] with NumPy broadcasting.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.check_same_kind(rhs, op.name())?;
        let shape = self.shape().broadcast(rhs.shape(), op.name())?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::binary(self, rhs, op, &shape);
        }
        Ok(with_dtype!(self.dtype(), T => {
            let out = binary_kernel::<T>(self, rhs, &shape, op)?;
            Tensor::from_typed(out, shape)
        }))
    }

    /// `cond ? on_true : on_false` elementwise, where `cond` is non-zero;
    /// all three broadcast together. No gradient flows through `cond`.
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        cond.check_same_kind(on_true, "where")?;
        on_true.check_same_kind(on_false, "where")?;
        let shape = cond
            .shape()
            .broadcast(on_true.shape(), "where")?
            .broadcast(on_false.shape(), "where")?;
        #[cfg(feature = "cuda")]
        if cond.is_cuda() {
            return crate::cuda::ops::where_cond(cond, on_true, on_false, &shape);
        }
        let sc = cond.shape().broadcast_strides(&shape);
        let st = on_true.shape().broadcast_strides(&shape);
        let sf = on_false.shape().broadcast_strides(&shape);
        Ok(with_dtype!(cond.dtype(), T => {
            let (c, t, f) = (cond.data::<T>(), on_true.data::<T>(), on_false.data::<T>());
            let mut out = alloc::filled("where", shape.numel(), T::zero())?;
            for_each_strided(shape.dims(), [&sc, &st, &sf], |i, [oc, ot, of]| {
                out[i] = if c[oc] != T::zero() { t[ot] } else { f[of] };
            });
            Tensor::from_typed(out, shape)
        }))
    }
}

/// Generates a named method for each unary op.
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $($(#[$doc])* pub fn $name(&self) -> Result<Tensor> { self.unary($op) })*
        }
    };
}

unary_methods! {
    /// `-x`
    neg => UnaryOp::Neg;
    /// `|x|`
    abs => UnaryOp::Abs;
    /// `e^x`
    exp => UnaryOp::Exp;
    /// Natural logarithm.
    log => UnaryOp::Log;
    /// Square root.
    sqrt => UnaryOp::Sqrt;
    /// `1/sqrt(x)`
    rsqrt => UnaryOp::Rsqrt;
    /// `x^2`
    square => UnaryOp::Square;
    /// `1/x`
    recip => UnaryOp::Recip;
    /// `max(x, 0)`
    relu => UnaryOp::Relu;
    /// Logistic sigmoid.
    sigmoid => UnaryOp::Sigmoid;
    /// Hyperbolic tangent.
    tanh => UnaryOp::Tanh;
    /// GELU in its tanh form.
    gelu => UnaryOp::Gelu;
    /// SiLU (swish): `x * sigmoid(x)`.
    silu => UnaryOp::Silu;
    /// Sine.
    sin => UnaryOp::Sin;
    /// Cosine.
    cos => UnaryOp::Cos;
    /// -1, 0 or 1.
    sign => UnaryOp::Sign;
}

/// Generates a named method for each binary op.
macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $($(#[$doc])* pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> { self.binary(rhs, $op) })*
        }
    };
}

binary_methods! {
    /// `a + b` with broadcasting.
    add => BinaryOp::Add;
    /// `a - b` with broadcasting.
    sub => BinaryOp::Sub;
    /// `a * b` with broadcasting.
    mul => BinaryOp::Mul;
    /// `a / b` with broadcasting.
    div => BinaryOp::Div;
    /// `a ^ b` with broadcasting.
    pow => BinaryOp::Pow;
    /// Elementwise maximum with broadcasting.
    maximum => BinaryOp::Maximum;
    /// Elementwise minimum with broadcasting.
    minimum => BinaryOp::Minimum;
    /// 1 where `a == b`, else 0.
    eq => BinaryOp::Eq;
    /// 1 where `a != b`, else 0.
    ne => BinaryOp::Ne;
    /// 1 where `a < b`, else 0.
    lt => BinaryOp::Lt;
    /// 1 where `a <= b`, else 0.
    le => BinaryOp::Le;
    /// 1 where `a > b`, else 0.
    gt => BinaryOp::Gt;
    /// 1 where `a >= b`, else 0.
    ge => BinaryOp::Ge;
}

impl Tensor {
    /// `x + c`
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(c))
    }
    /// `x - c`
    pub fn sub_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(-c))
    }
    /// `x * c`
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(c))
    }
    /// `x / c`
    pub fn div_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(1.0 / c))
    }
    /// `x ^ p`
    pub fn pow_scalar(&self, p: f64) -> Result<Tensor> {
        self.unary(UnaryOp::PowScalar(p))
    }
    /// `max(x, c)`; NaN stays NaN (as in [`Tensor::maximum`])
    pub fn maximum_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp(c, f64::INFINITY))
    }
    /// `min(x, c)`; NaN stays NaN (as in [`Tensor::minimum`])
    pub fn minimum_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp(f64::NEG_INFINITY, c))
    }
    /// Leaky ReLU with the given negative slope.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }
    /// Clamps into `[lo, hi]` (NaN stays NaN, so a clamp never hides a
    /// diverged value); fails if `lo > hi` or either is NaN.
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Tensor> {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(crate::Error::invalid(
                "clamp",
                format!("need lo <= hi, got [{lo}, {hi}]"),
            ));
        }
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    /// 1 where `x > c`, else 0.
    pub fn gt_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::GtScalar(c))
    }
    /// 1 where `x < c`, else 0.
    pub fn lt_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LtScalar(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    /// `add_assign` on a tensor long enough to be cut in two, inside a
    /// two-thread region (where the pair helper takes a half, unless another
    /// test holds it), gives every sum, including the elements around the cut.
    #[test]
    fn add_assign_split_between_threads_adds_every_element() {
        let n = crate::ops::PAIR_SPLIT * 2 + 3;
        let a: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| 0.5 - (i % 7) as f64).collect();
        let sum = crate::ops::with_threads(2, || {
            crate::ops::in_pool(|| {
                let mut t = Tensor::from_vec(a.clone(), [n]).unwrap();
                t.add_assign(&Tensor::from_vec(b.clone(), [n]).unwrap()).unwrap();
                t.to_vec::<f64>().unwrap()
            })
        });
        let expected: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(sum, expected);
    }

    #[test]
    fn broadcast_add_matches_hand_computation() {
        let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
        let b = Tensor::from_vec(vec![10.0f64, 20.0, 30.0], [3]).unwrap();
        let c = Tensor::from_vec(vec![100.0f64, 200.0], [2, 1]).unwrap();
        assert_eq!(
            a.add(&b).unwrap().to_vec::<f64>().unwrap(),
            vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        assert_eq!(
            a.add(&c).unwrap().to_vec::<f64>().unwrap(),
            vec![101.0, 102.0, 103.0, 204.0, 205.0, 206.0]
        );
        let outer = b.reshape([3, 1]).unwrap().mul(&c.reshape([1, 2]).unwrap()).unwrap();
        assert_eq!(outer.dims(), &[3, 2]);
        assert_eq!(
            outer.to_vec::<f64>().unwrap(),
            vec![1000.0, 2000.0, 2000.0, 4000.0, 3000.0, 6000.0]
        );
    }

    #[test]
    fn mismatches_are_errors() {
        let a = Tensor::zeros([2, 3], DType::F32).unwrap();
        assert!(a.add(&Tensor::zeros([4], DType::F32).unwrap()).is_err());
        assert!(a.add(&Tensor::zeros([2, 3], DType::F64).unwrap()).is_err());
        assert!(a.clamp(1.0, 0.0).is_err());
    }

    #[test]
    fn large_parallel_path_equals_serial_definition() {
        let n = PARALLEL_THRESHOLD * 3 + 7;
        let v: Vec<f32> = (0..n).map(|i| (i as f32) * 0.001 - 3.0).collect();
        let t = Tensor::from_vec(v.clone(), [n]).unwrap();
        let s = t.sigmoid().unwrap().to_vec::<f32>().unwrap();
        for (i, &x) in v.iter().enumerate() {
            assert_eq!(s[i], 1.0 / (1.0 + (-x).exp()));
        }
        let sum = t.add(&t).unwrap().to_vec::<f32>().unwrap();
        assert!(sum.iter().zip(&v).all(|(s, x)| *s == x + x));
    }

    #[test]
    fn every_broadcast_layout_matches_the_strided_definition() {
        let mut rng = crate::Rng::new(9);
        let cases: [(&[usize], &[usize]); 10] = [
            (&[2, 0, 3], &[1, 1, 3]),
            (&[2, 3, 1, 5], &[1, 3, 4, 1]),
            (&[1, 1], &[1, 1, 1]),
            (&[3, 4], &[4]),
            (&[3, 4], &[3, 1]),
            (&[2, 3, 4], &[3, 4]),
            (&[2, 3, 4], &[2, 1, 1]),
            (&[2, 3, 4], &[1, 3, 1]),
            (&[4], &[3, 1]),
            (&[1], &[2, 2]),
        ];
        for (sa, sb) in cases {
            for (sa, sb) in [(sa, sb), (sb, sa)] {
                let a = Tensor::rand_normal(sa.to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
                let b = Tensor::rand_normal(sb.to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
                let out = a.shape().broadcast(b.shape(), "t").unwrap();
                let got = a.sub(&b).unwrap();
                let (ea, eb) = (
                    a.broadcast_to(out.clone()).unwrap(),
                    b.broadcast_to(out.clone()).unwrap(),
                );
                let want: Vec<f64> = ea
                    .to_vec::<f64>()
                    .unwrap()
                    .iter()
                    .zip(eb.to_vec::<f64>().unwrap())
                    .map(|(p, q)| p - q)
                    .collect();
                assert_eq!(got.to_vec::<f64>().unwrap(), want, "{sa:?} - {sb:?}");
            }
        }
    }

    #[test]
    fn unary_in_place_equals_unary_and_leaves_clones_alone() {
        let mut rng = crate::Rng::new(4);
        for n in [5, PARALLEL_THRESHOLD + 3] {
            let t = Tensor::rand_normal([n], 0.0, 2.0, DType::F32, &mut rng).unwrap();
            for op in [
                UnaryOp::Clamp(-1.0, 1.0),
                UnaryOp::MulScalar(-1e-3),
                UnaryOp::Sqrt,
                UnaryOp::Relu,
            ] {
                let mut u = t.clone();
                u.unary_in_place(op).unwrap();
                let bits = |x: &Tensor| {
                    x.to_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&u), bits(&t.unary(op).unwrap()), "{op:?}");
                assert!(!u.same_storage(&t), "a shared buffer must be copied, not written");
            }
        }
    }

    #[test]
    fn relu_propagates_nan() {
        let t = Tensor::from_vec(vec![f32::NAN, -1.0, 2.0], [3]).unwrap();
        let r = t.relu().unwrap().to_vec::<f32>().unwrap();
        assert!(r[0].is_nan() && r[1] == 0.0 && r[2] == 2.0);
        assert!(t.leaky_relu(0.1).unwrap().to_vec::<f32>().unwrap()[0].is_nan());
    }

    #[test]
    fn where_selects_by_mask() {
        let c = Tensor::from_vec(vec![1.0f64, 0.0, 1.0], [3]).unwrap();
        let t = Tensor::full([3], 5.0, DType::F64).unwrap();
        let f = Tensor::full([2, 1], -1.0, DType::F64).unwrap();
        let w = Tensor::where_cond(&c, &t, &f).unwrap();
        assert_eq!(w.dims(), &[2, 3]);
        assert_eq!(w.to_vec::<f64>().unwrap(), vec![5.0, -1.0, 5.0, 5.0, -1.0, 5.0]);
    }
}
