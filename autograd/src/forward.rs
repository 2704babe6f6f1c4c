//! The differentiable ops on [`Var`]: each computes its value with the engine
//! and records an [`Op`] so that `backward.rs` can differentiate it.

use crate::op::{Op, OpKind};
use crate::Var;
use ferrograd_engine::{BinaryOp, DType, Result, Shape, Tensor, UnaryOp};

/// The engine's unary op for a parameterless unary kind.
fn engine_unary(kind: OpKind) -> UnaryOp {
    match kind {
        OpKind::Neg => UnaryOp::Neg,
        OpKind::Abs => UnaryOp::Abs,
        OpKind::Exp => UnaryOp::Exp,
        OpKind::Log => UnaryOp::Log,
        OpKind::Sqrt => UnaryOp::Sqrt,
        OpKind::Rsqrt => UnaryOp::Rsqrt,
        OpKind::Square => UnaryOp::Square,
        OpKind::Recip => UnaryOp::Recip,
        OpKind::Relu => UnaryOp::Relu,
        OpKind::Sigmoid => UnaryOp::Sigmoid,
        OpKind::Tanh => UnaryOp::Tanh,
        OpKind::Gelu => UnaryOp::Gelu,
        OpKind::Silu => UnaryOp::Silu,
        OpKind::Sin => UnaryOp::Sin,
        OpKind::Cos => UnaryOp::Cos,
        other => unreachable!("{} is not a parameterless unary op", other.name()),
    }
}

/// The engine's binary op for a binary kind.
fn engine_binary(kind: OpKind) -> BinaryOp {
    match kind {
        OpKind::Add => BinaryOp::Add,
        OpKind::Sub => BinaryOp::Sub,
        OpKind::Mul => BinaryOp::Mul,
        OpKind::Div => BinaryOp::Div,
        OpKind::Pow => BinaryOp::Pow,
        OpKind::Maximum => BinaryOp::Maximum,
        OpKind::Minimum => BinaryOp::Minimum,
        other => unreachable!("{} is not a binary op", other.name()),
    }
}

impl Var {
    fn unary_kind(&self, kind: OpKind) -> Result<Var> {
        Var::from_op(
            self.value().unary(engine_unary(kind))?,
            Op::Unary(kind),
            vec![self.clone()],
        )
    }

    fn binary_kind(&self, rhs: &Var, kind: OpKind) -> Result<Var> {
        let value = self.value().binary(rhs.value(), engine_binary(kind))?;
        Var::from_op(value, Op::Binary(kind), vec![self.clone(), rhs.clone()])
    }
}

