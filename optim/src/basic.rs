//! The elementary transformations: clipping, scaling by a learning rate,
//! weight decay, and the Adam moment estimate.

use crate::schedule::Schedule;
use crate::transform::{Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Result, Tensor};

/// Clamps every update element into `[-limit, limit]`.
#[derive(Debug, Clone)]
pub struct ClipByValue {
    /// The bound.
    pub limit: f64,
}

impl Transform for ClipByValue {
    fn update(&mut self, updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        updates.iter().map(|u| u.clamp(-self.limit, self.limit)).collect()
    }
}

/// Scales all updates together so their global L2 norm is at most `max_norm`.
#[derive(Debug, Clone)]
pub struct ClipByGlobalNorm {
    /// The largest allowed norm.
    pub max_norm: f64,
}

/// The L2 norm of all tensors together.
pub fn global_norm(tensors: &[Tensor]) -> Result<f64> {
    let mut sum = 0.0;
    for t in tensors {
        sum += t.square().sum_all().to_scalar()?;
    }
    Ok(sum.sqrt())
}

impl Transform for ClipByGlobalNorm {
    fn update(&mut self, updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let norm = global_norm(&updates)?;
        if norm <= self.max_norm || norm == 0.0 {
            return Ok(updates);
        }
        let factor = self.max_norm / norm;
        Ok(updates.iter().map(|u| u.mul_scalar(factor)).collect())
    }
}

/// Multiplies updates by `-lr(t)`: the last stage of most optimizers, turning
/// a direction into a step.
pub struct ScaleByLr {
    /// The learning-rate schedule.
    pub schedule: Box<dyn Schedule>,
}

impl ScaleByLr {
    /// A stage with learning-rate schedule `schedule`.
    pub fn new(schedule: impl Schedule + 'static) -> ScaleByLr {
        ScaleByLr {
            schedule: Box::new(schedule),
        }
    }
}

impl Transform for ScaleByLr {
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let lr = self.schedule.lr(info.count, info.ctx);
        Ok(updates.iter().map(|u| u.mul_scalar(-lr)).collect())
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.schedule.save(prefix, state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.schedule.load(prefix, state)
    }
}

/// Adds `rate * param` to each update (decoupled weight decay when placed
/// after the adaptive stage, L2 regularisation when placed before it).
/// `mask[i] == false` exempts parameter `i`.
#[derive(Debug, Clone)]
pub struct AddDecayedWeights {
    /// The decay rate.
    pub rate: f64,
    /// Which parameters decay (all if `None`).
    pub mask: Option<Vec<bool>>,
}

impl Transform for AddDecayedWeights {
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.rate == 0.0 {
            return Ok(updates);
        }
        updates
            .into_iter()
            .enumerate()
            .map(|(i, u)| match &self.mask {
                Some(mask) if !mask.get(i).copied().unwrap_or(true) => Ok(u),
                _ => u.add(&info.params[i].mul_scalar(self.rate)),
            })
            .collect()
    }
}

/// Adam's direction `m_hat / (sqrt(v_hat) + eps)` (Kingma and Ba 2015,
/// Algorithm 1), optionally with AMSGrad's running maximum of `v`
/// (Reddi et al. 2018, as PyTorch implements it: the maximum of the raw `v`,
/// bias-corrected afterwards).
#[derive(Debug, Clone)]
pub struct ScaleByAdam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Use the running maximum of `v` (AMSGrad).
    pub amsgrad: bool,
    m: Slots,
    v: Slots,
    v_max: Slots,
}

impl ScaleByAdam {
    /// Adam's moments with the given decays and epsilon.
    pub fn new(beta1: f64, beta2: f64, eps: f64, amsgrad: bool) -> Self {
        ScaleByAdam {
            beta1,
            beta2,
            eps,
            amsgrad,
            m: Slots::default(),
            v: Slots::default(),
            v_max: Slots::default(),
        }
    }
}

/// `decay * old + (1 - decay) * new`.
pub fn ema(old: &Tensor, new: &Tensor, decay: f64) -> Result<Tensor> {
    old.mul_scalar(decay).add(&new.mul_scalar(1.0 - decay))
}

impl Transform for ScaleByAdam {
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let t = info.count as i32;
        let (c1, c2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = ema(self.m.get(i, g), g, self.beta1)?;
            let v = ema(self.v.get(i, g), &g.square(), self.beta2)?;
            let v_used = if self.amsgrad {
                let v_max = self.v_max.get(i, g).maximum(&v)?;
                self.v_max.set(i, v_max.clone());
                v_max
            } else {
                v.clone()
            };
            out.push(
                m.div_scalar(c1)
                    .div(&v_used.div_scalar(c2).sqrt().add_scalar(self.eps))?,
            );
            self.m.set(i, m);
            self.v.set(i, v);
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
        self.v_max.save(prefix, "v_max", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.v_max.load(prefix, "v_max", state);
        Ok(())
    }
}
