//! Sophia: Liu, Li, Hall, Liang and Ma, "Sophia: A Scalable Stochastic
//! Second-order Optimizer for Language Model Pre-training", ICLR 2024
//! (arXiv:2305.14342), Algorithm 1 with the Hutchinson estimator (Sophia-H).
//!
//! A momentum step divided by a diagonal Hessian estimate, with every
//! coordinate's step clipped to `lr`: where curvature is large the step is
//! Newton-like, where it is small, negative or unreliable the clip turns it
//! into a sign-momentum step.
//!
//! ```text
//! m_t = beta1 m_{t-1} + (1 - beta1) g_t
//! every k steps (t = 1, k + 1, 2k + 1, ...):
//!     h_hat = u * (H u),  u Rademacher          (Hutchinson)
//!     h_t   = beta2 h_{t-k} + (1 - beta2) h_hat
//! otherwise h_t = h_{t-1}
//! update = -lr * [ clip(m_t / max(rho h_t, eps), -1, 1) + wd * theta ]
//! ```
//!
//! `rho` is the paper's `gamma`. Defaults follow the paper's Sophia-H
//! settings: `beta1 = 0.96`, `beta2 = 0.99`, `eps = 1e-12`, `k = 10`,
//! `gamma = 0.01`; the learning rate (1e-3) and weight decay (0) are this
//! task's, since the paper's were tuned for GPT-2 pre-training. The ratio
//! `m / h` does not change when the loss is scaled (the task's loss is a sum
//! over the batch), so `rho` means the same here as there. Tensors the
//! layout marks untrained (running statistics, frozen layers) get zero
//! updates.

use super::{needs_curvature, ProbeState};
use crate::basic::ema;
use crate::layout::ModelLayout;
use crate::transform::Slots;
use crate::{Curvature, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Tensor};

/// Sophia's hyperparameters (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SophiaConfig {
    /// Learning rate: the largest step of any coordinate (before decay).
    pub lr: f64,
    /// Gradient EMA decay.
    pub beta1: f64,
    /// Hessian-diagonal EMA decay.
    pub beta2: f64,
    /// The paper's `gamma`.
    pub rho: f64,
    /// Floor of the denominator.
    pub eps: f64,
    /// Steps between Hessian estimates (`k`).
    pub every: u64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// The Sophia optimizer.
#[derive(Debug, Clone)]
pub struct Sophia {
    config: SophiaConfig,
    probes: ProbeState,
    m: Slots,
    h: Slots,
}

impl Sophia {
    /// Sophia with these settings (call `init_state` before stepping).
    pub fn new(config: SophiaConfig) -> Sophia {
        Sophia {
            config,
            probes: ProbeState::new(0, &ModelLayout::any(&[])),
            m: Slots::default(),
            h: Slots::default(),
        }
    }

    /// The current Hessian-diagonal estimate of each tensor.
    pub fn hessian_diagonal(&self) -> &[Tensor] {
        self.h.all()
    }

    fn refresh_hessian(&mut self, params: &[Tensor], curvature: &mut dyn Curvature) -> Result<()> {
        let estimate = self.probes.diagonal(params, curvature)?;
        for (i, h_hat) in estimate.iter().enumerate() {
            let h = ema(self.h.get(i, h_hat)?, h_hat, self.config.beta2)?;
            self.h.set(i, h);
        }
        Ok(())
    }

    fn update_of(&mut self, i: usize, param: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let m = ema(self.m.get(i, grad)?, grad, c.beta1)?;
        let h = self.h.get(i, grad).clone()?;
        let ratio = m.div(&h.mul_scalar(c.rho)?.maximum_scalar(c.eps)?)?.clamp(-1.0, 1.0)?;
        let update = ratio.add(&param.mul_scalar(c.weight_decay)?)?.mul_scalar(-c.lr)?;
        self.m.set(i, m);
        Ok(update)
    }
}

impl TaskOptimizer for Sophia {
    fn name(&self) -> &str {
        "sophia"
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.probes = ProbeState::new(seed, layout);
        self.m = Slots::default();
        self.h = Slots::default();
        Ok(())
    }

    fn step(&mut self, _params: &[Tensor], _grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        Err(needs_curvature("sophia"))
    }

    fn uses_curvature(&self) -> bool {
        true
    }

    fn step_with_curvature(
        &mut self,
        params: &[Tensor],
        grads: &[Tensor],
        curvature: &mut dyn Curvature,
        _ctx: &StepContext,
    ) -> Result<Vec<Tensor>> {
        if self
            .probes
            .begin_step("sophia step", params, grads, self.config.every)?
        {
            self.refresh_hessian(params, curvature)?;
        }
        let probes = self.probes.clone();
        probes.updates(params, grads, |i, p, g| self.update_of(i, p, g))
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        self.probes.save(&mut state);
        self.m.save("", "m", &mut state);
        self.h.save("", "h", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name(), Some(&self.probes.shapes), &self.state())?;
        state.check_kept(self.name(), &["m", "h"])?;
        self.probes.load(state)?;
        self.m.load("", "m", state);
        self.h.load("", "h", state);
        Ok(())
    }
}
