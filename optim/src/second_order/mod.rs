//! Optimizers that use curvature: Sophia, AdaHessian and a truncated
//! Newton-CG step, all fed by Hessian-vector products.
//!
//! **How they get curvature under the task's protocol.** The protocol hands
//! an optimizer one gradient per step and lets it choose where that gradient
//! is taken (`query_at_params`). Curvature could be squeezed out of that
//! alone, by querying at `theta + eps u` on some steps and differencing with
//! an earlier gradient, but the two gradients would come from different
//! mini-batches (their difference is mostly sampling noise, not `H u`) and
//! every probe would cost a training step. So ferrograd's harness offers a
//! hook instead: an optimizer that says [`TaskOptimizer::uses_curvature`]
//! gets [`TaskOptimizer::step_with_curvature`] with a [`Curvature`] whose
//! `hvp` differentiates the step's own loss twice (reverse over reverse),
//! at the same parameters and on the same mini-batch as the gradient. This
//! is an extension of the task's interface: the task's Python harness has no
//! such hook, and results of these optimizers are marked as using it.
//!
//! **Hutchinson's estimator.** For a random `u` with independent Rademacher
//! entries (+1 or -1, each with probability 1/2), `E[u * (H u)] = diag(H)`
//! (Hutchinson 1990; Bekas, Kokiopoulou and Saad 2007): one hvp gives an
//! unbiased estimate of the Hessian's diagonal. Sophia and AdaHessian both
//! precondition with it.
//!
//! [`TaskOptimizer::uses_curvature`]: crate::TaskOptimizer::uses_curvature
//! [`TaskOptimizer::step_with_curvature`]: crate::TaskOptimizer::step_with_curvature
//! [`Curvature`]: crate::Curvature

pub mod adahessian;
pub mod newton_cg;
pub mod sophia;

pub use adahessian::{AdaHessian, AdaHessianConfig};
pub use newton_cg::{NewtonCg, NewtonCgConfig};
pub use sophia::{Sophia, SophiaConfig};

use crate::layout::ModelLayout;
use crate::{check_step, hp, Curvature, HpSpec, HyperParams, OptimizerInfo, OptimizerState};
use ferrograd_engine::{Draw, Error, Result, Rng, Shape, Tensor};

/// One Rademacher vector: independent +1/-1 entries on the masked tensors,
/// zeros elsewhere, each tensor shaped and typed like its parameter.
pub fn rademacher(params: &[Tensor], mask: &[bool], rng: &mut (impl Draw + ?Sized)) -> Result<Vec<Tensor>> {
    params
        .iter()
        .zip(mask)
        .map(|(p, &probed)| {
            if !probed {
                return p.zeros_like();
            }
            // Drawn on the CPU (one generator, the same signs on any device),
            // then moved to the parameter's device.
            let signs = random_signs(p.numel(), rng);
            Tensor::from_f64_slice(&signs, p.shape().clone(), p.dtype())?.to_device(p.device())
        })
        .collect()
}

/// `n` random signs, 64 from each draw of the generator.
fn random_signs(n: usize, rng: &mut (impl Draw + ?Sized)) -> Vec<f64> {
    let mut signs = Vec::with_capacity(n);
    while signs.len() < n {
        let bits = rng.next_u64();
        let take = (n - signs.len()).min(64);
        signs.extend((0..take).map(|k| if (bits >> k) & 1 == 1 { 1.0 } else { -1.0 }));
    }
    signs
}

/// Hutchinson's estimate `u * (H u)` of the Hessian's diagonal from one
/// Rademacher probe `u` (zeros on unmasked tensors).
pub fn hutchinson_diagonal(
    params: &[Tensor],
    mask: &[bool],
    rng: &mut (impl Draw + ?Sized),
    curvature: &mut dyn Curvature,
) -> Result<Vec<Tensor>> {
    let u = rademacher(params, mask, rng)?;
    let hu = curvature.hvp(&u)?;
    if hu.len() != u.len() {
        return Err(Error::invalid(
            "hvp",
            format!("the curvature hook returned {} tensors for {}", hu.len(), u.len()),
        ));
    }
    u.iter().zip(&hu).map(|(u, hu)| u.mul(hu)).collect()
}

/// What Sophia and AdaHessian share: the tensors' shapes, which of them are
/// probed, the probe generator and the step count, with the loops over
/// tensors both run.
#[derive(Debug, Clone)]
pub(crate) struct ProbeState {
    shapes: Vec<Shape>,
    mask: Vec<bool>,
    rng: Rng,
    count: u64,
}

