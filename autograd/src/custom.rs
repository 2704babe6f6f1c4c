//! User-defined primitive ops: implement [`PrimitiveOp`] (a forward kernel
//! on tensors, a backward rule and optionally a forward rule, both as `Var`
//! ops), call [`Var::apply_primitive`], and the op records, differentiates
//! (at first and second order, in both modes) and checks like a built-in
//! one. To put it through the same property suite as the built-in ops, give
//! it an [`OpEntry`](crate::registry::OpEntry) (its input domain and
//! tolerances) and expand [`op_suite!`](crate::op_suite) in a test file of
//! your crate.

use crate::op::Op;
use crate::{set_grad_enabled, Var};
use ferrograd_engine::{Error, Result, Tensor};
use std::sync::Arc;

/// A primitive op defined outside ferrograd.
///
/// The rules are written with `Var` ops, as the built-in ones are, so that
/// they can be differentiated again (second order) and carry tangents
/// (forward over reverse).
pub trait PrimitiveOp: std::fmt::Debug + Send + Sync {
    /// The op's name, for error messages, graphs and reports.
    fn name(&self) -> &'static str;

    /// The value, computed on plain tensors.
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor>;

    /// The backward rule (a vector-Jacobian product): given the output
    /// `out` and its gradient `grad`, the gradient of each input (`None`
    /// for an input that gets none), written with `Var` ops and linear in
    /// `grad`.
    fn backward(&self, inputs: &[Var], out: &Var, grad: &Var) -> Result<Vec<Option<Var>>>;

    /// The forward rule (a Jacobian-vector product): the output's tangent
    /// from the inputs' tangents (`None` where an input has none). `None`
    /// here (the default) derives it from [`PrimitiveOp::backward`] by
    /// transposing that linear map (the "double VJP": `J v` is the gradient
    /// of `<J^T u, v>` with respect to `u`), which costs one extra backward
    /// pass and yields a tangent that cannot itself be differentiated.
    fn jvp(&self, inputs: &[Var], out: &Var, tangents: &[Option<Var>]) -> Option<Result<Option<Var>>> {
        let _ = (inputs, out, tangents);
        None
    }
}

impl Var {
    /// Applies a user-defined primitive op to `inputs`, recording it like a
    /// built-in op (its kind is [`OpKind::Custom`](crate::OpKind::Custom)).
    pub fn apply_primitive(op: Arc<dyn PrimitiveOp>, inputs: &[Var]) -> Result<Var> {
        if inputs.is_empty() {
            return Err(Error::invalid(
                "apply_primitive",
                format!("`{}` got no inputs; a primitive op needs at least one", op.name()),
            ));
        }
        let values: Vec<Tensor> = inputs.iter().map(|v| v.value().clone()).collect();
        let value = op.forward(&values)?;
        Var::from_op(value, Op::Custom(op), inputs.to_vec())
    }
}

/// The backward rule of a custom op, with its result checked for length.
pub(crate) fn input_grads(op: &dyn PrimitiveOp, inputs: &[Var], out: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
    let grads = op.backward(inputs, out, grad)?;
    if grads.len() != inputs.len() {
        return Err(Error::invalid(
            "backward",
            format!(
                "the backward rule of `{}` returned {} gradients for {} inputs; return one per input (None for none)",
                op.name(),
                grads.len(),
                inputs.len()
            ),
        ));
    }
    Ok(grads)
}

/// The forward rule of a custom op: its own, or the double VJP.
pub(crate) fn output_tangent(
    op: &dyn PrimitiveOp,
    inputs: &[Var],
    out: &Var,
    tangents: &[Option<Var>],
) -> Result<Option<Var>> {
    let tangent = match op.jvp(inputs, out, tangents) {
        Some(rule) => rule?,
        None => tangent_by_double_vjp(op, inputs, out, tangents)?,
    };
    match tangent {
        Some(t) if t.shape() != out.shape() || t.dtype() != out.dtype() => Err(Error::invalid(
            "jvp",
            format!(
                "the forward rule of `{}` returned a {:?} tangent of shape {} for a {:?} output of shape {}; return one of the output's shape and dtype",
                op.name(),
                t.dtype(),
                t.shape(),
                out.dtype(),
                out.shape()
            ),
        )),
        other => Ok(other),
    }
}

/// `J v` as the gradient of `<J^T u, v>` with respect to `u`, at `u = 0`
/// (the backward rule is linear in `u`, so any `u` gives the same).
fn tangent_by_double_vjp(
    op: &dyn PrimitiveOp,
    inputs: &[Var],
    out: &Var,
    tangents: &[Option<Var>],
) -> Result<Option<Var>> {
    let _recording = set_grad_enabled(true);
    let u = Var::parameter(out.value().zeros_like()?);
    let mut pairing: Option<Var> = None;
    for (grad, tangent) in input_grads(op, inputs, out, &u)?.into_iter().zip(tangents) {
        if let (Some(g), Some(t)) = (grad, tangent) {
            let term = g.mul(t)?.sum_all()?;
            pairing = Some(match pairing {
                Some(total) => total.add(&term)?,
                None => term,
            });
        }
    }
    let Some(pairing) = pairing else {
        return Ok(None);
    };
    let grads = pairing.backward()?;
    let tangent = match grads.get(&u) {
        Some(t) => t.clone(),
        None => out.value().zeros_like()?,
    };
    Ok(Some(Var::constant(tangent)))
}
