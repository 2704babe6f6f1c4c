//! [`Var`]: a tensor that remembers how it was computed, and the switch that
//! turns recording off ([`no_grad`]).
//!
//! Every op on `Var`s whose inputs require gradients records a [`Node`]: the
//! op and its input `Var`s. The nodes form the tape (a DAG) that
//! [`Var::backward`] walks in reverse topological order.

use crate::op::Op;
use ferrograd_engine::{DType, Device, Shape, Tensor};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
impl Drop for VarInner {
    fn drop(&mut self) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let mut pending = std::mem::take(&mut node.inputs);
        while let Some(input) = pending.pop() {
            // `into_inner` hands back the inner value only to the last owner,
            // even if other threads release their handles at the same time.
            if let Some(mut last) = Arc::into_inner(input.0) {
                if let Some(node) = last.node.as_mut() {
                    pending.append(&mut node.inputs);
                }
            }
        }
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
    pub(crate) fn from_op(value: Tensor, op: Op, inputs: Vec<Var>) -> Var {
        if is_grad_enabled() && inputs.iter().any(Var::requires_grad) {
            Var::new(value, true, Some(Node { op, inputs }))
        } else {
            Var::new(value, false, None)
        }
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
        let a = x.add_scalar(1.0);
        let b = a.mul_scalar(2.0);
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
        let shared = x.add_scalar(1.0).add_scalar(1.0);
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
}
