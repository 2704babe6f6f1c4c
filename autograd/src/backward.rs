//! Reverse mode: [`Var::backward`] walks the tape from a scalar back to the
//! leaves, and [`input_grads`] holds every op's backward rule, one `match`
//! arm per op, written with differentiable `Var` ops so that the
//! `create_graph` mode ([`Var::backward_with`]) can differentiate the
//! backward pass itself (second order), and so that tangents flow through it
//! (forward-over-reverse). Each op's forward rule (its JVP) sits in
//! `jvp.rs`, one arm per op in the same order as [`input_grads`].

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
            for (input, input_grad) in node.inputs.iter().zip(input_grads(node, var, &g)?) {
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
/// the input gets none), given the output `out` and its gradient `g`.
fn input_grads(node: &Node, out: &Var, g: &Var) -> Result<Vec<Option<Var>>> {
    let x = &node.inputs[0];
    let one = |v: Var| Ok(vec![Some(v)]);
    match &node.op {
        // ----- unary --------------------------------------------------------
        Op::Unary(kind) => one(unary_grad(*kind, x, g)?),
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
            let (ga, gb) = binary_grads(*kind, x, y, g)?;
            Ok(vec![
                Some(ga.sum_to(x.shape().clone())?),
                Some(gb.sum_to(y.shape().clone())?),
            ])
        }
        Op::Where(mask) => {
            let y = &node.inputs[1];
            let keep = constant(mask.clone());
            let drop = constant(mask.neg()?.add_scalar(1.0)?);
            Ok(vec![
                Some(g.mul(&keep)?.sum_to(x.shape().clone())?),
                Some(g.mul(&drop)?.sum_to(y.shape().clone())?),
            ])
        }
        // ----- matmul: C = op(A) op(B) ---------------------------------------
        Op::Matmul {
            transpose_a: ta,
            transpose_b: tb,
        } => {
            let (a, b) = (x, &node.inputs[1]);
            let ga = if *ta {
                b.matmul_t(*tb, g, true)?
            } else {
                g.matmul_t(false, b, !tb)?
            };
            let gb = if *tb {
                g.matmul_t(true, a, *ta)?
            } else {
                a.matmul_t(!ta, g, false)?
            };
            Ok(vec![Some(ga), Some(gb)])
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
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let weights = x.sub(&x.logsumexp(Some(&ax), true)?)?.exp()?;
            one(unreduce(g, x.shape(), axes, *keepdim)?.mul(&weights)?)
        }
        Op::Softmax(axis) => {
            let y = x.softmax(*axis as isize)?;
            let dot = g.mul(&y)?.sum(Some(&[*axis as isize]), true)?;
            one(y.mul(&g.sub(&dot)?)?)
        }
        Op::LogSoftmax(axis) => {
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
            for input in &node.inputs {
                let len = input.dims()[*axis];
                grads.push(Some(g.narrow(*axis as isize, start, len)?));
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

/// `dy/dx * g` for the parameterless unary ops.
fn unary_grad(kind: OpKind, x: &Var, g: &Var) -> Result<Var> {
    match kind {
        OpKind::Neg => Ok(g.neg()?),
        OpKind::Abs => g.mul(&x.sign()?),
        OpKind::Exp => g.mul(&x.exp()?),
        OpKind::Log => g.div(x),
        OpKind::Sqrt => Ok(g.mul(&x.rsqrt()?)?.mul_scalar(0.5)?),
        OpKind::Rsqrt => Ok(g.mul(&x.rsqrt()?.div(x)?)?.mul_scalar(-0.5)?),
        OpKind::Square => Ok(g.mul(x)?.mul_scalar(2.0)?),
        OpKind::Recip => Ok(g.mul(&x.recip()?.square()?)?.neg()?),
        OpKind::Relu => g.mul(&constant(x.value().gt_scalar(0.0)?)),
        OpKind::Sigmoid => {
            let s = x.sigmoid()?;
            g.mul(&s.mul(&s.neg()?.add_scalar(1.0)?)?)
        }
        OpKind::Tanh => g.mul(&x.tanh()?.square()?.neg()?.add_scalar(1.0)?),
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

/// `(g * dz/da, g * dz/db)` before summing to the input shapes.
fn binary_grads(kind: OpKind, a: &Var, b: &Var, g: &Var) -> Result<(Var, Var)> {
    match kind {
        OpKind::Add => Ok((g.clone(), g.clone())),
        OpKind::Sub => Ok((g.clone(), g.neg()?)),
        OpKind::Mul => Ok((g.mul(b)?, g.mul(a)?)),
        OpKind::Div => Ok((g.div(b)?, g.mul(a)?.div(&b.square()?)?.neg()?)),
        OpKind::Pow => {
            // d/da a^b = b a^(b-1);  d/db a^b = a^b ln a
            let ga = g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
            let gb = g.mul(&a.pow(b)?)?.mul(&a.log()?)?;
            Ok((ga, gb))
        }
        OpKind::Maximum | OpKind::Minimum => {
            let a_wins = if kind == OpKind::Maximum {
                a.value().ge(b.value())?
            } else {
                a.value().le(b.value())?
            };
            let b_wins = a_wins.neg()?.add_scalar(1.0)?;
            Ok((g.mul(&constant(a_wins))?, g.mul(&constant(b_wins))?))
        }
        other => unreachable!("{} is not a binary op", other.name()),
    }
}
