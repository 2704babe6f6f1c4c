//! The elementary transformations: clipping, scaling by a learning rate,
//! weight decay, and the Adam moment estimate.
//!
//! # Clipping
//!
//! | stage                 | what it bounds                          | `torch` counterpart                 |
//! |-----------------------|-----------------------------------------|-------------------------------------|
//! | [`ClipByValue`]       | each element into `[-limit, limit]`     | `clip_grad_value_`                  |
//! | [`ClipByNorm`]        | each tensor's L2 norm, separately       | `clip_grad_norm_` per parameter     |
//! | [`ClipByGlobalNorm`]  | the L2 norm of all tensors together     | `clip_grad_norm_` on the model      |
//!
//! # Weight decay: L2 or decoupled
//!
//! [`AddDecayedWeights`] adds `rate * p` to the updates; *where* it sits in
//! the chain decides which of the two classic decays it is.
//!
//! * **L2 regularisation** — before the adaptive stage:
//!   `chain![AddDecayedWeights, ScaleByAdam, ScaleByLr]`. The gradient of
//!   `f(p) + rate/2 |p|^2` is `g + rate p`, and it goes through Adam's
//!   normalisation like the rest of the gradient: coordinates with large
//!   second moments decay *less*, and with a small gradient the decay term
//!   is normalised to a step of about `lr` whatever `p` is. This is
//!   `torch.optim.Adam(weight_decay=...)`.
//! * **Decoupled weight decay** (Loshchilov and Hutter, "Decoupled Weight
//!   Decay Regularization", ICLR 2019) — after the adaptive stage:
//!   `chain![ScaleByAdam, AddDecayedWeights, ScaleByLr]`. The update is
//!   `-lr (dir + rate p)`, so the new parameter is
//!   `p (1 - lr rate) - lr dir`: the weights shrink by the factor
//!   `1 - lr rate` at every step, independently of the gradient statistics.
//!   This is `torch.optim.AdamW`, which multiplies `p` by `1 - lr rate`
//!   before the step; since Adam's direction does not depend on `p` the two
//!   are the same (the test `adamw_decay_is_the_factor_one_minus_lr_wd`
//!   below checks it bit for bit).
//!
//! For plain SGD both placements give the same update; they differ exactly
//! when a stage between them rescales coordinates. Decoupled decay follows
//! the schedule (it is multiplied by `lr(t)`); optax's `add_decayed_weights`
//! and PyTorch's AdamW do the same. To exempt parameters (biases, BatchNorm)
//! use `mask`, or route groups through [`crate::groups::Partition`].

