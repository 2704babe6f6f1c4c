//! The algorithms that PyTorch's `torch.optim` also has, with PyTorch's
//! defaults and update rules, matched against PyTorch's own trajectories in
//! `optim/tests/torch_conformance.rs` (fixtures in `optim/fixtures/`).
//!
//! | name       | algorithm                                            | chain                                         |
//! |------------|------------------------------------------------------|-----------------------------------------------|
//! | `sgdm`     | SGD with momentum, dampening, Nesterov, L2 decay     | L2, [`TorchMomentum`], lr                     |
//! | `adagrad`  | Adagrad with lr decay and a starting accumulator     | L2, [`ScaleByAdagrad`], lr / (1 + (t-1) decay) |
//! | `rmsprop`  | RMSprop, optionally centered, with momentum          | L2, [`ScaleByRmsprop`], [`TorchMomentum`], lr |
//! | `adadelta` | Adadelta (`lr` 1 by default)                         | L2, [`ScaleByAdadelta`], lr                   |
//! | `adam`     | `torch.optim.Adam`: L2 weight decay, no clipping     | L2, [`ScaleByAdam`], lr                       |
//! | `adamw`    | AdamW: decoupled weight decay                        | [`ScaleByAdam`], decay, lr                    |
//! | `amsgrad`  | `torch.optim.Adam(amsgrad=True)`                     | L2, [`ScaleByAdam`] (amsgrad), lr             |
//! | `nadam`    | NAdam with PyTorch's momentum schedule               | L2 or decoupled decay around [`ScaleByNadam`] |
//! | `radam`    | RAdam, rectified once `rho_t > 5`                    | L2 or decoupled decay around [`ScaleByRadam`] |
//! | `adamax`   | Adamax (infinity norm)                               | L2, [`ScaleByAdamax`], lr                     |
//!
//! (`clipped_adam` and `sgd` are the task's clipped baselines in
//! [`crate::catalog::BASELINES`].) Switches (`nesterov`, `centered`,
//! `amsgrad`, `decoupled_weight_decay`) are hyperparameters taking 0 or 1.
//!
//! PyTorch applies decoupled weight decay as `p *= 1 - lr * wd` *before* the
//! step; since none of these directions depends on `p`, the new parameter is
//! `p - lr * (dir + wd * p)`, which is exactly the additive update of the
//! chain `[direction, AddDecayedWeights(wd), ScaleByLr(lr)]`.

mod adam_like;
mod sgd_like;

pub use adam_like::{ScaleByAdamax, ScaleByNadam, ScaleByRadam, RADAM_THRESHOLD};
pub use sgd_like::{InverseTimeDecay, ScaleByAdadelta, ScaleByAdagrad, ScaleByRmsprop, TorchMomentum};

use crate::basic::{AddDecayedWeights, ScaleByAdam, ScaleByLr};
use crate::chain;
use crate::schedule::{Constant, Schedule};
use crate::transform::{ChainOptimizer, Transform};
use crate::{hp, HpSpec, HyperParams, OptimizerInfo};
use ferrograd_engine::{Error, Result};

/// `stage` between weight decay and the learning rate: L2 decay (added to the
/// gradient before `stage`) or, if `decoupled`, decay added after it.
fn with_weight_decay(
    name: &str,
    stage: impl Transform + 'static,
    lr: impl Schedule + 'static,
    weight_decay: f64,
    decoupled: bool,
) -> ChainOptimizer {
    let decay = AddDecayedWeights {
        rate: weight_decay,
        mask: None,
    };
    let lr = ScaleByLr::new(lr);
    let chain = if decoupled {
        chain![stage, decay, lr]
    } else {
        chain![decay, stage, lr]
    };
    ChainOptimizer::new(name, chain)
}

