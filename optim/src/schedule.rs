//! Learning-rate schedules: the learning rate as a function of the step
//! count (and, for reduce-on-plateau, of the validation loss).

use crate::{OptimizerState, StepContext};
use ferrograd_engine::Result;

/// A learning rate that may change from step to step.
pub trait Schedule: Send {
    /// The learning rate for step `count` (counting from 1).
    fn lr(&mut self, count: u64, ctx: &StepContext) -> f64;

    /// Saves any state (most schedules are pure functions of the count).
    fn save(&self, _prefix: &str, _state: &mut OptimizerState) {}

    /// Loads what [`Schedule::save`] wrote.
    fn load(&mut self, _prefix: &str, _state: &OptimizerState) -> Result<()> {
        Ok(())
    }
}

/// The same learning rate at every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn lr(&mut self, _count: u64, _ctx: &StepContext) -> f64 {
        self.0
    }
}
