//! What an optimizer is told about the model it trains: the shape of every
//! tensor, what each tensor is (when the model says), and which tensors the
//! training loop will actually update.
//!
//! The training loop knows all three, so it passes them to
//! [`TaskOptimizer::init_state`](crate::TaskOptimizer::init_state) instead
//! of leaving the optimizer to guess: [`ModelLayout::new`] for a model that
//! names its tensors (`ferrograd::nn::Mlp::layout` builds one),
//! [`ModelLayout::any`] for a bare list of tensors, all trained.
//! [`ModelLayout::task_model`] reads the benchmark task's model from its
//! shapes alone, for callers that have nothing else (the task's interface
//! passes shapes only; `docs/task.md` section 3).
//!
//! ```
//! use ferrograd_engine::Shape;
//! use ferrograd_optim::layout::{ModelLayout, Role};
//!
//! // A 3 -> 2 Linear layer whose bias is not trained.
//! let shapes = vec![Shape::from([2, 3]), Shape::from([2])];
//! let layout = ModelLayout::new(shapes, Some(vec![Role::Weight(0), Role::Bias(0)]), vec![true, false])?;
//! assert_eq!(layout.role(1), Some(Role::Bias(0)));
//! assert!(layout.is_output_layer(0));
//! assert_eq!(layout.trained(), [true, false]);
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```

use ferrograd_engine::{Error, Result, Shape};

/// What a tensor of a layered model is: the weight or bias of Linear layer
/// `i`, or one of the four tensors of BatchNorm `i` (which follows Linear
/// layer `i`). One enum for the whole library: the model (`ferrograd::nn`)
/// indexes its tensors by it, checkpoints name tensors by it, and
/// optimizers group tensors by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The weight `[out, in]` of Linear layer `i`.
    Weight(usize),
    /// The bias `[out]` of Linear layer `i`.
    Bias(usize),
    /// The scale (gamma) of BatchNorm `i`.
    BnScale(usize),
    /// The shift (beta) of BatchNorm `i`.
    BnShift(usize),
    /// The running mean of BatchNorm `i` (never trained).
    RunningMean(usize),
    /// The running variance of BatchNorm `i` (never trained).
    RunningVar(usize),
}

impl Role {
    /// The index of the Linear layer or BatchNorm this tensor belongs to.
    pub fn layer(self) -> usize {
        match self {
            Role::Weight(i)
            | Role::Bias(i)
            | Role::BnScale(i)
            | Role::BnShift(i)
            | Role::RunningMean(i)
            | Role::RunningVar(i) => i,
        }
    }

    /// Whether this is a Linear layer's weight matrix: the usual target of
    /// weight decay.
    pub fn is_weight(self) -> bool {
        matches!(self, Role::Weight(_))
    }

    /// Whether this belongs to a Linear layer (weight or bias) rather than
    /// to a BatchNorm.
    pub fn is_linear(self) -> bool {
        matches!(self, Role::Weight(_) | Role::Bias(_))
    }

    /// Whether this is a BatchNorm running statistic, which no optimizer
    /// trains (a training loop ignores its update).
    pub fn is_running_stat(self) -> bool {
        matches!(self, Role::RunningMean(_) | Role::RunningVar(_))
    }

    /// Whether gradient descent can train it at all (everything but the
    /// running statistics).
    pub fn is_parameter(self) -> bool {
        !self.is_running_stat()
    }
}

/// The model an optimizer trains, as the training loop describes it: one
/// shape per tensor, optionally one [`Role`] per tensor, and which tensors
/// the loop applies updates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLayout {
    shapes: Vec<Shape>,
    roles: Option<Vec<Role>>,
    trained: Vec<bool>,
}

impl ModelLayout {
    /// A model described in full. Fails when `roles` (if given) or
    /// `trained` does not have one entry per shape.
    pub fn new(shapes: Vec<Shape>, roles: Option<Vec<Role>>, trained: Vec<bool>) -> Result<ModelLayout> {
        let bad = |what: &str, n: usize| {
            Error::invalid(
                "ModelLayout::new",
                format!("{n} {what} for {} tensors: give one per tensor", shapes.len()),
            )
        };
        if let Some(r) = &roles {
            if r.len() != shapes.len() {
                return Err(bad("roles", r.len()));
            }
        }
        if trained.len() != shapes.len() {
            return Err(bad("trained flags", trained.len()));
        }
        Ok(ModelLayout { shapes, roles, trained })
    }

    /// A list of tensors and nothing more: no roles, every tensor trained.
    /// What an optimizer gets from a user who trains a few bare tensors.
    pub fn any(shapes: &[Shape]) -> ModelLayout {
        ModelLayout {
            shapes: shapes.to_vec(),
            roles: None,
            trained: vec![true; shapes.len()],
        }
    }

    /// The benchmark task's model read from its tensor shapes alone, in the
    /// task's order: `W0, b0, ..., Wn, bn` (`W` of rank 2, `[out, in]`; `b`
    /// of rank 1, `[out]`), then for each of the `n` BatchNorms (one after
    /// every Linear layer but the last) `scale, shift, running_mean,
    /// running_var`. Trained: every Linear layer and BatchNorm scale and
    /// shift except the last two Linear layers with the BatchNorm between
    /// them (`docs/task.md` section 2). Fails, saying why, for shapes that
    /// are not of this form. For callers that have only the shapes, as the
    /// task's interface does; a training loop that has the model passes its
    /// layout instead.
    pub fn task_model(shapes: &[Shape]) -> Result<ModelLayout> {
        let widths = task_linear_widths(shapes)?;
        let depth = widths.len();
        check_task_batchnorms(&shapes[2 * depth..], &widths)?;
        let roles = task_roles(depth);
        let frozen_from = depth.saturating_sub(2);
        let trained = roles
            .iter()
            .map(|r| r.is_parameter() && r.layer() < frozen_from)
            .collect();
        ModelLayout::new(shapes.to_vec(), Some(roles), trained)
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether the model has no tensors.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// The shape of each tensor.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// The role of each tensor, when the model says.
    pub fn roles(&self) -> Option<&[Role]> {
        self.roles.as_deref()
    }

    /// The role of tensor `index`, when the model says (`None` also for an
    /// index past the end).
    pub fn role(&self, index: usize) -> Option<Role> {
        self.roles.as_ref().and_then(|r| r.get(index).copied())
    }

    /// Whether the training loop applies the update of each tensor.
    pub fn trained(&self) -> &[bool] {
        &self.trained
    }

    /// The number of Linear layers (0 when the model names no roles).
    pub fn linear_layers(&self) -> usize {
        self.roles().map_or(0, |roles| {
            roles
                .iter()
                .filter(|r| r.is_weight())
                .map(|r| r.layer() + 1)
                .max()
                .unwrap_or(0)
        })
    }

    /// Whether Linear layer `layer` is the model's last (its output layer).
    pub fn is_output_layer(&self, layer: usize) -> bool {
        layer + 1 == self.linear_layers()
    }

    /// The layout of the tensors at `indices`, in that order (what one
    /// group of a [`Partition`](crate::groups::Partition) sees).
    pub fn select(&self, indices: &[usize]) -> ModelLayout {
        ModelLayout {
            shapes: indices.iter().map(|&i| self.shapes[i].clone()).collect(),
            roles: self.roles.as_ref().map(|r| indices.iter().map(|&i| r[i]).collect()),
            trained: indices.iter().map(|&i| self.trained[i]).collect(),
        }
    }
}

