//! Lion: Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu and Le,
//! "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023
//! (arXiv:2302.06675), Algorithm 2.
//!
//! ```text
//! c_t = beta1 m_{t-1} + (1 - beta1) g_t
//! update = -lr * (sign(c_t) + wd * theta)
//! m_t = beta2 m_{t-1} + (1 - beta2) g_t
//! ```
//!
//! Every coordinate moves by exactly `lr` (plus decay), so Lion wants a
//! learning rate 3-10x smaller than AdamW's and a decay 3-10x larger (the
//! paper's advice). Defaults: lr 1e-4, betas (0.9, 0.99), weight decay 0
//! (decoupled; the paper's Algorithm 2 multiplies it by lr as here).

use crate::basic::{ema, AddDecayedWeights, ScaleByLr};
use crate::chain;
use crate::onepass::{all_on_cpu, one_pass, ElementStep, TensorOpsReference};
use crate::schedule::Constant;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Element, Result, Tensor, UnaryOp};

/// Lion's direction `sign(beta1 m + (1 - beta1) g)`, with momentum decay `beta2`.
#[derive(Debug, Clone)]
pub struct ScaleByLion {
    /// Interpolation for the update.
    pub beta1: f64,
    /// Momentum decay.
    pub beta2: f64,
    m: Slots,
}

impl ScaleByLion {
    /// Lion's sign direction with the given betas.
    pub fn new(beta1: f64, beta2: f64) -> ScaleByLion {
        ScaleByLion {
            beta1,
            beta2,
            m: Slots::default(),
        }
    }
}

/// [`ScaleByLion`] for one element (state `[m]`), its constants rounded to
/// `T`.
struct LionStep<T> {
    b1: T,
    nb1: T,
    b2: T,
    nb2: T,
}

impl<T: Element> LionStep<T> {
    fn new(stage: &ScaleByLion) -> Self {
        let f = T::from_f64;
        LionStep {
            b1: f(stage.beta1),
            nb1: f(1.0 - stage.beta1),
            b2: f(stage.beta2),
            nb2: f(1.0 - stage.beta2),
        }
    }
}

impl<T: Element> ElementStep<T, 1> for LionStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [m]: [&mut T; 1]) -> T {
        let interpolated = *m * self.b1 + g * self.nb1;
        *m = *m * self.b2 + g * self.nb2;
        UnaryOp::Sign.apply(interpolated)
    }
}

impl Transform for ScaleByLion {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&LionStep::new(self), &LionStep::new(self));
        one_pass(&mut grads, [&mut self.m], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByLion {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = self.m.get(i, g)?.clone();
            out.push(ema(&m, g, self.beta1)?.sign()?);
            self.m.set(i, ema(&m, g, self.beta2)?);
        }
        Ok(out)
    }
}

/// Lion with decoupled weight decay. Paper defaults: lr 1e-4, betas (0.9, 0.99).
pub fn lion(lr: f64, beta1: f64, beta2: f64, weight_decay: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "lion",
        chain![
            ScaleByLion::new(beta1, beta2),
            AddDecayedWeights {
                rate: weight_decay,
                mask: None
            },
            ScaleByLr::new(Constant(lr))
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onepass::testing::{assert_one_pass_matches_tensor_ops, runs};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Lion: the sign (zeros kept) and the momentum.
        #[test]
        fn lion_in_one_pass_is_the_tensor_form(run in runs(), beta1 in 0.0f64..1.0, beta2 in 0.0f64..1.0) {
            assert_one_pass_matches_tensor_ops(ScaleByLion::new(beta1, beta2), &run)?;
        }
    }
}