impl ProbeState {
    /// Fresh state for the model's tensors, probes drawn from `seed` and
    /// placed on the tensors the training loop trains (not BatchNorm running
    /// statistics, not frozen layers).
    pub(crate) fn new(seed: u64, layout: &ModelLayout) -> ProbeState {
        ProbeState {
            shapes: layout.shapes().to_vec(),
            mask: layout.trained().to_vec(),
            rng: Rng::derived(seed, PROBE_STREAM),
            count: 0,
        }
    }

    /// Steps taken so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Checks the parameters and gradients, says whether this step
    /// refreshes the Hessian estimate (steps 1, every + 1, 2 every + 1,
    /// ...), and counts the step.
    pub(crate) fn begin_step(
        &mut self,
        op: &'static str,
        params: &[Tensor],
        grads: &[Tensor],
        every: u64,
    ) -> Result<bool> {
        check_step(op, &self.shapes, params, grads)?;
        let refresh = self.count % every == 0;
        self.count += 1;
        Ok(refresh)
    }

    /// A Hutchinson estimate of the Hessian diagonal at this step.
    pub(crate) fn diagonal(&mut self, params: &[Tensor], curvature: &mut dyn Curvature) -> Result<Vec<Tensor>> {
        hutchinson_diagonal(params, &self.mask, &mut self.rng, curvature)
    }

    /// `update(i, param, grad)` for every probed tensor, zeros elsewhere.
    pub(crate) fn updates(
        &self,
        params: &[Tensor],
        grads: &[Tensor],
        mut update: impl FnMut(usize, &Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            out.push(if self.mask[i] {
                update(i, p, g)?
            } else {
                g.zeros_like()?
            });
        }
        Ok(out)
    }

    /// Saves the count and the generator.
    pub(crate) fn save(&self, state: &mut OptimizerState) {
        state.counters.insert("count".into(), self.count);
        save_rng(state, "", &self.rng);
    }

    /// Restores what [`ProbeState::save`] wrote.
    pub(crate) fn load(&mut self, state: &OptimizerState) -> Result<()> {
        self.count = state.counter("count")?;
        self.rng = load_rng(state, "")?;
        Ok(())
    }
}

/// The error for a curvature optimizer driven without curvature.
pub(crate) fn needs_curvature(name: &str) -> Error {
    Error::invalid(
        "optimizer step",
        format!(
            "{name} needs Hessian-vector products: train it with ferrograd's Trainer (`ferrograd train \
             --optimizer {name}`), which offers them, or call step_with_curvature yourself"
        ),
    )
}

/// Saves a generator's state as four counters `{prefix}rng.0..3`.
fn save_rng(state: &mut OptimizerState, prefix: &str, rng: &Rng) {
    for (k, word) in rng.state().into_iter().enumerate() {
        state.counters.insert(format!("{prefix}rng.{k}"), word);
    }
}

/// Reads back what [`save_rng`] wrote.
fn load_rng(state: &OptimizerState, prefix: &str) -> Result<Rng> {
    let mut words = [0u64; 4];
    for (k, word) in words.iter_mut().enumerate() {
        *word = state.counter(&format!("{prefix}rng.{k}"))?;
    }
    Ok(Rng::from_state(words))
}

/// The RNG stream of curvature probes, derived from the run's seed.
const PROBE_STREAM: u64 = 0x4855_5443_4849_4e53; // "HUTCHINS"

const SOPHIA_HPS: &[HpSpec] = &[
    hp("lr", 1e-3, "learning rate (the largest per-coordinate step)").positive(),
    hp("beta1", 0.96, "gradient EMA decay").decay_rate(),
    hp("beta2", 0.99, "Hessian-diagonal EMA decay").decay_rate(),
    hp(
        "rho",
        0.01,
        "gamma: scales the Hessian in the clipped ratio m / max(gamma h, eps)",
    )
    .positive(),
    hp("eps", 1e-12, "floor of the denominator").positive(),
    hp("every", 10.0, "steps between Hessian estimates (k)").count(),
    hp("weight_decay", 0.0, "decoupled weight decay").non_negative(),
];

const ADAHESSIAN_HPS: &[HpSpec] = &[
    hp("lr", 0.15, "learning rate").positive(),
    hp("beta1", 0.9, "gradient EMA decay").decay_rate(),
    hp("beta2", 0.999, "EMA decay of the squared Hessian diagonal").decay_rate(),
    hp("eps", 1e-4, "denominator stabiliser").positive(),
    hp("hessian_power", 1.0, "k in the denominator (sqrt(v))^k").positive_fraction(),
    hp("every", 1.0, "steps between Hessian estimates").count(),
    hp("weight_decay", 0.0, "decoupled weight decay").non_negative(),
];

