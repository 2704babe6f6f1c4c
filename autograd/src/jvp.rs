//! Forward mode: tangents carried alongside values, and [`tangent_rule`], one
//! forward rule (Jacobian-vector product, JVP) per op, its arms in the same
//! order as the backward rules of `backward.rs`.
//!
//! # Design
//!
//! A `Var` may carry a *tangent*: another `Var` of its shape holding
//! `d value / d eps` when every leaf `x` that has a tangent `t` moves to
//! `x + eps t` (a dual number `value + eps tangent`, with `eps^2 = 0`).
//! Leaves get theirs from [`Var::with_tangent`]. Whenever an op runs on inputs
//! of which at least one carries a tangent, `Var::from_op` calls the op's
//! forward rule right after computing the value, and the result carries the
//! rule's output: `J_op (t_1, ..., t_k)`, the directional derivative. No
//! graph is walked, and nothing is kept beyond the tangents themselves: one
//! JVP costs about one extra forward pass.
//!
//! Three decisions make this one mechanism serve first-order forward mode,
//! forward-over-reverse and reverse-over-forward:
//!
//! 1. **Rules are written with `Var` ops on the real inputs**, as the
//!    backward rules are, not with raw tensors. Inside a rule, tangents are
//!    *suspended* (a thread-local switch, like recording in `no_grad`): the
//!    rule's own ops carry no tangent, which is what stops `exp`'s rule
//!    `t * exp(x)` from asking for the tangent of its own `exp(x)` forever.
//!    There is one level of tangents; a tangent of a tangent is ignored.
//! 2. **Tangents flow whether or not recording is on.** The backward rules
//!    are `Var` ops on the forward pass's `Var`s, so when the leaves carry
//!    tangents, a plain `backward()` pushes tangents through the backward
//!    pass as well: the gradient it returns carries `d grad / d eps = H v`.
//!    That is forward-over-reverse, for every op whose backward rule is
//!    written with differentiable ops (all of them here: the rules use `Var`
//!    ops, and masks of piecewise-linear ops are constants with zero
//!    tangent, which is their derivative away from the kinks).
//! 3. **A rule's ops record like any other ops.** When recording is on and
//!    the inputs require gradients, the tangent is itself a recorded `Var`,
//!    so a tangent can be differentiated in reverse (reverse-over-forward).
//!
//! A rule's shapes cannot disagree: inputs and their tangents always agree
//! in shape, dtype and device, because `Var::with_tangent` checks the
//! leaves, every built-in rule preserves it, and a user-defined primitive's
//! tangent is checked against its output. A rule can still fail as any op
//! can (a GPU out of memory); the error then comes back from the op that
//! ran the rule.

use crate::op::{Op, OpKind};
use crate::Var;
use ferrograd_engine::{Result, Shape, Tensor};
use std::cell::Cell;

