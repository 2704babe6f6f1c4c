//! Lookahead: Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps
//! forward, 1 step back", NeurIPS 2019 (arXiv:1907.08610), Algorithm 1.
//!
//! The inner optimizer moves the fast weights `theta` (the model's
//! parameters); every `k` steps the slow weights `phi` move toward them and
//! the fast weights restart from there:
//!
//! ```text
//! theta_{t+1} = theta_t + inner_update_t
//! if (t + 1) % k == 0:   phi <- phi + alpha (theta_{t+1} - phi);   theta_{t+1} <- phi
//! ```
//!
//! `phi` starts at the parameters of the first step. The additive update is
//! the inner one on ordinary steps and `phi_new - theta_t` on synchronising
//! steps, where `theta_{t+1}` is formed exactly as the harness forms it
//! (`params + inner_update`, the same tensor addition). `phi` lives in the
//! state, so it never drifts; the model's copy is `params + (phi - params)`,
//! within one rounding of `phi`. The inner optimizer's state (moments) is
//! kept across synchronisations, as in the paper's experiments.
//! Defaults: k = 5, alpha = 0.5.

use super::{check_own, inner_refused, nest, unnest};
use crate::layout::ModelLayout;
use crate::transform::Slots;
use crate::{OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// Lookahead around any optimizer; see the [module docs](self).
pub struct Lookahead {
    name: String,
    inner: Box<dyn TaskOptimizer>,
    k: u64,
    alpha: f64,
    count: u64,
    slow: Slots,
    /// The shapes from `init_state`, which a loaded state must fit.
    shapes: Vec<Shape>,
}

impl Lookahead {
    /// The same wrapper under another name (the catalog's entry name, which
    /// need not repeat its inner optimizer's).
    pub fn named(mut self, name: impl Into<String>) -> Lookahead {
        self.name = name.into();
        self
    }
}

impl Lookahead {
    /// Lookahead with `k` fast steps per synchronisation (0 counts as 1) and
    /// slow step size `alpha`. Named `lookahead_<inner name>`.
    pub fn new(inner: Box<dyn TaskOptimizer>, k: u64, alpha: f64) -> Lookahead {
        Lookahead {
            name: format!("lookahead_{}", inner.name()),
            inner,
            k: k.max(1),
            alpha,
            count: 0,
            slow: Slots::default(),
            shapes: Vec::new(),
        }
    }

    /// The slow weights `phi` (empty before the first step).
    pub fn slow_weights(&self) -> &[Tensor] {
        self.slow.all()
    }
}

impl TaskOptimizer for Lookahead {
    fn name(&self) -> &str {
        &self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.count = 0;
        self.slow = Slots::default();
        self.shapes = layout.shapes().to_vec();
        self.inner.init_state(seed, layout)
    }

    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        self.inner.query_at_params(params, ctx)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        if self.slow.all().len() != params.len() {
            for (i, p) in params.iter().enumerate() {
                self.slow.get(i, p)?;
                self.slow.set(i, p.clone());
            }
        }
        let updates = self.inner.step(params, grads, ctx)?;
        self.count += 1;
        if self.count % self.k != 0 {
            return Ok(updates);
        }
        let mut out = Vec::with_capacity(updates.len());
        for (i, (p, u)) in params.iter().zip(&updates).enumerate() {
            let fast = p.add(u)?;
            let slow = &self.slow.all()[i];
            let slow_new = slow.add(&fast.sub(slow)?.mul_scalar(self.alpha)?)?;
            out.push(slow_new.sub(p)?);
            self.slow.set(i, slow_new);
        }
        Ok(out)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        nest(self.inner.state(), &mut state);
        state.counters.insert("count".into(), self.count);
        self.slow.save("", "slow", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        // Its own entries first; the inner optimizer checks its own before
        // assigning them; then nothing here can fail.
        check_own(&self.name, &self.shapes, &["slow"], &self.state(), state)?;
        self.inner
            .load_state(&unnest(state))
            .map_err(|e| inner_refused(&self.name, e))?;
        self.count = state.counter("count")?;
        self.slow.load("", "slow", state);
        Ok(())
    }
}
