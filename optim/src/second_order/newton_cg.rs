//! Truncated Newton (Newton-CG): Nocedal and Wright, *Numerical
//! Optimization*, 2nd ed. (2006), Algorithm 7.1, with damping.
//!
//! Each step solves the damped Newton system `(H + lambda I) d = -g`
//! approximately by conjugate gradients, touching `H` only through
//! Hessian-vector products, and moves by `lr * d`:
//!
//! ```text
//! d = 0, r = -g, p = r
//! repeat at most cg_iters times:
//!     q = H p + lambda p                       (one hvp)
//!     if p.q <= 0: stop (negative curvature; on the first iteration d = -g)
//!     alpha = r.r / p.q;  d += alpha p;  r -= alpha q
//!     stop if |r| <= tol |g|
//!     p = r + (r'.r' / r.r) p
//! update = lr * d, rescaled to norm max_norm if longer
//! ```
//!
//! On a convex quadratic in `n` unknowns with `cg_iters >= n` and no damping,
//! one step lands on the minimum (CG is exact in `n` iterations). For noisy
//! mini-batch losses the damping and the norm cap keep steps sane. Each step
//! costs up to `cg_iters` hvps (about 3 gradients each), so it is meant for
//! small problems; on the task's MLP it shows what exact-curvature steps buy
//! per epoch, not per second.

use super::needs_curvature;
use crate::layout::ModelLayout;
use crate::{check_step, Curvature, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// Newton-CG's settings (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct NewtonCgConfig {
    /// Step length along the CG solution.
    pub lr: f64,
    /// `lambda` in `(H + lambda I) d = -g`.
    pub damping: f64,
    /// Conjugate-gradient iterations per step.
    pub cg_iters: usize,
    /// Relative residual at which CG stops.
    pub tol: f64,
    /// Cap on the step's norm (0: none).
    pub max_norm: f64,
}

/// The Newton-CG optimizer (stateless between steps apart from a counter).
#[derive(Debug, Clone)]
pub struct NewtonCg {
    config: NewtonCgConfig,
    shapes: Vec<Shape>,
    mask: Vec<bool>,
    count: u64,
    last_iterations: usize,
}

/// `sum_i <a_i, b_i>` over tensor lists, in f64.
fn dot(a: &[Tensor], b: &[Tensor]) -> Result<f64> {
    let mut total = 0.0;
    for (x, y) in a.iter().zip(b) {
        total += x
            .mul(y)?
            .to_dtype(ferrograd_engine::DType::F64)?
            .sum_all()?
            .to_scalar()?;
    }
    Ok(total)
}

/// `a + s b`, tensor by tensor.
fn axpy(a: &[Tensor], s: f64, b: &[Tensor]) -> Result<Vec<Tensor>> {
    a.iter().zip(b).map(|(x, y)| x.add(&y.mul_scalar(s)?)).collect()
}

fn scaled(a: &[Tensor], s: f64) -> Result<Vec<Tensor>> {
    a.iter().map(|x| x.mul_scalar(s)).collect()
}

impl NewtonCg {
    /// Newton-CG with these settings (call `init_state` before stepping).
    pub fn new(config: NewtonCgConfig) -> NewtonCg {
        NewtonCg {
            config,
            shapes: Vec::new(),
            mask: Vec::new(),
            count: 0,
            last_iterations: 0,
        }
    }

    /// CG iterations (hvps) the last step used.
    pub fn last_iterations(&self) -> usize {
        self.last_iterations
    }

    /// `(H + lambda I) p` restricted to the masked tensors.
    fn damped_hvp(&self, p: &[Tensor], curvature: &mut dyn Curvature) -> Result<Vec<Tensor>> {
        let hp = curvature.hvp(p)?;
        hp.iter()
            .zip(p)
            .zip(&self.mask)
            .map(|((h, p), &on)| {
                if on {
                    h.add(&p.mul_scalar(self.config.damping)?)
                } else {
                    p.zeros_like()
                }
            })
            .collect()
    }

    /// Approximately solves `(H + lambda I) d = -g` by conjugate gradients.
    fn solve(&mut self, g: &[Tensor], curvature: &mut dyn Curvature) -> Result<Vec<Tensor>> {
        let g_norm = dot(g, g)?.sqrt();
        let mut d: Vec<Tensor> = g.iter().map(Tensor::zeros_like).collect::<Result<Vec<_>>>()?;
        let mut r = scaled(g, -1.0)?;
        let mut p = r.clone();
        let mut rr = dot(&r, &r)?;
        self.last_iterations = 0;
        for i in 0..self.config.cg_iters {
            if rr.sqrt() <= self.config.tol * g_norm || rr == 0.0 {
                break;
            }
            let q = self.damped_hvp(&p, curvature)?;
            self.last_iterations = i + 1;
            let pq = dot(&p, &q)?;
            if pq <= 0.0 {
                // Negative curvature along p: CG's model is unbounded there.
                if i == 0 {
                    d = p;
                }
                break;
            }
            let alpha = rr / pq;
            d = axpy(&d, alpha, &p)?;
            r = axpy(&r, -alpha, &q)?;
            let rr_next = dot(&r, &r)?;
            p = axpy(&r, rr_next / rr, &p)?;
            rr = rr_next;
        }
        Ok(d)
    }
}

impl TaskOptimizer for NewtonCg {
    fn name(&self) -> &str {
        "newton_cg"
    }

    fn init_state(&mut self, _seed: u64, layout: &ModelLayout) -> Result<()> {
        self.shapes = layout.shapes().to_vec();
        self.mask = layout.trained().to_vec();
        self.count = 0;
        Ok(())
    }

    fn step(&mut self, _params: &[Tensor], _grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        Err(needs_curvature("newton_cg"))
    }

    fn uses_curvature(&self) -> bool {
        true
    }

    fn step_with_curvature(
        &mut self,
        params: &[Tensor],
        grads: &[Tensor],
        curvature: &mut dyn Curvature,
        _ctx: &StepContext,
    ) -> Result<Vec<Tensor>> {
        check_step("newton_cg step", &self.shapes, params, grads)?;
        let masked: Vec<Tensor> = grads
            .iter()
            .zip(&self.mask)
            .map(|(g, &on)| if on { Ok(g.clone()) } else { g.zeros_like() })
            .collect::<Result<_>>()?;
        let direction = self.solve(&masked, curvature)?;
        let mut step = self.config.lr;
        let norm = dot(&direction, &direction)?.sqrt() * step;
        if self.config.max_norm > 0.0 && norm > self.config.max_norm {
            step *= self.config.max_norm / norm;
        }
        self.count += 1;
        scaled(&direction, step)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        state.counters.insert("count".into(), self.count);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name(), Some(&self.shapes), &self.state())?;
        state.check_kept(self.name(), &[])?;
        self.count = state.counter("count")?;
        Ok(())
    }
}
