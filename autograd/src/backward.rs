//! Reverse mode: [`Var::backward`] walks the tape from a scalar back to the
//! leaves, and [`input_grads`] holds every op's backward rule, one `match`
//! arm per op, written with differentiable `Var` ops so that the
//! `create_graph` mode ([`Var::backward_with`]) can differentiate the
//! backward pass itself (second order), and so that tangents flow through it
//! (forward-over-reverse). Each op's forward rule (its JVP) sits in
//! `jvp.rs`, one arm per op in the same order as [`input_grads`].
//!
//! A rule does only the work its result needs: it computes no gradient for
//! an input that does not require one (a batch of data, a mask, a frozen
//! weight), and it reads the node's own output where its derivative is
//! written in terms of it (`exp`, `tanh`, `sigmoid`, `softmax`, ...) instead
//! of computing the forward op again. The output is the value the op
//! computed from the same input, so the gradients keep the same bits.

use crate::op::{Op, OpKind};
use crate::var::{set_grad_enabled, Node};
use crate::Var;
use ferrograd_engine::{Error, Result, Shape, Tensor};
use std::collections::HashMap;

/// The gradients computed by [`Var::backward`], by `Var` id.
#[derive(Default)]
pub struct Gradients {
    grads: HashMap<usize, Var>,
}

impl Gradients {
    /// The gradient of `var`, if it requires one and was reached.
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        self.grads.get(&var.id()).map(Var::value)
    }

    /// The gradient of `var`, or zeros shaped like it where the loss does not
    /// depend on it (an error only if the zeros cannot be allocated).
    pub fn get_or_zeros(&self, var: &Var) -> Result<Tensor> {
        match self.get(var) {
            Some(g) => Ok(g.clone()),
            None => var.value().zeros_like(),
        }
    }

    /// The gradient of `var` as a `Var` (differentiable when the backward
    /// pass was recorded with `create_graph`).
    pub fn get_var(&self, var: &Var) -> Option<&Var> {
        self.grads.get(&var.id())
    }

    /// Removes and returns the gradient of `var`.
    pub fn remove(&mut self, var: &Var) -> Option<Tensor> {
        self.grads.remove(&var.id()).map(|v| v.value().clone())
    }

    /// The number of stored gradients.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether no gradient is stored.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The gradients of `params`, in their order: the opt-in check that
    /// every parameter received one. `get` answers `None` for a tensor
    /// wrapped with [`Var::constant`] by mistake or one the loss never used,
    /// which a training loop can skip without noticing; this names the first
    /// such parameter by its index instead, as `torch.autograd.grad` does
    /// with its default `allow_unused=False`.
    pub fn of_all(&self, params: &[Var]) -> Result<Vec<Tensor>> {
        params
            .iter()
            .enumerate()
            .map(|(index, param)| self.of_parameter(index, param))
            .collect()
    }

    /// The gradient of the `index`-th parameter, or why it has none.
    fn of_parameter(&self, index: usize, param: &Var) -> Result<Tensor> {
        if let Some(grad) = self.get(param) {
            return Ok(grad.clone());
        }
        let why = if param.requires_grad() {
            "received no gradient: the loss does not depend on it; use it in the forward pass or leave it out of the list"
        } else {
            "does not require a gradient: it was made with Var::constant (or detached); make it with Var::parameter"
        };
        Err(Error::invalid(
            "gradients",
            format!("parameter {index} (shape {}) {why}", param.shape()),
        ))
    }

    fn accumulate(&mut self, id: usize, grad: Var) -> Result<()> {
        let total = match self.grads.remove(&id) {
            Some(previous) => previous.add(&grad)?,
            None => grad,
        };
        self.grads.insert(id, total);
        Ok(())
    }
}

/// The nodes reachable from `root` that require gradients, inputs before
/// the ops that use them.
fn topological_order(root: &Var) -> Vec<Var> {
    inputs_first(root, Var::requires_grad)
}