thread_local! {
    static SUSPENDED: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous suspension state when dropped.
struct Suspension {
    previous: bool,
}

impl Drop for Suspension {
    fn drop(&mut self) {
        SUSPENDED.with(|s| s.set(self.previous));
    }
}

/// Suspends tangent propagation on this thread until the guard is dropped.
fn suspend_tangents() -> Suspension {
    Suspension {
        previous: SUSPENDED.with(|s| s.replace(true)),
    }
}

/// Whether an op on `inputs` computes a tangent for its result.
pub(crate) fn tangents_flow(inputs: &[Var]) -> bool {
    !SUSPENDED.with(Cell::get) && inputs.iter().any(|v| v.tangent().is_some())
}

/// The tangent of `out = op(inputs)`, from the inputs' tangents (an error
/// only if one of the rule's ops fails, as any op can on a GPU).
pub(crate) fn output_tangent(op: &Op, inputs: &[Var], out: &Var) -> Result<Option<Var>> {
    let _suspended = suspend_tangents();
    let tangents: Vec<Option<Var>> = inputs.iter().map(|v| v.tangent().cloned()).collect();
    tangent_rule(op, inputs, out, &tangents)
}

/// A constant `Var` (masks and other values the rule does not differentiate).
fn constant(t: Tensor) -> Var {
    Var::constant(t)
}

/// The sum of the terms that exist (`None` when no input had a tangent).
fn sum_terms(terms: impl IntoIterator<Item = Result<Option<Var>>>) -> Result<Option<Var>> {
    let mut total: Option<Var> = None;
    for term in terms {
        if let Some(t) = term? {
            total = Some(match total {
                Some(sum) => sum.add(&t)?,
                None => t,
            });
        }
    }
    Ok(total)
}

/// `f(t)` for an input tangent that exists.
fn map(t: &Option<Var>, f: impl FnOnce(&Var) -> Result<Var>) -> Result<Option<Var>> {
    t.as_ref().map(f).transpose()
}

/// Broadcasts a tangent that came from a smaller (broadcast) input up to the
/// output's shape.
fn fit(t: Option<Var>, shape: &Shape) -> Result<Option<Var>> {
    match t {
        Some(t) if t.shape() != shape => Ok(Some(t.broadcast_to(shape.clone())?)),
        other => Ok(other),
    }
}

/// The forward rule of one op: the tangent of `out = op(inputs)` given the
/// inputs' tangents (`None` where an input has none, meaning zero), or
/// `None` when the result's tangent is zero.
pub(crate) fn tangent_rule(op: &Op, inputs: &[Var], out: &Var, tangents: &[Option<Var>]) -> Result<Option<Var>> {
    let (x, tx) = (&inputs[0], &tangents[0]);
    match op {
        // ----- unary --------------------------------------------------------
        Op::Unary(kind) => map(tx, |t| unary_tangent(*kind, x, out, t)),
        Op::LeakyRelu(slope) => {
            let positive = x.value().gt_scalar(0.0)?;
            let scale = positive.mul_scalar(1.0 - slope)?.add_scalar(*slope)?;
            map(tx, |t| t.mul(&constant(scale)))
        }
        Op::Clamp(lo, hi) => {
            let inside = x.value().gt_scalar(*lo)?.mul(&x.value().lt_scalar(*hi)?)?;
            map(tx, |t| t.mul(&constant(inside)))
        }
        Op::AddScalar(_) => Ok(tx.clone()),
        Op::MulScalar(c) => map(tx, |t| t.mul_scalar(*c)),
        Op::PowScalar(p) => map(tx, |t| t.mul(&x.pow_scalar(p - 1.0)?)?.mul_scalar(*p)),
        // ----- binary (each input's tangent broadcast to the output) --------
        Op::Binary(kind) => {
            let t = binary_tangent(*kind, x, &inputs[1], out, tx, &tangents[1])?;
            fit(t, out.shape())
        }
        Op::Where(mask) => {
            let keep = constant(mask.clone());
            let drop = constant(mask.neg()?.add_scalar(1.0)?);
            let t = sum_terms([map(tx, |t| t.mul(&keep)), map(&tangents[1], |t| t.mul(&drop))])?;
            fit(t, out.shape())
        }
        // ----- matmul: dC = op(dA) op(B) + op(A) op(dB) ----------------------
        Op::Matmul {
            transpose_a: ta,
            transpose_b: tb,
        } => {
            let (a, b) = (x, &inputs[1]);
            sum_terms([
                map(tx, |t| t.matmul_t(*ta, b, *tb)),
                map(&tangents[1], |t| a.matmul_t(*ta, t, *tb)),
            ])
        }
        // ----- reductions ----------------------------------------------------
        Op::Sum { axes, keepdim } => map(tx, |t| t.sum(Some(&signed(axes)), *keepdim)),
        Op::Extremum { axes, keepdim, .. } => {
            // The tangent of the winner, averaged over tied winners.
            let kept = kept_shape(x.shape(), axes);
            let hits = x.value().eq(&out.value().reshape(kept)?)?;
            let share = hits.div(&hits.sum(Some(&signed(axes)), true)?)?;
            map(tx, |t| t.mul(&constant(share))?.sum(Some(&signed(axes)), *keepdim))
        }
        Op::LogSumExp { axes, keepdim } => {
            // d logsumexp = sum(softmax(x) * t) over the reduced axes.
            let kept = out.reshape(kept_shape(x.shape(), axes))?;
            map(tx, |t| {
                let weights = x.sub(&kept)?.exp()?;
                t.mul(&weights)?.sum(Some(&signed(axes)), *keepdim)
            })
        }
        Op::Softmax(axis) => map(tx, |t| {
            // dy = y * (t - sum(y * t))
            let dot = out.mul(t)?.sum(Some(&[*axis as isize]), true)?;
            out.mul(&t.sub(&dot)?)
        }),
        Op::LogSoftmax(axis) => map(tx, |t| {
            // dy = t - sum(softmax(x) * t), softmax(x) = exp(y)
            let p = out.exp()?;
            t.sub(&p.mul(t)?.sum(Some(&[*axis as isize]), true)?)
        }),
        // ----- shape: the same op applied to the tangent -------------------
        Op::Reshape => map(tx, |t| t.reshape(out.shape().clone())),
        Op::Permute(axes) => map(tx, |t| t.permute(axes)),
        Op::BroadcastTo => map(tx, |t| t.broadcast_to(out.shape().clone())),
        Op::SumTo => map(tx, |t| t.sum_to(out.shape().clone())),
        Op::Concat(axis) => concat_tangent(inputs, tangents, *axis),
        Op::Narrow { axis, start } => map(tx, |t| t.narrow(*axis as isize, *start, out.dims()[*axis])),
        Op::PadZeros { axis, before } => {
            let after = out.dims()[*axis] - before - x.dims()[*axis];
            map(tx, |t| t.pad_zeros(*axis as isize, *before, after))
        }
        Op::IndexSelect(indices) => map(tx, |t| t.index_select(indices)),
        Op::IndexAdd(indices) => map(tx, |t| t.index_add(indices, out.dims()[0])),
        Op::Gather(labels) => map(tx, |t| t.gather(labels)),
        Op::Scatter(labels) => map(tx, |t| t.scatter(labels, out.dims()[1])),
        Op::Unfold(window) => map(tx, |t| t.unfold(window)),
        Op::Fold(window) => map(tx, |t| t.fold(window, out.dims()[2], out.dims()[3])),
        Op::Cast => map(tx, |t| t.to_dtype(out.dtype())),
        Op::Custom(op) => crate::custom::output_tangent(op.as_ref(), inputs, out, tangents),
    }
}

/// Resolved axes back to the `isize` form the reductions take.
fn signed(axes: &[usize]) -> Vec<isize> {
    axes.iter().map(|&a| a as isize).collect()
}

/// `shape` with the reduced `axes` kept as size 1.
fn kept_shape(shape: &Shape, axes: &[usize]) -> Vec<usize> {
    (0..shape.rank())
        .map(|i| if axes.contains(&i) { 1 } else { shape.dims()[i] })
        .collect()
}

/// `f'(x) t` for the parameterless unary ops, using the output `y = f(x)`
/// where that is cheaper than recomputing.
fn unary_tangent(kind: OpKind, x: &Var, y: &Var, t: &Var) -> Result<Var> {
    match kind {
        OpKind::Neg => Ok(t.neg()?),
        OpKind::Abs => t.mul(&x.sign()?),
        OpKind::Exp => t.mul(y),
        OpKind::Log => t.div(x),
        OpKind::Sqrt => Ok(t.div(y)?.mul_scalar(0.5)?), // 1 / (2 sqrt x)
        OpKind::Rsqrt => Ok(t.mul(&y.div(x)?)?.mul_scalar(-0.5)?), // -x^(-3/2) / 2
        OpKind::Square => Ok(t.mul(x)?.mul_scalar(2.0)?),
        OpKind::Recip => Ok(t.mul(&y.square()?)?.neg()?),
        OpKind::Relu => t.mul(&constant(x.value().gt_scalar(0.0)?)),
        OpKind::Sigmoid => t.mul(&y.mul(&y.neg()?.add_scalar(1.0)?)?),
        OpKind::Tanh => t.mul(&y.square()?.neg()?.add_scalar(1.0)?),
        OpKind::Gelu => t.mul(&crate::backward::gelu_derivative(x)?),
        OpKind::Silu => {
            // d/dx x s(x) = s (1 + x (1 - s))
            let s = x.sigmoid()?;
            t.mul(&s.mul(&x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?)?)
        }
        OpKind::Sin => t.mul(&x.cos()?),
        OpKind::Cos => Ok(t.mul(&x.sin()?)?.neg()?),
        other => unreachable!("{} has no parameterless unary rule", other.name()),
    }
}

/// The tangent of `z = a op b` from `ta` and `tb` (broadcast later).
fn binary_tangent(kind: OpKind, a: &Var, b: &Var, z: &Var, ta: &Option<Var>, tb: &Option<Var>) -> Result<Option<Var>> {
    match kind {
        OpKind::Add => sum_terms([Ok(ta.clone()), Ok(tb.clone())]),
        OpKind::Sub => sum_terms([Ok(ta.clone()), map(tb, |t| t.neg())]),
        OpKind::Mul => sum_terms([map(ta, |t| t.mul(b)), map(tb, |t| a.mul(t))]),
        // d(a / b) = (ta - z tb) / b
        OpKind::Div => sum_terms([map(ta, |t| t.div(b)), map(tb, |t| z.mul(t)?.div(b)?.neg())]),
        // d(a^b) = b a^(b-1) ta + a^b ln(a) tb
        OpKind::Pow => sum_terms([
            map(ta, |t| t.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)),
            map(tb, |t| t.mul(z)?.mul(&a.log()?)),
        ]),
        OpKind::Maximum | OpKind::Minimum => {
            let a_wins = if kind == OpKind::Maximum {
                a.value().ge(b.value())?
            } else {
                a.value().le(b.value())?
            };
            let b_wins = a_wins.neg()?.add_scalar(1.0)?;
            sum_terms([
                map(ta, |t| t.mul(&constant(a_wins))),
                map(tb, |t| t.mul(&constant(b_wins))),
            ])
        }
        other => unreachable!("{} is not a binary op", other.name()),
    }
}

/// The inputs' tangents joined along `axis`, zeros for inputs without one.
fn concat_tangent(inputs: &[Var], tangents: &[Option<Var>], axis: usize) -> Result<Option<Var>> {
    if tangents.iter().all(Option::is_none) {
        return Ok(None);
    }
    let pieces: Vec<Var> = inputs
        .iter()
        .zip(tangents)
        .map(|(x, t)| match t {
            Some(t) => Ok(t.clone()),
            None => Ok(constant(x.value().zeros_like()?)),
        })
        .collect::<Result<Vec<_>>>()?;
    Var::concat(&pieces, axis as isize).map(Some)
}
