//! Newer algorithms: AdaBelief, Lion, Adan, LAMB, LARS, Schedule-Free SGD and
//! AdamW, Muon, Prodigy.
//!
//! Each lives in its own file with its formula, its paper's defaults and a
//! citation. Most are chains of [`Transform`](crate::transform::Transform)s
//! run by a [`ChainOptimizer`](crate::transform::ChainOptimizer); the
//! Schedule-Free pair is a [`TaskOptimizer`](crate::TaskOptimizer) of its own
//! because it asks for gradients away from the model's parameters.
//!
//! Conventions shared by the family:
//! - updates are *additive* (`param += update`), so every formula below ends
//!   in `update = -lr * (...)`;
//! - weight decay is decoupled (AdamW style, Loshchilov and Hutter 2019)
//!   unless an algorithm's own paper says otherwise;
//! - scalar state (Prodigy's `d`, Schedule-Free's weight sum) is saved as the
//!   bit pattern of the `f64` in [`OptimizerState::counters`], so a resumed
//!   run continues bit for bit.

pub mod adabelief;
pub mod adan;
pub mod lamb;
pub mod lars;
pub mod lion;
pub mod muon;
pub mod prodigy;
pub mod schedule_free;

pub use adabelief::{adabelief, ScaleByBelief};
pub use adan::{adan, ScaleByAdan};
pub use lamb::{lamb, ScaleByTrustRatio};
pub use lars::{lars, ScaleByLarsTrust, Trace};
pub use lion::{lion, ScaleByLion};
pub use muon::{muon, newton_schulz5, MuonConfig, MuonUpdate};
pub use prodigy::{prodigy, ProdigyConfig, ProdigyUpdate};
pub use schedule_free::ScheduleFree;

use crate::{HpSpec, HyperParams, OptimizerInfo, OptimizerState};
use ferrograd_engine::{Error, Result};

/// Saves an `f64` exactly, as its bit pattern, under counter `name`.
pub(crate) fn save_f64(state: &mut OptimizerState, name: String, value: f64) {
    state.counters.insert(name, value.to_bits());
}

/// Reads back what [`save_f64`] wrote.
pub(crate) fn load_f64(state: &OptimizerState, name: &str) -> Result<f64> {
    state.counter(name).map(f64::from_bits)
}

/// A hyperparameter that must be a whole number of at least `min`.
pub(crate) fn whole(h: &HyperParams, name: &str, min: u64) -> Result<u64> {
    let v = h.get(name);
    if v.fract() != 0.0 || v < min as f64 {
        return Err(Error::invalid(
            "hyperparameter",
            format!("{name} must be a whole number >= {min}, got {v}"),
        ));
    }
    Ok(v as u64)
}

/// A 0/1 hyperparameter.
pub(crate) fn flag(h: &HyperParams, name: &str) -> Result<bool> {
    let v = h.get(name);
    if v == 0.0 || v == 1.0 {
        Ok(v == 1.0)
    } else {
        Err(Error::invalid(
            "hyperparameter",
            format!("{name} must be 0 or 1, got {v}"),
        ))
    }
}

/// A hyperparameter in `[0, 1)` (a decay rate).
pub(crate) fn decay(h: &HyperParams, name: &str) -> Result<f64> {
    let v = h.get(name);
    if !(0.0..1.0).contains(&v) {
        return Err(Error::invalid(
            "hyperparameter",
            format!("{name} must lie in [0, 1), got {v}"),
        ));
    }
    Ok(v)
}

/// Shorthand for a [`HpSpec`] in the tables below.
pub(crate) const fn hp(name: &'static str, default: f64, about: &'static str) -> HpSpec {
    HpSpec { name, default, about }
}

const ADABELIEF_HPS: &[HpSpec] = &[
    hp("lr", 1e-3, "learning rate"),
    hp("beta1", 0.9, "first-moment decay"),
    hp("beta2", 0.999, "decay of the belief s = EMA((g - m)^2)"),
    hp("eps", 1e-16, "added to s at every step and to the denominator"),
    hp("weight_decay", 0.0, "decoupled weight decay"),
];

const LION_HPS: &[HpSpec] = &[
    hp("lr", 1e-4, "learning rate"),
    hp("beta1", 0.9, "interpolation used for the sign update"),
    hp("beta2", 0.99, "momentum decay"),
    hp("weight_decay", 0.0, "decoupled weight decay"),
];

const ADAN_HPS: &[HpSpec] = &[
    hp("lr", 1e-3, "learning rate"),
    hp("beta1", 0.98, "gradient EMA decay (paper's beta1 = 0.02 is 1 - this)"),
    hp("beta2", 0.92, "gradient-difference EMA decay (paper's 0.08)"),
    hp("beta3", 0.99, "second-moment decay (paper's 0.01)"),
    hp("eps", 1e-8, "denominator stabiliser"),
    hp("weight_decay", 0.0, "weight decay (proximal by default)"),
    hp(
        "no_prox",
        0.0,
        "1: decoupled decay p *= 1 - lr*wd instead of the proximal p /= 1 + lr*wd",
    ),
];

