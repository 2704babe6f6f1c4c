//! `anneal`: ferrograd's optimizer for the benchmark task, and the tuned
//! Adam and AdamW baselines it is measured against (`docs/champion.md`).
//!
//! All three are one optimizer, [`Anneal`], in different configurations: a
//! *direction* (clipped Adam, or Adan) scaled by a *schedule that knows the
//! task's budget* ([`EpochBudget`], a linear or cosine decay counted in
//! epochs, with a warmup), with two parts of its own that only the champion
//! turns on:
//!
//! ```text
//! update = lr(t) * direction(grad) - lr(t) * wd * w     (weight decay on weights only)
//! ```
//!
//! The champion's own parts:
//!
//! * **Kink spreading** (`spread`). The task's input is one number in
//!   `(-1, 1]`, and the first layer's biases start at zero, so every unit
//!   of the first layer is `relu(w x)`: all 256 ReLU kinks sit at `x = 0`
//!   and, after BatchNorm, the layer offers just two distinct features. The
//!   first update moves each bias to `b_i = -w_i c_i` with the kinks `c_i`
//!   evenly spaced over `[-spread, spread]`, so the first layer starts as a
//!   basis of 256 ramps that can follow an oscillating function.
//! * **Settling** (`settle`). From the settle epoch on (the horizon, unless
//!   `settle_at` names an earlier one), the model is held still by the
//!   [`Settle`] wrapper: zero updates, and the gradient asked for at the
//!   current parameters, so the protocol leaves the BatchNorm running
//!   statistics alone; the patience rule ends the run at most 50 epochs
//!   after it settles.
//!
//! Tensor roles (which tensor is the first layer's weight and bias) come
//! from the model's layout ([`ModelLayout`], passed by the training loop);
//! the per-track settings come from its depth.

use crate::adam::ClippedAdam;
use crate::layout::{ModelLayout, Role};
use crate::modern::adan;
use crate::schedule::{DecayShape, EpochBudget, EpochSchedule, Schedule};
use crate::wrappers::Settle;
use crate::{hp, HpSpec, HyperParams, OptimizerInfo, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::storage::CpuSlice;
use ferrograd_engine::{DType, Device, Error, Result, Shape, Tensor};

/// Where `anneal` saves its own state (the schedule's epoch clock), beside
/// the direction's.
const STATE_PREFIX: &str = "anneal.";

/// The direction the schedule scales.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direction {
    /// Adam with gradients clamped to `[-clip, clip]` ([`ClippedAdam`]).
    ClippedAdam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator stabiliser.
        eps: f64,
        /// The clamp.
        clip: f64,
    },
    /// Adan ([`crate::modern::adan()`]), in this crate's convention of decay
    /// rates (`beta = 1 - ` the paper's).
    Adan {
        /// Gradient EMA decay.
        beta1: f64,
        /// Gradient-difference EMA decay.
        beta2: f64,
        /// Second-moment decay.
        beta3: f64,
        /// Denominator stabiliser.
        eps: f64,
    },
}

impl Direction {
    /// A unit-rate optimizer that produces `-direction` (the schedule scales it).
    fn build(self) -> Box<dyn TaskOptimizer> {
        match self {
            Direction::ClippedAdam {
                beta1,
                beta2,
                eps,
                clip,
            } => Box::new(ClippedAdam::new(1.0, beta1, beta2, eps, clip)),
            Direction::Adan {
                beta1,
                beta2,
                beta3,
                eps,
            } => Box::new(adan(1.0, beta1, beta2, beta3, eps, 0.0, false)),
        }
    }
}

/// Everything [`Anneal`] does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnnealConfig {
    /// The update's direction.
    pub direction: Direction,
    /// Its rate, counted in epochs.
    pub schedule: EpochBudget,
    /// Decoupled weight decay on the weights (`w -= lr * wd * w`).
    pub weight_decay: f64,
    /// Spread the first layer's kinks over `[-spread, spread]` at the first
    /// step (0: leave them; a first layer of more than one input needs 0,
    /// which [`TaskOptimizer::init_state`] checks).
    pub spread: f64,
    /// The epoch from which the model is held still (`None`: never).
    pub settle: Option<f64>,
}

