//! AdaHessian: Yao, Gholami, Shen, Mustafa, Keutzer and Mahoney,
//! "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning",
//! AAAI 2021 (arXiv:2006.00719), Algorithm 1, as the authors' PyTorch code
//! (`amirgholami/adahessian`) computes it.
//!
//! Adam with the gradient's square replaced by the square of a Hutchinson
//! estimate of the Hessian's diagonal:
//!
//! ```text
//! D_t = u * (H u),  u Rademacher              (refreshed every `every` steps)
//! m_t = beta1 m_{t-1} + (1 - beta1) g_t
//! v_t = beta2 v_{t-1} + (1 - beta2) D_t * D_t
//! update = -lr * [ (m_t / (1 - beta1^t)) / ((sqrt(v_t) / sqrt(1 - beta2^t))^k + eps) + wd * theta ]
//! ```
//!
//! The paper's spatial averaging of `D` applies to convolution kernels only;
//! this library's models are fully connected, so none is done. With
//! `every > 1` the last estimate is reused in between (the `update_each`
//! option of later versions), which keeps `v` an average over steps.
//! Defaults are the reference's: lr 0.15, betas (0.9, 0.999), eps 1e-4,
//! hessian power `k = 1`, weight decay 0 (decoupled).

use super::{needs_curvature, ProbeState};
use crate::basic::ema;
use crate::layout::ModelLayout;
use crate::transform::Slots;
use crate::{Curvature, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Tensor};

/// AdaHessian's hyperparameters (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaHessianConfig {
    /// Learning rate.
    pub lr: f64,
    /// Gradient EMA decay.
    pub beta1: f64,
    /// EMA decay of the squared Hessian diagonal.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// `k` in `(sqrt(v))^k`.
    pub hessian_power: f64,
    /// Steps between Hessian estimates.
    pub every: u64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// The AdaHessian optimizer.
#[derive(Debug, Clone)]
pub struct AdaHessian {
    config: AdaHessianConfig,
    probes: ProbeState,
    m: Slots,
    v: Slots,
    last_diagonal: Slots,
}

impl AdaHessian {
    /// AdaHessian with these settings (call `init_state` before stepping).
    pub fn new(config: AdaHessianConfig) -> AdaHessian {
        AdaHessian {
            config,
            probes: ProbeState::new(0, &ModelLayout::any(&[])),
            m: Slots::default(),
            v: Slots::default(),
            last_diagonal: Slots::default(),
        }
    }

    fn update_of(&mut self, i: usize, param: &Tensor, grad: &Tensor, t: i32) -> Result<Tensor> {
        let c = &self.config;
        let diagonal = self.last_diagonal.get(i, grad).clone()?;
        let m = ema(self.m.get(i, grad)?, grad, c.beta1)?;
        let v = ema(self.v.get(i, grad)?, &diagonal.square()?, c.beta2)?;
        let (c1, c2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        let denom = v
            .sqrt()?
            .div_scalar(c2.sqrt())?
            .pow_scalar(c.hessian_power)?
            .add_scalar(c.eps)?;
        let direction = m.div_scalar(c1)?.div(&denom)?;
        let update = direction.add(&param.mul_scalar(c.weight_decay)?)?.mul_scalar(-c.lr)?;
        self.m.set(i, m);
        self.v.set(i, v);
        Ok(update)
    }
}

impl TaskOptimizer for AdaHessian {
    fn name(&self) -> &str {
        "adahessian"
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.probes = ProbeState::new(seed, layout);
        self.m = Slots::default();
        self.v = Slots::default();
        self.last_diagonal = Slots::default();
        Ok(())
    }

    fn step(&mut self, _params: &[Tensor], _grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        Err(needs_curvature("adahessian"))
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
            .begin_step("adahessian step", params, grads, self.config.every)?
        {
            let estimate = self.probes.diagonal(params, curvature)?;
            for (i, d) in estimate.into_iter().enumerate() {
                self.last_diagonal.get(i, &d)?;
                self.last_diagonal.set(i, d);
            }
        }
        let t = crate::step_exponent(self.probes.count());
        let probes = self.probes.clone();
        probes.updates(params, grads, |i, p, g| self.update_of(i, p, g, t))
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        self.probes.save(&mut state);
        self.m.save("", "m", &mut state);
        self.v.save("", "v", &mut state);
        self.last_diagonal.save("", "diagonal", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name(), Some(&self.probes.shapes), &self.state())?;
        state.check_kept(self.name(), &["m", "v", "diagonal"])?;
        self.probes.load(state)?;
        self.m.load("", "m", state);
        self.v.load("", "v", state);
        self.last_diagonal.load("", "diagonal", state);
        Ok(())
    }
}
