//! LARS: You, Gitman and Ginsburg, "Large Batch Training of Convolutional
//! Networks", arXiv:1708.03888 (2017), Algorithm 1.
//!
//! ```text
//! local_lr = eta * |w| / (|g| + beta * |w|)     per tensor (1 if |w| or |g| is 0)
//! v_t = momentum * v_{t-1} + lr * local_lr * (g + beta * w)
//! update = -v_t
//! ```
//!
//! `eta` is the trust coefficient (0.001 in the paper), `beta` the weight
//! decay (5e-4 in the paper's AlexNet runs), momentum 0.9. The fallback to a
//! local rate of 1 for zero norms follows common implementations (optax,
//! torchlars); the paper does not discuss it. LARS is meant for large global
//! rates (the paper's reach 2-30 with polynomial decay); the default lr 1.0 is
//! this library's choice. Every tensor is adapted, biases included.

use crate::basic::{global_norm, ScaleByLr};
use crate::chain;
use crate::schedule::Constant;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Result, Tensor};

/// `local_lr * (g + beta * w)` with LARS's layer-wise local learning rate.
#[derive(Debug, Clone)]
pub struct ScaleByLarsTrust {
    /// The trust coefficient `eta`.
    pub trust_coefficient: f64,
    /// The weight decay `beta`.
    pub weight_decay: f64,
}

impl Transform for ScaleByLarsTrust {
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        grads
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let p = &info.params[i];
                let w = global_norm(std::slice::from_ref(p))?;
                let gn = global_norm(std::slice::from_ref(&g))?;
                let local = if w > 0.0 && gn > 0.0 {
                    self.trust_coefficient * w / (gn + self.weight_decay * w)
                } else {
                    1.0
                };
                g.add(&p.mul_scalar(self.weight_decay)?)?.mul_scalar(local)
            })
            .collect()
    }
}

/// Heavy-ball momentum on the incoming updates: `v = momentum * v + u`,
/// emitting `v` (optax's `trace`).
#[derive(Debug, Clone)]
pub struct Trace {
    /// The momentum coefficient.
    pub momentum: f64,
    v: Slots,
}

impl Trace {
    /// A momentum buffer with coefficient `momentum`.
    pub fn new(momentum: f64) -> Trace {
        Trace {
            momentum,
            v: Slots::default(),
        }
    }
}

impl Transform for Trace {
    fn update(&mut self, updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            let v = self.v.get(i, u)?.mul_scalar(self.momentum)?.add(u)?;
            self.v.set(i, v.clone());
            out.push(v);
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.v.save(prefix, "v", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.v.load(prefix, "v", state);
        Ok(())
    }
}

/// LARS. Defaults: lr 1.0, momentum 0.9, weight decay 5e-4, trust coefficient 1e-3.
pub fn lars(lr: f64, momentum: f64, weight_decay: f64, trust_coefficient: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "lars",
        chain![
            ScaleByLarsTrust {
                trust_coefficient,
                weight_decay
            },
            ScaleByLr::new(Constant(lr)),
            Trace::new(momentum)
        ],
    )
}