/// `anneal` for one configuration or one per track; see the module
/// documentation. It is a short recipe: the `Scheduled` direction (the
/// direction scaled by the budget schedule, weight decay on the weights,
/// the kinks spread at the first step) inside a [`Settle`] wrapper. Build
/// it from a fixed [`AnnealConfig`] or, as the catalog does, from a table
/// that gives a configuration per track (chosen at `init_state`, from the
/// model's depth).
pub struct Anneal {
    name: &'static str,
    choose: Box<dyn Fn(usize) -> AnnealConfig + Send>,
    config: AnnealConfig,
    inner: Settle,
}

impl Anneal {
    /// The same configuration on every track.
    pub fn new(name: &'static str, config: AnnealConfig) -> Anneal {
        Anneal::per_track(name, move |_| config)
    }

    /// The configuration `choose(n_hidden)` for the model's number of
    /// hidden layers (`choose(0)` for a model whose layout has no roles).
    pub fn per_track(name: &'static str, choose: impl Fn(usize) -> AnnealConfig + Send + 'static) -> Anneal {
        let config = choose(0);
        Anneal {
            name,
            choose: Box::new(choose),
            config,
            inner: recipe(name, &config, &ModelLayout::any(&[]), 0.0),
        }
    }

    /// The configuration in use (after [`TaskOptimizer::init_state`], the track's).
    pub fn config(&self) -> &AnnealConfig {
        &self.config
    }
}

/// The optimizer `config` describes, for a model of `layout`, spreading
/// the first layer's kinks over `[-spread, spread]` (0: not at all).
fn recipe(name: &'static str, config: &AnnealConfig, layout: &ModelLayout, spread: f64) -> Settle {
    let decayed = (0..layout.len())
        .map(|i| config.weight_decay != 0.0 && layout.role(i).is_some_and(|r| r.is_weight()))
        .collect();
    let scheduled = Scheduled {
        name,
        direction: config.direction.build(),
        schedule: EpochSchedule::new(config.schedule),
        weight_decay: config.weight_decay,
        decayed,
        spread,
        scaled: Vec::new(),
        shapes: Vec::new(),
    };
    Settle::new(Box::new(scheduled), config.settle)
}

/// How far the first step spreads the kinks of a model's first layer: the
/// configured spread when the model's first tensors are the weight and
/// bias of a hidden Linear layer, else 0.
fn kink_spread(config: &AnnealConfig, layout: &ModelLayout) -> f64 {
    let first_is_hidden =
        layout.linear_layers() > 1 && layout.role(0) == Some(Role::Weight(0)) && layout.role(1) == Some(Role::Bias(0));
    if config.spread > 0.0 && first_is_hidden {
        config.spread
    } else {
        0.0
    }
}

/// A direction scaled by an [`EpochSchedule`], with decoupled weight decay
/// on the tensors `decayed` marks and the first layer's kinks spread at the
/// first step.
struct Scheduled {
    name: &'static str,
    direction: Box<dyn TaskOptimizer>,
    schedule: EpochSchedule,
    weight_decay: f64,
    decayed: Vec<bool>,
    spread: f64,
    /// The updates of the last step, reused as the next step's buffers.
    scaled: Vec<Tensor>,
    /// The shapes from `init_state`, which a loaded state must fit.
    shapes: Vec<Shape>,
}