/// The output widths of the task model's Linear layers, read from the
/// leading `W, b` pairs, each layer's input checked against the previous
/// layer's output.
fn task_linear_widths(shapes: &[Shape]) -> Result<Vec<usize>> {
    let mut widths: Vec<usize> = Vec::new();
    while 2 * widths.len() + 1 < shapes.len() && shapes[2 * widths.len()].rank() == 2 {
        let layer = widths.len();
        let (w, b) = (&shapes[2 * layer], &shapes[2 * layer + 1]);
        if b.rank() != 1 || b.dims()[0] != w.dims()[0] {
            return Err(not_task(format!(
                "tensor {} has shape {b}, expected the bias [{}] of weight {w}",
                2 * layer + 1,
                w.dims()[0]
            )));
        }
        if let Some(&prev) = widths.last() {
            if w.dims()[1] != prev {
                return Err(not_task(format!(
                    "weight {} has shape {w}; the previous layer has {prev} outputs",
                    2 * layer
                )));
            }
        }
        widths.push(w.dims()[0]);
    }
    if widths.is_empty() {
        return Err(not_task("expected W0 (rank 2), b0 (rank 1), ... first".into()));
    }
    Ok(widths)
}

/// Checks the four tensors of each BatchNorm after the Linear layers: one
/// BatchNorm per Linear layer but the last, each tensor as wide as its layer.
fn check_task_batchnorms(rest: &[Shape], widths: &[usize]) -> Result<()> {
    let depth = widths.len();
    if rest.len() != 4 * (depth - 1) {
        return Err(not_task(format!(
            "{depth} Linear layers need {} BatchNorm tensors after them, got {}",
            4 * (depth - 1),
            rest.len()
        )));
    }
    for (bn, chunk) in rest.chunks(4).enumerate() {
        for (k, s) in chunk.iter().enumerate() {
            if s.dims() != [widths[bn]] {
                return Err(not_task(format!(
                    "BatchNorm {bn} tensor {k} has shape {s}, expected [{}]",
                    widths[bn]
                )));
            }
        }
    }
    Ok(())
}