use crate::onepass::TensorOpsReference;
use crate::schedule::Schedule;
use crate::transform::{Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::ops::multi_tensor::adam_bias_corrections;
use ferrograd_engine::storage::CpuSlice;
use ferrograd_engine::{with_dtype, Device, Element, Result, Tensor, UnaryOp};

/// Clamps every update element into `[-limit, limit]`.
#[derive(Debug, Clone)]
pub struct ClipByValue {
    /// The bound.
    pub limit: f64,
}

impl Transform for ClipByValue {
    /// Clamps in place (the updates are this stage's to change).
    fn update(&mut self, mut updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.limit.is_nan() || self.limit < 0.0 {
            return Err(ferrograd_engine::Error::invalid(
                "clamp",
                format!("need lo <= hi, got [{}, {}]", -self.limit, self.limit),
            ));
        }
        for u in &mut updates {
            u.unary_in_place(UnaryOp::Clamp(-self.limit, self.limit))?;
        }
        Ok(updates)
    }
}

/// Scales each update tensor on its own so its L2 norm is at most
/// `max_norm`: `u * min(1, max_norm / |u|)` (PyTorch's `clip_grad_norm_`
/// called on each parameter separately). Unlike
/// [`ClipByGlobalNorm`], one tensor with a huge gradient does not shrink the
/// others.
#[derive(Debug, Clone)]
pub struct ClipByNorm {
    /// The largest allowed norm of each tensor.
    pub max_norm: f64,
}

impl Transform for ClipByNorm {
    fn update(&mut self, updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        updates
            .into_iter()
            .map(|u| {
                let norm = u.square()?.sum_all()?.to_scalar()?.sqrt();
                Ok(if norm <= self.max_norm || norm == 0.0 {
                    u
                } else {
                    u.mul_scalar(self.max_norm / norm)?
                })
            })
            .collect()
    }
}

/// Scales all updates together so their global L2 norm is at most `max_norm`.
#[derive(Debug, Clone)]
pub struct ClipByGlobalNorm {
    /// The largest allowed norm.
    pub max_norm: f64,
}

/// The L2 norm of all tensors together.
pub fn global_norm(tensors: &[Tensor]) -> Result<f64> {
    let mut sum = 0.0;
    for t in tensors {
        sum += t.square()?.sum_all()?.to_scalar()?;
    }
    Ok(sum.sqrt())
}

impl Transform for ClipByGlobalNorm {
    fn update(&mut self, updates: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let norm = global_norm(&updates)?;
        if norm <= self.max_norm || norm == 0.0 {
            return Ok(updates);
        }
        let factor = self.max_norm / norm;
        updates.iter().map(|u| u.mul_scalar(factor)).collect::<Result<Vec<_>>>()
    }
}

/// Multiplies updates by `-lr(t)`: the last stage of most optimizers, turning
/// a direction into a step.
pub struct ScaleByLr {
    /// The learning-rate schedule.
    pub schedule: Box<dyn Schedule>,
}

impl ScaleByLr {
    /// A stage with learning-rate schedule `schedule`.
    pub fn new(schedule: impl Schedule + 'static) -> ScaleByLr {
        ScaleByLr {
            schedule: Box::new(schedule),
        }
    }
}

impl Transform for ScaleByLr {
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let lr = self.schedule.lr(info.count, info.ctx);
        let mut updates = updates;
        for u in &mut updates {
            u.unary_in_place(UnaryOp::MulScalar(-lr))?;
        }
        Ok(updates)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.schedule.save(prefix, state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.schedule.load(prefix, state)
    }
}

/// Adds `rate * param` to each update (decoupled weight decay when placed
/// after the adaptive stage, L2 regularisation when placed before it).
/// `mask[i] == false` exempts parameter `i`.
#[derive(Debug, Clone)]
pub struct AddDecayedWeights {
    /// The decay rate.
    pub rate: f64,
    /// Which parameters decay (all if `None`).
    pub mask: Option<Vec<bool>>,
}

impl AddDecayedWeights {
    /// Whether parameter `i` decays (the mask does not exempt it).
    fn decays(&self, i: usize) -> bool {
        match &self.mask {
            Some(mask) => mask.get(i).copied().unwrap_or(true),
            None => true,
        }
    }
}

impl Transform for AddDecayedWeights {
    /// Adds `rate * p` into each update in place on the CPU (one pass, no
    /// temporary: `u + p * rate`, as the tensor form rounds it); the tensor
    /// form off the CPU or where `u` and `p` differ in shape or dtype.
    fn update(&mut self, mut updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.rate == 0.0 {
            return Ok(updates);
        }
        for (i, u) in updates.iter_mut().enumerate() {
            if self.decays(i) {
                add_decayed_weight(u, &info.params[i], self.rate)?;
            }
        }
        Ok(updates)
    }
}

impl TensorOpsReference for AddDecayedWeights {
    fn update_with_tensor_ops(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.rate == 0.0 {
            return Ok(updates);
        }
        updates
            .into_iter()
            .enumerate()
            .map(|(i, u)| match self.decays(i) {
                false => Ok(u),
                true => u.add(&info.params[i].mul_scalar(self.rate)?),
            })
            .collect()
    }
}

/// `u += p * rate` for one tensor: in place where both are CPU tensors of
/// the same shape and dtype, else as tensor operations.
fn add_decayed_weight(u: &mut Tensor, p: &Tensor, rate: f64) -> Result<()> {
    let same_layout = u.shape() == p.shape() && u.dtype() == p.dtype();
    if !same_layout || u.device() != Device::Cpu || p.device() != Device::Cpu {
        *u = u.add(&p.mul_scalar(rate)?)?;
        return Ok(());
    }
    with_dtype!(u.dtype(), T => {
        let rate = T::from_f64(rate);
        for (x, &w) in u.as_mut_slice::<T>()?.iter_mut().zip(p.as_slice::<T>()?) {
            *x += w * rate;
        }
    });
    Ok(())
}

/// Adam's direction `m_hat / (sqrt(v_hat) + eps)` (Kingma and Ba 2015,
/// Algorithm 1), optionally with AMSGrad's running maximum of `v`
/// (Reddi et al. 2018, as PyTorch implements it: the maximum of the raw `v`,
/// bias-corrected afterwards).
#[derive(Debug, Clone)]
pub struct ScaleByAdam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Use the running maximum of `v` (AMSGrad).
    pub amsgrad: bool,
    m: Slots,
    v: Slots,
    v_max: Slots,
}