impl Scheduled {
    /// Scales the unit-rate directions by `lr` and adds the weight decay.
    /// On the CPU the result goes into buffers kept from step to step (the
    /// harness drops its copies before the next step, so they are written
    /// in place, with no allocation); elsewhere, through tensor operations.
    fn scale(&mut self, directions: Vec<Tensor>, params: &[Tensor], lr: f64) -> Result<Vec<Tensor>> {
        let wd = self.weight_decay;
        let decayed = &self.decayed;
        let decayed = |i: usize| decayed.get(i).copied().unwrap_or(false);
        let on_cpu = directions.iter().chain(params).all(|t| t.device() == Device::Cpu);
        if !on_cpu {
            return directions
                .into_iter()
                .zip(params)
                .enumerate()
                .map(|(i, (d, p))| {
                    let u = d.mul_scalar(lr)?;
                    if decayed(i) {
                        u.add(&p.mul_scalar(-lr * wd)?)
                    } else {
                        Ok(u)
                    }
                })
                .collect();
        }
        let scaled = &mut self.scaled;
        scaled.truncate(directions.len());
        for (i, (d, p)) in directions.iter().zip(params).enumerate() {
            match scaled.get_mut(i) {
                Some(u) if u.shape() == d.shape() && u.dtype() == d.dtype() => {}
                Some(u) => *u = d.zeros_like()?,
                None => scaled.push(d.zeros_like()?),
            }
            let wd = if decayed(i) { wd } else { 0.0 };
            match d.dtype() {
                DType::F32 => scale_into::<f32>(&mut scaled[i], d, p, lr, wd)?,
                DType::F64 => scale_into::<f64>(&mut scaled[i], d, p, lr, wd)?,
            }
        }
        Ok(scaled.clone())
    }
}

/// `u = lr * d - lr * wd * p`, in `u`'s buffer, in the order of the tensor
/// operations it replaces (`d * lr`, then `+ p * (-lr * wd)` when `wd` is
/// not zero), so the bits are the same.
fn scale_into<T: CpuSlice>(u: &mut Tensor, d: &Tensor, p: &Tensor, lr: f64, wd: f64) -> Result<()> {
    let (d, p) = (d.as_slice::<T>()?, p.as_slice::<T>()?);
    let u = u.as_mut_slice::<T>()?;
    let rate = T::from_f64(lr);
    if wd == 0.0 {
        for (u, &d) in u.iter_mut().zip(d) {
            *u = d * rate;
        }
    } else {
        let decay = T::from_f64(-lr * wd);
        for ((u, &d), &p) in u.iter_mut().zip(d).zip(p) {
            *u = d * rate + p * decay;
        }
    }
    Ok(())
}

/// Fails unless `w` and `b` are a first layer that kinks can be spread
/// over: weight `[units, 1]` (one input) and bias `[units]`.
fn check_spreadable(w: &Shape, b: &Shape) -> Result<()> {
    if w.rank() == 2 && w.dims()[1] == 1 && b.dims() == [w.dims()[0]] {
        return Ok(());
    }
    Err(Error::invalid(
        "spread_kinks",
        format!(
            "kink spreading needs a first layer of one input, weight [units, 1] and bias [units]; \
             got {w} and {b} (set spread=0 for such models)"
        ),
    ))
}

/// The change of the first layer's bias `b` (weight `w` of shape `[units, 1]`)
/// that puts unit `i`'s kink `-b_i / w_i` at `-spread + spread (2 i + 1) / units`.
pub fn spread_kinks(w: &Tensor, b: &Tensor, spread: f64) -> Result<Tensor> {
    check_spreadable(w.shape(), b.shape())?;
    let (w_now, b_now) = (w.to_vec_f64()?, b.to_vec_f64()?);
    let units = b_now.len() as f64;
    let change: Vec<f64> = w_now
        .iter()
        .zip(&b_now)
        .enumerate()
        .map(|(i, (&wi, &bi))| {
            let kink = spread * ((2 * i + 1) as f64 / units - 1.0);
            -wi * kink - bi
        })
        .collect();
    Tensor::from_vec(change, b.shape().clone())?
        .to_dtype(b.dtype())?
        .to_device(b.device())
}

impl TaskOptimizer for Scheduled {
    fn name(&self) -> &str {
        self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.scaled.clear();
        self.shapes = layout.shapes().to_vec();
        self.direction.init_state(seed, layout)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        let lr = self.schedule.lr((ctx.step as u64).saturating_add(1), ctx);
        let directions = self.direction.step(params, grads, ctx)?;
        let mut updates = self.scale(directions, params, lr)?;
        if ctx.step == 0 && self.spread > 0.0 {
            updates[1] = updates[1].add(&spread_kinks(&params[0], &params[1], self.spread)?)?;
        }
        Ok(updates)
    }

