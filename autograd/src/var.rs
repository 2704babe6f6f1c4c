//! [`Var`]: a tensor that remembers how it was computed, and the switch that
//! turns recording off ([`no_grad`]).
//!
//! Every op on `Var`s whose inputs require gradients records a [`Node`]: the
//! op and its input `Var`s. The nodes form the tape (a DAG) that
//! [`Var::backward`] walks in reverse topological order.

use crate::op::Op;
use ferrograd_engine::{DType, Device, Error, Result, Shape, Tensor};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// One recorded step: the op that produced a `Var` and its inputs.
pub struct Node {
    /// The op, with whatever it needs to remember for its backward rule.
    pub op: Op,
    /// The inputs, in the op's argument order.
    pub inputs: Vec<Var>,
}

struct VarInner {
    id: usize,
    value: Tensor,
    requires_grad: bool,
    node: Option<Node>,
    /// The forward-mode tangent `dvalue/deps` along the direction the
    /// leaves' tangents set (see `jvp.rs`). Set once: at construction for a
    /// leaf ([`Var::with_tangent`]), right after it for an op's result.
    tangent: OnceLock<Var>,
}

/// Frees a graph without recursion.
///
/// Left to itself, dropping the last handle to a `Var` drops its node, whose
/// inputs drop their nodes, and so on: one stack frame per op of the chain
/// below, so a chain of some hundred thousand ops overflows the stack.
/// Instead, the node's inputs are moved onto a `Vec` used as a work list.
/// Each input that this was the last handle to gives up its own inputs to
/// the list before it is freed, so every `VarInner` is freed with an empty
/// input list and no drop ever nests. Inputs that are still shared (another
/// op or the caller holds them) are only released here; their last user
/// frees them later, the same way. A deep graph costs heap, not stack.
///
/// A tangent is a `Var` with a graph of its own (its rule's ops), so it goes
/// onto the same work list rather than being dropped as a field, which would
/// start a second loop inside this one (tests/deep_graph.rs frees a
/// million-link chain carrying tangents on a 2 MiB stack).
impl Drop for VarInner {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.release_into(&mut pending);
        while let Some(input) = pending.pop() {
            // `into_inner` hands back the inner value only to the last owner,
            // even if other threads release their handles at the same time.
            if let Some(mut last) = Arc::into_inner(input.0) {
                last.release_into(&mut pending);
            }
        }
    }
}

impl VarInner {
    /// Moves this value's inputs and tangent onto `pending`.
    fn release_into(&mut self, pending: &mut Vec<Var>) {
        if let Some(node) = self.node.as_mut() {
            pending.append(&mut node.inputs);
        }
        pending.extend(self.tangent.take());
    }
}

/// A tensor in a differentiable computation. Cloning is cheap (shared).
#[derive(Clone)]
pub struct Var(Arc<VarInner>);

