//! The stages of PyTorch's Adam variants that [`crate::basic::ScaleByAdam`]
//! does not cover: NAdam, RAdam and Adamax. Each returns a direction; the
//! learning rate comes after it ([`crate::basic::ScaleByLr`]).

use crate::basic::ema;
use crate::onepass::{all_on_cpu, one_pass, ElementStep, TensorOpsReference};
use crate::transform::{Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{BinaryOp, Element, Result, Tensor};

/// `m` and `v` moved towards `g` and `g^2` (the tensor form's two `ema`s),
/// with the decays `b1`, `b2` and their complements `nb1`, `nb2` rounded to `T`.
#[inline(always)]
fn update_moments<T: Element>(g: T, m: &mut T, v: &mut T, [b1, nb1, b2, nb2]: [T; 4]) {
    *m = *m * b1 + g * nb1;
    *v = *v * b2 + (g * g) * nb2;
}

/// `[b1, 1 - b1, b2, 1 - b2]` rounded to `T`, for [`update_moments`].
fn moment_decays<T: Element>(b1: f64, b2: f64) -> [T; 4] {
    [b1, 1.0 - b1, b2, 1.0 - b2].map(T::from_f64)
}

/// NAdam's direction (Dozat, "Incorporating Nesterov Momentum into Adam",
/// ICLR 2016 workshop), with the momentum schedule of `torch.optim.NAdam`:
///
/// ```text
/// mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)),   P_t = mu_1 mu_2 ... mu_t
/// m_t  = beta1 m_{t-1} + (1 - beta1) g_t
/// v_t  = beta2 v_{t-1} + (1 - beta2) g_t^2
/// d_t  = sqrt(v_t / (1 - beta2^t)) + eps
/// out  = (1 - mu_t) / (1 - P_t) * g_t / d_t  +  mu_{t+1} / (1 - P_{t+1}) * m_t / d_t
/// ```
#[derive(Debug, Clone)]
pub struct ScaleByNadam {
    /// First-moment decay (the `beta1` inside `mu_t`).
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// The momentum schedule's rate, `psi` (PyTorch's default 4e-3).
    pub momentum_decay: f64,
    /// `P_t` and the `t` it belongs to (recomputed from the count when they
    /// disagree, as after loading a checkpoint).
    mu_product: (u64, f64),
    m: Slots,
    v: Slots,
}

impl ScaleByNadam {
    /// NAdam's moments and momentum schedule.
    pub fn new(beta1: f64, beta2: f64, eps: f64, momentum_decay: f64) -> Self {
        ScaleByNadam {
            beta1,
            beta2,
            eps,
            momentum_decay,
            mu_product: (0, 1.0),
            m: Slots::default(),
            v: Slots::default(),
        }
    }

    /// `mu_t`.
    fn mu(&self, t: u64) -> f64 {
        self.beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }

    /// `P_t = mu_1 ... mu_t`, multiplied in the same order as PyTorch.
    ///
    /// The loop ends early, so that no step count (one loaded from a
    /// checkpoint may be up to 2^53) makes it long: once `P` underflows to
    /// 0 it stays 0, exactly as the full product would; and once `mu_k`
    /// rounds to `beta1` every later factor does too, so the rest is
    /// `beta1^(t - k + 1)` (one `powf`, within rounding of the repeated
    /// product). With the default `momentum_decay` the product underflows
    /// after a few thousand steps, long before `mu_k` reaches `beta1`, so
    /// every result is PyTorch's bit for bit; for any setting the loop
    /// runs at most about 10^5 times.
    fn mu_product(&mut self, t: u64) -> f64 {
        let (known, mut product) = self.mu_product;
        let mut from = known + 1;
        if known >= t {
            (from, product) = (1, 1.0);
        }
        for k in from..=t {
            if product == 0.0 {
                break;
            }
            let mu = self.mu(k);
            if mu == self.beta1 {
                product *= self.beta1.powf((t - k + 1) as f64);
                break;
            }
            product *= mu;
        }
        self.mu_product = (t, product);
        product
    }
}

impl ScaleByNadam {
    /// Step `t`'s `(grad_coef, m_coef, c2)`: the factors of `g` and `m` in
    /// the direction and the second moment's bias correction.
    fn coefficients(&mut self, t: u64) -> (f64, f64, f64) {
        let (mu, mu_next) = (self.mu(t), self.mu(t + 1));
        let product = self.mu_product(t);
        let grad_coef = (1.0 - mu) / (1.0 - product);
        let m_coef = mu_next / (1.0 - product * mu_next);
        let c2 = 1.0 - self.beta2.powf(t as f64);
        (grad_coef, m_coef, c2)
    }
}

/// [`ScaleByNadam`] for one element (state `[m, v]`), its constants rounded
/// to `T`.
struct NadamStep<T> {
    decays: [T; 4],
    grad_coef: T,
    m_coef: T,
    inv_c2: T,
    eps: T,
}

impl<T: Element> NadamStep<T> {
    fn new(stage: &ScaleByNadam, (grad_coef, m_coef, c2): (f64, f64, f64)) -> Self {
        NadamStep {
            decays: moment_decays(stage.beta1, stage.beta2),
            grad_coef: T::from_f64(grad_coef),
            m_coef: T::from_f64(m_coef),
            inv_c2: T::from_f64(1.0 / c2),
            eps: T::from_f64(stage.eps),
        }
    }
}

impl<T: Element> ElementStep<T, 2> for NadamStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [m, v]: [&mut T; 2]) -> T {
        update_moments(g, m, v, self.decays);
        let denom = (*v * self.inv_c2).sqrt() + self.eps;
        (g * self.grad_coef + *m * self.m_coef) / denom
    }
}

