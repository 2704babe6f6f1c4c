//! Cautious masking: Liang, Chen, Liu and Liu, "Cautious Optimizers:
//! Improving Training with One Line of Code", arXiv:2411.16085 (2024),
//! Algorithm 1 and the authors' C-AdamW code.
//!
//! An inner update `u` (additive: `param += u`) moves coordinate `j` downhill
//! when `u_j * g_j < 0`. Cautious keeps only those coordinates and rescales
//! per tensor so the update keeps its overall size:
//!
//! ```text
//! mask_j = 1 if u_j * g_j < 0 else 0
//! update = u * mask * numel / (sum(mask) + 1)
//! ```
//!
//! (`numel / (sum(mask) + 1)` is the authors' code's version of dividing by
//! the mask's mean, safe when the mask is empty.) `g` is the gradient handed to
//! [`TaskOptimizer::step`], taken wherever the inner optimizer asked for it.
//! Unlike C-AdamW, which applies weight decay outside the mask, this wrapper
//! masks the inner update as a whole, decay included. No hyperparameters.

use crate::layout::ModelLayout;
use crate::{OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Tensor};

/// Cautious masking around any optimizer; see the [module docs](self).
pub struct Cautious {
    name: String,
    inner: Box<dyn TaskOptimizer>,
}

impl Cautious {
    /// The same wrapper under another name (the catalog's entry name, which
    /// need not repeat its inner optimizer's).
    pub fn named(mut self, name: impl Into<String>) -> Cautious {
        self.name = name.into();
        self
    }
}

impl Cautious {
    /// Masks `inner`'s updates. Named `cautious_<inner name>`.
    pub fn new(inner: Box<dyn TaskOptimizer>) -> Cautious {
        Cautious {
            name: format!("cautious_{}", inner.name()),
            inner,
        }
    }
}

/// `u * mask * numel / (sum(mask) + 1)` with `mask = (u * g < 0)`.
pub fn cautious_mask(u: &Tensor, g: &Tensor) -> Result<Tensor> {
    let mask = u.mul(g)?.lt_scalar(0.0)?;
    let kept = mask.sum_all()?.to_scalar()?;
    u.mul(&mask)?.mul_scalar(u.numel() as f64 / (kept + 1.0))
}

impl TaskOptimizer for Cautious {
    fn name(&self) -> &str {
        &self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.inner.init_state(seed, layout)
    }

    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        self.inner.query_at_params(params, ctx)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        let updates = self.inner.step(params, grads, ctx)?;
        updates.iter().zip(grads).map(|(u, g)| cautious_mask(u, g)).collect()
    }

    fn state(&self) -> OptimizerState {
        self.inner.state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.load_state(state)
    }
}
