//! Schedule-Free SGD and AdamW: Defazio, Yang, Mehta, Mishchenko, Khaled and
//! Cutkosky, "The Road Less Scheduled", NeurIPS 2024 (arXiv:2405.15682),
//! Algorithm 1, as the reference implementation
//! (`facebookresearch/schedule_free`, `*_reference.py`) computes it.
//!
//! Three sequences share one state: `z` (the SGD/Adam iterate), `x` (a
//! weighted average of the `z`s, the point to evaluate) and `y` (where the
//! gradient is taken). With `k` steps taken before this one and
//! `lr_k = lr * min(1, (k + 1) / warmup_steps)` (AdamW: times
//! `sqrt(1 - beta2^(k+1))`):
//!
//! ```text
//! y   = (1 - beta) z + beta x                       beta: momentum (SGD) or beta1 (AdamW)
//! g   = grad f(y)
//! SGD:    z' = z - lr_k (g + wd y)
//! AdamW:  v' = beta2 v + (1 - beta2) g^2
//!         z' = z - lr_k wd y - lr_k g / (sqrt(v') + eps)
//! lr_max = max(lr_max, lr_k),  w_k = (k + 1)^r lr_max^weight_lr_power,  c = w_k / sum_{i<=k} w_i
//! x'  = (1 - c) x + c z'
//! ```
//!
//! `z` and `x` start at the initial parameters (so the first `y` is them too,
//! and `c = 1` makes `x` equal `z` after the first step). With a constant
//! rate, `c = 1/(k+1)`: `x` is the plain average of the `z`s.
//!
//! **Under the task's protocol.** The reference needs `optimizer.train()`
//! (parameters := y) before each gradient and `optimizer.eval()` (parameters
//! := x) before evaluation. Here the model always holds `x`, the evaluation
//! point, so validation, early stopping and the kept best model all use `x`
//! as the paper intends; [`TaskOptimizer::query_at_params`] plays the part of
//! `train()` for the one gradient evaluation of a step by returning `y`, which
//! the harness discards afterwards. [`TaskOptimizer::step`] then returns
//! `x' - params`. `z` and `x` are kept in the state, never re-derived from
//! the parameters, so the sequences do not drift through rounding (the
//! model's copy of `x` is `params + (x' - params)`, within one rounding of
//! `x'`, and the next step starts again from the stored `x'`).
//!
//! Two consequences of the protocol. The harness restores the BatchNorm
//! running statistics after a query, so with a query at every step they keep
//! their initial values (mean 0, variance 1) and inference on a BatchNorm
//! model (the task's MLP) is badly off, whatever `x` is; the reference
//! recomputes the statistics at `x` after training, which the protocol cannot
//! do. And tensors the harness does not train get updates it ignores. With
//! `hold_y = 1` the model holds `y` instead (no query; the update is
//! `y' - params`, gradients at the model's own parameters), so running
//! statistics follow training, at the price of evaluating `y` rather than
//! `x`: the practical setting for BatchNorm models.
//!
//! Defaults (the reference's): SGD lr 1.0, momentum 0.9; AdamW lr 0.0025,
//! betas (0.9, 0.999), eps 1e-8; weight decay 0, no warmup, `r = 0`,
//! `weight_lr_power = 2`.

use crate::layout::ModelLayout;
use crate::modern::{load_f64, save_f64};
use crate::transform::Slots;
use crate::{check_step, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// Which base method drives `z`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Base {
    Sgd,
    AdamW { beta2: f64, eps: f64 },
}

/// Schedule-Free SGD or AdamW as a [`TaskOptimizer`]; see the
/// [module docs](self) for the formulas and the protocol mapping.
#[derive(Debug, Clone)]
pub struct ScheduleFree {
    name: &'static str,
    base: Base,
    lr: f64,
    beta: f64,
    weight_decay: f64,
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
    hold_y: bool,
    shapes: Vec<Shape>,
    k: u64,
    lr_max: f64,
    weight_sum: f64,
    z: Slots,
    x: Slots,
    v: Slots,
}

impl ScheduleFree {
    fn new(name: &'static str, base: Base, lr: f64, beta: f64, weight_decay: f64, warmup_steps: u64) -> Self {
        ScheduleFree {
            name,
            base,
            lr,
            beta,
            weight_decay,
            warmup_steps,
            r: 0.0,
            weight_lr_power: 2.0,
            hold_y: false,
            shapes: Vec::new(),
            k: 0,
            lr_max: -1.0,
            weight_sum: 0.0,
            z: Slots::default(),
            x: Slots::default(),
            v: Slots::default(),
        }
    }

    /// Schedule-Free SGD (`sf_sgd`). Reference defaults: lr 1.0, momentum 0.9.
    pub fn sgd(lr: f64, momentum: f64, weight_decay: f64, warmup_steps: u64) -> ScheduleFree {
        ScheduleFree::new("sf_sgd", Base::Sgd, lr, momentum, weight_decay, warmup_steps)
    }