macro_rules! unary_vars {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {
        impl Var {
            $($(#[$doc])* pub fn $name(&self) -> Result<Var> { self.unary_kind(OpKind::$kind) })*
        }
    };
}

unary_vars! {
    /// `-x`
    neg => Neg;
    /// `|x|` (gradient `sign(x)`, 0 at 0)
    abs => Abs;
    /// `e^x`
    exp => Exp;
    /// natural log (domain x > 0)
    log => Log;
    /// square root (domain x > 0)
    sqrt => Sqrt;
    /// `1/sqrt(x)` (domain x > 0)
    rsqrt => Rsqrt;
    /// `x^2`
    square => Square;
    /// `1/x`
    recip => Recip;
    /// `max(x, 0)`
    relu => Relu;
    /// logistic sigmoid
    sigmoid => Sigmoid;
    /// hyperbolic tangent
    tanh => Tanh;
    /// GELU, tanh form
    gelu => Gelu;
    /// SiLU (swish)
    silu => Silu;
    /// sine
    sin => Sin;
    /// cosine
    cos => Cos;
}

macro_rules! binary_vars {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {
        impl Var {
            $($(#[$doc])* pub fn $name(&self, rhs: &Var) -> Result<Var> { self.binary_kind(rhs, OpKind::$kind) })*
        }
    };
}

binary_vars! {
    /// `a + b`, broadcasting.
    add => Add;
    /// `a - b`, broadcasting.
    sub => Sub;
    /// `a * b`, broadcasting.
    mul => Mul;
    /// `a / b`, broadcasting.
    div => Div;
    /// `a ^ b`, broadcasting (domain a > 0 for the gradient in b).
    pow => Pow;
    /// elementwise max, broadcasting (the gradient goes to the larger side).
    maximum => Maximum;
    /// elementwise min, broadcasting.
    minimum => Minimum;
}

impl Var {
    /// `-1, 0, 1` by sign: piecewise constant, so the result is a constant.
    pub fn sign(&self) -> Result<Var> {
        Ok(Var::constant(self.value().sign()?))
    }

    /// Leaky ReLU with negative slope `slope`.
    pub fn leaky_relu(&self, slope: f64) -> Result<Var> {
        Var::from_op(
            self.value().leaky_relu(slope)?,
            Op::LeakyRelu(slope),
            vec![self.clone()],
        )
    }

    /// Clamps into `[lo, hi]` (gradient 1 inside, 0 outside).
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Var> {
        Var::from_op(self.value().clamp(lo, hi)?, Op::Clamp(lo, hi), vec![self.clone()])
    }

    /// `x + c`
    pub fn add_scalar(&self, c: f64) -> Result<Var> {
        Var::from_op(self.value().add_scalar(c)?, Op::AddScalar(c), vec![self.clone()])
    }

    /// `x - c`
    pub fn sub_scalar(&self, c: f64) -> Result<Var> {
        self.add_scalar(-c)
    }

    /// `x * c`
    pub fn mul_scalar(&self, c: f64) -> Result<Var> {
        Var::from_op(self.value().mul_scalar(c)?, Op::MulScalar(c), vec![self.clone()])
    }

    /// `x / c`
    pub fn div_scalar(&self, c: f64) -> Result<Var> {
        self.mul_scalar(1.0 / c)
    }

    /// `x ^ p`
    pub fn pow_scalar(&self, p: f64) -> Result<Var> {
        Var::from_op(self.value().pow_scalar(p)?, Op::PowScalar(p), vec![self.clone()])
    }

    /// `mask ? a : b` with a constant mask (non-zero selects `a`); all three broadcast.
    /// A mask on another device than `a` is moved to `a`'s first.
    pub fn where_mask(mask: &Tensor, a: &Var, b: &Var) -> Result<Var> {
        let mask = &mask.to_device(a.value().device())?;
        let value = Tensor::where_cond(mask, a.value(), b.value())?;
        let zero = Tensor::scalar(0.0, mask.dtype()).to_device(mask.device())?;
        let mask01 = mask.ne(&zero)?;
        Var::from_op(value, Op::Where(mask01), vec![a.clone(), b.clone()])
    }

    /// Matrix product of `[m, k]` and `[k, n]`.
    pub fn matmul(&self, rhs: &Var) -> Result<Var> {
        self.matmul_t(false, rhs, false)
    }

    /// `op(self) * op(rhs)`, transposes read through strides.
    pub fn matmul_t(&self, transpose_a: bool, rhs: &Var, transpose_b: bool) -> Result<Var> {
        let value = self.value().matmul_t(transpose_a, rhs.value(), transpose_b)?;
        Var::from_op(
            value,
            Op::Matmul {
                transpose_a,
                transpose_b,
            },
            vec![self.clone(), rhs.clone()],
        )
    }

    /// Sum over `axes` (all if `None`).
    pub fn sum(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Var> {
        let resolved = self.shape().axes("sum", axes)?;
        let value = self.value().sum(axes, keepdim)?;
        Var::from_op(
            value,
            Op::Sum {
                axes: resolved,
                keepdim,
            },
            vec![self.clone()],
        )
    }

    /// Sum of every element, as a scalar.
    pub fn sum_all(&self) -> Result<Var> {
        self.sum(None, false)
    }

    /// Mean over `axes` (all if `None`): a sum, then a scale.
    pub fn mean(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Var> {
        let count = self.value().reduced_count("mean", axes)?;
        self.sum(axes, keepdim)?.div_scalar(count as f64)
    }

    /// Mean of every element, as a scalar.
    pub fn mean_all(&self) -> Result<Var> {
        self.mean(None, false)
    }

    /// Variance over `axes`, biased (n) or unbiased (n - 1), composed from
    /// mean, sub, square and sum.
    pub fn var(&self, axes: Option<&[isize]>, keepdim: bool, unbiased: bool) -> Result<Var> {
        let count = self.value().reduced_count("var", axes)?;
        let ddof = usize::from(unbiased);
        if count <= ddof {
            return Err(ferrograd_engine::Error::invalid(
                "var",
                format!("needs more than {ddof} element(s) per reduction"),
            ));
        }
        let centered = self.sub(&self.mean(axes, true)?)?;
        centered.square()?.sum(axes, keepdim)?.div_scalar((count - ddof) as f64)
    }

    fn extremum(&self, axes: Option<&[isize]>, keepdim: bool, is_max: bool) -> Result<Var> {
        let resolved = self.shape().axes("max", axes)?;
        let value = if is_max {
            self.value().max(axes, keepdim)?
        } else {
            self.value().min(axes, keepdim)?
        };
        Var::from_op(
            value,
            Op::Extremum {
                is_max,
                axes: resolved,
                keepdim,
            },
            vec![self.clone()],
        )
    }

    /// Maximum over `axes`; the gradient is shared equally among tied maxima.
    pub fn max(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Var> {
        self.extremum(axes, keepdim, true)
    }

    /// Minimum over `axes`; the gradient is shared equally among tied minima.
    pub fn min(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Var> {
        self.extremum(axes, keepdim, false)
    }

    /// `log(sum(exp(x)))` over `axes`, stable.
    pub fn logsumexp(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Var> {
        let resolved = self.shape().axes("logsumexp", axes)?;
        let value = self.value().logsumexp(axes, keepdim)?;
        Var::from_op(
            value,
            Op::LogSumExp {
                axes: resolved,
                keepdim,
            },
            vec![self.clone()],
        )
    }

    /// softmax along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Var> {
        let a = self.shape().axis("softmax", axis)?;
        Var::from_op(self.value().softmax(axis)?, Op::Softmax(a), vec![self.clone()])
    }

    /// log_softmax along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Var> {
        let a = self.shape().axis("log_softmax", axis)?;
        Var::from_op(self.value().log_softmax(axis)?, Op::LogSoftmax(a), vec![self.clone()])
    }

    /// The same elements with another shape.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Var> {
        Var::from_op(self.value().reshape(shape)?, Op::Reshape, vec![self.clone()])
    }

    /// Removes a size-1 axis.
    pub fn squeeze(&self, axis: isize) -> Result<Var> {
        Var::from_op(self.value().squeeze(axis)?, Op::Reshape, vec![self.clone()])
    }

    /// Inserts a size-1 axis.
    pub fn unsqueeze(&self, axis: isize) -> Result<Var> {
        Var::from_op(self.value().unsqueeze(axis)?, Op::Reshape, vec![self.clone()])
    }

    /// Reorders axes: output axis `i` is input axis `axes[i]`.
    pub fn permute(&self, axes: &[usize]) -> Result<Var> {
        Var::from_op(
            self.value().permute(axes)?,
            Op::Permute(axes.to_vec()),
            vec![self.clone()],
        )
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Var> {
        let (a, b) = (self.shape().axis("transpose", a)?, self.shape().axis("transpose", b)?);
        let mut axes: Vec<usize> = (0..self.shape().rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Broadcasts to `shape`.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Var> {
        Var::from_op(self.value().broadcast_to(shape)?, Op::BroadcastTo, vec![self.clone()])
    }

    /// Sums down to `shape` (the adjoint of broadcasting).
    pub fn sum_to(&self, shape: impl Into<Shape>) -> Result<Var> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        Var::from_op(self.value().sum_to(shape)?, Op::SumTo, vec![self.clone()])
    }

    /// Joins along `axis`.
    pub fn concat(vars: &[Var], axis: isize) -> Result<Var> {
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.value().clone()).collect();
        let value = Tensor::concat(&tensors, axis)?;
        let a = vars[0].shape().axis("concat", axis)?;
        Var::from_op(value, Op::Concat(a), vars.to_vec())
    }

    /// The slice `start..start+len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Var> {
        let a = self.shape().axis("narrow", axis)?;
        Var::from_op(
            self.value().narrow(axis, start, len)?,
            Op::Narrow { axis: a, start },
            vec![self.clone()],
        )
    }

    /// Zero padding along `axis`.
    pub fn pad_zeros(&self, axis: isize, before: usize, after: usize) -> Result<Var> {
        let a = self.shape().axis("pad_zeros", axis)?;
        let value = self.value().pad_zeros(axis, before, after)?;
        Var::from_op(value, Op::PadZeros { axis: a, before }, vec![self.clone()])
    }

    /// Rows listed in `indices`.
    pub fn index_select(&self, indices: &[usize]) -> Result<Var> {
        Var::from_op(
            self.value().index_select(indices)?,
            Op::IndexSelect(indices.to_vec()),
            vec![self.clone()],
        )
    }

    /// Rows added into `rows` zero rows at `indices`.
    pub fn index_add(&self, indices: &[usize], rows: usize) -> Result<Var> {
        Var::from_op(
            self.value().index_add(indices, rows)?,
            Op::IndexAdd(indices.to_vec()),
            vec![self.clone()],
        )
    }

    /// `x[i, labels[i]]` for a `[n, c]` matrix.
    pub fn gather(&self, labels: &[usize]) -> Result<Var> {
        Var::from_op(
            self.value().gather(labels)?,
            Op::Gather(labels.to_vec()),
            vec![self.clone()],
        )
    }

    /// The `[n, classes]` matrix with `self[i]` at `(i, labels[i])`.
    pub fn scatter(&self, labels: &[usize], classes: usize) -> Result<Var> {
        Var::from_op(
            self.value().scatter(labels, classes)?,
            Op::Scatter(labels.to_vec()),
            vec![self.clone()],
        )
    }

    /// The same values in another dtype; gradients are cast back.
    pub fn to_dtype(&self, dtype: DType) -> Result<Var> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        Var::from_op(self.value().to_dtype(dtype)?, Op::Cast, vec![self.clone()])
    }
}
