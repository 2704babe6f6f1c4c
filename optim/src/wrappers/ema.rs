//! An exponential moving average of the weights: Polyak-Ruppert averaging
//! (Polyak and Juditsky, "Acceleration of Stochastic Approximation by
//! Averaging", SIAM J. Control Optim. 1992) in its exponential form, as in
//! TensorFlow's `tf.train.ExponentialMovingAverage` (whose `num_updates`
//! warmup this wrapper offers) and timm's `ModelEma`.
//!
//! ```text
//! theta_{t+1} = theta_t + inner_update_t
//! decay_t = min(decay, (1 + t) / (10 + t))   with warmup (t = steps taken, this one included)
//! decay_t = decay                             without
//! avg_{t+1} = decay_t avg_t + (1 - decay_t) theta_{t+1},   avg_0 = theta_0
//! ```
//!
//! **Under the task's protocol** the harness evaluates (validation, early
//! stopping, the kept model, the test score) whatever the model holds. Two
//! modes:
//!
//! - tracking (default, `eval_average = 0`): the model holds the raw weights
//!   `theta` and the updates are exactly the inner optimizer's; the average is
//!   only available to library users through [`Ema::ema_params`]. The task's
//!   score therefore does *not* see the average in this mode.
//! - evaluating the average (`eval_average = 1`): the model holds the average,
//!   the raw weights live in the state, [`TaskOptimizer::query_at_params`]
//!   returns them (or the inner optimizer's own query point computed from
//!   them), and the update is `avg_{t+1} - params` (the Schedule-Free
//!   mapping). Validation and the score then use the average. Because every
//!   step queries, the harness restores BatchNorm running statistics after
//!   each one, so they keep their initial values in this mode, and a
//!   BatchNorm model (the task's) evaluates badly: use it for models without
//!   BatchNorm.
//!
//! Defaults: decay 0.999, warmup on.

use super::{check_own, inner_refused, nest, unnest};
use crate::basic::ema;
use crate::layout::ModelLayout;
use crate::transform::Slots;
use crate::{OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// A moving average of the weights around any optimizer; see the
/// [module docs](self).
pub struct Ema {
    name: String,
    inner: Box<dyn TaskOptimizer>,
    decay: f64,
    warmup: bool,
    eval_average: bool,
    count: u64,
    average: Slots,
    raw: Slots,
    /// The shapes from `init_state`, which a loaded state must fit.
    shapes: Vec<Shape>,
}

impl Ema {
    /// The same wrapper under another name (the catalog's entry name, which
    /// need not repeat its inner optimizer's).
    pub fn named(mut self, name: impl Into<String>) -> Ema {
        self.name = name.into();
        self
    }
}

impl Ema {
    /// Tracks the average with decay `decay`, warmup on, the model holding
    /// the raw weights. Named `ema_<inner name>`.
    pub fn new(inner: Box<dyn TaskOptimizer>, decay: f64) -> Ema {
        Ema {
            name: format!("ema_{}", inner.name()),
            inner,
            decay,
            warmup: true,
            eval_average: false,
            count: 0,
            average: Slots::default(),
            shapes: Vec::new(),
            raw: Slots::default(),
        }
    }

    /// Turns the `(1 + t) / (10 + t)` warmup of the decay on or off.
    pub fn with_warmup(mut self, warmup: bool) -> Ema {
        self.warmup = warmup;
        self
    }

    /// With `true`, the model holds the average and gradients are taken at
    /// the raw weights (see the [module docs](self)).
    pub fn evaluating_average(mut self, eval_average: bool) -> Ema {
        self.eval_average = eval_average;
        self
    }

    /// The averaged weights (empty before the first step).
    pub fn ema_params(&self) -> &[Tensor] {
        self.average.all()
    }

    /// The raw weights, kept in the state when the model holds the average
    /// (empty otherwise).
    pub fn raw_params(&self) -> &[Tensor] {
        self.raw.all()
    }

    /// The decay of step `t` (counting from 1).
    pub fn decay_at(&self, t: u64) -> f64 {
        if self.warmup {
            self.decay.min((1.0 + t as f64) / (10.0 + t as f64))
        } else {
            self.decay
        }
    }

    fn ensure_started(&mut self, params: &[Tensor]) {
        if self.average.all().len() != params.len() {
            for (i, p) in params.iter().enumerate() {
                self.average.set(i, p.clone());
            }
        }
        if self.eval_average && self.raw.all().len() != params.len() {
            for (i, p) in params.iter().enumerate() {
                self.raw.set(i, p.clone());
            }
        }
    }
}

impl TaskOptimizer for Ema {
    fn name(&self) -> &str {
        &self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.count = 0;
        self.average = Slots::default();
        self.raw = Slots::default();
        self.shapes = layout.shapes().to_vec();
        self.inner.init_state(seed, layout)
    }

    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        if !self.eval_average {
            return self.inner.query_at_params(params, ctx);
        }
        self.ensure_started(params);
        let raw = self.raw.all().to_vec();
        Ok(Some(self.inner.query_at_params(&raw, ctx)?.unwrap_or(raw)))
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        self.ensure_started(params);
        let theta = if self.eval_average {
            self.raw.all().to_vec()
        } else {
            params.to_vec()
        };
        let updates = self.inner.step(&theta, grads, ctx)?;
        self.count += 1;
        let decay = self.decay_at(self.count);
        let mut out = Vec::with_capacity(updates.len());
        for (i, (p, u)) in theta.iter().zip(updates).enumerate() {
            let new = p.add(&u)?;
            let average = ema(&self.average.all()[i], &new, decay)?;
            if self.eval_average {
                out.push(average.sub(&params[i])?);
                self.raw.set(i, new);
            } else {
                out.push(u);
            }
            self.average.set(i, average);
        }
        Ok(out)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        nest(self.inner.state(), &mut state);
        state.counters.insert("count".into(), self.count);
        self.average.save("", "average", &mut state);
        self.raw.save("", "raw", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        // Its own entries first; the inner optimizer checks its own before
        // assigning them; then nothing here can fail.
        check_own(&self.name, &self.shapes, &["average", "raw"], &self.state(), state)?;
        self.inner
            .load_state(&unnest(state))
            .map_err(|e| inner_refused(&self.name, e))?;
        self.count = state.counter("count")?;
        self.average.load("", "average", state);
        self.raw.load("", "raw", state);
        Ok(())
    }
}
