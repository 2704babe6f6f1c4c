//! The few calls whose signatures changed since the "before" commit
//! (`44ae672^`): the before run replaces only this file (see README.md).

use ferrograd::engine::{Result, Tensor};
use ferrograd::nn::Mlp;
use ferrograd::optim::{HyperParams, StepContext};

/// `HyperParams::get` (a `Result` since 70b0890).
pub fn hp_get(h: &HyperParams, name: &str) -> Result<f64> {
    h.get(name)
}

/// `Mlp::set_running_stats` (a `Result` since 44ae672).
pub fn set_running_stats(m: &mut Mlp, stats: Vec<Tensor>) -> Result<()> {
    m.set_running_stats(stats)
}

/// A step context (`steps_per_epoch` exists since ce29084).
pub fn step_context(epoch: usize, step: usize, loss: Option<f64>, steps_per_epoch: Option<usize>) -> StepContext {
    StepContext {
        epoch,
        step,
        train_loss: loss,
        val_loss: loss,
        steps_per_epoch,
    }
}