    /// Schedule-Free AdamW (`sf_adamw`). Reference defaults: lr 0.0025,
    /// betas (0.9, 0.999), eps 1e-8.
    pub fn adamw(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, warmup_steps: u64) -> ScheduleFree {
        ScheduleFree::new(
            "sf_adamw",
            Base::AdamW { beta2, eps },
            lr,
            beta1,
            weight_decay,
            warmup_steps,
        )
    }

    /// Sets the averaging weights `(k + 1)^r * lr_max^weight_lr_power`
    /// (defaults 0 and 2).
    pub fn with_weighting(mut self, r: f64, weight_lr_power: f64) -> ScheduleFree {
        self.r = r;
        self.weight_lr_power = weight_lr_power;
        self
    }

    /// With `true`, the model holds `y` rather than `x` (no query).
    pub fn holding_y(mut self, hold_y: bool) -> ScheduleFree {
        self.hold_y = hold_y;
        self
    }

    /// The averaged iterate `x` (the evaluation point), once initialised.
    pub fn x(&self) -> &[Tensor] {
        self.x.all()
    }

    /// The base iterate `z`, once initialised.
    pub fn z(&self) -> &[Tensor] {
        self.z.all()
    }

    /// `x` and `z` start at the first parameters seen.
    fn ensure_started(&mut self, params: &[Tensor]) {
        if self.x.all().len() == params.len() {
            return;
        }
        for (i, p) in params.iter().enumerate() {
            self.x.set(i, p.clone());
            self.z.set(i, p.clone());
        }
    }

    /// `y = (1 - beta) z + beta x` from the stored sequences.
    fn y(&self) -> Result<Vec<Tensor>> {
        self.z
            .all()
            .iter()
            .zip(self.x.all())
            .map(|(z, x)| z.mul_scalar(1.0 - self.beta)?.add(&x.mul_scalar(self.beta)?))
            .collect()
    }
}

impl TaskOptimizer for ScheduleFree {
    fn name(&self) -> &str {
        self.name
    }

    fn init_state(&mut self, _seed: u64, layout: &ModelLayout) -> Result<()> {
        self.shapes = layout.shapes().to_vec();
        self.k = 0;
        self.lr_max = -1.0;
        self.weight_sum = 0.0;
        self.z = Slots::default();
        self.x = Slots::default();
        self.v = Slots::default();
        Ok(())
    }

    fn query_at_params(&mut self, params: &[Tensor], _ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        if self.hold_y {
            return Ok(None);
        }
        self.ensure_started(params);
        self.y().map(Some)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_step("schedule-free step", &self.shapes, params, grads)?;
        self.ensure_started(params);
        let k = self.k;
        let sched = if k < self.warmup_steps {
            (k + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        let lr = match self.base {
            Base::Sgd => self.lr * sched,
            Base::AdamW { beta2, .. } => self.lr * sched * (1.0 - beta2.powi(crate::step_exponent(k + 1))).sqrt(),
        };
        self.lr_max = self.lr_max.max(lr);
        let weight = ((k + 1) as f64).powf(self.r) * self.lr_max.powf(self.weight_lr_power);
        self.weight_sum += weight;
        let ckp1 = if self.weight_sum == 0.0 {
            0.0
        } else {
            weight / self.weight_sum
        };
        let ys = self.y()?;
        let mut updates = Vec::with_capacity(grads.len());
        for (i, (g, y)) in grads.iter().zip(&ys).enumerate() {
            let z = &self.z.all()[i];
            let z_new = match self.base {
                Base::Sgd => z.sub(&g.add(&y.mul_scalar(self.weight_decay)?)?.mul_scalar(lr)?)?,
                Base::AdamW { beta2, eps } => {
                    let v = crate::basic::ema(self.v.get(i, g)?, &g.square()?, beta2)?;
                    let decayed = z.sub(&y.mul_scalar(lr * self.weight_decay)?)?;
                    let z_new = decayed.sub(&g.div(&v.sqrt()?.add_scalar(eps)?)?.mul_scalar(lr)?)?;
                    self.v.set(i, v);
                    z_new
                }
            };
            let x_new = self.x.all()[i].mul_scalar(1.0 - ckp1)?.add(&z_new.mul_scalar(ckp1)?)?;
            let target = if self.hold_y {
                z_new.mul_scalar(1.0 - self.beta)?.add(&x_new.mul_scalar(self.beta)?)?
            } else {
                x_new.clone()
            };
            updates.push(target.sub(&params[i])?);
            self.z.set(i, z_new);
            self.x.set(i, x_new);
        }
        self.k += 1;
        Ok(updates)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        state.counters.insert("k".into(), self.k);
        save_f64(&mut state, "lr_max".into(), self.lr_max);
        save_f64(&mut state, "weight_sum".into(), self.weight_sum);
        self.z.save("", "z", &mut state);
        self.x.save("", "x", &mut state);
        self.v.save("", "v", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name(), Some(&self.shapes), &self.state())?;
        state.check_kept(self.name(), &["z", "x", "v"])?;
        self.k = state.counter("k")?;
        self.lr_max = load_f64(state, "lr_max")?;
        self.weight_sum = load_f64(state, "weight_sum")?;
        self.z.load("", "z", state);
        self.x.load("", "x", state);
        self.v.load("", "v", state);
        Ok(())
    }
}
