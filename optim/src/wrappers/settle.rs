//! Settling: hold the model still from a given epoch on.
//!
//! From the settle epoch on, the wrapper returns zero updates and asks for
//! its gradient at the current parameters
//! ([`TaskOptimizer::query_at_params`]), which the task's protocol answers
//! without moving the BatchNorm running statistics. The model then stays
//! exactly as it is, no later epoch can improve on the validation loss by
//! chance, and an early-stopping rule with patience `p` ends the run at most
//! `p` epochs after it settles. Before the settle epoch the inner optimizer
//! runs unchanged. Once settled, the inner optimizer is no longer called
//! (epochs only move forward, so it never would be again). The wrapper
//! keeps no state of its own: its saved state is the inner optimizer's.

use crate::layout::ModelLayout;
use crate::{OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Tensor};

/// Holds the model still from epoch `from` on; see the [module docs](self).
pub struct Settle {
    inner: Box<dyn TaskOptimizer>,
    from: Option<f64>,
    zeros: Vec<Tensor>,
}

impl Settle {
    /// `inner` until epoch `from` (`None`: never settle), then nothing.
    pub fn new(inner: Box<dyn TaskOptimizer>, from: Option<f64>) -> Settle {
        Settle {
            inner,
            from,
            zeros: Vec::new(),
        }
    }

    /// Whether the model is held still in `epoch`.
    pub fn settled(&self, epoch: usize) -> bool {
        self.from.is_some_and(|at| epoch as f64 >= at)
    }

    /// Zero updates shaped like `grads`, kept from step to step.
    fn zero_updates(&mut self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        let reusable = self.zeros.len() == grads.len()
            && self
                .zeros
                .iter()
                .zip(grads)
                .all(|(z, g)| z.shape() == g.shape() && z.dtype() == g.dtype() && z.device() == g.device());
        if !reusable {
            self.zeros = grads.iter().map(Tensor::zeros_like).collect::<Result<Vec<_>>>()?;
        }
        Ok(self.zeros.clone())
    }
}

impl TaskOptimizer for Settle {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.zeros.clear();
        self.inner.init_state(seed, layout)
    }

    /// Settled: the gradient at the current parameters, asked for
    /// explicitly (so the protocol leaves the running statistics alone).
    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        if self.settled(ctx.epoch) {
            return Ok(Some(params.to_vec()));
        }
        self.inner.query_at_params(params, ctx)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        if self.settled(ctx.epoch) {
            return self.zero_updates(grads);
        }
        self.inner.step(params, grads, ctx)
    }

    fn state(&self) -> OptimizerState {
        self.inner.state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::HyperParams;
    use ferrograd_engine::{DType, Shape};

    #[test]
    fn steps_like_its_inner_optimizer_then_holds_still() {
        let info = catalog::lookup("sgd").unwrap();
        let mut opt = Settle::new((info.build)(&HyperParams::defaults(info)).unwrap(), Some(2.0));
        let shapes = [Shape::from([3])];
        opt.init_state(0, &ModelLayout::any(&shapes)).unwrap();
        let params = [Tensor::ones([3], DType::F64).unwrap()];
        let grads = [params[0].mul_scalar(0.5).unwrap()];
        for epoch in 0..4 {
            let ctx = StepContext {
                epoch,
                step: epoch,
                ..StepContext::default()
            };
            let query = opt.query_at_params(&params, &ctx).unwrap();
            let u = opt.step(&params, &grads, &ctx).unwrap()[0].to_vec::<f64>().unwrap();
            if epoch < 2 {
                assert!(query.is_none() && u.iter().all(|&v| v < 0.0), "epoch {epoch}: {u:?}");
            } else {
                assert_eq!(
                    query.unwrap()[0].to_vec::<f64>().unwrap(),
                    params[0].to_vec::<f64>().unwrap()
                );
                assert_eq!(u, vec![0.0; 3], "epoch {epoch}");
            }
        }
    }
}