    fn state(&self) -> OptimizerState {
        let mut state = self.direction.state();
        self.schedule.save(STATE_PREFIX, &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name, Some(&self.shapes), &self.state())?;
        let mut schedule = self.schedule;
        schedule.load(STATE_PREFIX, state)?;
        // The direction is handed its own entries only: it refuses names it
        // does not keep.
        let mut direction = state.clone();
        direction.counters.retain(|name, _| !name.starts_with(STATE_PREFIX));
        self.direction.load_state(&direction)?;
        self.schedule = schedule;
        Ok(())
    }
}

impl TaskOptimizer for Anneal {
    fn name(&self) -> &str {
        self.name
    }

    fn init_state(&mut self, seed: u64, layout: &ModelLayout) -> Result<()> {
        self.config = (self.choose)(layout.linear_layers().saturating_sub(1));
        let spread = kink_spread(&self.config, layout);
        if spread > 0.0 {
            check_spreadable(&layout.shapes()[0], &layout.shapes()[1])?;
        }
        self.inner = recipe(self.name, &self.config, layout, spread);
        self.inner.init_state(seed, layout)
    }

    fn query_at_params(&mut self, params: &[Tensor], ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        self.inner.query_at_params(params, ctx)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        self.inner.step(params, grads, ctx)
    }

    fn state(&self) -> OptimizerState {
        self.inner.state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.load_state(state)
    }
}

/// The champion's direction: Adan with the decay rates of this crate's
/// `adan` entry (the paper's defaults).
const ADAN: Direction = Direction::Adan {
    beta1: 0.98,
    beta2: 0.92,
    beta3: 0.99,
    eps: 1e-8,
};

/// The champion on track `n_hidden`. The search (`docs/champion.md`) found
/// one setting that serves every track: peak 1e-3, warmup 5 epochs,
/// horizon 50 epochs.
pub fn champion_config(_n_hidden: usize) -> AnnealConfig {
    AnnealConfig {
        direction: ADAN,
        schedule: EpochBudget {
            peak: 1e-3,
            warmup: 5.0,
            horizon: 50.0,
            final_frac: 0.0,
            shape: DecayShape::Linear,
        },
        weight_decay: 0.0,
        spread: 1.0,
        settle: Some(50.0),
    }
}

/// Clipped Adam as the task's first accepted submissions ran it: the
/// direction of the `clipped_adam` baseline.
const CLIPPED_ADAM: Direction = Direction::ClippedAdam {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    clip: 1.0,
};

/// A cosine decay from `peak` to zero over `horizon` epochs, no warmup.
fn cosine(peak: f64, horizon: f64) -> EpochBudget {
    EpochBudget {
        peak,
        warmup: 0.0,
        horizon,
        final_frac: 0.0,
        shape: DecayShape::Cosine,
    }
}

/// Adam tuned per track with the same search budget as the champion
/// (learning rate, betas, clipping, schedule; the search is in
/// `docs/champion.md`). On every track the search chose a cosine decay
/// from 5e-4 to zero over 100 epochs; on track 4 (the only one where it was
/// tried) a first-moment decay of 0.95 did better than 0.9.
pub fn tuned_adam_config(n_hidden: usize) -> AnnealConfig {
    let beta1 = if n_hidden == 4 { 0.95 } else { 0.9 };
    AnnealConfig {
        direction: Direction::ClippedAdam {
            beta1,
            beta2: 0.999,
            eps: 1e-8,
            clip: 1.0,
        },
        schedule: cosine(5e-4, 100.0),
        weight_decay: 0.0,
        spread: 0.0,
        settle: None,
    }
}

/// [`tuned_adam_config`] with the decoupled weight decay of AdamW
/// (Loshchilov and Hutter 2019), its strength tuned on track 4.
pub fn tuned_adamw_config(n_hidden: usize) -> AnnealConfig {
    AnnealConfig {
        weight_decay: 1.0,
        ..tuned_adam_config(n_hidden)
    }
}