/// `torch.optim.SGD` with momentum (Polyak 1964; Nesterov's variant as in
/// Sutskever et al., ICML 2013). With `g = grad + weight_decay * p`:
///
/// ```text
/// b_1 = g_1,   b_t = momentum b_{t-1} + (1 - dampening) g_t
/// update = -lr * (g_t + momentum b_t)   if nesterov,   else -lr * b_t
/// ```
pub fn sgdm(lr: f64, momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> ChainOptimizer {
    let stage = TorchMomentum::new(momentum, dampening, nesterov);
    with_weight_decay("sgdm", stage, Constant(lr), weight_decay, false)
}

/// `torch.optim.Adagrad` (Duchi, Hazan and Singer, JMLR 2011). With
/// `g = grad + weight_decay * p`:
///
/// ```text
/// s_t = initial_accumulator_value + sum_{k<=t} g_k^2
/// update = -lr / (1 + (t - 1) lr_decay) * g_t / (sqrt(s_t) + eps)
/// ```
pub fn adagrad(lr: f64, lr_decay: f64, weight_decay: f64, initial_accumulator_value: f64, eps: f64) -> ChainOptimizer {
    let stage = ScaleByAdagrad::new(initial_accumulator_value, eps);
    let schedule = InverseTimeDecay { lr, decay: lr_decay };
    with_weight_decay("adagrad", stage, schedule, weight_decay, false)
}

/// `torch.optim.RMSprop` (Tieleman and Hinton 2012; centered: Graves 2013).
/// With `g = grad + weight_decay * p`:
///
/// ```text
/// s_t = alpha s_{t-1} + (1 - alpha) g_t^2,   a_t = alpha a_{t-1} + (1 - alpha) g_t
/// d_t = g_t / (sqrt(s_t - a_t^2) + eps)   (centered)   or   g_t / (sqrt(s_t) + eps)
/// b_t = momentum b_{t-1} + d_t   (b_0 = 0)
/// update = -lr * b_t
/// ```
pub fn rmsprop(lr: f64, alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool) -> ChainOptimizer {
    let stage = chain![
        ScaleByRmsprop::new(alpha, eps, centered),
        TorchMomentum::new(momentum, 0.0, false)
    ];
    with_weight_decay("rmsprop", stage, Constant(lr), weight_decay, false)
}

/// `torch.optim.Adadelta` (Zeiler, arXiv:1212.5701, 2012). With
/// `g = grad + weight_decay * p`:
///
/// ```text
/// s_t = rho s_{t-1} + (1 - rho) g_t^2
/// delta_t = sqrt(d_{t-1} + eps) / sqrt(s_t + eps) * g_t
/// d_t = rho d_{t-1} + (1 - rho) delta_t^2
/// update = -lr * delta_t
/// ```
pub fn adadelta(lr: f64, rho: f64, eps: f64, weight_decay: f64) -> ChainOptimizer {
    with_weight_decay(
        "adadelta",
        ScaleByAdadelta::new(rho, eps),
        Constant(lr),
        weight_decay,
        false,
    )
}

/// The settings the Adam variants share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Weight-decay rate.
    pub weight_decay: f64,
    /// Decay the weights directly (Loshchilov and Hutter, "Decoupled Weight
    /// Decay Regularization", ICLR 2019) instead of adding
    /// `weight_decay * p` to the gradient (L2).
    pub decoupled: bool,
}

impl AdamConfig {
    /// Reads `lr`, `beta1`, `beta2`, `eps` and `weight_decay` from `h`.
    pub fn from_hyper(h: &HyperParams, decoupled: bool) -> Result<AdamConfig> {
        Ok(AdamConfig {
            lr: h.get("lr")?,
            beta1: h.get("beta1")?,
            beta2: h.get("beta2")?,
            eps: h.get("eps")?,
            weight_decay: h.get("weight_decay")?,
            decoupled,
        })
    }

    /// `stage` wrapped in this configuration's weight decay and learning rate.
    fn chain(&self, name: &str, stage: impl Transform + 'static) -> ChainOptimizer {
        with_weight_decay(name, stage, Constant(self.lr), self.weight_decay, self.decoupled)
    }
}