const LAMB_HPS: &[HpSpec] = &[
    hp("lr", 1e-3, "learning rate"),
    hp("beta1", 0.9, "first-moment decay"),
    hp("beta2", 0.999, "second-moment decay"),
    hp("eps", 1e-6, "denominator stabiliser"),
    hp("weight_decay", 0.01, "decoupled weight decay, inside the trust ratio"),
];

const LARS_HPS: &[HpSpec] = &[
    hp("lr", 1.0, "global learning rate (gamma)"),
    hp("momentum", 0.9, "heavy-ball momentum"),
    hp("weight_decay", 5e-4, "weight decay (beta), inside the trust ratio"),
    hp(
        "trust_coefficient",
        1e-3,
        "eta in the local learning rate eta*|w|/(|g| + beta*|w|)",
    ),
];

const SF_SGD_HPS: &[HpSpec] = &[
    hp("lr", 1.0, "learning rate of the z sequence"),
    hp("momentum", 0.9, "interpolation beta: y = (1 - beta) z + beta x"),
    hp("weight_decay", 0.0, "weight decay, evaluated at y"),
    hp("warmup_steps", 0.0, "linear learning-rate warmup steps"),
    hp("r", 0.0, "polynomial weighting power of the average"),
    hp(
        "weight_lr_power",
        2.0,
        "the average weights step t by lr_max^weight_lr_power",
    ),
    // Default 1: under the task's protocol a query every step discards every
    // step's BatchNorm running-statistics update, which ruins evaluation.
    hp(
        "hold_y",
        1.0,
        "1: the model holds y instead of x (no query; evaluation at y); 0: query y, hold x",
    ),
];

const SF_ADAMW_HPS: &[HpSpec] = &[
    hp("lr", 0.0025, "learning rate of the z sequence"),
    hp("beta1", 0.9, "interpolation beta: y = (1 - beta1) z + beta1 x"),
    hp("beta2", 0.999, "second-moment decay"),
    hp("eps", 1e-8, "denominator stabiliser"),
    hp("weight_decay", 0.0, "decoupled weight decay, evaluated at y"),
    hp("warmup_steps", 0.0, "linear learning-rate warmup steps"),
    hp("r", 0.0, "polynomial weighting power of the average"),
    hp(
        "weight_lr_power",
        2.0,
        "the average weights step t by lr_max^weight_lr_power",
    ),
    // Default 1: under the task's protocol a query every step discards every
    // step's BatchNorm running-statistics update, which ruins evaluation.
    hp(
        "hold_y",
        1.0,
        "1: the model holds y instead of x (no query; evaluation at y); 0: query y, hold x",
    ),
];

const MUON_HPS: &[HpSpec] = &[
    hp("lr", 0.02, "learning rate of the matrices (orthogonalised momentum)"),
    hp("momentum", 0.95, "momentum of the matrices"),
    hp("nesterov", 1.0, "1: Nesterov momentum"),
    hp("ns_steps", 5.0, "Newton-Schulz iterations"),
    hp(
        "weight_decay",
        0.0,
        "decoupled weight decay (each group with its own lr)",
    ),
    hp("adam_lr", 3e-4, "AdamW learning rate for tensors that are not matrices"),
    hp("adam_beta1", 0.9, "AdamW first-moment decay"),
    hp("adam_beta2", 0.95, "AdamW second-moment decay"),
    hp("adam_eps", 1e-10, "AdamW denominator stabiliser"),
];

