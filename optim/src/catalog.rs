//! The catalog: every optimizer by name, with its hyperparameters and a
//! constructor. `ferrograd train --optimizer NAME` and `ferrograd optimizers`
//! read it.

use crate::adam::ClippedAdam;
use crate::sgd::clipped_sgd;
use crate::{hp, HpSpec, HyperParams, TaskOptimizer};
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

/// The learning rate of the baselines (torch.optim's check: `lr >= 0`).
const LR: HpSpec = hp("lr", 1e-3, "learning rate").non_negative();

/// The clamp of the baselines (0 zeroes every gradient; negative is refused).
const CLIP: HpSpec = hp("clip", 1.0, "gradients are clamped to [-clip, clip]").non_negative();

const SGD_HPS: &[HpSpec] = &[LR, CLIP];

/// The `clipped_adam` baseline's hyperparameters, which the `*_adam`
/// wrappers pass on to it.
pub(crate) const ADAM_HPS: &[HpSpec] = &[
    LR,
    hp("beta1", 0.9, "first-moment decay").decay_rate(),
    hp("beta2", 0.999, "second-moment decay").decay_rate(),
    hp("eps", 1e-8, "denominator stabiliser").non_negative(),
    CLIP,
];

/// The task's baselines: clipped Adam (the default) and clipped SGD (its
/// published baseline; `sgd` clamps gradients too, as its description says).
pub const BASELINES: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "clipped_adam",
        about: "Adam (Kingma & Ba 2015) with gradients clamped to [-clip, clip]: the task's baseline and the default",
        hyperparams: ADAM_HPS,
        build: |h| {
            // One fused pass per tensor; the same updates as `clipped_adam`'s chain.
            Ok(Box::new(ClippedAdam::new(
                h.get("lr")?,
                h.get("beta1")?,
                h.get("beta2")?,
                h.get("eps")?,
                h.get("clip")?,
            )))
        },
    },
    OptimizerInfo {
        name: "sgd",
        about: "SGD with gradient value clipping: the task's published baseline",
        hyperparams: SGD_HPS,
        build: |h| Ok(Box::new(clipped_sgd(h.get("lr")?, h.get("clip")?))),
    },
];

/// The default optimizer of `ferrograd train`: the benchmark task's clipped
/// Adam (`adam` is `torch.optim.Adam`, without clipping).
pub const DEFAULT: &str = "clipped_adam";

/// Every optimizer, the default (`clipped_adam`) first, then each family's
/// entries.
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
    use crate::layout::ModelLayout;
    use crate::HpDomain;

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

    /// Every hyperparameter declares a domain narrower than "any number"
    /// (none was left at `hp`'s starting `Real`), and its default lies in it.
    #[test]
    fn every_default_lies_in_its_declared_domain() {
        for info in all() {
            for spec in info.hyperparams {
                let at = format!("{}.{}", info.name, spec.name);
                assert_ne!(spec.domain, HpDomain::Real, "{at} declares no domain");
                assert!(
                    spec.allows(spec.default),
                    "{at} = {} is not {}",
                    spec.default,
                    spec.allowed()
                );
                HyperParams::defaults(info).set(spec.name, spec.default).unwrap();
            }
        }
    }

    /// As torch.optim refuses a negative learning rate, so does `adam`,
    /// saying what is allowed.
    #[test]
    fn a_negative_learning_rate_is_refused_with_the_allowed_values() {
        let err = HyperParams::defaults(lookup("adam").unwrap())
            .with("lr", -1.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lr") && err.contains("adam") && err.contains(">= 0"),
            "{err}"
        );
    }

    /// The default is the task's clipped Adam: a gradient of 100 moves a
    /// parameter exactly as one of `clip` = 1 (Adam's first step is `lr`
    /// times the clipped gradient over its own magnitude, so compare a
    /// second step after gradients of different sizes).
    #[test]
    fn the_default_is_clipped_adam_and_clamps() {
        use ferrograd_engine::{Shape, Tensor};
        assert_eq!(DEFAULT, "clipped_adam");
        let run = |g2: f64| {
            let info = lookup(DEFAULT).unwrap();
            let mut opt = (info.build)(&HyperParams::defaults(info)).unwrap();
            assert_eq!(opt.name(), "clipped_adam");
            opt.init_state(0, &ModelLayout::any(&[Shape::new([1])])).unwrap();
            let p = [Tensor::from_vec(vec![0.0f64], [1]).unwrap()];
            let ctx = crate::StepContext::default();
            opt.step(&p, &[Tensor::from_vec(vec![1.0f64], [1]).unwrap()], &ctx)
                .unwrap();
            opt.step(&p, &[Tensor::from_vec(vec![g2], [1]).unwrap()], &ctx).unwrap()[0]
                .to_vec::<f64>()
                .unwrap()[0]
        };
        assert_eq!(
            run(100.0).to_bits(),
            run(1.0).to_bits(),
            "a gradient of 100 is clamped to 1"
        );
        assert_ne!(
            run(0.5).to_bits(),
            run(1.0).to_bits(),
            "below the clip nothing is clamped"
        );
        // `adam` (torch.optim.Adam) does not clamp: the same two steps differ.
        let torch = |g2: f64| {
            let info = lookup("adam").unwrap();
            let mut opt = (info.build)(&HyperParams::defaults(info)).unwrap();
            opt.init_state(0, &ModelLayout::any(&[Shape::new([1])])).unwrap();
            let p = [Tensor::from_vec(vec![0.0f64], [1]).unwrap()];
            let ctx = crate::StepContext::default();
            opt.step(&p, &[Tensor::from_vec(vec![1.0f64], [1]).unwrap()], &ctx)
                .unwrap();
            opt.step(&p, &[Tensor::from_vec(vec![g2], [1]).unwrap()], &ctx).unwrap()[0]
                .to_vec::<f64>()
                .unwrap()[0]
        };
        assert_ne!(torch(100.0).to_bits(), torch(1.0).to_bits());
    }

    /// Reading an undeclared name is an error that lists the declared ones.
    #[test]
    fn reading_an_unknown_name_lists_the_known_ones() {
        let err = HyperParams::defaults(lookup("sgd").unwrap())
            .get("momentum")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sgd") && err.contains("momentum") && err.contains("lr, clip"),
            "{err}"
        );
    }
}