impl Var {
    fn new(value: Tensor, requires_grad: bool, node: Option<Node>) -> Var {
        Var(Arc::new(VarInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value,
            requires_grad,
            node,
            tangent: OnceLock::new(),
        }))
    }

    /// A leaf whose gradient [`Var::backward`] computes (a parameter or input
    /// you differentiate with respect to).
    pub fn parameter(value: Tensor) -> Var {
        Var::new(value, true, None)
    }

    /// A leaf that is treated as a constant (no gradient).
    pub fn constant(value: Tensor) -> Var {
        Var::new(value, false, None)
    }

    /// Records the result of `op` on `inputs`. If recording is off or no
    /// input requires a gradient, the result is a constant.
    ///
    /// If any input carries a tangent (and tangents are not suspended, as
    /// they are inside a forward rule), the result carries the tangent its
    /// op's forward rule computes, whether or not recording is on; the rule's
    /// ops can fail like any op (a GPU out of memory), and so can this.
    pub(crate) fn from_op(value: Tensor, op: Op, inputs: Vec<Var>) -> Result<Var> {
        #[cfg(test)]
        crate::op_log::record(op.kind());
        let pushes_tangent = crate::jvp::tangents_flow(&inputs);
        if is_grad_enabled() && inputs.iter().any(Var::requires_grad) {
            let out = Var::new(value, true, Some(Node { op, inputs }));
            if pushes_tangent {
                let node = out.node().expect("just recorded");
                out.set_tangent(crate::jvp::output_tangent(&node.op, &node.inputs, &out)?);
            }
            Ok(out)
        } else {
            let out = Var::new(value, false, None);
            if pushes_tangent {
                out.set_tangent(crate::jvp::output_tangent(&op, &inputs, &out)?);
            }
            Ok(out)
        }
    }

    /// Stores the tangent an op's forward rule computed (`None`: none).
    fn set_tangent(&self, tangent: Option<Var>) {
        if let Some(t) = tangent {
            // A fresh result has no tangent yet, so this cannot be refused.
            let _ = self.0.tangent.set(t);
        }
    }

    /// The forward-mode tangent this `Var` carries, if any: `dself/deps`
    /// when the leaves move along their tangents, `x + eps t`. Leaves get
    /// one from [`Var::with_tangent`]; every op on a `Var` that carries one
    /// computes its result's with the op's forward rule (a Jacobian-vector
    /// product).
    pub fn tangent(&self) -> Option<&Var> {
        self.0.tangent.get()
    }

    /// The same value, history and `requires_grad`, now carrying `tangent`
    /// (a "dual tensor", PyTorch's `make_dual`): every op computed from the
    /// result carries the derivative of its value along `tangent`. The
    /// result is a new `Var`: use it (not `self`) in the computation, and
    /// ask [`Gradients`](crate::Gradients) about it.
    ///
    /// Fails if `tangent` differs from `self` in shape, dtype or device.
    pub fn with_tangent(&self, tangent: &Var) -> Result<Var> {
        check_tangent_fits(self, tangent)?;
        let node = self.node().map(|n| Node {
            op: n.op.clone(),
            inputs: n.inputs.clone(),
        });
        let dual = Var::new(self.value().clone(), self.requires_grad(), node);
        dual.set_tangent(Some(tangent.clone()));
        Ok(dual)
    }

    /// A unique id, stable for this `Var`'s lifetime.
    pub fn id(&self) -> usize {
        self.0.id
    }

    /// The current value.
    pub fn value(&self) -> &Tensor {
        &self.0.value
    }

    /// Whether gradients flow to (or through) this `Var`.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// The node that produced this `Var`, or `None` for a leaf or constant.
    pub fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }

    /// Whether this is a leaf (not produced by a recorded op).
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    /// The value, open to change in place, when nothing else can see it:
    /// this `Var` is a leaf without a tangent and the only handle to its
    /// value (no clone, no recorded op holds it). `None` otherwise; then
    /// make a fresh leaf instead. How a model updates its parameters in
    /// place between steps without a copy.
    pub fn unshared_leaf_value_mut(&mut self) -> Option<&mut Tensor> {
        let inner = Arc::get_mut(&mut self.0)?;
        if inner.node.is_some() || inner.tangent.get().is_some() {
            return None;
        }
        Some(&mut inner.value)
    }

    /// The same value cut off from the graph (a constant).
    pub fn detach(&self) -> Var {
        Var::constant(self.0.value.clone())
    }

    /// The value's shape.
    pub fn shape(&self) -> &Shape {
        self.0.value.shape()
    }

    /// The value's dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.value.dims()
    }

    /// The value's dtype.
    pub fn dtype(&self) -> DType {
        self.0.value.dtype()
    }

    /// The value's device.
    pub fn device(&self) -> Device {
        self.0.value.device()
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var(id={}, op={}, requires_grad={})\n{}",
            self.id(),
            self.node().map_or("leaf", |n| n.op.kind().name()),
            self.requires_grad(),
            self.value()
        )
    }
}

/// An error unless `tangent` matches `primal` in shape, dtype and device.
fn check_tangent_fits(primal: &Var, tangent: &Var) -> Result<()> {
    if primal.shape() != tangent.shape() {
        return Err(Error::ShapeMismatch {
            op: "with_tangent",
            lhs: primal.shape().clone(),
            rhs: tangent.shape().clone(),
            hint: "a tangent has its primal's shape: one direction component per element",
        });
    }
    if primal.dtype() != tangent.dtype() {
        return Err(Error::invalid(
            "with_tangent",
            format!(
                "the tangent is {:?} but the value is {:?}; convert it with `to_dtype`",
                tangent.dtype(),
                primal.dtype()
            ),
        ));
    }
    if primal.device() != tangent.device() {
        return Err(Error::invalid(
            "with_tangent",
            format!(
                "the tangent is on {:?} but the value is on {:?}; move it with `to_device`",
                tangent.device(),
                primal.device()
            ),
        ));
    }
    Ok(())
}

