//! Prodigy: Mishchenko and Defazio, "Prodigy: An Expeditiously Adaptive
//! Parameter-Free Learner", ICML 2024 (arXiv:2306.06101), Algorithm 3 (the
//! Adam version) as the authors' `prodigyopt` package computes it.
//!
//! Prodigy estimates `D`, the distance from the start `x_0` to a solution,
//! and runs Adam with step size `d * lr`, `lr = 1` by default. With `d` the
//! current estimate (starting at `d0`) and `dlr = d * lr` (times
//! `sqrt(1 - beta2^t) / (1 - beta1^t)` if `bias_correction` is set):
//!
//! ```text
//! r   = beta3 r + (d / d0) dlr <g, x_0 - x>                  (sum over all tensors)
//! m   = beta1 m + (1 - beta1) d g
//! v   = beta2 v + (1 - beta2) d^2 g^2
//! s   = beta3 s + (d / d0) dlr g                             ((d / d0) d g with safeguard_warmup)
//! d'  = max(d, d_coef * r / sum_i |s_i|)                     (d never decreases)
//! update = -dlr * (m / (sqrt(v) + d' eps) + wd * x)          (decoupled decay)
//! ```
//!
//! As in the reference, the step uses the `dlr` of the *old* `d` and the
//! epsilon of the new one; without any gradient (`sum |s| = 0`) the step is
//! zero and `r` is left as it was. The reference's `growth_rate` is infinite
//! here (`d` jumps straight to the estimate). Defaults (the reference's):
//! lr 1.0, betas (0.9, 0.999), `beta3 = sqrt(beta2)`, eps 1e-8, d0 1e-6,
//! d_coef 1, weight decay 0 (decoupled), no bias correction (the package
//! leaves it off by default; the paper's Algorithm 3 has none either).

use crate::layout::ModelLayout;
use crate::modern::{load_f64, save_f64};
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Result, Tensor};

/// Prodigy's hyperparameters; [`Default`] gives the reference defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProdigyConfig {
    /// Multiplier of `d`.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Decay of `r` and `s`.
    pub beta3: f64,
    /// Denominator stabiliser (times `d`).
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Decoupled decay (`false`: L2 added to the gradient).
    pub decouple: bool,
    /// The initial estimate.
    pub d0: f64,
    /// Multiplier of the estimate.
    pub d_coef: f64,
    /// Adam's bias correction in `dlr`.
    pub bias_correction: bool,
    /// Leave `lr` out of `s`.
    pub safeguard_warmup: bool,
}

impl Default for ProdigyConfig {
    fn default() -> Self {
        ProdigyConfig {
            lr: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            beta3: 0.999f64.sqrt(),
            eps: 1e-8,
            weight_decay: 0.0,
            decouple: true,
            d0: 1e-6,
            d_coef: 1.0,
            bias_correction: false,
            safeguard_warmup: false,
        }
    }
}

/// The whole Prodigy update, with its scalar state.
#[derive(Debug, Clone)]
pub struct ProdigyUpdate {
    /// The hyperparameters.
    pub config: ProdigyConfig,
    d: f64,
    d_max: f64,
    numerator: f64,
    k: u64,
    x0: Slots,
    m: Slots,
    v: Slots,
    s: Slots,
}

impl ProdigyUpdate {
    /// Prodigy with these hyperparameters.
    pub fn new(config: ProdigyConfig) -> ProdigyUpdate {
        ProdigyUpdate {
            config,
            d: config.d0,
            d_max: config.d0,
            numerator: 0.0,
            k: 0,
            x0: Slots::default(),
            m: Slots::default(),
            v: Slots::default(),
            s: Slots::default(),
        }
    }

    /// The current step-size estimate `d`.
    pub fn d(&self) -> f64 {
        self.d
    }
}

impl Transform for ProdigyUpdate {
    fn init(&mut self, _layout: &ModelLayout) -> Result<()> {
        *self = ProdigyUpdate::new(self.config);
        Ok(())
    }

    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let c = self.config;
        let d = self.d;
        let bc = if c.bias_correction {
            let t = crate::step_exponent(self.k + 1);
            (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t))
        } else {
            1.0
        };
        let dlr = d * c.lr * bc;
        let mut numerator = self.numerator * c.beta3;
        let mut denominator = 0.0;
        let mut grads = grads;
        for (i, g) in grads.iter_mut().enumerate() {
            let p = &info.params[i];
            if c.weight_decay != 0.0 && !c.decouple {
                *g = g.add(&p.mul_scalar(c.weight_decay)?)?;
            }
            if self.x0.all().get(i).is_none_or(|x0| x0.shape() != p.shape()) {
                self.x0.get(i, p)?;
                self.x0.set(i, p.clone());
            }
            let moved = self.x0.get(i, p)?.sub(p)?;
            numerator += (d / c.d0) * dlr * g.mul(&moved)?.sum_all()?.to_scalar()?;
            let m = self
                .m
                .get(i, g)?
                .mul_scalar(c.beta1)?
                .add(&g.mul_scalar(d * (1.0 - c.beta1))?)?;
            let v = self
                .v
                .get(i, g)?
                .mul_scalar(c.beta2)?
                .add(&g.square()?.mul_scalar(d * d * (1.0 - c.beta2))?)?;
            let s_rate = if c.safeguard_warmup {
                (d / c.d0) * d
            } else {
                (d / c.d0) * dlr
            };
            let s = self.s.get(i, g)?.mul_scalar(c.beta3)?.add(&g.mul_scalar(s_rate)?)?;
            denominator += s.abs()?.sum_all()?.to_scalar()?;
            self.m.set(i, m);
            self.v.set(i, v);
            self.s.set(i, s);
        }
        if denominator == 0.0 {
            return grads.iter().map(Tensor::zeros_like).collect::<Result<Vec<_>>>();
        }
        let d_hat = c.d_coef * numerator / denominator;
        // The reference's `d = min(d_max, d * growth_rate)` with an infinite
        // growth rate: d is the running maximum of d0 and the estimates.
        self.d_max = self.d_max.max(d_hat);
        let d_new = self.d_max;
        self.d = d_new;
        self.numerator = numerator;
        self.k += 1;
        let mut out = Vec::with_capacity(grads.len());
        for (i, p) in info.params.iter().enumerate().take(grads.len()) {
            let denom = self.v.all()[i].sqrt()?.add_scalar(d_new * c.eps)?;
            let mut dir = self.m.all()[i].div(&denom)?;
            if c.weight_decay != 0.0 && c.decouple {
                dir = dir.add(&p.mul_scalar(c.weight_decay)?)?;
            }
            out.push(dir.mul_scalar(-dlr)?);
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        save_f64(state, format!("{prefix}d"), self.d);
        save_f64(state, format!("{prefix}d_max"), self.d_max);
        save_f64(state, format!("{prefix}d_numerator"), self.numerator);
        state.counters.insert(format!("{prefix}k"), self.k);
        self.x0.save(prefix, "x0", state);
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
        self.s.save(prefix, "s", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.d = load_f64(state, &format!("{prefix}d"))?;
        self.d_max = load_f64(state, &format!("{prefix}d_max"))?;
        self.numerator = load_f64(state, &format!("{prefix}d_numerator"))?;
        self.k = state.counter(&format!("{prefix}k"))?;
        self.x0.load(prefix, "x0", state);
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.s.load(prefix, "s", state);
        Ok(())
    }
}

/// Prodigy (Adam version).
pub fn prodigy(config: ProdigyConfig) -> ChainOptimizer {
    ChainOptimizer::new("prodigy", crate::chain![ProdigyUpdate::new(config)])
}