impl ScaleByAdam {
    /// Adam's moments with the given decays and epsilon.
    pub fn new(beta1: f64, beta2: f64, eps: f64, amsgrad: bool) -> Self {
        ScaleByAdam {
            beta1,
            beta2,
            eps,
            amsgrad,
            m: Slots::default(),
            v: Slots::default(),
            v_max: Slots::default(),
        }
    }
}

/// `decay * old + (1 - decay) * new`.
pub fn ema(old: &Tensor, new: &Tensor, decay: f64) -> Result<Tensor> {
    old.mul_scalar(decay)?.add(&new.mul_scalar(1.0 - decay)?)
}

/// The whole Adam step for one tensor, in one pass and in place: moments
/// `m`, `v` (and AMSGrad's `v_max`) are updated, and `g` (the incoming update)
/// becomes the direction `m_hat / (sqrt(v_hat) + eps)`. `c1` and `c2` are
/// the bias corrections `1 - beta^t`.
///
/// The arithmetic is, operation for operation, that of the tensor-op form
/// `ema(m, g, b1)`, `ema(v, g.square(), b2)`, `m.div_scalar(c1)
/// .div(&v.div_scalar(c2).sqrt().add_scalar(eps))` (scalars rounded to the
/// element type first, as `mul_scalar` does), so results are bit for bit the
/// same; it just makes one pass instead of eleven and allocates nothing.
///
/// Large tensors are cut into two fixed halves run on two threads
/// (`ops::join`); the arithmetic is elementwise, so the cut changes no bit.
#[allow(clippy::too_many_arguments)]
fn adam_in_place<T: CpuSlice>(
    g: &mut [T],
    m: &mut [T],
    v: &mut [T],
    v_max: Option<&mut [T]>,
    betas: (f64, f64),
    corrections: (f64, f64),
    eps: f64,
) {
    /// Below this many elements one thread does the whole tensor.
    const SPLIT: usize = 1 << 15;
    if g.len() < SPLIT {
        return adam_serial(g, m, v, v_max, betas, corrections, eps);
    }
    let half = g.len() / 2;
    let (g0, g1) = g.split_at_mut(half);
    let (m0, m1) = m.split_at_mut(half);
    let (v0, v1) = v.split_at_mut(half);
    let (x0, x1) = match v_max {
        Some(x) => {
            let (x0, x1) = x.split_at_mut(half);
            (Some(x0), Some(x1))
        }
        None => (None, None),
    };
    ferrograd_engine::ops::join(
        || adam_in_place(g0, m0, v0, x0, betas, corrections, eps),
        || adam_in_place(g1, m1, v1, x1, betas, corrections, eps),
    );
}

/// [`adam_in_place`] on one thread.
#[allow(clippy::too_many_arguments)]
fn adam_serial<T: CpuSlice>(
    g: &mut [T],
    m: &mut [T],
    v: &mut [T],
    v_max: Option<&mut [T]>,
    betas: (f64, f64),
    corrections: (f64, f64),
    eps: f64,
) {
    let adam = AdamCore::<T>::new(betas, corrections, eps);
    match v_max {
        None => {
            for ((g, m), v) in g.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                *g = adam.step(*g, m, v);
            }
        }
        Some(v_max) => {
            for (((g, m), v), vm) in g.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(v_max.iter_mut()) {
                *g = adam.step_amsgrad(*g, m, v, vm);
            }
        }
    }
}

/// Adam's arithmetic for one element (Kingma and Ba 2015, Algorithm 1),
/// with one step's constants rounded to the element type: the one CPU copy
/// of it, run by [`ScaleByAdam`] and by the fused `adam::ClippedAdam`
/// (the GPU kernels in `ptx/cuda/optim.cu` repeat it operation for
/// operation, and tests hold them to these bits).
///
/// `m = m b1 + g (1 - b1)`, `v = v b2 + (g g)(1 - b2)`, direction
/// `(m / c1) / (sqrt(v / c2) + eps)` with the bias corrections
/// `c = 1 - beta^t`, each division done as a multiplication by `1 / c`
/// rounded once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamCore<T> {
    b1: T,
    nb1: T,
    b2: T,
    nb2: T,
    inv_c1: T,
    inv_c2: T,
    eps: T,
}

