//! Adan: Xie, Zhou, Li, Lin and Yan, "Adan: Adaptive Nesterov Momentum
//! Algorithm for Faster Optimizing Deep Models", IEEE TPAMI 2024
//! (arXiv:2208.06677), Algorithm 1, as the authors' implementation
//! (`sail-sg/Adan`) computes it.
//!
//! **Beta convention.** The paper writes `m_k = (1 - b1) m_{k-1} + b1 g_k` with
//! `b1, b2, b3 = 0.02, 0.08, 0.01`; the authors' code, and this module, use the
//! EMA-decay convention `m_k = beta1 m_{k-1} + (1 - beta1) g_k`, so the same
//! defaults read `beta1, beta2, beta3 = 0.98, 0.92, 0.99` (`beta = 1 - b`).
//!
//! ```text
//! d_t = g_t - g_{t-1}                 (d_1 = 0: g_0 is taken to be g_1)
//! m_t = beta1 m + (1 - beta1) g_t
//! v_t = beta2 v + (1 - beta2) d_t
//! n_t = beta3 n + (1 - beta3) (g_t + beta2 d_t)^2
//! u_t = [ m_t / (1 - beta1^t) + beta2 v_t / (1 - beta2^t) ] / (sqrt(n_t / (1 - beta3^t)) + eps)
//! theta' = (theta - lr u_t) / (1 + lr wd)          (proximal decay, the default)
//! theta' = theta (1 - lr wd) - lr u_t              (no_prox = 1)
//! update = theta' - theta
//! ```
//!
//! Bias corrections are those of the authors' code (the paper's Algorithm 1
//! has none). Defaults: lr 1e-3, eps 1e-8, weight decay 0 (the paper's
//! experiments use 0.02 with ViTs).

use crate::basic::ema;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::storage::CpuSlice;
use ferrograd_engine::{DType, Device, Element, Result, Tensor};

/// The whole Adan update (direction, step size and weight decay), because the
/// proximal decay needs the learning rate.
#[derive(Debug, Clone)]
pub struct ScaleByAdan {
    /// Learning rate.
    pub lr: f64,
    /// Gradient EMA decay.
    pub beta1: f64,
    /// Gradient-difference EMA decay.
    pub beta2: f64,
    /// Second-moment decay.
    pub beta3: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Decoupled (`true`) instead of proximal (`false`) decay.
    pub no_prox: bool,
    m: Slots,
    v: Slots,
    n: Slots,
    prev: Slots,
}

impl ScaleByAdan {
    /// Adan with the given hyperparameters (EMA-decay convention for the betas).
    pub fn new(lr: f64, beta1: f64, beta2: f64, beta3: f64, eps: f64, weight_decay: f64, no_prox: bool) -> Self {
        ScaleByAdan {
            lr,
            beta1,
            beta2,
            beta3,
            eps,
            weight_decay,
            no_prox,
            m: Slots::default(),
            v: Slots::default(),
            n: Slots::default(),
            prev: Slots::default(),
        }
    }
}

/// The per-step constants of [`ScaleByAdan`]'s fused pass, rounded to the
/// element type as the tensor operations round their scalars.
#[derive(Clone, Copy)]
struct AdanCoefficients<T> {
    b1: T,
    nb1: T,
    b2: T,
    nb2: T,
    b3: T,
    nb3: T,
    inv_c1: T,
    b2_over_c2: T,
    inv_sqrt_c3: T,
    eps: T,
    wd: T,
    scale: T,
}

impl<T: Element> AdanCoefficients<T> {
    /// One element of the step: the operations of the tensor path, in its
    /// order, so both give the same bits. `prev` is the previous gradient
    /// (`g` itself at the first step); returns the update.
    #[inline(always)]
    fn apply(&self, g: T, prev: T, p: T, m: &mut T, v: &mut T, n: &mut T) -> T {
        let d = g - prev;
        *m = *m * self.b1 + g * self.nb1;
        *v = *v * self.b2 + d * self.nb2;
        let corrected = g + d * self.b2;
        *n = *n * self.b3 + (corrected * corrected) * self.nb3;
        let denom = n.sqrt() * self.inv_sqrt_c3 + self.eps;
        let u = (*m * self.inv_c1 + *v * self.b2_over_c2) / denom;
        (u + p * self.wd) * self.scale
    }
}

impl ScaleByAdan {
    fn coefficients<T: Element>(&self, count: u64) -> AdanCoefficients<T> {
        let f = T::from_f64;
        let t = crate::step_exponent(count);
        let (c1, c2, c3) = (
            1.0 - self.beta1.powi(t),
            1.0 - self.beta2.powi(t),
            1.0 - self.beta3.powi(t),
        );
        let (lr, wd) = (self.lr, self.weight_decay);
        let scale = if self.no_prox { -lr } else { -lr / (1.0 + lr * wd) };
        AdanCoefficients {
            b1: f(self.beta1),
            nb1: f(1.0 - self.beta1),
            b2: f(self.beta2),
            nb2: f(1.0 - self.beta2),
            b3: f(self.beta3),
            nb3: f(1.0 - self.beta3),
            inv_c1: f(1.0 / c1),
            b2_over_c2: f(self.beta2 / c2),
            inv_sqrt_c3: f(1.0 / c3.sqrt()),
            eps: f(self.eps),
            wd: f(wd),
            scale: f(scale),
        }
    }