const PRODIGY_HPS: &[HpSpec] = &[
    hp("lr", 1.0, "multiplier of the estimated step size d"),
    hp("beta1", 0.9, "first-moment decay"),
    hp("beta2", 0.999, "second-moment decay"),
    hp("beta3", 0.0, "decay of the d estimate's sums; 0 selects sqrt(beta2)"),
    hp("eps", 1e-8, "denominator stabiliser (scaled by d)"),
    hp("weight_decay", 0.0, "weight decay"),
    hp(
        "decouple",
        1.0,
        "1: AdamW-style decoupled decay; 0: L2 added to the gradient",
    ),
    hp("d0", 1e-6, "initial d estimate"),
    hp("d_coef", 1.0, "multiplier of the d estimate"),
    hp("bias_correction", 0.0, "1: Adam's bias correction in the step size"),
    hp("safeguard_warmup", 0.0, "1: leave lr out of the denominator sum"),
];

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "adabelief",
        about: "AdaBelief (Zhuang et al. 2020): Adam whose denominator tracks (g - m)^2",
        hyperparams: ADABELIEF_HPS,
        build: |h| {
            Ok(Box::new(adabelief(
                h.get("lr"),
                decay(h, "beta1")?,
                decay(h, "beta2")?,
                h.get("eps"),
                h.get("weight_decay"),
            )))
        },
    },
    OptimizerInfo {
        name: "lion",
        about: "Lion (Chen et al. 2023): sign of an interpolated momentum, decoupled decay",
        hyperparams: LION_HPS,
        build: |h| {
            Ok(Box::new(lion(
                h.get("lr"),
                decay(h, "beta1")?,
                decay(h, "beta2")?,
                h.get("weight_decay"),
            )))
        },
    },
    OptimizerInfo {
        name: "adan",
        about: "Adan (Xie et al. 2022): Nesterov-style moments of gradients and their differences",
        hyperparams: ADAN_HPS,
        build: |h| {
            Ok(Box::new(adan(
                h.get("lr"),
                decay(h, "beta1")?,
                decay(h, "beta2")?,
                decay(h, "beta3")?,
                h.get("eps"),
                h.get("weight_decay"),
                flag(h, "no_prox")?,
            )))
        },
    },
    OptimizerInfo {
        name: "lamb",
        about: "LAMB (You et al. 2019): Adam direction scaled by a layer-wise trust ratio",
        hyperparams: LAMB_HPS,
        build: |h| {
            Ok(Box::new(lamb(
                h.get("lr"),
                decay(h, "beta1")?,
                decay(h, "beta2")?,
                h.get("eps"),
                h.get("weight_decay"),
            )))
        },
    },
    OptimizerInfo {
        name: "lars",
        about: "LARS (You et al. 2017): momentum SGD with a layer-wise trust ratio",
        hyperparams: LARS_HPS,
        build: |h| {
            Ok(Box::new(lars(
                h.get("lr"),
                decay(h, "momentum")?,
                h.get("weight_decay"),
                h.get("trust_coefficient"),
            )))
        },
    },
    OptimizerInfo {
        name: "sf_sgd",
        about: "Schedule-Free SGD (Defazio et al. 2024): gradients at y, the model holds the average x",
        hyperparams: SF_SGD_HPS,
        build: |h| {
            Ok(Box::new(
                ScheduleFree::sgd(
                    h.get("lr"),
                    decay(h, "momentum")?,
                    h.get("weight_decay"),
                    whole(h, "warmup_steps", 0)?,
                )
                .with_weighting(h.get("r"), h.get("weight_lr_power"))
                .holding_y(flag(h, "hold_y")?),
            ))
        },
    },
    OptimizerInfo {
        name: "sf_adamw",
        about: "Schedule-Free AdamW (Defazio et al. 2024): gradients at y, the model holds the average x",
        hyperparams: SF_ADAMW_HPS,
        build: |h| {
            Ok(Box::new(
                ScheduleFree::adamw(
                    h.get("lr"),
                    decay(h, "beta1")?,
                    decay(h, "beta2")?,
                    h.get("eps"),
                    h.get("weight_decay"),
                    whole(h, "warmup_steps", 0)?,
                )
                .with_weighting(h.get("r"), h.get("weight_lr_power"))
                .holding_y(flag(h, "hold_y")?),
            ))
        },
    },
    OptimizerInfo {
        name: "muon",
        about: "Muon (Jordan et al. 2024): Newton-Schulz-orthogonalised momentum for matrices, AdamW for the rest",
        hyperparams: MUON_HPS,
        build: |h| {
            Ok(Box::new(muon(MuonConfig {
                lr: h.get("lr"),
                momentum: decay(h, "momentum")?,
                nesterov: flag(h, "nesterov")?,
                ns_steps: whole(h, "ns_steps", 1)? as usize,
                weight_decay: h.get("weight_decay"),
                adam_lr: h.get("adam_lr"),
                adam_beta1: decay(h, "adam_beta1")?,
                adam_beta2: decay(h, "adam_beta2")?,
                adam_eps: h.get("adam_eps"),
            })))
        },
    },
    OptimizerInfo {
        name: "prodigy",
        about: "Prodigy (Mishchenko & Defazio 2023): Adam with a learning-rate-free D estimate",
        hyperparams: PRODIGY_HPS,
        build: |h| {
            let d0 = h.get("d0");
            if d0 <= 0.0 {
                return Err(Error::invalid(
                    "hyperparameter",
                    format!("d0 must be positive, got {d0}"),
                ));
            }
            let beta2 = decay(h, "beta2")?;
            let beta3 = if h.get("beta3") == 0.0 {
                beta2.sqrt()
            } else {
                decay(h, "beta3")?
            };
            Ok(Box::new(prodigy(ProdigyConfig {
                lr: h.get("lr"),
                beta1: decay(h, "beta1")?,
                beta2,
                beta3,
                eps: h.get("eps"),
                weight_decay: h.get("weight_decay"),
                decouple: flag(h, "decouple")?,
                d0,
                d_coef: h.get("d_coef"),
                bias_correction: flag(h, "bias_correction")?,
                safeguard_warmup: flag(h, "safeguard_warmup")?,
            })))
        },
    },
];
