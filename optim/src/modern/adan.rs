//! Adan: Xie, Zhou, Li, Lin and Yan, "Adan: Adaptive Nesterov Momentum
//! Algorithm for Faster Optimizing Deep Models", IEEE TPAMI 2024
//! (arXiv:2208.06677), Algorithm 1, as the authors' implementation
//! (`sail-sg/Adan`) computes it.
//!
//! **Beta convention.** The paper writes `m_k = (1 - b1) m_{k-1} + b1 g_k` with
//! `b1, b2, b3 = 0.02, 0.08, 0.01`; the authors' code, and this module, use the
//! EMA-decay convention `m_k = beta1 m_{k-1} + (1 - beta1) g_k`, so the same
//! defaults read `beta1, beta2, beta3 = 0.98, 0.92, 0.99` (`beta = 1 - b`).
//!
//! ```text
//! d_t = g_t - g_{t-1}                 (d_1 = 0: g_0 is taken to be g_1)
//! m_t = beta1 m + (1 - beta1) g_t
//! v_t = beta2 v + (1 - beta2) d_t
//! n_t = beta3 n + (1 - beta3) (g_t + beta2 d_t)^2
//! u_t = [ m_t / (1 - beta1^t) + beta2 v_t / (1 - beta2^t) ] / (sqrt(n_t / (1 - beta3^t)) + eps)
//! theta' = (theta - lr u_t) / (1 + lr wd)          (proximal decay, the default)
//! theta' = theta (1 - lr wd) - lr u_t              (no_prox = 1)
//! update = theta' - theta
//! ```
//!
//! Bias corrections are those of the authors' code (the paper's Algorithm 1
//! has none). Defaults: lr 1e-3, eps 1e-8, weight decay 0 (the paper's
//! experiments use 0.02 with ViTs).

use crate::basic::ema;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Result, Tensor};

/// The whole Adan update (direction, step size and weight decay), because the
/// proximal decay needs the learning rate.
#[derive(Debug, Clone)]
pub struct ScaleByAdan {
    /// Learning rate.
    pub lr: f64,
    /// Gradient EMA decay.
    pub beta1: f64,
    /// Gradient-difference EMA decay.
    pub beta2: f64,
    /// Second-moment decay.
    pub beta3: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Decoupled (`true`) instead of proximal (`false`) decay.
    pub no_prox: bool,
    m: Slots,
    v: Slots,
    n: Slots,
    prev: Slots,
}

impl ScaleByAdan {
    /// Adan with the given hyperparameters (EMA-decay convention for the betas).
    pub fn new(lr: f64, beta1: f64, beta2: f64, beta3: f64, eps: f64, weight_decay: f64, no_prox: bool) -> Self {
        ScaleByAdan {
            lr,
            beta1,
            beta2,
            beta3,
            eps,
            weight_decay,
            no_prox,
            m: Slots::default(),
            v: Slots::default(),
            n: Slots::default(),
            prev: Slots::default(),
        }
    }
}

impl Transform for ScaleByAdan {
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let t = info.count as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        let c3 = 1.0 - self.beta3.powi(t);
        let (lr, wd) = (self.lr, self.weight_decay);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            if info.count == 1 {
                self.prev.get(i, g);
                self.prev.set(i, g.clone());
            }
            let diff = g.sub(self.prev.get(i, g))?;
            let m = ema(self.m.get(i, g), g, self.beta1)?;
            let v = ema(self.v.get(i, g), &diff, self.beta2)?;
            let corrected = g.add(&diff.mul_scalar(self.beta2))?;
            let n = ema(self.n.get(i, g), &corrected.square(), self.beta3)?;
            let denom = n.sqrt().div_scalar(c3.sqrt()).add_scalar(self.eps);
            let u = m.div_scalar(c1).add(&v.mul_scalar(self.beta2 / c2))?.div(&denom)?;
            let p = &info.params[i];
            let step = if self.no_prox {
                u.add(&p.mul_scalar(wd))?.mul_scalar(-lr)
            } else {
                u.add(&p.mul_scalar(wd))?.mul_scalar(-lr / (1.0 + lr * wd))
            };
            out.push(step);
            self.m.set(i, m);
            self.v.set(i, v);
            self.n.set(i, n);
            self.prev.set(i, g.clone());
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
        self.n.save(prefix, "n", state);
        self.prev.save(prefix, "prev_grad", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.n.load(prefix, "n", state);
        self.prev.load(prefix, "prev_grad", state);
        Ok(())
    }
}

/// Adan. Defaults (authors' code): lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8,
/// weight decay 0, proximal decay.
pub fn adan(lr: f64, beta1: f64, beta2: f64, beta3: f64, eps: f64, weight_decay: f64, no_prox: bool) -> ChainOptimizer {
    let stage = ScaleByAdan::new(lr, beta1, beta2, beta3, eps, weight_decay, no_prox);
    ChainOptimizer::new("adan", crate::chain![stage])
}