    /// The whole step in one pass per tensor on the CPU, writing the update
    /// over the gradient's buffer: the same bits as [`ScaleByAdan::update_with_tensor_ops`]
    /// with one buffer instead of about a dozen per tensor. The tensors are
    /// cut into two runs of about equal size that go through
    /// `ferrograd_engine::ops::join` (each element's arithmetic is the same
    /// whichever thread does it).
    fn update_fused(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let k = (
            self.coefficients::<f32>(info.count),
            self.coefficients::<f64>(info.count),
        );
        let first = info.count == 1;
        let m = self.m.all_mut(&grads)?;
        let v = self.v.all_mut(&grads)?;
        let n = self.n.all_mut(&grads)?;
        let prev = self.prev.all_mut(&grads)?;
        let total: usize = grads.iter().map(Tensor::numel).sum();
        let cut = if total < FUSED_SPLIT {
            grads.len()
        } else {
            balanced_cut(&grads, total)
        };
        let (g0, g1) = grads.split_at_mut(cut);
        let (p0, p1) = info.params.split_at(cut);
        let (m0, m1) = m.split_at_mut(cut);
        let (v0, v1) = v.split_at_mut(cut);
        let (n0, n1) = n.split_at_mut(cut);
        let (q0, q1) = prev.split_at_mut(cut);
        let run =
            |g: &mut [Tensor], p: &[Tensor], m: &mut [Tensor], v: &mut [Tensor], n: &mut [Tensor], q: &mut [Tensor]| {
                for i in 0..g.len() {
                    let state = AdanSlots {
                        m: &mut m[i],
                        v: &mut v[i],
                        n: &mut n[i],
                        prev: &mut q[i],
                    };
                    match g[i].dtype() {
                        DType::F32 => fused_tensor(&mut g[i], &p[i], state, &k.0, first)?,
                        DType::F64 => fused_tensor(&mut g[i], &p[i], state, &k.1, first)?,
                    }
                }
                Ok::<(), ferrograd_engine::Error>(())
            };
        let (r0, r1) = if g1.is_empty() {
            (run(g0, p0, m0, v0, n0, q0), Ok(()))
        } else {
            ferrograd_engine::ops::join(|| run(g0, p0, m0, v0, n0, q0), || run(g1, p1, m1, v1, n1, q1))
        };
        r0?;
        r1?;
        Ok(grads)
    }

    /// The step as tensor operations (any device): the readable form of
    /// the formula, and the reference the fused pass is tested against.
    pub fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let t = crate::step_exponent(info.count);
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        let c3 = 1.0 - self.beta3.powi(t);
        let (lr, wd) = (self.lr, self.weight_decay);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            if info.count == 1 {
                self.prev.get(i, g)?;
                self.prev.set(i, g.clone());
            }
            let diff = g.sub(self.prev.get(i, g)?)?;
            let m = ema(self.m.get(i, g)?, g, self.beta1)?;
            let v = ema(self.v.get(i, g)?, &diff, self.beta2)?;
            let corrected = g.add(&diff.mul_scalar(self.beta2)?)?;
            let n = ema(self.n.get(i, g)?, &corrected.square()?, self.beta3)?;
            let denom = n.sqrt()?.div_scalar(c3.sqrt())?.add_scalar(self.eps)?;
            let u = m.div_scalar(c1)?.add(&v.mul_scalar(self.beta2 / c2)?)?.div(&denom)?;
            let p = &info.params[i];
            let step = if self.no_prox {
                u.add(&p.mul_scalar(wd)?)?.mul_scalar(-lr)
            } else {
                u.add(&p.mul_scalar(wd)?)?.mul_scalar(-lr / (1.0 + lr * wd))
            }?;
            out.push(step);
            self.m.set(i, m);
            self.v.set(i, v);
            self.n.set(i, n);
            self.prev.set(i, g.clone());
        }
        Ok(out)
    }
}

/// Below this many elements in all, the fused pass runs on one thread.
const FUSED_SPLIT: usize = 1 << 15;

/// The index that cuts `tensors` into two runs of about `total / 2`
/// elements each (the first run ends with the tensor that reaches half).
fn balanced_cut(tensors: &[Tensor], total: usize) -> usize {
    let mut seen = 0;
    for (i, t) in tensors.iter().enumerate() {
        seen += t.numel();
        if 2 * seen >= total {
            return i + 1;
        }
    }
    tensors.len()
}

/// One tensor's state in [`ScaleByAdan`].
struct AdanSlots<'a> {
    m: &'a mut Tensor,
    v: &'a mut Tensor,
    n: &'a mut Tensor,
    prev: &'a mut Tensor,
}