/// The nodes reachable from `root` through nodes that satisfy `include`,
/// each once, inputs before the ops that use them (an iterative walk, so
/// deep chains cannot overflow the stack).
pub(crate) fn inputs_first(root: &Var, include: impl Fn(&Var) -> bool) -> Vec<Var> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    let mut stack: Vec<(Var, bool)> = vec![(root.clone(), false)];
    while let Some((var, children_done)) = stack.pop() {
        if children_done {
            order.push(var);
            continue;
        }
        if !include(&var) || !visited.insert(var.id()) {
            continue;
        }
        stack.push((var.clone(), true));
        if let Some(node) = var.node() {
            for input in node.inputs.iter().rev() {
                stack.push((input.clone(), false));
            }
        }
    }
    order
}

impl Var {
    /// Gradients of this scalar with respect to every `Var` it depends on that
    /// requires a gradient (leaves and intermediates alike).
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_with(false)
    }

    /// The gradients of this scalar with respect to `params`, in their order,
    /// or an error naming the first parameter that received none (see
    /// [`Gradients::of_all`]).
    pub fn gradients_of(&self, params: &[Var]) -> Result<Vec<Tensor>> {
        self.backward()?.of_all(params)
    }

    /// Like [`Var::backward`]; with `create_graph` the backward pass is itself
    /// recorded, so the gradients can be differentiated again.
    pub fn backward_with(&self, create_graph: bool) -> Result<Gradients> {
        if self.shape().numel() != 1 {
            return Err(Error::invalid(
                "backward",
                format!(
                    "needs a scalar, got shape {}; reduce it first (e.g. `.sum_all()` or `.mean_all()`)",
                    self.shape()
                ),
            ));
        }
        let _mode = set_grad_enabled(create_graph);
        // `ones_like`: the seed lives on the loss's device.
        let seed = Var::constant(self.value().ones_like()?);
        self.backward_from(seed)
    }

    /// Backpropagates a given cotangent `grad` (same shape as `self`).
    fn backward_from(&self, grad: Var) -> Result<Gradients> {
        let mut grads = Gradients::default();
        if !self.requires_grad() {
            return Ok(grads);
        }
        grads.accumulate(self.id(), grad)?;
        for var in topological_order(self).iter().rev() {
            let (Some(node), Some(g)) = (var.node(), grads.get_var(var).cloned()) else {
                continue;
            };
            let needs = Needs::of(node);
            for (input, input_grad) in node.inputs.iter().zip(input_grads(node, &needs, var, &g)?) {
                if let (true, Some(ig)) = (input.requires_grad(), input_grad) {
                    grads.accumulate(input.id(), ig)?;
                }
            }
        }
        Ok(grads)
    }
}

/// A constant `Var` (masks and other values the rule does not differentiate).
fn constant(t: Tensor) -> Var {
    Var::constant(t)
}

/// Which inputs of a node need a gradient: those that require one. A rule
/// with several inputs computes nothing for the others.
struct Needs(Vec<bool>);

impl Needs {
    /// The needs of `node`'s inputs, in its argument order.
    fn of(node: &Node) -> Needs {
        Needs(node.inputs.iter().map(Var::requires_grad).collect())
    }

    /// Whether input `index` needs a gradient.
    fn input(&self, index: usize) -> bool {
        self.0[index]
    }