impl Transform for ScaleByNadam {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let k = self.coefficients(info.count);
        let step = (&NadamStep::new(self, k), &NadamStep::new(self, k));
        one_pass(&mut grads, [&mut self.m, &mut self.v], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        self.mu_product = (0, 1.0);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByNadam {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let (grad_coef, m_coef, c2) = self.coefficients(info.count);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = ema(self.m.get(i, g)?, g, self.beta1)?;
            let v = ema(self.v.get(i, g)?, &g.square()?, self.beta2)?;
            let denom = v.div_scalar(c2)?.sqrt()?.add_scalar(self.eps)?;
            let dir = g.mul_scalar(grad_coef)?.add(&m.mul_scalar(m_coef)?)?;
            out.push(dir.div(&denom)?);
            self.m.set(i, m);
            self.v.set(i, v);
        }
        Ok(out)
    }
}

/// RAdam's direction (Liu et al., "On the Variance of the Adaptive Learning
/// Rate and Beyond", ICLR 2020, Algorithm 2), as `torch.optim.RAdam` computes
/// it (note `eps` is added to `sqrt(v)` before the bias correction):
///
/// ```text
/// m_t = beta1 m_{t-1} + (1 - beta1) g_t,        m_hat = m_t / (1 - beta1^t)
/// v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
/// rho_inf = 2 / (1 - beta2) - 1,                rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
/// if rho_t > 5:  r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
///                out = m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v_t) + eps)
/// else:          out = m_hat                    (plain momentum SGD while the variance is intractable)
/// ```
#[derive(Debug, Clone)]
pub struct ScaleByRadam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    m: Slots,
    v: Slots,
}

/// The length of the approximated simple moving average above which RAdam
/// uses the adaptive step (PyTorch's threshold; the paper's is 4).
pub const RADAM_THRESHOLD: f64 = 5.0;

impl ScaleByRadam {
    /// RAdam's moments.
    pub fn new(beta1: f64, beta2: f64, eps: f64) -> Self {
        ScaleByRadam {
            beta1,
            beta2,
            eps,
            m: Slots::default(),
            v: Slots::default(),
        }
    }

    /// The rectification `r_t` times `sqrt(1 - beta2^t)`, or `None` while
    /// `rho_t` is at most [`RADAM_THRESHOLD`].
    fn rectification(&self, t: u64) -> Option<f64> {
        let (t, b2t) = (t as f64, self.beta2.powf(t as f64));
        let c2 = 1.0 - b2t;
        let rho_inf = 2.0 / (1.0 - self.beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * b2t / c2;
        (rho_t > RADAM_THRESHOLD).then(|| {
            let r = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t);
            r.sqrt() * c2.sqrt()
        })
    }
}

/// [`ScaleByRadam`] for one element (state `[m, v]`), its constants rounded
/// to `T`; `rect` is `None` while the step is plain momentum.
struct RadamStep<T> {
    decays: [T; 4],
    inv_c1: T,
    rect: Option<T>,
    eps: T,
}

impl<T: Element> RadamStep<T> {
    fn new(stage: &ScaleByRadam, count: u64) -> Self {
        RadamStep {
            decays: moment_decays(stage.beta1, stage.beta2),
            inv_c1: T::from_f64(1.0 / (1.0 - stage.beta1.powf(count as f64))),
            rect: stage.rectification(count).map(T::from_f64),
            eps: T::from_f64(stage.eps),
        }
    }
}

impl<T: Element> ElementStep<T, 2> for RadamStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [m, v]: [&mut T; 2]) -> T {
        update_moments(g, m, v, self.decays);
        let m_hat = *m * self.inv_c1;
        match self.rect {
            Some(r) => (m_hat * r) / (v.sqrt() + self.eps),
            None => m_hat,
        }
    }
}

