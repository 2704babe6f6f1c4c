//! The catalog: every optimizer by name, with its hyperparameters and a
//! constructor. `ferrograd train --optimizer NAME` and `ferrograd optimizers`
//! read it.

use crate::adam::ClippedAdam;
use crate::sgd::clipped_sgd;
use crate::{HpSpec, HyperParams, TaskOptimizer};
use ferrograd_engine::Result;

/// A catalog entry.
pub struct OptimizerInfo {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Its hyperparameters and their defaults.
    pub hyperparams: &'static [HpSpec],
    /// Builds it from hyperparameter values.
    pub build: fn(&HyperParams) -> Result<Box<dyn TaskOptimizer>>,
}

const SGD_HPS: &[HpSpec] = &[
    HpSpec {
        name: "lr",
        default: 1e-3,
        about: "learning rate",
    },
    HpSpec {
        name: "clip",
        default: 1.0,
        about: "gradients are clamped to [-clip, clip]",
    },
];

const ADAM_HPS: &[HpSpec] = &[
    HpSpec {
        name: "lr",
        default: 1e-3,
        about: "learning rate",
    },
    HpSpec {
        name: "beta1",
        default: 0.9,
        about: "first-moment decay",
    },
    HpSpec {
        name: "beta2",
        default: 0.999,
        about: "second-moment decay",
    },
    HpSpec {
        name: "eps",
        default: 1e-8,
        about: "denominator stabiliser",
    },
    HpSpec {
        name: "clip",
        default: 1.0,
        about: "gradients are clamped to [-clip, clip]",
    },
];

/// The task's baselines: clipped Adam (the default) and clipped SGD.
pub const BASELINES: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "adam",
        about: "Adam (Kingma & Ba 2015) with gradient value clipping",
        hyperparams: ADAM_HPS,
        build: |h| {
            // One fused pass per tensor; the same updates as `clipped_adam`'s chain.
            Ok(Box::new(ClippedAdam::new(
                h.get("lr"),
                h.get("beta1"),
                h.get("beta2"),
                h.get("eps"),
                h.get("clip"),
            )))
        },
    },
    OptimizerInfo {
        name: "sgd",
        about: "SGD with gradient value clipping: the task's published baseline",
        hyperparams: SGD_HPS,
        build: |h| Ok(Box::new(clipped_sgd(h.get("lr"), h.get("clip")))),
    },
];

/// The default optimizer of `ferrograd train`.
pub const DEFAULT: &str = "adam";

/// Every optimizer, the default (`adam`) first, then each family's entries.
pub fn all() -> Vec<&'static OptimizerInfo> {
    [
        BASELINES,
        crate::torch_family::CATALOG,
        crate::modern::CATALOG,
        crate::wrappers::CATALOG,
        crate::second_order::CATALOG,
        crate::anneal::CATALOG,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static OptimizerInfo> {
    all().into_iter().find(|o| o.name == name)
}

/// The entry named `name`, or an error listing the known names.
pub fn lookup(name: &str) -> Result<&'static OptimizerInfo> {
    find(name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|o| o.name).collect();
        ferrograd_engine::Error::invalid(
            "optimizer",
            format!("unknown optimizer {name:?}; choose one of: {}", names.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_entry_builds_with_its_defaults() {
        let entries = all();
        let mut names: Vec<&str> = entries.iter().map(|o| o.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate optimizer names");
        for info in entries {
            assert!(
                (info.build)(&HyperParams::defaults(info)).is_ok(),
                "{} fails to build",
                info.name
            );
        }
        assert_eq!(all()[0].name, DEFAULT);
    }
}
