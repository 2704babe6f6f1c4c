//! Plain SGD with elementwise gradient clipping: the benchmark task's only
//! published baseline (lr 1e-3, gradients clipped to ±1).
//!
//! `update = -lr * clamp(g, -clip, clip)`

use crate::{check_grads, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// SGD with value clipping.
#[derive(Debug, Clone)]
pub struct ClippedSgd {
    /// Learning rate.
    pub lr: f64,
    /// Gradients are clamped into `[-clip, clip]` before the step.
    pub clip: f64,
    shapes: Vec<Shape>,
}

impl ClippedSgd {
    /// SGD with the given learning rate and clip value.
    pub fn new(lr: f64, clip: f64) -> Self {
        ClippedSgd {
            lr,
            clip,
            shapes: Vec::new(),
        }
    }
}

impl TaskOptimizer for ClippedSgd {
    fn name(&self) -> &str {
        "sgd"
    }

    fn init_state(&mut self, _seed: u64, param_shapes: &[Shape]) -> Result<()> {
        self.shapes = param_shapes.to_vec();
        Ok(())
    }

    fn step(&mut self, _params: &[Tensor], grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_grads("sgd", &self.shapes, grads)?;
        grads
            .iter()
            .map(|g| Ok(g.clamp(-self.clip, self.clip)?.mul_scalar(-self.lr)))
            .collect()
    }

    fn state(&self) -> OptimizerState {
        OptimizerState::default()
    }

    fn load_state(&mut self, _state: &OptimizerState) -> Result<()> {
        Ok(())
    }
}