impl Transform for ScaleByRadam {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&RadamStep::new(self, info.count), &RadamStep::new(self, info.count));
        one_pass(&mut grads, [&mut self.m, &mut self.v], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByRadam {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let c1 = 1.0 - self.beta1.powf(info.count as f64);
        let rect = self.rectification(info.count);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = ema(self.m.get(i, g)?, g, self.beta1)?;
            let v = ema(self.v.get(i, g)?, &g.square()?, self.beta2)?;
            let m_hat = m.div_scalar(c1)?;
            out.push(match rect {
                Some(r) => m_hat.mul_scalar(r)?.div(&v.sqrt()?.add_scalar(self.eps)?)?,
                None => m_hat,
            });
            self.m.set(i, m);
            self.v.set(i, v);
        }
        Ok(out)
    }
}

/// Adamax's direction (Kingma and Ba, "Adam: A Method for Stochastic
/// Optimization", ICLR 2015, Algorithm 2), as `torch.optim.Adamax` computes
/// it (`eps` inside the maximum):
///
/// ```text
/// m_t = beta1 m_{t-1} + (1 - beta1) g_t
/// u_t = max(beta2 u_{t-1}, |g_t| + eps)
/// out = m_t / ((1 - beta1^t) u_t)
/// ```
#[derive(Debug, Clone)]
pub struct ScaleByAdamax {
    /// First-moment decay.
    pub beta1: f64,
    /// Decay of the infinity norm.
    pub beta2: f64,
    /// Added to `|g|`, so `u` never vanishes.
    pub eps: f64,
    m: Slots,
    u: Slots,
}

impl ScaleByAdamax {
    /// Adamax's moments.
    pub fn new(beta1: f64, beta2: f64, eps: f64) -> Self {
        ScaleByAdamax {
            beta1,
            beta2,
            eps,
            m: Slots::default(),
            u: Slots::default(),
        }
    }
}

/// [`ScaleByAdamax`] for one element (state `[m, u]`), its constants rounded
/// to `T`.
struct AdamaxStep<T> {
    b1: T,
    nb1: T,
    b2: T,
    eps: T,
    inv_c1: T,
}

impl<T: Element> AdamaxStep<T> {
    fn new(stage: &ScaleByAdamax, count: u64) -> Self {
        let f = T::from_f64;
        AdamaxStep {
            b1: f(stage.beta1),
            nb1: f(1.0 - stage.beta1),
            b2: f(stage.beta2),
            eps: f(stage.eps),
            inv_c1: f(1.0 / (1.0 - stage.beta1.powf(count as f64))),
        }
    }
}

impl<T: Element> ElementStep<T, 2> for AdamaxStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [m, u]: [&mut T; 2]) -> T {
        *m = *m * self.b1 + g * self.nb1;
        let (decayed, bound) = (*u * self.b2, g.abs() + self.eps);
        *u = BinaryOp::Maximum.apply(decayed, bound);
        (*m / *u) * self.inv_c1
    }
}

impl Transform for ScaleByAdamax {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&AdamaxStep::new(self, info.count), &AdamaxStep::new(self, info.count));
        one_pass(&mut grads, [&mut self.m, &mut self.u], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.u.save(prefix, "u", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.u.load(prefix, "u", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByAdamax {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let c1 = 1.0 - self.beta1.powf(info.count as f64);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let m = ema(self.m.get(i, g)?, g, self.beta1)?;
            let u = self
                .u
                .get(i, g)?
                .mul_scalar(self.beta2)?
                .maximum(&g.abs()?.add_scalar(self.eps)?)?;
            out.push(m.div(&u)?.div_scalar(c1)?);
            self.m.set(i, m);
            self.u.set(i, u);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onepass::testing::{assert_one_pass_matches_tensor_ops, runs};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// NAdam, over its momentum schedule.
        #[test]
        fn nadam_in_one_pass_is_the_tensor_form(
            run in runs(), beta1 in 0.5f64..1.0, beta2 in 0.5f64..1.0, eps in 1e-12f64..1e-2, decay in 0.0f64..0.1
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByNadam::new(beta1, beta2, eps, decay), &run)?;
        }

        /// RAdam, on both sides of its threshold (small `beta2` rectifies
        /// from the first steps, large `beta2` not within them).
        #[test]
        fn radam_in_one_pass_is_the_tensor_form(
            run in runs(), beta1 in 0.5f64..1.0, beta2 in 0.3f64..1.0, eps in 1e-12f64..1e-2
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByRadam::new(beta1, beta2, eps), &run)?;
        }

        /// Adamax.
        #[test]
        fn adamax_in_one_pass_is_the_tensor_form(
            run in runs(), beta1 in 0.5f64..1.0, beta2 in 0.5f64..1.0, eps in 1e-12f64..1e-2
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByAdamax::new(beta1, beta2, eps), &run)?;
        }
    }
}
