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

use crate::{hp, HpSpec, OptimizerInfo, OptimizerState};
use ferrograd_engine::Result;

/// Saves an `f64` exactly, as its bit pattern, under counter `name`.
pub(crate) fn save_f64(state: &mut OptimizerState, name: String, value: f64) {
    state.counters.insert(name, value.to_bits());
}

/// Reads back what [`save_f64`] wrote.
pub(crate) fn load_f64(state: &OptimizerState, name: &str) -> Result<f64> {
    state.counter(name).map(f64::from_bits)
}

/// The learning rate: `lr >= 0`, as torch.optim checks it.
const fn lr(default: f64, about: &'static str) -> HpSpec {
    hp("lr", default, about).non_negative()
}

/// Weight decay of any kind: `>= 0`.
const fn weight_decay(default: f64, about: &'static str) -> HpSpec {
    hp("weight_decay", default, about).non_negative()
}

/// A denominator stabiliser: `>= 0`.
const fn eps(default: f64, about: &'static str) -> HpSpec {
    hp("eps", default, about).non_negative()
}

const ADABELIEF_HPS: &[HpSpec] = &[
    lr(1e-3, "learning rate"),
    hp("beta1", 0.9, "first-moment decay").decay_rate(),
    hp("beta2", 0.999, "decay of the belief s = EMA((g - m)^2)").decay_rate(),
    eps(1e-16, "added to s at every step and to the denominator"),
    weight_decay(0.0, "decoupled weight decay"),
];

/// Lion's hyperparameters, which `cautious_lion` passes on to it.
pub(crate) const LION_HPS: &[HpSpec] = &[
    lr(1e-4, "learning rate"),
    hp("beta1", 0.9, "interpolation used for the sign update").decay_rate(),
    hp("beta2", 0.99, "momentum decay").decay_rate(),
    weight_decay(0.0, "decoupled weight decay"),
];

const ADAN_HPS: &[HpSpec] = &[
    lr(1e-3, "learning rate"),
    hp("beta1", 0.98, "gradient EMA decay (paper's beta1 = 0.02 is 1 - this)").decay_rate(),
    hp("beta2", 0.92, "gradient-difference EMA decay (paper's 0.08)").decay_rate(),
    hp("beta3", 0.99, "second-moment decay (paper's 0.01)").decay_rate(),
    eps(1e-8, "denominator stabiliser"),
    weight_decay(0.0, "weight decay (proximal by default)"),
    hp(
        "no_prox",
        0.0,
        "1: decoupled decay p *= 1 - lr*wd instead of the proximal p /= 1 + lr*wd",
    )
    .flag(),
];

const LAMB_HPS: &[HpSpec] = &[
    lr(1e-3, "learning rate"),
    hp("beta1", 0.9, "first-moment decay").decay_rate(),
    hp("beta2", 0.999, "second-moment decay").decay_rate(),
    eps(1e-6, "denominator stabiliser"),
    weight_decay(0.01, "decoupled weight decay, inside the trust ratio"),
];

const LARS_HPS: &[HpSpec] = &[
    lr(1.0, "global learning rate (gamma)"),
    hp("momentum", 0.9, "heavy-ball momentum").decay_rate(),
    weight_decay(5e-4, "weight decay (beta), inside the trust ratio"),
    hp(
        "trust_coefficient",
        1e-3,
        "eta in the local learning rate eta*|w|/(|g| + beta*|w|)",
    )
    .non_negative(),
];

const SF_SGD_HPS: &[HpSpec] = &[
    lr(1.0, "learning rate of the z sequence"),
    hp("momentum", 0.9, "interpolation beta: y = (1 - beta) z + beta x").decay_rate(),
    weight_decay(0.0, "weight decay, evaluated at y"),
    hp("warmup_steps", 0.0, "linear learning-rate warmup steps").whole_number(),
    hp("r", 0.0, "polynomial weighting power of the average").non_negative(),
    hp(
        "weight_lr_power",
        2.0,
        "the average weights step t by lr_max^weight_lr_power",
    )
    .non_negative(),
    // Default 1: under the task's protocol a query every step discards every
    // step's BatchNorm running-statistics update, which ruins evaluation.
    hp(
        "hold_y",
        1.0,
        "1: the model holds y instead of x (no query; evaluation at y); 0: query y, hold x",
    )
    .flag(),
];