/// `torch.optim.Adam` / `AdamW` (Kingma and Ba, ICLR 2015; decoupled decay:
/// Loshchilov and Hutter, ICLR 2019; `amsgrad`: Reddi, Kale and Kumar, "On
/// the Convergence of Adam and Beyond", ICLR 2018). With
/// `g = grad + weight_decay * p` unless decoupled:
///
/// ```text
/// m_t = beta1 m_{t-1} + (1 - beta1) g_t,   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
/// v'_t = max(v'_{t-1}, v_t) if amsgrad else v_t
/// dir = (m_t / (1 - beta1^t)) / (sqrt(v'_t / (1 - beta2^t)) + eps)
/// update = -lr * dir   (L2)   or   -lr * (dir + weight_decay * p)   (decoupled)
/// ```
pub fn adam(name: &str, config: AdamConfig, amsgrad: bool) -> ChainOptimizer {
    config.chain(name, ScaleByAdam::new(config.beta1, config.beta2, config.eps, amsgrad))
}

/// `torch.optim.NAdam` (Dozat, ICLR 2016 workshop); the direction is
/// [`ScaleByNadam`]'s, with L2 or decoupled weight decay around it.
pub fn nadam(config: AdamConfig, momentum_decay: f64) -> ChainOptimizer {
    let stage = ScaleByNadam::new(config.beta1, config.beta2, config.eps, momentum_decay);
    config.chain("nadam", stage)
}

/// `torch.optim.RAdam` (Liu et al., ICLR 2020); the direction is
/// [`ScaleByRadam`]'s, with L2 or decoupled weight decay around it.
pub fn radam(config: AdamConfig) -> ChainOptimizer {
    config.chain("radam", ScaleByRadam::new(config.beta1, config.beta2, config.eps))
}

/// `torch.optim.Adamax` (Kingma and Ba, ICLR 2015, Algorithm 2); the
/// direction is [`ScaleByAdamax`]'s, after L2 weight decay.
pub fn adamax(config: AdamConfig) -> ChainOptimizer {
    config.chain("adamax", ScaleByAdamax::new(config.beta1, config.beta2, config.eps))
}

/// The learning rate, `lr >= 0` as torch.optim checks it.
const fn lr(default: f64, about: &'static str) -> HpSpec {
    hp("lr", default, about).non_negative()
}

const BETA1: HpSpec = hp("beta1", 0.9, "first-moment decay").decay_rate();
const BETA2: HpSpec = hp("beta2", 0.999, "second-moment decay").decay_rate();
const EPS: HpSpec = hp("eps", 1e-8, "denominator stabiliser").non_negative();
const L2: HpSpec = hp(
    "weight_decay",
    0.0,
    "L2 penalty: weight_decay * p is added to the gradient",
)
.non_negative();
const DECOUPLED: HpSpec = hp(
    "decoupled_weight_decay",
    0.0,
    "1: decay the weights directly (AdamW-style) instead of L2",
)
.flag();

const AMSGRAD: HpSpec = hp("amsgrad", 0.0, "1: use the running maximum of v (AMSGrad)").flag();

const SGDM_HPS: &[HpSpec] = &[
    lr(1e-3, "learning rate"),
    hp("momentum", 0.9, "momentum factor").non_negative(),
    hp("dampening", 0.0, "dampening of new gradients in the momentum buffer").fraction(),
    hp(
        "nesterov",
        0.0,
        "1: Nesterov momentum (needs momentum > 0, dampening 0)",
    )
    .flag(),
    L2,
];

const ADAGRAD_HPS: &[HpSpec] = &[
    lr(1e-2, "learning rate"),
    hp("lr_decay", 0.0, "lr / (1 + (t - 1) * lr_decay)").non_negative(),
    L2,
    hp(
        "initial_accumulator_value",
        0.0,
        "starting value of the squared-gradient sum",
    )
    .non_negative(),
    hp("eps", 1e-10, "denominator stabiliser").non_negative(),
];

const RMSPROP_HPS: &[HpSpec] = &[
    lr(1e-2, "learning rate"),
    hp("alpha", 0.99, "decay of the squared-gradient average").fraction(),
    EPS,
    L2,
    hp("momentum", 0.0, "momentum factor").non_negative(),
    hp("centered", 0.0, "1: divide by the estimated standard deviation").flag(),
];

const ADADELTA_HPS: &[HpSpec] = &[
    lr(1.0, "scale of the step"),
    hp("rho", 0.9, "decay of the running averages").fraction(),
    hp("eps", 1e-6, "stabiliser inside the square roots").non_negative(),
    L2,
];

