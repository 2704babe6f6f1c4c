//! # ferrograd-optim
//!
//! Optimizers for ferrograd, behind the interface of the benchmark task
//! (`docs/task.md` section 3): an optimizer is told the model's tensors once
//! (their shapes, and what the training loop knows of them: a
//! [`ModelLayout`], to [`TaskOptimizer::init_state`]), may ask for the gradient at other
//! parameters ([`TaskOptimizer::query_at_params`]), and returns one
//! *additive* update per tensor ([`TaskOptimizer::step`]).
//!
//! ```
//! use ferrograd_engine::{DType, Shape, Tensor};
//! use ferrograd_optim::{catalog, HyperParams, ModelLayout, StepContext};
//!
//! let info = catalog::find("adam").unwrap();
//! let mut adam = (info.build)(&HyperParams::defaults(info).with("lr", 0.1)?)?;
//! adam.init_state(0, &ModelLayout::any(&[Shape::new([2])]))?;
//! let params = [Tensor::from_vec(vec![1.0f32, -1.0], [2])?];
//! let grads = [Tensor::from_vec(vec![0.5f32, -0.5], [2])?];
//! let updates = adam.step(&params, &grads, &StepContext::default())?;
//! // Adam's first step moves each coordinate by lr against the gradient's sign.
//! let u = updates[0].to_vec::<f32>()?;
//! assert!((u[0] + 0.1).abs() < 1e-6 && (u[1] - 0.1).abs() < 1e-6);
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```
#![deny(missing_docs)]

pub mod adam;
pub mod anneal;
pub mod basic;
pub mod catalog;
pub mod groups;
mod hyper;
pub mod layout;
pub mod modern;
pub mod onepass;
pub mod schedule;
pub mod second_order;
pub mod sgd;
mod state;
pub mod torch_family;
pub mod transform;
pub mod wrappers;

pub use catalog::OptimizerInfo;
pub use hyper::{hp, HpDomain, HpSpec, HyperParams};
pub use layout::{ModelLayout, Role};
pub use state::{OptimizerState, MAX_STEPS};

use ferrograd_engine::{Result, Shape, Tensor};

/// What an optimizer may know about the training loop at each step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepContext {
    /// The current epoch (0-based).
    pub epoch: usize,
    /// Steps taken before this one, over the whole run.
    pub step: usize,
    /// The previous epoch's mean training loss (`None` in epoch 0).
    pub train_loss: Option<f64>,
    /// The previous epoch's validation loss (`None` in epoch 0).
    pub val_loss: Option<f64>,
    /// How many steps make an epoch, when the training loop knows (the
    /// task's trainer always does): schedules counted in epochs use it to
    /// place a step within its epoch. `None`: an optimizer that needs it
    /// measures it from the first epoch boundary.
    pub steps_per_epoch: Option<usize>,
}

/// An optimizer under the benchmark task's rules: it sees every tensor of the
/// model in the task's order (trainable or not, including BatchNorm running
/// statistics) and returns an additive update for each; the harness applies
/// only the updates of trainable tensors.
pub trait TaskOptimizer: Send {
    /// The optimizer's catalog name.
    fn name(&self) -> &str;

    /// Prepares state for the model's tensors: their shapes, and what the
    /// training loop knows about them (roles, which are trained; see
    /// [`ModelLayout`]). Called once before training.
    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()>;

    /// Parameters at which to evaluate the next gradient instead of the
    /// current ones (look-ahead, SAM, Hessian probes); `None` means the
    /// current parameters.
    fn query_at_params(&mut self, _params: &[Tensor], _ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        Ok(None)
    }

    /// One update per tensor, to be added to the parameters.
    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>>;

    /// One step applied in place, as one fused launch on the GPU that holds
    /// the tensors, when this optimizer has such a kernel: `params` are the
    /// tensors the harness trains (`params[j]` is tensor `trained[j]` of the
    /// task's order), `grads` the gradients of every tensor. The other
    /// tensors are neither read nor written. Returns `Ok(false)`, having
    /// changed nothing, when the optimizer has no fused kernel or the
    /// tensors are on the CPU: the harness then calls
    /// [`TaskOptimizer::step`] and adds the updates itself. The default has
    /// none.
    fn step_in_place(
        &mut self,
        _params: &mut [&mut Tensor],
        _trained: &[usize],
        _grads: &[Tensor],
        _ctx: &StepContext,
    ) -> Result<bool> {
        Ok(false)
    }

    /// Whether [`TaskOptimizer::step_in_place`]'s launches read every
    /// step-dependent value (a step count, a schedule) from device memory,
    /// so that a harness may record them once in a CUDA graph and replay
    /// them for later steps, calling [`TaskOptimizer::replayed_in_place`]
    /// before each replay. The default: no.
    fn replayable_in_place(&self) -> bool {
        false
    }

    /// Before a harness replays a recorded [`TaskOptimizer::step_in_place`]
    /// for this step (same arguments as that call): whether the recording
    /// still does this step's work (the same tensors in the same buffers,
    /// the device state where the host left it). If so, the optimizer
    /// accounts for the step on the host exactly as `step_in_place` would
    /// (counters, state a checkpoint saves) and the harness launches the
    /// replay; if not, nothing changes and the harness records again. The
    /// default: never.
    fn replayed_in_place(
        &mut self,
        _params: &mut [&mut Tensor],
        _trained: &[usize],
        _grads: &[Tensor],
        _ctx: &StepContext,
    ) -> Result<bool> {
        Ok(false)
    }

    /// Whether the optimizer wants Hessian-vector products: if so, a harness
    /// that can provide them calls [`TaskOptimizer::step_with_curvature`]
    /// instead of [`TaskOptimizer::step`]. (The task's own Python harness
    /// cannot; ferrograd's `Trainer` can.)
    fn uses_curvature(&self) -> bool {
        false
    }

    /// [`TaskOptimizer::step`] with access to Hessian-vector products of the
    /// step's mini-batch loss at the point where `grads` was taken. The
    /// default ignores `curvature`.
    fn step_with_curvature(
        &mut self,
        params: &[Tensor],
        grads: &[Tensor],
        _curvature: &mut dyn Curvature,
        ctx: &StepContext,
    ) -> Result<Vec<Tensor>> {
        self.step(params, grads, ctx)
    }

    /// The complete state (moments, counters), for checkpoints.
    fn state(&self) -> OptimizerState;

    /// Restores a state returned by [`TaskOptimizer::state`]. The catalog's
    /// optimizers check the whole state first (its counters, and each
    /// tensor's shape and dtype against the shapes given to
    /// [`TaskOptimizer::init_state`]) and change nothing when it does not
    /// fit, saying which counter or tensor is wrong.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// Hessian-vector products of one step's loss, offered by the harness to
/// optimizers that use curvature (Sophia, AdaHessian, Newton-CG).
///
/// The loss is the one whose gradient the step received (the task's sum of
/// squared errors on the step's mini-batch, at the queried parameters if the
/// optimizer asked for a query), so `hvp` and the gradient describe the same
/// function at the same point.
pub trait Curvature {
    /// `H v` for the Hessian `H` of the step's loss with respect to the
    /// trained tensors, `v` given (and the result returned) as one tensor per
    /// model tensor in the task's order. Tensors the harness does not train
    /// (frozen layers, BatchNorm running statistics) are constants of the
    /// loss: their entries of `v` are ignored and their results are zeros.
    fn hvp(&mut self, v: &[Tensor]) -> Result<Vec<Tensor>>;
}

/// A step count as the exponent of `powi` (bias corrections `beta^t`):
/// itself below 2^31, and `i32::MAX` above (where a plain cast would wrap to
/// a negative power and blow the correction up; for every `beta` not within
/// 1e-9 of 1, `beta^t` is 0 there either way). A loaded state may hold up
/// to 2^53 steps ([`MAX_STEPS`]).
pub(crate) fn step_exponent(count: u64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// Checks a step's inputs: `params` and `grads` pair up with the shapes the
/// optimizer was set up for, and each gradient has its parameter's dtype
/// (the update is made in it). The message names the offending index.
pub(crate) fn check_step(op: &'static str, shapes: &[Shape], params: &[Tensor], grads: &[Tensor]) -> Result<()> {
    check_grads(op, shapes, grads)?;
    if params.len() != shapes.len() {
        return Err(ferrograd_engine::Error::invalid(
            op,
            format!(
                "got {} parameters for an optimizer set up for {}; pass every tensor of the model, in init_state's order",
                params.len(),
                shapes.len()
            ),
        ));
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(ferrograd_engine::Error::invalid(
                op,
                format!("parameter {i} has shape {} but its gradient {}", p.shape(), g.shape()),
            ));
        }
        if p.dtype() != g.dtype() {
            return Err(ferrograd_engine::Error::invalid(
                op,
                format!(
                    "parameter {i} is {} but its gradient is {}; convert one with to_dtype",
                    p.dtype(),
                    g.dtype()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that `grads` pairs up with the shapes the optimizer was set up for.
pub(crate) fn check_grads(op: &'static str, shapes: &[Shape], grads: &[Tensor]) -> Result<()> {
    if shapes.len() != grads.len() {
        return Err(ferrograd_engine::Error::invalid(
            op,
            format!(
                "got {} gradients for {} parameters; call init_state with the model's parameter shapes",
                grads.len(),
                shapes.len()
            ),
        ));
    }
    for (s, g) in shapes.iter().zip(grads) {
        if s != g.shape() {
            return Err(ferrograd_engine::Error::ShapeMismatch {
                op,
                lhs: s.clone(),
                rhs: g.shape().clone(),
                hint: "each gradient must have its parameter's shape",
            });
        }
    }
    Ok(())
}