const SF_ADAMW_HPS: &[HpSpec] = &[
    lr(0.0025, "learning rate of the z sequence"),
    hp("beta1", 0.9, "interpolation beta: y = (1 - beta1) z + beta1 x").decay_rate(),
    hp("beta2", 0.999, "second-moment decay").decay_rate(),
    eps(1e-8, "denominator stabiliser"),
    weight_decay(0.0, "decoupled weight decay, evaluated at y"),
    hp("warmup_steps", 0.0, "linear learning-rate warmup steps").whole_number(),
    hp("r", 0.0, "polynomial weighting power of the average").non_negative(),
    hp(
        "weight_lr_power",
        2.0,
        "the average weights step t by lr_max^weight_lr_power",
    )
    .non_negative(),
    // Default 1: under the task's protocol a query every step discards every
    // step's BatchNorm running-statistics update, which ruins evaluation.
    hp(
        "hold_y",
        1.0,
        "1: the model holds y instead of x (no query; evaluation at y); 0: query y, hold x",
    )
    .flag(),
];

/// The most Newton-Schulz iterations Muon may run per matrix per step: the
/// quintic iteration settles within about ten (the reference uses 5), so a
/// hundred is far past useful while still finishing.
pub const MAX_NS_STEPS: f64 = 100.0;

const MUON_HPS: &[HpSpec] = &[
    lr(0.02, "learning rate of the matrices (orthogonalised momentum)"),
    hp("momentum", 0.95, "momentum of the matrices").decay_rate(),
    hp("nesterov", 1.0, "1: Nesterov momentum").flag(),
    hp("ns_steps", 5.0, "Newton-Schulz iterations")
        .count()
        .at_most(MAX_NS_STEPS),
    weight_decay(0.0, "decoupled weight decay (each group with its own lr)"),
    hp("adam_lr", 3e-4, "AdamW learning rate for tensors that are not matrices").non_negative(),
    hp("adam_beta1", 0.9, "AdamW first-moment decay").decay_rate(),
    hp("adam_beta2", 0.95, "AdamW second-moment decay").decay_rate(),
    hp("adam_eps", 1e-10, "AdamW denominator stabiliser").non_negative(),
];