/// The `--hp` values of `anneal`, read once when it is built and applied
/// to the configuration of whichever track the shapes reveal.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Overrides {
    lr: f64,
    horizon: f64,
    warmup: f64,
    final_frac: f64,
    spread: f64,
    settle: bool,
    settle_at: f64,
    weight_decay: f64,
    adam: bool,
}

impl Overrides {
    fn from_hyper(h: &HyperParams) -> Result<Overrides> {
        Ok(Overrides {
            lr: h.get("lr")?,
            horizon: h.get("horizon")?,
            warmup: h.get("warmup")?,
            final_frac: h.get("final")?,
            spread: h.get("spread")?,
            settle: h.flag("settle")?,
            settle_at: h.get("settle_at")?,
            weight_decay: h.get("wd")?,
            adam: h.flag("adam")?,
        })
    }

    /// `c` with these overrides; a value of `0` for `lr` or `horizon` keeps
    /// the track's own, and the model settles at the horizon unless
    /// `settle_at` is positive.
    fn apply(&self, mut c: AnnealConfig) -> AnnealConfig {
        let positive = |v: f64| Some(v).filter(|&v| v > 0.0);
        if let Some(lr) = positive(self.lr) {
            c.schedule.peak = lr;
        }
        if let Some(horizon) = positive(self.horizon) {
            c.schedule.horizon = horizon;
        }
        c.schedule.warmup = self.warmup.min(c.schedule.horizon);
        c.schedule.final_frac = self.final_frac;
        c.spread = self.spread;
        c.settle = self
            .settle
            .then(|| positive(self.settle_at).unwrap_or(c.schedule.horizon));
        c.weight_decay = self.weight_decay;
        if self.adam {
            c.direction = CLIPPED_ADAM;
        }
        c
    }
}

const ANNEAL_HPS: &[HpSpec] = &[
    hp("lr", 0.0, "peak learning rate (0: the track's tuned value)").non_negative(),
    hp(
        "horizon",
        0.0,
        "epoch at which the decay ends and the model settles (0: the track's tuned value)",
    )
    .non_negative(),
    hp("warmup", 5.0, "epochs of linear warmup").non_negative(),
    hp(
        "final",
        0.0,
        "rate at the horizon as a fraction of the peak (1: no decay)",
    )
    .fraction(),
    hp(
        "spread",
        1.0,
        "spread the first layer's ReLU kinks over [-spread, spread] at the first step (0: off)",
    )
    .non_negative(),
    hp(
        "settle",
        1.0,
        "1: hold the model still from the horizon on (0: keep stepping at rate 0)",
    )
    .flag(),
    hp(
        "settle_at",
        0.0,
        "with settle 1: the epoch from which the model is held still (0: the horizon)",
    )
    .non_negative(),
    hp("wd", 0.0, "decoupled weight decay on the weights").non_negative(),
    hp(
        "adam",
        0.0,
        "1: clipped Adam (0.9, 0.999, clip 1) as the direction instead of Adan (an ablation)",
    )
    .flag(),
];