/// The fused step for one tensor: the update replaces the gradient.
fn fused_tensor<T: CpuSlice>(
    g: &mut Tensor,
    p: &Tensor,
    s: AdanSlots<'_>,
    k: &AdanCoefficients<T>,
    first: bool,
) -> Result<()> {
    let (m, v, n, prev) = (
        s.m.as_mut_slice::<T>()?,
        s.v.as_mut_slice::<T>()?,
        s.n.as_mut_slice::<T>()?,
        s.prev.as_mut_slice::<T>()?,
    );
    let g = g.as_mut_slice::<T>()?;
    // Every slice cut to the same length, and the first-step case in a loop
    // of its own, so that the compiler drops the bounds checks and
    // vectorises the loops (square roots and divisions four at a time).
    let len = g.len();
    let (p, m, v, n, prev) = (
        &p.as_slice::<T>()?[..len],
        &mut m[..len],
        &mut v[..len],
        &mut n[..len],
        &mut prev[..len],
    );
    if first {
        for j in 0..len {
            let gj = g[j];
            prev[j] = gj;
            g[j] = k.apply(gj, gj, p[j], &mut m[j], &mut v[j], &mut n[j]);
        }
    } else {
        for j in 0..len {
            let (gj, before) = (g[j], prev[j]);
            prev[j] = gj;
            g[j] = k.apply(gj, before, p[j], &mut m[j], &mut v[j], &mut n[j]);
        }
    }
    Ok(())
}

impl Transform for ScaleByAdan {
    /// One fused pass per tensor on the CPU (`update_fused`);
    /// tensor operations elsewhere.
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let on_cpu = |t: &Tensor| t.device() == Device::Cpu;
        let same_shapes = grads.len() == info.params.len()
            && grads
                .iter()
                .zip(info.params)
                .all(|(g, p)| g.shape() == p.shape() && g.dtype() == p.dtype());
        if same_shapes && grads.iter().chain(info.params).all(on_cpu) {
            self.update_fused(grads, info)
        } else {
            self.update_with_tensor_ops(grads, info)
        }
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
        self.n.save(prefix, "n", state);
        self.prev.save(prefix, "prev_grad", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.n.load(prefix, "n", state);
        self.prev.load(prefix, "prev_grad", state);
        Ok(())
    }
}

/// Adan. Defaults (authors' code): lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8,
/// weight decay 0, proximal decay.
pub fn adan(lr: f64, beta1: f64, beta2: f64, beta3: f64, eps: f64, weight_decay: f64, no_prox: bool) -> ChainOptimizer {
    let stage = ScaleByAdan::new(lr, beta1, beta2, beta3, eps, weight_decay, no_prox);
    ChainOptimizer::new("adan", crate::chain![stage])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepContext;
    use ferrograd_engine::{DType, Rng, Shape};

    fn bits(t: &Tensor) -> Vec<u64> {
        t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// The fused pass against the tensor operations, bit for bit, over 15
    /// steps in f32 and f64, with and without (proximal or decoupled) weight
    /// decay, on gradients that include exact zeros and a tensor that stays
    /// zero (as the task's frozen layers do); the saved states match too.
    #[test]
    fn fused_pass_matches_the_tensor_operations_bit_for_bit() {
        for dtype in [DType::F32, DType::F64] {
            for (wd, no_prox) in [(0.0, false), (0.05, false), (0.05, true)] {
                let mut fused = ScaleByAdan::new(3e-3, 0.98, 0.92, 0.99, 1e-8, wd, no_prox);
                let mut reference = fused.clone();
                let shapes = [Shape::new([7, 3]), Shape::new([5]), Shape::new([4])];
                let mut rng = Rng::new(11);
                let params: Vec<Tensor> = shapes
                    .iter()
                    .map(|s| Tensor::rand_normal(s.clone(), 0.0, 1.0, dtype, &mut rng).unwrap())
                    .collect();
                let ctx = StepContext::default();
                for count in 1..=15u64 {
                    let grads: Vec<Tensor> = shapes
                        .iter()
                        .enumerate()
                        .map(|(k, s)| {
                            let g = Tensor::rand_normal(s.clone(), 0.0, 2.0, dtype, &mut rng).unwrap();
                            match k {
                                2 => g.zeros_like(),
                                _ => g.maximum_scalar(-1.0),
                            }
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .unwrap();
                    let info = StepInfo {
                        count,
                        params: &params,
                        ctx: &ctx,
                    };
                    let a = fused.update(grads.clone(), &info).unwrap();
                    let b = reference.update_with_tensor_ops(grads, &info).unwrap();
                    for (x, y) in a.iter().zip(&b) {
                        assert_eq!(bits(x), bits(y), "{dtype:?} wd {wd} no_prox {no_prox} step {count}");
                    }
                }
                let (mut sa, mut sb) = (OptimizerState::default(), OptimizerState::default());
                fused.save("0.", &mut sa);
                reference.save("0.", &mut sb);
                assert_eq!(sa.tensors.len(), sb.tensors.len());
                for (name, t) in &sa.tensors {
                    assert_eq!(bits(t), bits(&sb.tensors[name]), "state {name}");
                }
            }
        }
    }
}
