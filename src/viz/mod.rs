//! `ferrograd viz`: what optimizers do on classic 2-D test surfaces.
//!
//! The point `[x, y]` is one f64 tensor of shape `[2]`; each step calls the
//! catalog optimizer exactly as the training harness does
//! ([`TaskOptimizer::query_at_params`], then [`TaskOptimizer::step`], or
//! [`TaskOptimizer::step_with_curvature`] with Hessian-vector products of
//! `f` for optimizers that use curvature) and adds the returned update. The
//! gradient comes from ferrograd's autograd. Each step counts as one epoch
//! whose training and validation loss are the previous step's `f`, so
//! optimizers that read the epoch or the losses see sensible values.

pub mod functions;
pub mod plot;

pub use functions::Function;

use crate::autograd::{set_grad_enabled, Var};
use crate::engine::{Error, Shape, Tensor};
use crate::optim::ModelLayout;
use crate::optim::{Curvature, StepContext, TaskOptimizer};
use crate::race::grid::Entrant;
use functions::point_tensor;
use serde::Serialize;
use std::collections::BTreeMap;

/// What can go wrong in `ferrograd viz`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VizError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// An optimizer or the autodiff failed.
    #[error("{entrant}: {source}")]
    Optimizer {
        /// The optimizer's label.
        entrant: String,
        /// What failed.
        source: Error,
    },
}

/// A trajectory stops when a coordinate's magnitude passes this.
pub const ESCAPE: f64 = 1e6;

/// One point of a trajectory: the point after `step` updates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrajectoryPoint {
    /// Updates applied so far.
    pub step: usize,
    /// The x coordinate.
    pub x: f64,
    /// The y coordinate.
    pub y: f64,
    /// `f(x, y)`.
    pub f: f64,
    /// The update the optimizer returned here (`None` at the last point):
    /// the next point is `(x, y) + update`.
    pub update: Option<[f64; 2]>,
}

/// One optimizer's path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trajectory {
    /// The catalog name.
    pub optimizer: String,
    /// The label, e.g. `adam(lr=0.1)`.
    pub entrant: String,
    /// The hyperparameter overrides.
    pub hp: BTreeMap<String, f64>,
    /// The points, from the start.
    pub points: Vec<TrajectoryPoint>,
    /// Why the path stopped early (non-finite or escaping values), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Hessian-vector products of `f` at a fixed point, for optimizers that use
/// curvature; reverse over reverse, as the training harness does.
struct PointCurvature {
    function: Function,
    point: Tensor,
}

impl Curvature for PointCurvature {
    fn hvp(&mut self, v: &[Tensor]) -> crate::engine::Result<Vec<Tensor>> {
        let _recording = set_grad_enabled(true);
        let p = Var::parameter(self.point.clone());
        let f = self.function.at_point(&p)?;
        let grads = f.backward_with(true)?;
        let g = grads
            .get_var(&p)
            .ok_or_else(|| Error::invalid("hvp", "the function does not depend on the point"))?;
        let direction = v
            .first()
            .ok_or_else(|| Error::invalid("hvp", "expected one direction tensor"))?;
        let second = g.mul(&Var::constant(direction.clone()))?.sum_all()?.backward()?;
        Ok(vec![second.get_or_zeros(&p)?])
    }
}

/// Runs `entrant` on `function` from `start` for `steps` steps.
pub fn trajectory(
    function: Function,
    entrant: &Entrant,
    start: (f64, f64),
    steps: usize,
) -> Result<Trajectory, VizError> {
    trajectory_observed(function, entrant, start, steps, |_| {})
}

/// What an observer of [`trajectory_observed`] sees after each optimizer
/// step: the optimizer itself (its [`TaskOptimizer::state`]) and the step's
/// inputs and output.
pub struct StepView<'a> {
    /// The step (0-based): it moved point `step` to point `step + 1`.
    pub step: usize,
    /// The optimizer right after the step.
    pub optimizer: &'a dyn TaskOptimizer,
    /// The gradient the step received (at the queried point, if the
    /// optimizer asked for one).
    pub gradient: [f64; 2],
    /// The update it returned.
    pub update: [f64; 2],
}