/// Whether ops on this thread currently record nodes.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous recording state when dropped.
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Turns recording on or off until the returned guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// Runs `f` without recording: results are constants, nothing is taped.
/// Use it for evaluation and for parameter updates.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(false);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Weak;

    /// A watch on whether `var`'s inner value has been freed.
    fn watch(var: &Var) -> Weak<VarInner> {
        Arc::downgrade(&var.0)
    }

    /// A scalar parameter to hang graphs from.
    fn leaf() -> Var {
        Var::parameter(Tensor::scalar(1.0, DType::F64))
    }

    #[test]
    fn dropping_the_root_frees_a_chain_it_alone_holds() {
        let x = leaf();
        let a = x.add_scalar(1.0).unwrap();
        let b = a.mul_scalar(2.0).unwrap();
        let (watch_a, watch_b) = (watch(&a), watch(&b));
        drop(a);
        assert!(watch_a.upgrade().is_some(), "b still uses a");
        drop(b);
        assert!(watch_b.upgrade().is_none());
        assert!(watch_a.upgrade().is_none());
        assert_eq!(Arc::strong_count(&x.0), 1, "the caller's leaf is released, not freed");
    }

    #[test]
    fn a_shared_input_is_freed_only_when_its_last_user_goes() {
        let x = leaf();
        let shared = x.add_scalar(1.0).unwrap().add_scalar(1.0).unwrap();
        let watch_shared = watch(&shared);
        let left = shared.mul_scalar(2.0);
        let right = shared.mul(&shared).unwrap();
        drop(shared);
        drop(left);
        assert!(watch_shared.upgrade().is_some(), "right still uses it");
        assert_eq!(Arc::strong_count(&watch_shared.upgrade().unwrap()), 3);
        drop(right);
        assert!(watch_shared.upgrade().is_none());
        assert_eq!(Arc::strong_count(&x.0), 1);
    }

    #[test]
    fn a_tangent_of_another_shape_or_dtype_is_refused_with_the_fix() {
        let x = Var::parameter(Tensor::zeros([2, 3], DType::F64).unwrap());
        let wrong_shape = Var::constant(Tensor::zeros([3, 2], DType::F64).unwrap());
        let err = x.with_tangent(&wrong_shape).unwrap_err().to_string();
        assert!(err.contains("with_tangent") && err.contains("shape"), "{err}");
        let wrong_dtype = Var::constant(Tensor::zeros([2, 3], DType::F32).unwrap());
        let err = x.with_tangent(&wrong_dtype).unwrap_err().to_string();
        assert!(err.contains("to_dtype"), "{err}");
    }

    #[test]
    fn tangents_follow_the_product_rule_with_recording_on_or_off() {
        // d/deps of (x sin x) along t at x = 2: t (sin 2 + 2 cos 2).
        let t = Var::constant(Tensor::scalar(0.5, DType::F64));
        let x = leaf().mul_scalar(2.0).unwrap().with_tangent(&t).unwrap();
        let want = 0.5 * (2f64.sin() + 2.0 * 2f64.cos());
        let recorded = x.mul(&x.sin().unwrap()).unwrap();
        let plain = no_grad(|| x.mul(&x.sin().unwrap()).unwrap());
        for y in [recorded, plain] {
            let got = y.tangent().unwrap().value().to_scalar().unwrap();
            assert!(approx::abs_diff_eq!(got, want, epsilon = 1e-15), "{got} vs {want}");
        }
        assert!(x.tangent().is_some() && leaf().tangent().is_none());
    }

    #[test]
    fn a_leaf_is_open_to_change_in_place_only_while_nothing_else_sees_it() {
        let mut x = leaf();
        assert!(x.unshared_leaf_value_mut().is_some(), "a lone leaf");
        let y = x.mul_scalar(3.0).unwrap();
        assert!(x.unshared_leaf_value_mut().is_none(), "y's node holds x");
        drop(y);
        let copy = x.clone();
        assert!(x.unshared_leaf_value_mut().is_none(), "a clone sees it");
        drop(copy);
        *x.unshared_leaf_value_mut().unwrap() = Tensor::scalar(5.0, DType::F64);
        assert_eq!(x.value().to_scalar().unwrap(), 5.0);
        let mut z = x.add_scalar(1.0).unwrap();
        assert!(z.unshared_leaf_value_mut().is_none(), "a recorded result is no leaf");
        let t = Var::constant(Tensor::scalar(1.0, DType::F64));
        let mut dual = leaf().with_tangent(&t).unwrap();
        assert!(dual.unshared_leaf_value_mut().is_none(), "a leaf carrying a tangent");
    }
}