const ADAM_L2_HPS: &[HpSpec] = &[lr(1e-3, "learning rate"), BETA1, BETA2, EPS, L2, AMSGRAD];

const ADAMW_HPS: &[HpSpec] = &[
    lr(1e-3, "learning rate"),
    BETA1,
    BETA2,
    EPS,
    hp(
        "weight_decay",
        1e-2,
        "decoupled weight decay: p *= 1 - lr * weight_decay",
    )
    .non_negative(),
    AMSGRAD,
];

const AMSGRAD_HPS: &[HpSpec] = &[lr(1e-3, "learning rate"), BETA1, BETA2, EPS, L2, DECOUPLED];

const NADAM_HPS: &[HpSpec] = &[
    lr(2e-3, "learning rate"),
    BETA1,
    BETA2,
    EPS,
    L2,
    hp("momentum_decay", 4e-3, "psi in mu_t = beta1 (1 - 0.5 * 0.96^(t psi))").non_negative(),
    DECOUPLED,
];

const RADAM_HPS: &[HpSpec] = &[lr(1e-3, "learning rate"), BETA1, BETA2, EPS, L2, DECOUPLED];

const ADAMAX_HPS: &[HpSpec] = &[
    lr(2e-3, "learning rate"),
    BETA1,
    hp("beta2", 0.999, "decay of the infinity norm").decay_rate(),
    EPS,
    L2,
];