/// [`trajectory`], calling `observe` after every optimizer step: how
/// `ferrograd serve` shows an optimizer's internal state step by step from
/// the very run that drew the path.
pub fn trajectory_observed(
    function: Function,
    entrant: &Entrant,
    start: (f64, f64),
    steps: usize,
    mut observe: impl FnMut(StepView<'_>),
) -> Result<Trajectory, VizError> {
    let label = entrant.to_string();
    let fail = |source: Error| VizError::Optimizer {
        entrant: label.clone(),
        source,
    };
    let mut optimizer = entrant.build().map_err(|e| VizError::Usage(e.to_string()))?;
    optimizer
        .init_state(0, &ModelLayout::any(&[Shape::new([2])]))
        .map_err(fail)?;
    let mut path = Trajectory {
        optimizer: entrant.optimizer.clone(),
        entrant: label.clone(),
        hp: entrant.hp_values(),
        points: Vec::with_capacity(steps + 1),
        stopped: None,
    };
    let (mut x, mut y) = start;
    let mut previous_f = None;
    for step in 0..=steps {
        let f = function.value(x, y);
        if let Some(why) = escaped(x, y, f) {
            path.stopped = Some(format!("stopped at step {step}: {why}"));
            break;
        }
        let update = if step < steps {
            let ctx = StepContext {
                epoch: step,
                step,
                train_loss: previous_f,
                val_loss: previous_f,
                steps_per_epoch: Some(1),
            };
            let (gradient, update) = one_step(function, optimizer.as_mut(), (x, y), &ctx).map_err(fail)?;
            observe(StepView {
                step,
                optimizer: optimizer.as_ref(),
                gradient,
                update,
            });
            Some(update)
        } else {
            None
        };
        path.points.push(TrajectoryPoint { step, x, y, f, update });
        if let Some([dx, dy]) = update {
            x += dx;
            y += dy;
        }
        previous_f = Some(f);
    }
    Ok(path)
}

fn escaped(x: f64, y: f64, f: f64) -> Option<String> {
    if !(x.is_finite() && y.is_finite() && f.is_finite()) {
        return Some("the point or f is not finite".into());
    }
    if x.abs() > ESCAPE || y.abs() > ESCAPE {
        return Some(format!("|x| or |y| passed {ESCAPE:e}"));
    }
    None
}

/// One optimizer step at `(x, y)`, exactly as the training harness makes
/// it: query, gradient at the queried point, step (with curvature if the
/// optimizer uses it). Returns the gradient and the update.
fn one_step(
    function: Function,
    optimizer: &mut dyn TaskOptimizer,
    (x, y): (f64, f64),
    ctx: &StepContext,
) -> crate::engine::Result<([f64; 2], [f64; 2])> {
    let params = [point_tensor(x, y)];
    let query = optimizer.query_at_params(&params, ctx)?;
    let at = match &query {
        Some(q) => q
            .first()
            .cloned()
            .ok_or_else(|| Error::invalid("query", "no tensor returned"))?,
        None => params[0].clone(),
    };
    let v = at.to_vec_f64()?;
    let (_, grad) = function.value_and_gradient(v[0], v[1])?;
    let grads = [point_tensor(grad[0], grad[1])];
    let updates = if optimizer.uses_curvature() {
        let mut curvature = PointCurvature { function, point: at };
        optimizer.step_with_curvature(&params, &grads, &mut curvature, ctx)?
    } else {
        optimizer.step(&params, &grads, ctx)?
    };
    let u = updates
        .first()
        .ok_or_else(|| Error::invalid("step", "the optimizer returned no update"))?
        .to_vec_f64()?;
    Ok((grad, [u[0], u[1]]))
}

/// The `--json` document: the function and every trajectory.
pub fn to_json(function: Function, start: (f64, f64), steps: usize, paths: &[Trajectory]) -> serde_json::Value {
    serde_json::json!({
        "function": function.name(),
        "formula": function.formula(),
        "minima": function.minima(),
        "start": [start.0, start.1],
        "steps": steps,
        "trajectories": paths,
    })
}
