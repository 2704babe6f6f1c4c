//! LAMB: You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer and
//! Hsieh, "Large Batch Optimization for Deep Learning: Training BERT in 76
//! minutes", ICLR 2020 (arXiv:1904.00962), Algorithm 2.
//!
//! ```text
//! m_t = beta1 m + (1 - beta1) g,   v_t = beta2 v + (1 - beta2) g^2
//! r_t = (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps)
//! u_t = r_t + wd * theta
//! ratio = |theta| / |u_t|   per tensor (1 if either norm is 0)
//! update = -lr * ratio * u_t
//! ```
//!
//! The scaling function `phi` of the paper is the identity here, and "layer"
//! means one tensor. Defaults (the paper's BERT setting): betas (0.9, 0.999),
//! eps 1e-6, weight decay 0.01; lr 1e-3 (the paper scales lr with batch size).

use crate::basic::{global_norm, AddDecayedWeights, ScaleByAdam, ScaleByLr};
use crate::chain;
use crate::schedule::Constant;
use crate::transform::{ChainOptimizer, StepInfo, Transform};
use ferrograd_engine::{Result, Tensor};

/// Multiplies each update by `|param| / |update|` (the layer-wise trust
/// ratio of LAMB), or leaves it as is when either norm is zero.
#[derive(Debug, Clone, Default)]
pub struct ScaleByTrustRatio;

impl Transform for ScaleByTrustRatio {
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        updates
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                let w = global_norm(std::slice::from_ref(&info.params[i]))?;
                let n = global_norm(std::slice::from_ref(&u))?;
                if w > 0.0 && n > 0.0 {
                    u.mul_scalar(w / n)
                } else {
                    Ok(u)
                }
            })
            .collect()
    }
}

/// LAMB. Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-6, weight decay 0.01.
pub fn lamb(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "lamb",
        chain![
            ScaleByAdam::new(beta1, beta2, eps, false),
            AddDecayedWeights {
                rate: weight_decay,
                mask: None
            },
            ScaleByTrustRatio,
            ScaleByLr::new(Constant(lr))
        ],
    )
}