impl<T: Element> AdamCore<T> {
    /// The constants for decays `betas`, bias corrections `(c1, c2)` and
    /// `eps`.
    pub(crate) fn new((b1, b2): (f64, f64), (c1, c2): (f64, f64), eps: f64) -> AdamCore<T> {
        let f = T::from_f64;
        AdamCore {
            b1: f(b1),
            nb1: f(1.0 - b1),
            b2: f(b2),
            nb2: f(1.0 - b2),
            inv_c1: f(1.0 / c1),
            inv_c2: f(1.0 / c2),
            eps: f(eps),
        }
    }

    /// Updates the moments with gradient `g`; returns the direction.
    #[inline(always)]
    pub(crate) fn step(&self, g: T, m: &mut T, v: &mut T) -> T {
        self.update_moments(g, m, v);
        self.direction(*m, *v)
    }

    /// [`AdamCore::step`] with AMSGrad's running maximum `v_max` of `v`
    /// in the denominator.
    #[inline(always)]
    pub(crate) fn step_amsgrad(&self, g: T, m: &mut T, v: &mut T, v_max: &mut T) -> T {
        self.update_moments(g, m, v);
        // The engine's `maximum`: the left side wins ties and NaN.
        if !(*v_max >= *v || v_max.is_nan()) {
            *v_max = *v;
        }
        self.direction(*m, *v_max)
    }

    #[inline(always)]
    fn update_moments(&self, g: T, m: &mut T, v: &mut T) {
        *m = *m * self.b1 + g * self.nb1;
        *v = *v * self.b2 + (g * g) * self.nb2;
    }

    #[inline(always)]
    fn direction(&self, m: T, v_used: T) -> T {
        (m * self.inv_c1) / ((v_used * self.inv_c2).sqrt() + self.eps)
    }
}