const PRODIGY_HPS: &[HpSpec] = &[
    lr(1.0, "multiplier of the estimated step size d"),
    hp("beta1", 0.9, "first-moment decay").decay_rate(),
    hp("beta2", 0.999, "second-moment decay").decay_rate(),
    hp("beta3", 0.0, "decay of the d estimate's sums; 0 selects sqrt(beta2)").decay_rate(),
    eps(1e-8, "denominator stabiliser (scaled by d)"),
    weight_decay(0.0, "weight decay"),
    hp(
        "decouple",
        1.0,
        "1: AdamW-style decoupled decay; 0: L2 added to the gradient",
    )
    .flag(),
    hp("d0", 1e-6, "initial d estimate").positive(),
    hp("d_coef", 1.0, "multiplier of the d estimate").non_negative(),
    hp("bias_correction", 0.0, "1: Adam's bias correction in the step size").flag(),
    hp("safeguard_warmup", 0.0, "1: leave lr out of the denominator sum").flag(),
];

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "adabelief",
        about: "AdaBelief (Zhuang et al. 2020): Adam whose denominator tracks (g - m)^2",
        hyperparams: ADABELIEF_HPS,
        build: |h| {
            Ok(Box::new(adabelief(
                h.get("lr")?,
                h.get("beta1")?,
                h.get("beta2")?,
                h.get("eps")?,
                h.get("weight_decay")?,
            )))
        },
    },
    OptimizerInfo {
        name: "lion",
        about: "Lion (Chen et al. 2023): sign of an interpolated momentum, decoupled decay",
        hyperparams: LION_HPS,
        build: |h| {
            Ok(Box::new(lion(
                h.get("lr")?,
                h.get("beta1")?,
                h.get("beta2")?,
                h.get("weight_decay")?,
            )))
        },
    },
    OptimizerInfo {
        name: "adan",
        about: "Adan (Xie et al. 2022): Nesterov-style moments of gradients and their differences",
        hyperparams: ADAN_HPS,
        build: |h| {
            Ok(Box::new(adan(
                h.get("lr")?,
                h.get("beta1")?,
                h.get("beta2")?,
                h.get("beta3")?,
                h.get("eps")?,
                h.get("weight_decay")?,
                h.flag("no_prox")?,
            )))
        },
    },
    OptimizerInfo {
        name: "lamb",
        about: "LAMB (You et al. 2019): Adam direction scaled by a layer-wise trust ratio",
        hyperparams: LAMB_HPS,
        build: |h| {
            Ok(Box::new(lamb(
                h.get("lr")?,
                h.get("beta1")?,
                h.get("beta2")?,
                h.get("eps")?,
                h.get("weight_decay")?,
            )))
        },
    },
    OptimizerInfo {
        name: "lars",
        about: "LARS (You et al. 2017): momentum SGD with a layer-wise trust ratio",
        hyperparams: LARS_HPS,
        build: |h| {
            Ok(Box::new(lars(
                h.get("lr")?,
                h.get("momentum")?,
                h.get("weight_decay")?,
                h.get("trust_coefficient")?,
            )))
        },
    },
    OptimizerInfo {
        name: "sf_sgd",
        about: "Schedule-Free SGD (Defazio et al. 2024): gradients at y; the model holds y (hold_y = 1, for BatchNorm) or the average x",
        hyperparams: SF_SGD_HPS,
        build: |h| {
            Ok(Box::new(
                ScheduleFree::sgd(
                    h.get("lr")?,
                    h.get("momentum")?,
                    h.get("weight_decay")?,
                    h.whole("warmup_steps")?,
                )
                .with_weighting(h.get("r")?, h.get("weight_lr_power")?)
                .holding_y(h.flag("hold_y")?),
            ))
        },
    },
    OptimizerInfo {
        name: "sf_adamw",
        about: "Schedule-Free AdamW (Defazio et al. 2024): gradients at y; the model holds y (hold_y = 1, for BatchNorm) or the average x",
        hyperparams: SF_ADAMW_HPS,
        build: |h| {
            Ok(Box::new(
                ScheduleFree::adamw(
                    h.get("lr")?,
                    h.get("beta1")?,
                    h.get("beta2")?,
                    h.get("eps")?,
                    h.get("weight_decay")?,
                    h.whole("warmup_steps")?,
                )
                .with_weighting(h.get("r")?, h.get("weight_lr_power")?)
                .holding_y(h.flag("hold_y")?),
            ))
        },
    },
    OptimizerInfo {
        name: "muon",
        about: "Muon (Jordan et al. 2024): Newton-Schulz-orthogonalised momentum for matrices, AdamW for the rest",
        hyperparams: MUON_HPS,
        build: |h| {
            Ok(Box::new(muon(MuonConfig {
                lr: h.get("lr")?,
                momentum: h.get("momentum")?,
                nesterov: h.flag("nesterov")?,
                ns_steps: h.whole("ns_steps")? as usize,
                weight_decay: h.get("weight_decay")?,
                adam_lr: h.get("adam_lr")?,
                adam_beta1: h.get("adam_beta1")?,
                adam_beta2: h.get("adam_beta2")?,
                adam_eps: h.get("adam_eps")?,
            })))
        },
    },
    OptimizerInfo {
        name: "prodigy",
        about: "Prodigy (Mishchenko & Defazio 2023): Adam with a learning-rate-free D estimate",
        hyperparams: PRODIGY_HPS,
        build: |h| {
            let beta2 = h.get("beta2")?;
            let beta3 = h.get("beta3")?;
            let beta3 = if beta3 == 0.0 { beta2.sqrt() } else { beta3 };
            Ok(Box::new(prodigy(ProdigyConfig {
                lr: h.get("lr")?,
                beta1: h.get("beta1")?,
                beta2,
                beta3,
                eps: h.get("eps")?,
                weight_decay: h.get("weight_decay")?,
                decouple: h.flag("decouple")?,
                d0: h.get("d0")?,
                d_coef: h.get("d_coef")?,
                bias_correction: h.flag("bias_correction")?,
                safeguard_warmup: h.flag("safeguard_warmup")?,
            })))
        },
    },
];
