//! SAM, sharpness-aware minimisation: Foret, Kleiner, Mobahi and Neyshabur,
//! "Sharpness-Aware Minimization for Efficiently Improving Generalization",
//! ICLR 2021 (arXiv:2010.01412), Algorithm 1.
//!
//! SAM descends with the gradient taken at the worst nearby point:
//!
//! ```text
//! e = rho * g / (|g| + 1e-12)          (|g|: the norm over all tensors together)
//! g_sam = grad f(theta + e)
//! update = inner.step(theta, g_sam)
//! ```
//!
//! **Under the task's protocol** the harness evaluates *one* gradient per
//! step, at the parameters [`TaskOptimizer::query_at_params`] returns, so the
//! two gradients of SAM cannot both be had in one step. Two forms:
//!
//! - two-pass ([`Sam::new`], the default, `two_pass = 1`): steps alternate.
//!   An odd step (1st, 3rd, ...) asks for nothing, so the gradient is taken at
//!   `theta`; it is stored and the step returns a zero update. The next step
//!   asks for the gradient at `theta + e` (the same `theta`) and steps the
//!   inner optimizer with it. This is SAM's exact two-gradient update, except
//!   that the two gradients come from consecutive minibatches, and it takes
//!   two harness steps per SAM step.
//! - one-pass ([`Sam::one_pass`], `two_pass = 0`): the ascent direction is
//!   the previous step's gradient (itself taken at that step's perturbed
//!   point), so every step asks for the gradient at
//!   `theta + rho g_prev / |g_prev|` and steps the inner optimizer with it;
//!   the first step has no previous gradient and is a plain inner step. It
//!   costs no extra step but uses a stale direction from another minibatch.
//!
//! Two-pass is the default because of BatchNorm: the harness restores the
//! running statistics after every query, so they only follow steps that ask
//! for nothing. The one-pass form queries at every step after the first, so
//! the running statistics stay at their initial values and a BatchNorm model
//! (the task's) evaluates badly; the two-pass form updates them on every
//! ascent step. If the inner optimizer asks for its own point (a
//! Schedule-Free inner, say), the perturbation is added to that point.
//! Default: rho = 0.05.

use super::{check_own, inner_refused, nest, unnest};
use crate::basic::global_norm;
use crate::layout::ModelLayout;
use crate::transform::Slots;
use crate::{check_step, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// SAM around any optimizer; see the [module docs](self).
pub struct Sam {
    name: String,
    inner: Box<dyn TaskOptimizer>,
    rho: f64,
    two_pass: bool,
    count: u64,
    ascent: Slots,
    /// The shapes from `init_state`: an ascent step never reaches the inner
    /// optimizer, so it checks its inputs itself.
    shapes: Vec<Shape>,
}

impl Sam {
    /// The same wrapper under another name (the catalog's entry name, which
    /// need not repeat its inner optimizer's).
    pub fn named(mut self, name: impl Into<String>) -> Sam {
        self.name = name.into();
        self
    }
}

impl Sam {
    fn build(inner: Box<dyn TaskOptimizer>, rho: f64, two_pass: bool) -> Sam {
        Sam {
            name: format!("sam_{}", inner.name()),
            inner,
            rho,
            two_pass,
            count: 0,
            ascent: Slots::default(),
            shapes: Vec::new(),
        }
    }

    /// Two-pass (exact) SAM: ascent steps (zero update) alternate with
    /// descent steps. Named `sam_<inner name>`.
    pub fn new(inner: Box<dyn TaskOptimizer>, rho: f64) -> Sam {
        Sam::build(inner, rho, true)
    }

    /// One-pass SAM: the ascent direction is the previous step's gradient.
    pub fn one_pass(inner: Box<dyn TaskOptimizer>, rho: f64) -> Sam {
        Sam::build(inner, rho, false)
    }

    /// Whether this step is a two-pass ascent step.
    fn is_ascent_step(&self) -> bool {
        self.two_pass && self.count % 2 == 0
    }

    fn store_ascent(&mut self, grads: &[Tensor]) {
        for (i, g) in grads.iter().enumerate() {
            self.ascent.set(i, g.clone());
        }
    }
}

impl TaskOptimizer for Sam {
    fn name(&self) -> &str {
        &self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.count = 0;
        self.ascent = Slots::default();
        self.shapes = layout.shapes().to_vec();
        self.inner.init_state(seed, layout)
    }

    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        let base = self.inner.query_at_params(params, ctx)?;
        if self.is_ascent_step() || self.ascent.all().len() != params.len() {
            return Ok(base);
        }
        let base = base.unwrap_or_else(|| params.to_vec());
        let scale = self.rho / (global_norm(self.ascent.all())? + 1e-12);
        base.iter()
            .zip(self.ascent.all())
            .map(|(p, g)| p.add(&g.mul_scalar(scale)?))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_step("sam step", &self.shapes, params, grads)?;
        if self.is_ascent_step() {
            self.store_ascent(grads);
            self.count += 1;
            return grads.iter().map(Tensor::zeros_like).collect::<Result<Vec<_>>>();
        }
        let updates = self.inner.step(params, grads, ctx)?;
        if !self.two_pass {
            self.store_ascent(grads);
        }
        self.count += 1;
        Ok(updates)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        nest(self.inner.state(), &mut state);
        state.counters.insert("count".into(), self.count);
        self.ascent.save("", "ascent", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        // Its own entries first; the inner optimizer checks its own before
        // assigning them; then nothing here can fail.
        check_own(&self.name, &self.shapes, &["ascent"], &self.state(), state)?;
        self.inner
            .load_state(&unnest(state))
            .map_err(|e| inner_refused(&self.name, e))?;
        self.count = state.counter("count")?;
        self.ascent.load("", "ascent", state);
        Ok(())
    }
}