/// The roles of the task model with `depth` Linear layers, in its order.
fn task_roles(depth: usize) -> Vec<Role> {
    let mut roles = Vec::with_capacity(2 * depth + 4 * depth.saturating_sub(1));
    for layer in 0..depth {
        roles.extend([Role::Weight(layer), Role::Bias(layer)]);
    }
    for bn in 0..depth.saturating_sub(1) {
        roles.extend([
            Role::BnScale(bn),
            Role::BnShift(bn),
            Role::RunningMean(bn),
            Role::RunningVar(bn),
        ]);
    }
    roles
}

/// The error for shapes that are not the task model's.
fn not_task(message: String) -> Error {
    Error::invalid("task layout", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task model's shapes for `n_hidden` (input 1, width 256, output 2).
    fn task_shapes(n_hidden: usize) -> Vec<Shape> {
        let mut widths = vec![1];
        widths.extend(std::iter::repeat_n(256, n_hidden));
        widths.push(2);
        let mut shapes: Vec<Shape> = Vec::new();
        for w in widths.windows(2) {
            shapes.push([w[1], w[0]].into());
            shapes.push([w[1]].into());
        }
        for _ in 0..n_hidden {
            shapes.extend(std::iter::repeat_n(Shape::from([256]), 4));
        }
        shapes
    }

    #[test]
    fn the_task_model_with_four_hidden_layers() {
        let shapes = task_shapes(4);
        assert_eq!(shapes.len(), 26);
        let layout = ModelLayout::task_model(&shapes).unwrap();
        assert_eq!(layout.linear_layers(), 5);
        assert!(layout.is_output_layer(4) && !layout.is_output_layer(3));
        let roles = layout.roles().unwrap();
        assert_eq!(
            &roles[..4],
            &[Role::Weight(0), Role::Bias(0), Role::Weight(1), Role::Bias(1)]
        );
        assert_eq!(&roles[8..10], &[Role::Weight(4), Role::Bias(4)]);
        assert_eq!(
            &roles[22..],
            &[
                Role::BnScale(3),
                Role::BnShift(3),
                Role::RunningMean(3),
                Role::RunningVar(3)
            ]
        );
        // Trained: Linear 0..=2 and BatchNorm 0..=2 scale/shift.
        let trained: Vec<usize> = (0..26).filter(|&i| layout.trained()[i]).collect();
        assert_eq!(trained, vec![0, 1, 2, 3, 4, 5, 10, 11, 14, 15, 18, 19]);
        let trainable: usize = trained.iter().map(|&i| shapes[i].numel()).sum();
        assert_eq!(trainable, 133_632, "docs/task.md's count for n = 4");
        for n in [7, 10, 14, 18] {
            assert_eq!(ModelLayout::task_model(&task_shapes(n)).unwrap().linear_layers(), n + 1);
        }
    }

    #[test]
    fn malformed_task_layouts_are_refused() {
        let mut shapes = task_shapes(2);
        assert!(ModelLayout::task_model(&shapes[..shapes.len() - 1]).is_err());
        shapes[1] = [3].into();
        assert!(ModelLayout::task_model(&shapes).is_err());
        assert!(ModelLayout::task_model(&[[4].into()]).is_err());
        // A single Linear layer has no BatchNorm, and is the output layer.
        let single = ModelLayout::task_model(&[[2, 3].into(), [2].into()]).unwrap();
        assert_eq!(single.roles().unwrap(), [Role::Weight(0), Role::Bias(0)]);
        assert!(single.is_output_layer(0));
    }

    #[test]
    fn lengths_must_match_and_select_keeps_each_part() {
        let shapes = vec![Shape::from([2, 3]), Shape::from([2])];
        assert!(ModelLayout::new(shapes.clone(), Some(vec![Role::Weight(0)]), vec![true; 2]).is_err());
        assert!(ModelLayout::new(shapes.clone(), None, vec![true]).is_err());
        let layout = ModelLayout::new(
            shapes.clone(),
            Some(vec![Role::Weight(0), Role::Bias(0)]),
            vec![true, false],
        )
        .unwrap();
        let bias = layout.select(&[1]);
        assert_eq!(bias.shapes(), &shapes[1..]);
        assert_eq!(bias.roles().unwrap(), [Role::Bias(0)]);
        assert_eq!(bias.trained(), [false]);
        let any = ModelLayout::any(&shapes);
        assert_eq!(
            (any.roles(), any.trained(), any.linear_layers()),
            (None, &[true, true][..], 0)
        );
    }
}