impl Transform for ScaleByAdam {
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let (c1, c2) = adam_bias_corrections((self.beta1, self.beta2), info.count);
        for (i, g) in grads.iter_mut().enumerate() {
            let m = self.m.get_mut(i, g)?;
            let v = self.v.get_mut(i, g)?;
            let v_max = if self.amsgrad {
                Some(self.v_max.get_mut(i, g)?)
            } else {
                None
            };
            if g.device() != Device::Cpu {
                adam_tensor_ops(g, m, v, v_max, (self.beta1, self.beta2), (c1, c2), self.eps)?;
                continue;
            }
            with_dtype!(g.dtype(), T => {
                let v_max = match v_max {
                    Some(t) => Some(t.as_mut_slice::<T>()?),
                    None => None,
                };
                adam_in_place(
                    g.as_mut_slice::<T>()?,
                    m.as_mut_slice::<T>()?,
                    v.as_mut_slice::<T>()?,
                    v_max,
                    (self.beta1, self.beta2),
                    (c1, c2),
                    self.eps,
                );
            });
        }
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
        self.v_max.save(prefix, "v_max", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.v_max.load(prefix, "v_max", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByAdam {
    fn update_with_tensor_ops(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let (c1, c2) = adam_bias_corrections((self.beta1, self.beta2), info.count);
        for (i, g) in grads.iter_mut().enumerate() {
            let m = self.m.get_mut(i, g)?;
            let v = self.v.get_mut(i, g)?;
            let v_max = if self.amsgrad {
                Some(self.v_max.get_mut(i, g)?)
            } else {
                None
            };
            adam_tensor_ops(g, m, v, v_max, (self.beta1, self.beta2), (c1, c2), self.eps)?;
        }
        Ok(grads)
    }
}

/// [`adam_in_place`] for tensors off the CPU, which have no host slices:
/// the tensor-op form that function's documentation gives, every op running
/// on the tensors' device.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_tensor_ops(
    g: &mut Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    v_max: Option<&mut Tensor>,
    (b1, b2): (f64, f64),
    (c1, c2): (f64, f64),
    eps: f64,
) -> Result<()> {
    *m = ema(m, g, b1)?;
    *v = ema(v, &g.square()?, b2)?;
    let v_used = match v_max {
        Some(vm) => {
            *vm = vm.maximum(v)?;
            vm
        }
        None => v,
    };
    *g = m
        .div_scalar(c1)?
        .div(&v_used.div_scalar(c2)?.sqrt()?.add_scalar(eps)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ModelLayout;
    use crate::onepass::testing::{assert_one_pass_matches_tensor_ops, runs};
    use crate::schedule::Constant;
    use crate::transform::ChainOptimizer;
    use crate::{chain, StepContext, TaskOptimizer};
    use ferrograd_engine::Shape;

    fn info<'a>(params: &'a [Tensor], ctx: &'a StepContext) -> StepInfo<'a> {
        StepInfo { count: 1, params, ctx }
    }

    fn t(v: &[f64]) -> Tensor {
        Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
    }

    #[test]
    fn clip_by_norm_bounds_each_tensor_separately() {
        let ctx = StepContext::default();
        // Norms 5 (3-4-5 triangle) and 0.5: only the first is rescaled, to norm 1.
        let updates = vec![t(&[3.0, 4.0]), t(&[0.3, -0.4]), t(&[0.0, 0.0])];
        let out = ClipByNorm { max_norm: 1.0 }
            .update(updates.clone(), &info(&updates, &ctx))
            .unwrap();
        let a = out[0].to_vec::<f64>().unwrap();
        assert!((a[0] - 0.6).abs() < 1e-15 && (a[1] - 0.8).abs() < 1e-15, "{a:?}");
        assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![0.3, -0.4]);
        assert_eq!(out[2].to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
        // The global clip would have shrunk the small tensor too.
        let global = ClipByGlobalNorm { max_norm: 1.0 }
            .update(updates.clone(), &info(&updates, &ctx))
            .unwrap();
        assert!(global[1].to_vec::<f64>().unwrap()[0] < 0.3);
    }

    fn adamw(wd: f64, lr: f64) -> ChainOptimizer {
        ChainOptimizer::new(
            "adamw",
            chain![
                ScaleByAdam::new(0.9, 0.999, 1e-8, false),
                AddDecayedWeights { rate: wd, mask: None },
                ScaleByLr::new(Constant(lr))
            ],
        )
    }

    /// Decoupled decay is the factor `1 - lr wd` on the parameter, bit for
    /// bit: with zero gradients Adam's direction is exactly 0, and with
    /// `lr`, `wd` powers of two, `p + update` and `p * (1 - lr wd)` are both
    /// the single rounding of the same real number. With gradients, the
    /// decay's contribution is `-lr wd p` to rounding.
    #[test]
    fn adamw_decay_is_the_factor_one_minus_lr_wd() {
        let (lr, wd) = (0.125, 0.25);
        let ctx = StepContext::default();
        let mut p = t(&[1.0, -3.7, 0.1234567, 1e-300, 12345.678]);
        let zero = p.zeros_like().unwrap();
        let mut opt = adamw(wd, lr);
        opt.init_state(0, &ModelLayout::any(&[Shape::new([5])])).unwrap();
        for _ in 0..5 {
            let u = opt
                .step(std::slice::from_ref(&p), std::slice::from_ref(&zero), &ctx)
                .unwrap();
            let next = p.add(&u[0]).unwrap();
            let expected = p.mul_scalar(1.0 - lr * wd).unwrap();
            let bits = |x: &Tensor| {
                x.to_vec::<f64>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&next), bits(&expected));
            p = next;
        }

        let g = t(&[0.3, -2.0, 0.0, 1e-3, -7.0]);
        let (mut with, mut without) = (adamw(wd, lr), adamw(0.0, lr));
        with.init_state(0, &ModelLayout::any(&[Shape::new([5])])).unwrap();
        without.init_state(0, &ModelLayout::any(&[Shape::new([5])])).unwrap();
        for _ in 0..3 {
            let uw = with
                .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
                .unwrap();
            let u0 = without
                .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
                .unwrap();
            let (uw, u0, pv) = (
                uw[0].to_vec::<f64>().unwrap(),
                u0[0].to_vec::<f64>().unwrap(),
                p.to_vec::<f64>().unwrap(),
            );
            for i in 0..5 {
                let decay = uw[i] - u0[i];
                assert!((decay + lr * wd * pv[i]).abs() <= 4.0 * f64::EPSILON * (1.0 + pv[i].abs()));
            }
        }
    }

    /// The fused in-place Adam equals, bit for bit, Adam written with tensor
    /// ops (the readable reference), in f32 and f64, with and without
    /// AMSGrad, over steps whose gradients change sign and scale.
    #[test]
    fn fused_adam_is_bit_identical_to_the_tensor_op_form() {
        use ferrograd_engine::{DType, Rng};
        for dtype in [DType::F32, DType::F64] {
            for amsgrad in [false, true] {
                let (b1, b2, eps) = (0.9, 0.999, 1e-8);
                let mut rng = Rng::new(7);
                let mut fused = ScaleByAdam::new(b1, b2, eps, amsgrad);
                let (mut m, mut v, mut v_max) = (None::<Tensor>, None::<Tensor>, None::<Tensor>);
                for step in 1..=6u64 {
                    let scale = if step % 2 == 0 { 3.0 } else { 0.01 };
                    let g = Tensor::rand_normal([37], 0.0, scale, dtype, &mut rng).unwrap();
                    let ctx = StepContext::default();
                    let params = [g.clone()];
                    let info = StepInfo {
                        count: step,
                        params: &params,
                        ctx: &ctx,
                    };
                    let got = fused.update(vec![g.clone()], &info).unwrap().remove(0);
                    // The reference, op by op.
                    let t = step as i32;
                    let (c1, c2) = (1.0 - f64::powi(b1, t), 1.0 - f64::powi(b2, t));
                    let m_new = ema(m.as_ref().unwrap_or(&g.zeros_like().unwrap()), &g, b1).unwrap();
                    let v_new = ema(v.as_ref().unwrap_or(&g.zeros_like().unwrap()), &g.square().unwrap(), b2).unwrap();
                    let v_used = if amsgrad {
                        let vm = v_max
                            .as_ref()
                            .unwrap_or(&g.zeros_like().unwrap())
                            .maximum(&v_new)
                            .unwrap();
                        v_max = Some(vm.clone());
                        vm
                    } else {
                        v_new.clone()
                    };
                    let want = m_new
                        .div_scalar(c1)
                        .unwrap()
                        .div(&v_used.div_scalar(c2).unwrap().sqrt().unwrap().add_scalar(eps).unwrap())
                        .unwrap();
                    let bits = |x: &Tensor| x.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{dtype} amsgrad={amsgrad} step {step}");
                    assert_eq!(bits(&fused.m.all()[0]), bits(&m_new));
                    assert_eq!(bits(&fused.v.all()[0]), bits(&v_new));
                    m = Some(m_new);
                    v = Some(v_new);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Adam and AMSGrad: the fused pass against `adam_tensor_ops`.
        #[test]
        fn adam_in_one_pass_is_the_tensor_form(
            run in runs(), beta1 in 0.5f64..1.0, beta2 in 0.5f64..1.0, eps in 1e-12f64..1e-2, amsgrad: bool
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByAdam::new(beta1, beta2, eps, amsgrad), &run)?;
        }

        /// Weight decay in place, some parameters exempted by the mask.
        #[test]
        fn decayed_weights_in_place_are_the_tensor_form(
            run in runs(), rate in -1.0f64..1.0, mask in proptest::collection::vec(proptest::bool::ANY, 0..5)
        ) {
            assert_one_pass_matches_tensor_ops(AddDecayedWeights { rate, mask: Some(mask) }, &run)?;
        }
    }

    /// The contrast: L2 decay goes through Adam's normalisation, so with a
    /// zero gradient the step is about `lr` in size whatever `p` is.
    #[test]
    fn l2_decay_is_normalised_by_adam() {
        let lr = 0.125;
        let mut opt = ChainOptimizer::new(
            "adam_l2",
            chain![
                AddDecayedWeights { rate: 0.25, mask: None },
                ScaleByAdam::new(0.9, 0.999, 1e-8, false),
                ScaleByLr::new(Constant(lr))
            ],
        );
        opt.init_state(0, &ModelLayout::any(&[Shape::new([2])])).unwrap();
        let p = t(&[100.0, 0.01]);
        let u = opt
            .step(
                std::slice::from_ref(&p),
                &[p.zeros_like().unwrap()],
                &StepContext::default(),
            )
            .unwrap();
        for v in u[0].to_vec::<f64>().unwrap() {
            assert!((v + lr).abs() < 1e-6, "{v}");
        }
    }
}
