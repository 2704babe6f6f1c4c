//! Wrappers around any optimizer: Lookahead, SAM, cautious masking, EMA of weights.
//!
//! Each wraps a `Box<dyn TaskOptimizer>` and is itself a [`TaskOptimizer`], so
//! they compose (`Lookahead::new(Box::new(Cautious::new(inner)), 5, 0.5)`).
//! The catalog cannot take an optimizer as a hyperparameter (values are
//! numbers), so it lists fixed pairs, each building its inner optimizer from
//! the catalog by name with the wrapper's values for the inner's
//! hyperparameters: `lookahead_adam`, `sam_adam`, `cautious_adam`,
//! `ema_adam` (around the catalog's `clipped_adam`, the task's baseline,
//! under their original names) and `cautious_lion`.
//!
//! A wrapper forwards [`TaskOptimizer::query_at_params`] to its inner
//! optimizer (SAM perturbs the point the inner one asks for), and saves the
//! inner state under names starting with `inner.`.

pub mod cautious;
pub mod ema;
pub mod lookahead;
pub mod sam;
pub mod settle;

pub use cautious::Cautious;
pub use ema::Ema;
pub use lookahead::Lookahead;
pub use sam::Sam;
pub use settle::Settle;

use crate::catalog::ADAM_HPS;
use crate::modern::LION_HPS;
use crate::state::refused;
use crate::{hp, HpSpec, HyperParams, OptimizerInfo, OptimizerState, TaskOptimizer};
use ferrograd_engine::{Result, Shape};

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

/// The inner optimizer's refusal of its entries, said as the wrapper's:
/// the names it gives are those after `inner.`.
pub(crate) fn inner_refused(name: &str, e: ferrograd_engine::Error) -> ferrograd_engine::Error {
    ferrograd_engine::Error::invalid(
        "load_state",
        format!("{name} refuses the saved state: its entries under {INNER:?} do not fit its inner optimizer ({e})"),
    )
}

/// Checks a wrapper's own entries of `state` (those not under `inner.`)
/// against its `current` ones and the model's `shapes`, that each of its
/// tensors has a stem among `kept` (the slots the wrapper keeps), and that
/// the inner
/// optimizer's step counter (`inner.count` or `inner.k`) is no larger than
/// the wrapper's `count`. The inner optimizer checks its own entries when
/// it loads them, and changes nothing if they are wrong, so a wrapper that
/// calls this, then the inner `load_state`, then assigns, is all or nothing.
pub(crate) fn check_own(
    name: &str,
    shapes: &[Shape],
    kept: &[&str],
    current: &OptimizerState,
    state: &OptimizerState,
) -> Result<()> {
    let own = |s: &OptimizerState| OptimizerState {
        tensors: s
            .tensors
            .iter()
            .filter(|(k, _)| !k.starts_with(INNER))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        counters: s
            .counters
            .iter()
            .filter(|(k, _)| !k.starts_with(INNER))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    };
    own(state).check_fits(name, Some(shapes), &own(current))?;
    state.check_kept(name, kept)?;
    let inner = ["inner.count", "inner.k"]
        .into_iter()
        .find_map(|k| state.counters.get(k).map(|v| (k, *v)));
    match (inner, state.counters.get("count")) {
        (Some((counter, steps)), Some(&own_steps)) if steps > own_steps => Err(refused(
            name,
            format!("its counter {counter:?} = {steps} counts more steps than \"count\" = {own_steps}"),
        )),
        _ => Ok(()),
    }
}

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

/// The catalog's `clipped_adam` hyperparameters (defaults and domains from
/// [`ADAM_HPS`]), described as the inner optimizer's, for the `*_adam` pairs.
macro_rules! adam_hps {
    ($($extra:expr),* $(,)?) => {
        &[
            ADAM_HPS[0].described_as("inner Adam: learning rate"),
            ADAM_HPS[1].described_as("inner Adam: first-moment decay"),
            ADAM_HPS[2].described_as("inner Adam: second-moment decay"),
            ADAM_HPS[3].described_as("inner Adam: denominator stabiliser"),
            ADAM_HPS[4].described_as("inner Adam: gradients are clamped to [-clip, clip]"),
            $($extra),*
        ]
    };
}

const LOOKAHEAD_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("k", 5.0, "fast steps per synchronisation").count(),
    hp("alpha", 0.5, "slow-weight step size toward the fast weights").positive_fraction(),
];

const SAM_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("rho", 0.05, "radius of the ascent step").non_negative(),
    hp(
        "two_pass",
        1.0,
        "1: exact SAM over two harness steps; 0: one pass, previous gradient"
    )
    .flag(),
];

const CAUTIOUS_ADAM_HPS: &[HpSpec] = adam_hps![];

const EMA_ADAM_HPS: &[HpSpec] = adam_hps![
    hp("decay", 0.999, "EMA decay of the weights").decay_rate(),
    hp("warmup", 1.0, "1: decay_t = min(decay, (1 + t) / (10 + t))").flag(),
    hp(
        "eval_average",
        0.0,
        "1: the model holds the average; gradients at the raw weights"
    )
    .flag(),
];

/// The catalog's `lion` hyperparameters (defaults and domains from
/// [`LION_HPS`]), described as the inner optimizer's.
const CAUTIOUS_LION_HPS: &[HpSpec] = &[
    LION_HPS[0].described_as("inner Lion: learning rate"),
    LION_HPS[1].described_as("inner Lion: interpolation used for the sign update"),
    LION_HPS[2].described_as("inner Lion: momentum decay"),
    LION_HPS[3].described_as("inner Lion: decoupled weight decay (masked too)"),
];

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "lookahead_adam",
        about: "Lookahead (Zhang et al. 2019) around clipped Adam: slow weights every k steps",
        hyperparams: LOOKAHEAD_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("clipped_adam", h)?;
            Ok(Box::new(
                Lookahead::new(inner, h.whole("k")?, h.get("alpha")?).named("lookahead_adam"),
            ))
        },
    },
    OptimizerInfo {
        name: "sam_adam",
        about: "SAM (Foret et al. 2021) around clipped Adam, through query_at_params",
        hyperparams: SAM_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("clipped_adam", h)?;
            let rho = h.get("rho")?;
            Ok(Box::new(
                if h.flag("two_pass")? {
                    Sam::new(inner, rho)
                } else {
                    Sam::one_pass(inner, rho)
                }
                .named("sam_adam"),
            ))
        },
    },
    OptimizerInfo {
        name: "cautious_adam",
        about: "Cautious (Liang et al. 2024) clipped Adam: drops coordinates against the gradient",
        hyperparams: CAUTIOUS_ADAM_HPS,
        build: |h| {
            Ok(Box::new(
                Cautious::new(inner_from_catalog("clipped_adam", h)?).named("cautious_adam"),
            ))
        },
    },
    OptimizerInfo {
        name: "ema_adam",
        about: "Clipped Adam with an exponential moving average of the weights",
        hyperparams: EMA_ADAM_HPS,
        build: |h| {
            let inner = inner_from_catalog("clipped_adam", h)?;
            Ok(Box::new(
                Ema::new(inner, h.get("decay")?)
                    .with_warmup(h.flag("warmup")?)
                    .evaluating_average(h.flag("eval_average")?)
                    .named("ema_adam"),
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