    /// `rule()` if input `index` needs a gradient, else `None` (and the rule
    /// does not run).
    fn grad(&self, index: usize, rule: impl FnOnce() -> Result<Var>) -> Result<Option<Var>> {
        if self.input(index) {
            rule().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The cotangent of a reduction, reshaped so it broadcasts over the input.
fn unreduce(g: &Var, input: &Shape, axes: &[usize], keepdim: bool) -> Result<Var> {
    if keepdim {
        return Ok(g.clone());
    }
    let kept: Vec<usize> = (0..input.rank())
        .map(|i| if axes.contains(&i) { 1 } else { input.dims()[i] })
        .collect();
    g.reshape(kept)
}

/// The backward rule of one node: the gradient for each input (`None` where
/// the input gets none, or does not need one), given the output `out` and
/// its gradient `g`. A node with one input was recorded because that input
/// requires a gradient, so only the rules of several inputs consult `needs`.
fn input_grads(node: &Node, needs: &Needs, out: &Var, g: &Var) -> Result<Vec<Option<Var>>> {
    let x = &node.inputs[0];
    let one = |v: Var| Ok(vec![Some(v)]);
    match &node.op {
        // ----- unary --------------------------------------------------------
        Op::Unary(kind) => one(unary_grad(*kind, x, out, g)?),
        Op::LeakyRelu(slope) => {
            let positive = x.value().gt_scalar(0.0)?;
            let scale = positive.mul_scalar(1.0 - slope)?.add_scalar(*slope)?;
            one(g.mul(&constant(scale))?)
        }
        Op::Clamp(lo, hi) => {
            let inside = x.value().gt_scalar(*lo)?.mul(&x.value().lt_scalar(*hi)?)?;
            one(g.mul(&constant(inside))?)
        }
        Op::AddScalar(_) => one(g.clone()),
        Op::MulScalar(c) => one(g.mul_scalar(*c)?),
        Op::PowScalar(p) => one(g.mul(&x.pow_scalar(p - 1.0)?)?.mul_scalar(*p)?),
        // ----- binary (gradients summed back to each input's shape) --------
        Op::Binary(kind) => {
            let y = &node.inputs[1];
            Ok(vec![
                needs.grad(0, || binary_grad_lhs(*kind, x, y, g)?.sum_to(x.shape().clone()))?,
                needs.grad(1, || binary_grad_rhs(*kind, x, y, out, g)?.sum_to(y.shape().clone()))?,
            ])
        }
        Op::Where(mask) => {
            let y = &node.inputs[1];
            Ok(vec![
                needs.grad(0, || g.mul(&constant(mask.clone()))?.sum_to(x.shape().clone()))?,
                needs.grad(1, || {
                    let unmasked = constant(mask.neg()?.add_scalar(1.0)?);
                    g.mul(&unmasked)?.sum_to(y.shape().clone())
                })?,
            ])
        }
        // ----- matmul: C = op(A) op(B) ---------------------------------------
        Op::Matmul {
            transpose_a: ta,
            transpose_b: tb,
        } => {
            let (a, b) = (x, &node.inputs[1]);
            let ga = needs.grad(0, || {
                if *ta {
                    b.matmul_t(*tb, g, true)
                } else {
                    g.matmul_t(false, b, !tb)
                }
            })?;
            let gb = needs.grad(1, || {
                if *tb {
                    g.matmul_t(true, a, *ta)
                } else {
                    a.matmul_t(!ta, g, false)
                }
            })?;
            Ok(vec![ga, gb])
        }
        // ----- reductions ----------------------------------------------------
        Op::Sum { axes, keepdim } => one(unreduce(g, x.shape(), axes, *keepdim)?.broadcast_to(x.shape().clone())?),
        Op::Extremum { axes, keepdim, .. } => {
            let kept = unreduce(out, x.shape(), axes, *keepdim)?;
            let hits = x.value().eq(kept.value())?;
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let share = hits.div(&hits.sum(Some(&ax), true)?)?;
            one(unreduce(g, x.shape(), axes, *keepdim)?.mul(&constant(share))?)
        }
        Op::LogSumExp { axes, keepdim } => {
            // `out` kept its reduced axes: the same bits as logsumexp with keepdim.
            let lse = unreduce(out, x.shape(), axes, *keepdim)?;
            let weights = x.sub(&lse)?.exp()?;
            one(unreduce(g, x.shape(), axes, *keepdim)?.mul(&weights)?)
        }
        Op::Softmax(axis) => {
            let y = out;
            let dot = g.mul(y)?.sum(Some(&[*axis as isize]), true)?;
            one(y.mul(&g.sub(&dot)?)?)
        }
        Op::LogSoftmax(axis) => {
            // Not `out.exp()`: exp(x - logsumexp(x)) rounds differently from
            // softmax's exp(x - max) / sum, so the gradient would change bits.
            let p = x.softmax(*axis as isize)?;
            one(g.sub(&p.mul(&g.sum(Some(&[*axis as isize]), true)?)?)?)
        }
        // ----- shape ---------------------------------------------------------
        Op::Reshape => one(g.reshape(x.shape().clone())?),
        Op::Permute(axes) => {
            let mut inverse = vec![0; axes.len()];
            for (i, &a) in axes.iter().enumerate() {
                inverse[a] = i;
            }
            one(g.permute(&inverse)?)
        }
        Op::BroadcastTo => one(g.sum_to(x.shape().clone())?),
        Op::SumTo => one(g.broadcast_to(x.shape().clone())?),
        Op::Concat(axis) => {
            let mut start = 0;
            let mut grads = Vec::with_capacity(node.inputs.len());
            for (index, input) in node.inputs.iter().enumerate() {
                let len = input.dims()[*axis];
                grads.push(needs.grad(index, || g.narrow(*axis as isize, start, len))?);
                start += len;
            }
            Ok(grads)
        }
        Op::Narrow { axis, start } => {
            let after = x.dims()[*axis] - start - out.dims()[*axis];
            one(g.pad_zeros(*axis as isize, *start, after)?)
        }
        Op::PadZeros { axis, before } => one(g.narrow(*axis as isize, *before, x.dims()[*axis])?),
        Op::IndexSelect(indices) => one(g.index_add(indices, x.dims()[0])?),
        Op::IndexAdd(indices) => one(g.index_select(indices)?),
        Op::Gather(labels) => one(g.scatter(labels, x.dims()[1])?),
        Op::Scatter(labels) => one(g.gather(labels)?),
        // unfold and fold are linear and each other's adjoint.
        Op::Unfold(window) => one(g.fold(window, x.dims()[2], x.dims()[3])?),
        Op::Fold(window) => one(g.unfold(window)?),
        Op::Cast => one(g.to_dtype(x.dtype())?),
        Op::Custom(op) => crate::custom::input_grads(op.as_ref(), &node.inputs, out, g),
    }
}

/// `dy/dx * g` for the parameterless unary ops, given `out = y(x)`.
///
/// Where the derivative is a function of `y`, the rule reads `out` rather
/// than computing `y(x)` again: the engine computed `out` from the same `x`
/// with the same kernel, so the bits are those of the recomputation. `sqrt`'s
/// `1 / sqrt(x)` is `out.recip()` because the engine's `rsqrt` is itself
/// `recip(sqrt(x))` (on the CPU and in the CUDA kernels).
fn unary_grad(kind: OpKind, x: &Var, out: &Var, g: &Var) -> Result<Var> {
    match kind {
        OpKind::Neg => Ok(g.neg()?),
        OpKind::Abs => g.mul(&x.sign()?),
        OpKind::Exp => g.mul(out),
        OpKind::Log => g.div(x),
        OpKind::Sqrt => Ok(g.mul(&out.recip()?)?.mul_scalar(0.5)?),
        OpKind::Rsqrt => Ok(g.mul(&out.div(x)?)?.mul_scalar(-0.5)?),
        OpKind::Square => Ok(g.mul(x)?.mul_scalar(2.0)?),
        OpKind::Recip => Ok(g.mul(&out.square()?)?.neg()?),
        OpKind::Relu => g.mul(&constant(x.value().gt_scalar(0.0)?)),
        OpKind::Sigmoid => g.mul(&out.mul(&out.neg()?.add_scalar(1.0)?)?),
        OpKind::Tanh => g.mul(&out.square()?.neg()?.add_scalar(1.0)?),
        OpKind::Gelu => g.mul(&gelu_derivative(x)?),
        OpKind::Silu => {
            // d/dx x*s(x) = s (1 + x (1 - s))
            let s = x.sigmoid()?;
            g.mul(&s.mul(&x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?)?)
        }
        OpKind::Sin => g.mul(&x.cos()?),
        OpKind::Cos => Ok(g.mul(&x.sin()?)?.neg()?),
        other => unreachable!("{} has no parameterless unary rule", other.name()),
    }
}

/// d/dx of `0.5 x (1 + tanh(u))` with `u = c (x + a x^3)`:
/// `0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)`.
pub(crate) fn gelu_derivative(x: &Var) -> Result<Var> {
    use ferrograd_engine::ops::elementwise::{GELU_A, GELU_C};
    let u = x.add(&x.pow_scalar(3.0)?.mul_scalar(GELU_A)?)?.mul_scalar(GELU_C)?;
    let t = u.tanh()?;
    let du = x
        .square()?
        .mul_scalar(3.0 * GELU_A)?
        .add_scalar(1.0)?
        .mul_scalar(GELU_C)?;
    let left = t.add_scalar(1.0)?.mul_scalar(0.5)?;
    let right = x.mul(&t.square()?.neg()?.add_scalar(1.0)?)?.mul(&du)?.mul_scalar(0.5)?;
    left.add(&right)
}

/// `g * dz/da` for `z = a op b`, before summing to `a`'s shape.
fn binary_grad_lhs(kind: OpKind, a: &Var, b: &Var, g: &Var) -> Result<Var> {
    match kind {
        OpKind::Add | OpKind::Sub => Ok(g.clone()),
        OpKind::Mul => g.mul(b),
        OpKind::Div => g.div(b),
        // d/da a^b = b a^(b-1)
        OpKind::Pow => g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?),
        OpKind::Maximum | OpKind::Minimum => g.mul(&constant(lhs_wins(kind, a, b)?)),
        other => unreachable!("{} is not a binary op", other.name()),
    }
}

/// `g * dz/db` for `z = a op b` (its value `out`), before summing to `b`'s
/// shape.
fn binary_grad_rhs(kind: OpKind, a: &Var, b: &Var, out: &Var, g: &Var) -> Result<Var> {
    match kind {
        OpKind::Add => Ok(g.clone()),
        OpKind::Sub => g.neg(),
        OpKind::Mul => g.mul(a),
        OpKind::Div => g.mul(a)?.div(&b.square()?)?.neg(),
        // d/db a^b = a^b ln a, and `out` is a^b.
        OpKind::Pow => g.mul(out)?.mul(&a.log()?),
        OpKind::Maximum | OpKind::Minimum => {
            let rhs_wins = lhs_wins(kind, a, b)?.neg()?.add_scalar(1.0)?;
            g.mul(&constant(rhs_wins))
        }
        other => unreachable!("{} is not a binary op", other.name()),
    }
}

/// 1 where `a` is the result of `maximum` / `minimum` (ties go to `a`), else 0.
fn lhs_wins(kind: OpKind, a: &Var, b: &Var) -> Result<Tensor> {
    if kind == OpKind::Maximum {
        a.value().ge(b.value())
    } else {
        a.value().le(b.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::no_grad;
    use crate::op_log::ops_run_by;
    use ferrograd_engine::{DType, Rng};

    /// Values in `[0.5, 2)`: inside every tested op's domain (log, sqrt, pow).
    fn positive(dims: &[usize], seed: u64) -> Tensor {
        Tensor::rand_uniform(dims.to_vec(), 0.5, 2.0, DType::F32, &mut Rng::new(seed)).unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    fn count(kinds: &[OpKind], kind: OpKind) -> usize {
        kinds.iter().filter(|&&k| k == kind).count()
    }

    /// The gradients of `loss` and the kinds of the ops its backward pass ran.
    fn backward_ops(loss: &Var, create_graph: bool) -> (Gradients, Vec<OpKind>) {
        let (grads, kinds) = ops_run_by(|| loss.backward_with(create_graph));
        (grads.unwrap(), kinds)
    }

    /// `sum(z * weights)`: the cotangent reaching `z` is `weights`, bit for bit.
    fn weighted_sum(z: &Var, seed: u64) -> Var {
        let weights = Var::constant(positive(z.dims(), seed));
        z.mul(&weights).unwrap().sum_all().unwrap()
    }

    #[test]
    fn a_constant_matmul_operand_costs_no_gemm_and_changes_no_bits() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = positive(if ta { &[4, 3] } else { &[3, 4] }, 1);
            let b = positive(if tb { &[5, 4] } else { &[4, 5] }, 2);
            let loss = |a: &Var, b: &Var| weighted_sum(&a.matmul_t(ta, b, tb).unwrap(), 3);
            let (pa, pb) = (Var::parameter(a.clone()), Var::parameter(b.clone()));
            let (both, kinds) = backward_ops(&loss(&pa, &pb), false);
            assert_eq!(count(&kinds, OpKind::Matmul), 2);
            for create_graph in [false, true] {
                let case = format!("transposes ({ta}, {tb}), create_graph {create_graph}");
                let (data, weight) = (Var::constant(a.clone()), Var::parameter(b.clone()));
                let (grads, kinds) = backward_ops(&loss(&data, &weight), create_graph);
                assert_eq!(count(&kinds, OpKind::Matmul), 1, "{case}: {kinds:?}");
                assert!(grads.get(&data).is_none(), "{case}");
                assert_eq!(
                    bits(grads.get(&weight).unwrap()),
                    bits(both.get(&pb).unwrap()),
                    "{case}"
                );

                let (weight, data) = (Var::parameter(a.clone()), Var::constant(b.clone()));
                let (grads, kinds) = backward_ops(&loss(&weight, &data), create_graph);
                assert_eq!(count(&kinds, OpKind::Matmul), 1, "{case}: {kinds:?}");
                assert!(grads.get(&data).is_none(), "{case}");
                assert_eq!(
                    bits(grads.get(&weight).unwrap()),
                    bits(both.get(&pa).unwrap()),
                    "{case}"
                );
            }
        }
    }

    /// Backward of `sum(op(a, b) * weights)` with `a` `[3, 4]` and `b` `[4]`
    /// (broadcast): with both as parameters, and with each side constant.
    /// The constant side costs nothing: fewer ops, no `sum_to` for a
    /// constant `b`, and the same bits for the other side's gradient.
    fn check_a_constant_side_is_skipped(name: &str, op: impl Fn(&Var, &Var) -> Var, lhs_rule_is_free: bool) {
        let (a, b) = (positive(&[3, 4], 4), positive(&[4], 5));
        let loss = |a: &Var, b: &Var| weighted_sum(&op(a, b), 6);
        let (pa, pb) = (Var::parameter(a.clone()), Var::parameter(b.clone()));
        let (both, both_kinds) = backward_ops(&loss(&pa, &pb), false);
        for create_graph in [false, true] {
            let case = format!("{name}, create_graph {create_graph}");
            let (param, broadcast_constant) = (Var::parameter(a.clone()), Var::constant(b.clone()));
            let (grads, kinds) = backward_ops(&loss(&param, &broadcast_constant), create_graph);
            assert_eq!(count(&kinds, OpKind::SumTo), 0, "{case}: {kinds:?}");
            assert!(kinds.len() < both_kinds.len(), "{case}: {kinds:?} vs {both_kinds:?}");
            assert!(grads.get(&broadcast_constant).is_none(), "{case}");
            assert_eq!(bits(grads.get(&param).unwrap()), bits(both.get(&pa).unwrap()), "{case}");

            let (constant, param) = (Var::constant(a.clone()), Var::parameter(b.clone()));
            let (grads, kinds) = backward_ops(&loss(&constant, &param), create_graph);
            if !lhs_rule_is_free {
                assert!(kinds.len() < both_kinds.len(), "{case}: {kinds:?} vs {both_kinds:?}");
            }
            assert!(grads.get(&constant).is_none(), "{case}");
            assert_eq!(bits(grads.get(&param).unwrap()), bits(both.get(&pb).unwrap()), "{case}");
        }
    }

    #[test]
    fn a_constant_side_of_a_binary_op_gets_no_gradient_work() {
        check_a_constant_side_is_skipped("add", |a, b| a.add(b).unwrap(), true);
        check_a_constant_side_is_skipped("sub", |a, b| a.sub(b).unwrap(), true);
        check_a_constant_side_is_skipped("mul", |a, b| a.mul(b).unwrap(), false);
        check_a_constant_side_is_skipped("div", |a, b| a.div(b).unwrap(), false);
        check_a_constant_side_is_skipped("pow", |a, b| a.pow(b).unwrap(), false);
        check_a_constant_side_is_skipped("maximum", |a, b| a.maximum(b).unwrap(), false);
        check_a_constant_side_is_skipped("minimum", |a, b| a.minimum(b).unwrap(), false);
        let mask = positive(&[3, 4], 7).gt_scalar(1.2).unwrap();
        check_a_constant_side_is_skipped("where", |a, b| Var::where_mask(&mask, a, b).unwrap(), false);
    }

    #[test]
    fn a_constant_concat_input_gets_no_slice() {
        let parts: Vec<Tensor> = (0..3).map(|i| positive(&[2, i + 1], 8 + i as u64)).collect();
        let params: Vec<Var> = parts.iter().cloned().map(Var::parameter).collect();
        let (both, _) = backward_ops(&weighted_sum(&Var::concat(&params, 1).unwrap(), 11), false);
        let mixed = [
            Var::parameter(parts[0].clone()),
            Var::constant(parts[1].clone()),
            Var::parameter(parts[2].clone()),
        ];
        let (grads, kinds) = backward_ops(&weighted_sum(&Var::concat(&mixed, 1).unwrap(), 11), false);
        assert_eq!(count(&kinds, OpKind::Narrow), 2, "{kinds:?}");
        assert!(grads.get(&mixed[1]).is_none());
        for i in [0, 2] {
            assert_eq!(bits(grads.get(&mixed[i]).unwrap()), bits(both.get(&params[i]).unwrap()));
        }
    }

    /// An op whose backward rule reads the node's output, the kinds of op
    /// the rule used to run again to get it, and the rule as it was written
    /// before (given the input and the cotangent).
    struct ReusesOutput {
        name: &'static str,
        forward: Box<Forward>,
        no_longer_run: &'static [OpKind],
        old_rule: Box<Rule>,
    }

    /// An op of one input.
    type Forward = dyn Fn(&Var) -> Result<Var>;
    /// A backward rule given the input and the cotangent.
    type Rule = dyn Fn(&Var, &Var) -> Result<Var>;

    fn reuses_output_cases() -> Vec<ReusesOutput> {
        let base = Var::constant(positive(&[3, 4], 12));
        let (base_in_pow, base_in_rule) = (base.clone(), base);
        vec![
            ReusesOutput {
                name: "exp",
                forward: Box::new(|x| x.exp()),
                no_longer_run: &[OpKind::Exp],
                old_rule: Box::new(|x, g| g.mul(&x.exp()?)),
            },
            ReusesOutput {
                name: "tanh",
                forward: Box::new(|x| x.tanh()),
                no_longer_run: &[OpKind::Tanh],
                old_rule: Box::new(|x, g| g.mul(&x.tanh()?.square()?.neg()?.add_scalar(1.0)?)),
            },
            ReusesOutput {
                name: "sigmoid",
                forward: Box::new(|x| x.sigmoid()),
                no_longer_run: &[OpKind::Sigmoid],
                old_rule: Box::new(|x, g| {
                    let s = x.sigmoid()?;
                    g.mul(&s.mul(&s.neg()?.add_scalar(1.0)?)?)
                }),
            },
            ReusesOutput {
                name: "sqrt",
                forward: Box::new(|x| x.sqrt()),
                no_longer_run: &[OpKind::Sqrt, OpKind::Rsqrt],
                old_rule: Box::new(|x, g| g.mul(&x.rsqrt()?)?.mul_scalar(0.5)),
            },
            ReusesOutput {
                name: "rsqrt",
                forward: Box::new(|x| x.rsqrt()),
                no_longer_run: &[OpKind::Rsqrt],
                old_rule: Box::new(|x, g| g.mul(&x.rsqrt()?.div(x)?)?.mul_scalar(-0.5)),
            },
            ReusesOutput {
                name: "recip",
                forward: Box::new(|x| x.recip()),
                no_longer_run: &[OpKind::Recip],
                old_rule: Box::new(|x, g| g.mul(&x.recip()?.square()?)?.neg()),
            },
            ReusesOutput {
                name: "softmax",
                forward: Box::new(|x| x.softmax(1)),
                no_longer_run: &[OpKind::Softmax],
                old_rule: Box::new(|x, g| {
                    let y = x.softmax(1)?;
                    let dot = g.mul(&y)?.sum(Some(&[1]), true)?;
                    y.mul(&g.sub(&dot)?)
                }),
            },
            ReusesOutput {
                name: "logsumexp",
                forward: Box::new(|x| x.logsumexp(Some(&[1]), false)),
                no_longer_run: &[OpKind::LogSumExp],
                old_rule: Box::new(|x, g| {
                    let weights = x.sub(&x.logsumexp(Some(&[1]), true)?)?.exp()?;
                    g.reshape([3, 1])?.mul(&weights)
                }),
            },
            ReusesOutput {
                name: "logsumexp keepdim",
                forward: Box::new(|x| x.logsumexp(Some(&[1]), true)),
                no_longer_run: &[OpKind::LogSumExp],
                old_rule: Box::new(|x, g| g.mul(&x.sub(&x.logsumexp(Some(&[1]), true)?)?.exp()?)),
            },
            ReusesOutput {
                name: "pow (exponent)",
                forward: Box::new(move |x| base_in_pow.pow(x)),
                no_longer_run: &[OpKind::Pow],
                old_rule: Box::new(move |x, g| g.mul(&base_in_rule.pow(x)?)?.mul(&base_in_rule.log()?)),
            },
        ]
    }

    #[test]
    fn rules_read_the_output_instead_of_recomputing_it_with_the_same_bits() {
        let x = positive(&[3, 4], 13);
        for case in reuses_output_cases() {
            for create_graph in [false, true] {
                let name = format!("{}, create_graph {create_graph}", case.name);
                let input = Var::parameter(x.clone());
                let out = (case.forward)(&input).unwrap();
                let weights = positive(out.dims(), 14);
                let loss = out.mul(&Var::constant(weights.clone())).unwrap().sum_all().unwrap();
                let (grads, kinds) = backward_ops(&loss, create_graph);
                for &kind in case.no_longer_run {
                    assert_eq!(count(&kinds, kind), 0, "{name}: {kinds:?}");
                }
                let old = no_grad(|| (case.old_rule)(&Var::constant(x.clone()), &Var::constant(weights)));
                assert_eq!(bits(grads.get(&input).unwrap()), bits(old.unwrap().value()), "{name}");
            }
        }
    }
}