/// The catalog entries: the champion and its tuned baselines (which take
/// no hyperparameters: they are the search's result).
pub const CATALOG: &[OptimizerInfo] = &[
    OptimizerInfo {
        name: "anneal",
        about: "ferrograd's optimizer for the task: Adan on a budget-aware decay, kinks spread, settles at the horizon",
        hyperparams: ANNEAL_HPS,
        build: |h| {
            let overrides = Overrides::from_hyper(h)?;
            Ok(Box::new(Anneal::per_track("anneal", move |n| {
                overrides.apply(champion_config(n))
            })))
        },
    },
    OptimizerInfo {
        name: "adam_tuned",
        about: "clipped Adam with the per-track rate and schedule of the champion's search budget (docs/champion.md)",
        hyperparams: &[],
        build: |_| Ok(Box::new(Anneal::per_track("adam_tuned", tuned_adam_config))),
    },
    OptimizerInfo {
        name: "adamw_tuned",
        about: "adam_tuned with decoupled weight decay (AdamW), the decay tuned on track 4 (docs/champion.md)",
        hyperparams: &[],
        build: |_| Ok(Box::new(Anneal::per_track("adamw_tuned", tuned_adamw_config))),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_engine::{DType, Rng};
    use proptest::prelude::*;

    fn first_layer(units: usize, seed: u64) -> (Tensor, Tensor) {
        let mut rng = Rng::new(seed);
        let w = Tensor::rand_uniform([units, 1], -0.05, 0.05, DType::F64, &mut rng).unwrap();
        let b = Tensor::rand_uniform([units], -0.01, 0.01, DType::F64, &mut rng).unwrap();
        (w, b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// After the change, unit i's kink -b_i / w_i is at
        /// spread * ((2 i + 1) / units - 1), whatever w and b were.
        #[test]
        fn spread_kinks_places_every_kink_on_the_grid(units in 1usize..300, seed in 0u64..1000, spread in 0.1f64..2.0) {
            let (w, b) = first_layer(units, seed);
            let moved = b.add(&spread_kinks(&w, &b, spread).unwrap()).unwrap();
            let (w, moved) = (w.to_vec_f64().unwrap(), moved.to_vec_f64().unwrap());
            for i in 0..units {
                let want = spread * ((2 * i + 1) as f64 / units as f64 - 1.0);
                prop_assert!((-moved[i] / w[i] - want).abs() <= 1e-9 * (1.0 + 1.0 / w[i].abs()), "unit {i}");
            }
        }
    }

    #[test]
    fn spread_kinks_rejects_a_first_layer_with_more_than_one_input() {
        let w = Tensor::zeros([4, 2], DType::F32).unwrap();
        let b = Tensor::zeros([4], DType::F32).unwrap();
        let err = spread_kinks(&w, &b, 1.0).unwrap_err().to_string();
        assert!(err.contains("one input"), "{err}");
    }

    /// The task model's shapes for 2 hidden layers of width 3 (1 input, 2 outputs).
    fn task_shapes() -> Vec<Shape> {
        let mut s: Vec<Shape> = vec![
            [3, 1].into(),
            [3].into(),
            [3, 3].into(),
            [3].into(),
            [2, 3].into(),
            [2].into(),
        ];
        s.extend(std::iter::repeat_n(Shape::from([3]), 8));
        s
    }

    fn ctx(step: usize, per_epoch: usize) -> StepContext {
        StepContext {
            epoch: step / per_epoch,
            step,
            steps_per_epoch: Some(per_epoch),
            ..StepContext::default()
        }
    }

    /// Before the settle epoch: no query and nonzero updates (the rate is
    /// still above zero: the horizon comes later). From the settle epoch
    /// on: a query at exactly the current parameters (so the harness keeps
    /// the running statistics) and updates that are all zero.
    #[test]
    fn settles_at_its_epoch() {
        let mut config = champion_config(2);
        config.schedule.warmup = 1.0;
        config.schedule.horizon = 4.0;
        config.settle = Some(3.0);
        let mut opt = Anneal::new("anneal", config);
        let shapes = task_shapes();
        opt.init_state(0, &ModelLayout::task_model(&shapes).unwrap()).unwrap();
        let mut rng = Rng::new(7);
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::rand_normal(s.clone(), 0.0, 1.0, DType::F64, &mut rng).unwrap())
            .collect();
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.mul_scalar(0.5))
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        for step in 0..20 {
            let c = ctx(step, 4);
            let query = opt.query_at_params(&params, &c).unwrap();
            let updates = opt.step(&params, &grads, &c).unwrap();
            let moved = updates
                .iter()
                .any(|u| u.to_vec_f64().unwrap().iter().any(|&v| v != 0.0));
            if c.epoch < 3 {
                assert!(query.is_none() && moved, "step {step}");
            } else {
                let query = query.expect("a query once settled");
                assert!(query
                    .iter()
                    .zip(&params)
                    .all(|(q, p)| q.to_vec_f64().unwrap() == p.to_vec_f64().unwrap()));
                assert!(!moved, "step {step} moved the model after the horizon");
            }
        }
    }

    /// With a flat schedule and its own parts off, `anneal` is Adan at the
    /// same rate, bit for bit.
    #[test]
    fn with_a_flat_schedule_it_is_adan() {
        let config = AnnealConfig {
            direction: ADAN,
            schedule: EpochBudget {
                peak: 3e-3,
                warmup: 0.0,
                horizon: f64::INFINITY,
                final_frac: 1.0,
                shape: DecayShape::Linear,
            },
            weight_decay: 0.0,
            spread: 0.0,
            settle: None,
        };
        let mut ours = Anneal::new("anneal", config);
        let mut theirs = adan(3e-3, 0.98, 0.92, 0.99, 1e-8, 0.0, false);
        let shapes = task_shapes();
        ours.init_state(0, &ModelLayout::task_model(&shapes).unwrap()).unwrap();
        theirs
            .init_state(0, &ModelLayout::task_model(&shapes).unwrap())
            .unwrap();
        let mut rng = Rng::new(3);
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::zeros(s.clone(), DType::F64).unwrap())
            .collect();
        for step in 0..12 {
            let grads: Vec<Tensor> = shapes
                .iter()
                .map(|s| Tensor::rand_normal(s.clone(), 0.0, 1.0, DType::F64, &mut rng).unwrap())
                .collect();
            let a = ours.step(&params, &grads, &ctx(step, 4)).unwrap();
            let b = theirs.step(&params, &grads, &ctx(step, 4)).unwrap();
            for (x, y) in a.iter().zip(&b) {
                let bits = |t: &Tensor| t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(x), bits(y), "step {step}");
            }
        }
    }

    /// The champion's configuration on track `n_hidden` with the overrides `h`.
    fn with_overrides(n_hidden: usize, h: &HyperParams) -> AnnealConfig {
        Overrides::from_hyper(h).unwrap().apply(champion_config(n_hidden))
    }

    /// The per-track overrides: `lr` and `horizon` of 0 keep the track's values.
    #[test]
    fn zero_overrides_keep_the_tracks_values() {
        let info = &CATALOG[0];
        let h = HyperParams::defaults(info);
        for n in [4, 7, 10, 14, 18] {
            assert_eq!(with_overrides(n, &h), champion_config(n));
        }
        let h = h.with("lr", 0.02).unwrap();
        assert_eq!(with_overrides(4, &h).schedule.peak, 0.02);
    }

    /// The model settles at the horizon, at `settle_at` when it is given,
    /// and never with `settle 0`.
    #[test]
    fn the_settle_epoch_follows_the_overrides() {
        let h = HyperParams::defaults(&CATALOG[0]);
        let settle = |h: &HyperParams| with_overrides(4, h).settle;
        assert_eq!(settle(&h.clone().with("horizon", 30.0).unwrap()), Some(30.0));
        assert_eq!(settle(&h.clone().with("settle_at", 40.0).unwrap()), Some(40.0));
        assert_eq!(settle(&h.clone().with("settle", 0.0).unwrap()), None);
    }

    /// The switches take 0 or 1 only: `settle=0.5` or `adam=2` used to be
    /// read silently as "off".
    #[test]
    fn switches_other_than_zero_or_one_are_refused_with_the_allowed_values() {
        for (name, value) in [("settle", 0.5), ("adam", 2.0)] {
            let err = HyperParams::defaults(&CATALOG[0])
                .with(name, value)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name) && err.contains("0 or 1"), "{err}");
        }
    }

    /// A first layer of two inputs has no kinks to spread along one axis:
    /// `init_state` says so, naming the fix, rather than the first step.
    #[test]
    fn spreading_over_a_first_layer_of_two_inputs_fails_when_the_shapes_are_learned() {
        let mut shapes = task_shapes();
        shapes[0] = [3, 2].into();
        let build = |h: HyperParams| (CATALOG[0].build)(&h).unwrap();
        let mut opt = build(HyperParams::defaults(&CATALOG[0]));
        let err = opt
            .init_state(0, &ModelLayout::task_model(&shapes).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("one input") && err.contains("spread=0"), "{err}");
        let mut opt = build(HyperParams::defaults(&CATALOG[0]).with("spread", 0.0).unwrap());
        opt.init_state(0, &ModelLayout::task_model(&shapes).unwrap()).unwrap();
    }
}
