//! AdaBelief: Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris and
//! Duncan, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
//! Gradients", NeurIPS 2020 (arXiv:2010.07468), Algorithm 2.
//!
//! Adam's second moment `EMA(g^2)` becomes the "belief" `EMA((g - m)^2)`:
//! a gradient that matches its prediction `m` earns a large step.
//!
//! ```text
//! m_t = beta1 m_{t-1} + (1 - beta1) g_t
//! s_t = beta2 s_{t-1} + (1 - beta2) (g_t - m_t)^2 + eps
//! update = -lr * [ (m_t / (1 - beta1^t)) / (sqrt(s_t / (1 - beta2^t)) + eps) + wd * theta ]
//! ```
//!
//! As in the authors' implementation (`adabelief-pytorch` 0.2), `eps` is added
//! to the stored `s_t` itself as well as to the denominator, and its default is
//! 1e-16 (the README: "eps = 1e-16 in AdaBelief plays the role of eps = 1e-8 in
//! Adam", since it sits under the square root). Defaults: lr 1e-3, betas
//! (0.9, 0.999), eps 1e-16, weight decay 0 (decoupled, the package's default
//! `weight_decouple=True`). The package's optional RAdam-style rectification
//! is not part of the paper's Algorithm 2 and is left out.

use crate::basic::{ema, AddDecayedWeights, ScaleByLr};
use crate::chain;
use crate::onepass::{all_on_cpu, one_pass, ElementStep, TensorOpsReference};
use crate::schedule::Constant;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Element, Result, Tensor};

/// AdaBelief's direction `m_hat / (sqrt(s_hat) + eps)`.
#[derive(Debug, Clone)]
pub struct ScaleByBelief {
    /// First-moment decay.
    pub beta1: f64,
    /// Belief decay.
    pub beta2: f64,
    /// Added to `s` at every step and to the denominator.
    pub eps: f64,
    m: Slots,
    s: Slots,
}

impl ScaleByBelief {
    /// AdaBelief's moments with the given decays and epsilon.
    pub fn new(beta1: f64, beta2: f64, eps: f64) -> ScaleByBelief {
        ScaleByBelief {
            beta1,
            beta2,
            eps,
            m: Slots::default(),
            s: Slots::default(),
        }
    }
}

impl ScaleByBelief {
    /// The bias corrections `(1 - beta1^t, 1 - beta2^t)` of step `count`.
    fn corrections(&self, count: u64) -> (f64, f64) {
        let t = crate::step_exponent(count);
        (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t))
    }
}

/// [`ScaleByBelief`] for one element (state `[m, s]`), its constants
/// rounded to `T`.
struct BeliefStep<T> {
    b1: T,
    nb1: T,
    b2: T,
    nb2: T,
    eps: T,
    inv_c1: T,
    inv_sqrt_c2: T,
}

impl<T: Element> BeliefStep<T> {
    fn new(stage: &ScaleByBelief, count: u64) -> Self {
        let f = T::from_f64;
        let (c1, c2) = stage.corrections(count);
        BeliefStep {
            b1: f(stage.beta1),
            nb1: f(1.0 - stage.beta1),
            b2: f(stage.beta2),
            nb2: f(1.0 - stage.beta2),
            eps: f(stage.eps),
            inv_c1: f(1.0 / c1),
            inv_sqrt_c2: f(1.0 / c2.sqrt()),
        }
    }
}

impl<T: Element> ElementStep<T, 2> for BeliefStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [m, s]: [&mut T; 2]) -> T {
        *m = *m * self.b1 + g * self.nb1;
        let surprise = g - *m;
        *s = (*s * self.b2 + (surprise * surprise) * self.nb2) + self.eps;
        let denom = s.sqrt() * self.inv_sqrt_c2 + self.eps;
        (*m * self.inv_c1) / denom
    }
}

impl Transform for ScaleByBelief {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&BeliefStep::new(self, info.count), &BeliefStep::new(self, info.count));
        one_pass(&mut grads, [&mut self.m, &mut self.s], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.s.save(prefix, "s", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.s.load(prefix, "s", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByBelief {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let (c1, c2) = self.corrections(info.count);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = ema(self.m.get(i, g)?, g, self.beta1)?;
            let residual = g.sub(&m)?.square()?;
            let s = ema(self.s.get(i, g)?, &residual, self.beta2)?.add_scalar(self.eps)?;
            let denom = s.sqrt()?.div_scalar(c2.sqrt())?.add_scalar(self.eps)?;
            out.push(m.div_scalar(c1)?.div(&denom)?);
            self.m.set(i, m);
            self.s.set(i, s);
        }
        Ok(out)
    }
}

/// AdaBelief with decoupled weight decay `weight_decay`.
/// Paper defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-16.
pub fn adabelief(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "adabelief",
        chain![
            ScaleByBelief::new(beta1, beta2, eps),
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

        /// AdaBelief, with `eps` from its default 1e-16 up.
        #[test]
        fn adabelief_in_one_pass_is_the_tensor_form(
            run in runs(), beta1 in 0.5f64..1.0, beta2 in 0.5f64..1.0, eps in 1e-16f64..1e-2
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByBelief::new(beta1, beta2, eps), &run)?;
        }
    }
}