/// The most conjugate-gradient iterations a Newton-CG step may run: each
/// costs a Hessian-vector product (about three gradients), and CG on `n`
/// unknowns converges in `n` of them in exact arithmetic, so beyond a
/// thousand a step is only slow, never better on the task's models.
pub const MAX_CG_ITERS: f64 = 1000.0;

const NEWTON_CG_HPS: &[HpSpec] = &[
    hp("lr", 1.0, "step length along the Newton direction").positive(),
    hp("damping", 1.0, "lambda in (H + lambda I) d = -g").non_negative(),
    hp("cg_iters", 10.0, "conjugate-gradient iterations per step (hvps)")
        .count()
        .at_most(MAX_CG_ITERS),
    hp("tol", 1e-4, "stop CG when |r| <= tol |g|").non_negative(),
    hp("max_norm", 1.0, "the step's norm is capped at this (0: no cap)").non_negative(),
];

/// The curvature family in the catalog.
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "sophia",
        about: "Sophia-H (Liu et al. 2023): momentum over a Hutchinson Hessian diagonal, clipped per coordinate [hvp hook]",
        hyperparams: SOPHIA_HPS,
        build: |h| Ok(Box::new(Sophia::new(sophia_config(h)?))),
    },
    OptimizerInfo {
        name: "adahessian",
        about: "AdaHessian (Yao et al. 2021): Adam with the squared Hutchinson Hessian diagonal as second moment [hvp hook]",
        hyperparams: ADAHESSIAN_HPS,
        build: |h| Ok(Box::new(AdaHessian::new(adahessian_config(h)?))),
    },
    OptimizerInfo {
        name: "newton_cg",
        about: "Truncated Newton: damped Newton direction by conjugate gradients on hvps, for small problems [hvp hook]",
        hyperparams: NEWTON_CG_HPS,
        build: |h| Ok(Box::new(NewtonCg::new(newton_cg_config(h)?))),
    },
];

fn sophia_config(h: &HyperParams) -> Result<SophiaConfig> {
    Ok(SophiaConfig {
        lr: h.get("lr")?,
        beta1: h.get("beta1")?,
        beta2: h.get("beta2")?,
        rho: h.get("rho")?,
        eps: h.get("eps")?,
        every: h.whole("every")?,
        weight_decay: h.get("weight_decay")?,
    })
}

fn adahessian_config(h: &HyperParams) -> Result<AdaHessianConfig> {
    Ok(AdaHessianConfig {
        lr: h.get("lr")?,
        beta1: h.get("beta1")?,
        beta2: h.get("beta2")?,
        eps: h.get("eps")?,
        hessian_power: h.get("hessian_power")?,
        every: h.whole("every")?,
        weight_decay: h.get("weight_decay")?,
    })
}

fn newton_cg_config(h: &HyperParams) -> Result<NewtonCgConfig> {
    Ok(NewtonCgConfig {
        lr: h.get("lr")?,
        damping: h.get("damping")?,
        cg_iters: h.whole("cg_iters")? as usize,
        tol: h.get("tol")?,
        max_norm: h.get("max_norm")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_signs_are_plus_or_minus_one_and_balanced() {
        let signs = random_signs(10_000, &mut Rng::new(3));
        assert!(signs.iter().all(|s| *s == 1.0 || *s == -1.0));
        let mean = signs.iter().sum::<f64>() / signs.len() as f64;
        // Standard deviation of the mean of 10,000 signs is 0.01.
        assert!(mean.abs() < 0.04, "mean {mean}");
    }

    #[test]
    fn probes_skip_the_running_statistics_and_frozen_layers_the_layout_names() {
        // Two hidden layers: W0 b0 W1 b1 W2 b2, then two BatchNorms of 4 tensors.
        let shapes: Vec<Shape> = vec![
            [3, 1].into(),
            [3].into(),
            [3, 3].into(),
            [3].into(),
            [2, 3].into(),
            [2].into(),
            [3].into(),
            [3].into(),
            [3].into(),
            [3].into(),
            [3].into(),
            [3].into(),
            [3].into(),
            [3].into(),
        ];
        let mask = ProbeState::new(0, &ModelLayout::task_model(&shapes).unwrap()).mask;
        // Layers 1 and 2 (and BatchNorm 1) are frozen; running stats never train.
        let want = [
            true, true, false, false, false, false, true, true, false, false, false, false, false, false,
        ];
        assert_eq!(mask, want);
        assert_eq!(ProbeState::new(0, &ModelLayout::any(&[[2].into()])).mask, vec![true]);
        // Any model: the loop's trained flags decide, whatever the shapes.
        let frozen_bias = ModelLayout::new(vec![[2, 2].into(), [2].into()], None, vec![true, false]).unwrap();
        assert_eq!(ProbeState::new(0, &frozen_bias).mask, vec![true, false]);
    }
}
