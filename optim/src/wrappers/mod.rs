//! Wrappers around any optimizer: Lookahead, SAM, cautious masking, EMA of weights.
//!
//! Each wraps a `Box<dyn TaskOptimizer>` and is itself a [`TaskOptimizer`], so
//! they compose (`Lookahead::new(Box::new(Cautious::new(inner)), 5, 0.5)`).
//! The catalog cannot take an optimizer as a hyperparameter (values are
//! numbers), so it lists fixed pairs, each building its inner optimizer from
//! the catalog by name with the wrapper's values for the inner's
//! hyperparameters: `lookahead_adam`, `sam_adam`, `cautious_adam`,
//! `ema_adam` (around the catalog's clipped `adam`) and `cautious_lion`.
//!
//! A wrapper forwards [`TaskOptimizer::query_at_params`] to its inner
//! optimizer (SAM perturbs the point the inner one asks for), and saves the
//! inner state under names starting with `inner.`.

pub mod cautious;
pub mod ema;
pub mod lookahead;
pub mod sam;

pub use cautious::Cautious;
pub use ema::Ema;
pub use lookahead::Lookahead;
pub use sam::Sam;

use crate::modern::{flag, hp, whole};
use crate::{HpSpec, HyperParams, OptimizerInfo, OptimizerState, TaskOptimizer};
use ferrograd_engine::{Error, Result};

/// Builds the catalog's optimizer `name`, taking from `h` every value whose
/// name the inner optimizer declares (the rest keep the inner's defaults).
pub fn inner_from_catalog(name: &str, h: &HyperParams) -> Result<Box<dyn TaskOptimizer>> {
    let info = crate::catalog::lookup(name)?;
    let mut inner = HyperParams::defaults(info);
    for spec in info.hyperparams {
        if let Some(&v) = h.values().get(spec.name) {
            inner.set(spec.name, v)?;
        }
    }
    (info.build)(&inner)
}

/// The prefix of the inner optimizer's state names.
const INNER: &str = "inner.";

/// Copies `inner` into `into` with every name prefixed by `inner.`.
pub(crate) fn nest(inner: OptimizerState, into: &mut OptimizerState) {
    for (k, v) in inner.tensors {
        into.tensors.insert(format!("{INNER}{k}"), v);
    }
    for (k, v) in inner.counters {
        into.counters.insert(format!("{INNER}{k}"), v);
    }
}

/// The entries of `state` under `inner.`, with the prefix removed.
pub(crate) fn unnest(state: &OptimizerState) -> OptimizerState {
    let strip = |k: &String| k.strip_prefix(INNER).map(str::to_owned);
    OptimizerState {
        tensors: state
            .tensors
            .iter()
            .filter_map(|(k, v)| strip(k).map(|k| (k, v.clone())))
            .collect(),
        counters: state
            .counters
            .iter()
            .filter_map(|(k, v)| strip(k).map(|k| (k, *v)))
            .collect(),
    }
}

/// A finite, positive hyperparameter.
fn positive(h: &HyperParams, name: &str) -> Result<f64> {
    let v = h.get(name);
    if v <= 0.0 {
        return Err(Error::invalid(
            "hyperparameter",
            format!("{name} must be positive, got {v}"),
        ));
    }
    Ok(v)
}

/// The catalog's `adam` hyperparameters, repeated for the `*_adam` pairs.
macro_rules! adam_hps {
    ($($extra:expr),* $(,)?) => {
        &[
            hp("lr", 1e-3, "inner Adam: learning rate"),
            hp("beta1", 0.9, "inner Adam: first-moment decay"),
            hp("beta2", 0.999, "inner Adam: second-moment decay"),
            hp("eps", 1e-8, "inner Adam: denominator stabiliser"),
            hp("clip", 1.0, "inner Adam: gradients are clamped to [-clip, clip]"),
            $($extra),*
        ]
    };
}

const LOOKAHEAD_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("k", 5.0, "fast steps per synchronisation"),
    hp("alpha", 0.5, "slow-weight step size toward the fast weights"),
];

const SAM_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("rho", 0.05, "radius of the ascent step"),
    hp(
        "two_pass",
        1.0,
        "1: exact SAM over two harness steps; 0: one pass, previous gradient"
    ),
];

const CAUTIOUS_ADAM_HPS: &[HpSpec] = adam_hps![];

const EMA_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("decay", 0.999, "EMA decay of the weights"),
    hp("warmup", 1.0, "1: decay_t = min(decay, (1 + t) / (10 + t))"),
    hp(
        "eval_average",
        0.0,
        "1: the model holds the average; gradients at the raw weights"
    ),
];

const CAUTIOUS_LION_HPS: &[HpSpec] = &[
    hp("lr", 1e-4, "inner Lion: learning rate"),
    hp("beta1", 0.9, "inner Lion: interpolation used for the sign update"),
    hp("beta2", 0.99, "inner Lion: momentum decay"),
    hp("weight_decay", 0.0, "inner Lion: decoupled weight decay (masked too)"),
];

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "lookahead_adam",
        about: "Lookahead (Zhang et al. 2019) around clipped Adam: slow weights every k steps",
        hyperparams: LOOKAHEAD_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("adam", h)?;
            let alpha = positive(h, "alpha")?;
            Ok(Box::new(Lookahead::new(inner, whole(h, "k", 1)?, alpha)))
        },
    },
    OptimizerInfo {
        name: "sam_adam",
        about: "SAM (Foret et al. 2021) around clipped Adam, through query_at_params",
        hyperparams: SAM_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("adam", h)?;
            let rho = h.get("rho");
            Ok(Box::new(if flag(h, "two_pass")? {
                Sam::new(inner, rho)
            } else {
                Sam::one_pass(inner, rho)
            }))
        },
    },
    OptimizerInfo {
        name: "cautious_adam",
        about: "Cautious (Liang et al. 2024) clipped Adam: drops coordinates against the gradient",
        hyperparams: CAUTIOUS_ADAM_HPS,
        build: |h| Ok(Box::new(Cautious::new(inner_from_catalog("adam", h)?))),
    },
    OptimizerInfo {
        name: "ema_adam",
        about: "Clipped Adam with an exponential moving average of the weights",
        hyperparams: EMA_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("adam", h)?;
            let decay = crate::modern::decay(h, "decay")?;
            Ok(Box::new(
                Ema::new(inner, decay)
                    .with_warmup(flag(h, "warmup")?)
                    .evaluating_average(flag(h, "eval_average")?),
            ))
        },
    },
    OptimizerInfo {
        name: "cautious_lion",
        about: "Cautious (Liang et al. 2024) Lion: drops coordinates against the gradient",
        hyperparams: CAUTIOUS_LION_HPS,
        build: |h| Ok(Box::new(Cautious::new(inner_from_catalog("lion", h)?))),
    },
];