/// This family's catalog entries (PyTorch's defaults, except `sgdm`'s
/// momentum of 0.9, where PyTorch's 0 would be plain SGD).
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "sgdm",
        about: "SGD with momentum, dampening, Nesterov and L2 decay, as torch.optim.SGD",
        hyperparams: SGDM_HPS,
        build: |h| {
            let nesterov = h.flag("nesterov")?;
            let (lr, momentum, dampening) = (h.get("lr")?, h.get("momentum")?, h.get("dampening")?);
            if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                return Err(Error::invalid(
                    "sgdm",
                    "Nesterov momentum needs momentum > 0 and dampening 0",
                ));
            }
            Ok(Box::new(sgdm(
                lr,
                momentum,
                dampening,
                nesterov,
                h.get("weight_decay")?,
            )))
        },
    },
    OptimizerInfo {
        name: "adagrad",
        about: "Adagrad (Duchi et al. 2011), as torch.optim.Adagrad",
        hyperparams: ADAGRAD_HPS,
        build: |h| {
            Ok(Box::new(adagrad(
                h.get("lr")?,
                h.get("lr_decay")?,
                h.get("weight_decay")?,
                h.get("initial_accumulator_value")?,
                h.get("eps")?,
            )))
        },
    },
    OptimizerInfo {
        name: "rmsprop",
        about: "RMSprop (Tieleman & Hinton 2012), centered and with momentum optionally, as torch.optim.RMSprop",
        hyperparams: RMSPROP_HPS,
        build: |h| {
            Ok(Box::new(rmsprop(
                h.get("lr")?,
                h.get("alpha")?,
                h.get("eps")?,
                h.get("weight_decay")?,
                h.get("momentum")?,
                h.flag("centered")?,
            )))
        },
    },
    OptimizerInfo {
        name: "adadelta",
        about: "Adadelta (Zeiler 2012), as torch.optim.Adadelta",
        hyperparams: ADADELTA_HPS,
        build: |h| {
            Ok(Box::new(adadelta(
                h.get("lr")?,
                h.get("rho")?,
                h.get("eps")?,
                h.get("weight_decay")?,
            )))
        },
    },
    OptimizerInfo {
        name: "adam",
        about: "Adam (Kingma & Ba 2015) as torch.optim.Adam: no clipping, L2 weight decay, amsgrad switch",
        hyperparams: ADAM_L2_HPS,
        build: |h| {
            let config = AdamConfig::from_hyper(h, false)?;
            Ok(Box::new(adam("adam", config, h.flag("amsgrad")?)))
        },
    },
    OptimizerInfo {
        name: "adamw",
        about: "AdamW (Loshchilov & Hutter 2019): decoupled weight decay, as torch.optim.AdamW",
        hyperparams: ADAMW_HPS,
        build: |h| {
            let config = AdamConfig::from_hyper(h, true)?;
            Ok(Box::new(adam("adamw", config, h.flag("amsgrad")?)))
        },
    },
    OptimizerInfo {
        name: "amsgrad",
        about: "AMSGrad (Reddi et al. 2018), as torch.optim.Adam(amsgrad=True)",
        hyperparams: AMSGRAD_HPS,
        build: |h| {
            let config = AdamConfig::from_hyper(h, h.flag("decoupled_weight_decay")?)?;
            Ok(Box::new(adam("amsgrad", config, true)))
        },
    },
    OptimizerInfo {
        name: "nadam",
        about: "NAdam (Dozat 2016) with PyTorch's momentum schedule, as torch.optim.NAdam",
        hyperparams: NADAM_HPS,
        build: |h| {
            let config = AdamConfig::from_hyper(h, h.flag("decoupled_weight_decay")?)?;
            Ok(Box::new(nadam(config, h.get("momentum_decay")?)))
        },
    },
    OptimizerInfo {
        name: "radam",
        about: "RAdam (Liu et al. 2020), as torch.optim.RAdam",
        hyperparams: RADAM_HPS,
        build: |h| {
            let config = AdamConfig::from_hyper(h, h.flag("decoupled_weight_decay")?)?;
            Ok(Box::new(radam(config)))
        },
    },
    OptimizerInfo {
        name: "adamax",
        about: "Adamax (Kingma & Ba 2015, infinity norm), as torch.optim.Adamax",
        hyperparams: ADAMAX_HPS,
        build: |h| Ok(Box::new(adamax(AdamConfig::from_hyper(h, false)?))),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ModelLayout;
    use crate::{StepContext, TaskOptimizer};
    use ferrograd_engine::{Shape, Tensor};

    fn build(name: &str, overrides: &[(&str, f64)]) -> Result<Box<dyn TaskOptimizer>> {
        let info = CATALOG.iter().find(|i| i.name == name).unwrap();
        let mut h = HyperParams::defaults(info);
        for (k, v) in overrides {
            h.set(k, *v)?;
        }
        (info.build)(&h)
    }

    #[test]
    fn switches_must_be_zero_or_one() {
        assert!(build("rmsprop", &[("centered", 0.5)]).is_err());
        assert!(build("sgdm", &[("nesterov", 1.0), ("dampening", 0.1)]).is_err());
        assert!(build("sgdm", &[("nesterov", 1.0)]).is_ok());
    }

    /// Every entry, after a checkpoint round trip, continues exactly as the
    /// uninterrupted run does.
    #[test]
    fn state_round_trip_continues_identically() {
        let shapes = [Shape::new([3])];
        let ctx = StepContext::default();
        let p = Tensor::from_vec(vec![0.5f64, -1.0, 2.0], [3]).unwrap();
        let grad = |k: f64| Tensor::from_vec(vec![0.3 * k, -1.0 + k, 0.1], [3]).unwrap();
        let overrides: &[(&str, f64)] = &[];
        for info in CATALOG {
            let extra: &[(&str, f64)] = match info.name {
                "rmsprop" => &[("centered", 1.0), ("momentum", 0.5)],
                "sgdm" => &[("nesterov", 1.0)],
                _ => overrides,
            };
            let mut a = build(info.name, extra).unwrap();
            a.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            for k in 0..3 {
                a.step(std::slice::from_ref(&p), &[grad(k as f64)], &ctx).unwrap();
            }
            let mut b = build(info.name, extra).unwrap();
            b.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            b.load_state(&a.state()).unwrap();
            let ua = a.step(std::slice::from_ref(&p), &[grad(3.0)], &ctx).unwrap();
            let ub = b.step(std::slice::from_ref(&p), &[grad(3.0)], &ctx).unwrap();
            assert_eq!(
                ua[0].to_vec::<f64>().unwrap(),
                ub[0].to_vec::<f64>().unwrap(),
                "{}",
                info.name
            );
        }
    }
}
