//! The stages of PyTorch's SGD-style optimizers: heavy-ball / Nesterov
//! momentum, Adagrad's accumulator, RMSprop's and Adadelta's moving averages,
//! and Adagrad's inverse-time learning-rate decay.

use crate::basic::ema;
use crate::onepass::{all_on_cpu, one_pass, ElementStep, TensorOpsReference};
use crate::schedule::Schedule;
use crate::transform::{Slots, StepInfo, Transform};
use crate::{OptimizerState, StepContext};
use ferrograd_engine::{Element, Result, Tensor};

/// Momentum exactly as `torch.optim.SGD` applies it (Polyak 1964 heavy ball;
/// Nesterov momentum in the form of Sutskever et al., "On the importance of
/// initialization and momentum in deep learning", ICML 2013):
///
/// ```text
/// b_1 = g_1                                    (no dampening on the first step)
/// b_t = momentum * b_{t-1} + (1 - dampening) * g_t
/// out = g_t + momentum * b_t    if nesterov,    else b_t
/// ```
///
/// With `dampening = 0` this is also RMSprop's momentum buffer (which PyTorch
/// starts at zero: `0 * momentum + g_1 = g_1`). `momentum = 0` passes the
/// updates through.
#[derive(Debug, Clone)]
pub struct TorchMomentum {
    /// The buffer's decay.
    pub momentum: f64,
    /// The fraction of each new update left out of the buffer (after step 1).
    pub dampening: f64,
    /// Look ahead along the buffer (Nesterov).
    pub nesterov: bool,
    buf: Slots,
}

impl TorchMomentum {
    /// Momentum with the given decay, dampening and Nesterov switch.
    pub fn new(momentum: f64, dampening: f64, nesterov: bool) -> Self {
        TorchMomentum {
            momentum,
            dampening,
            nesterov,
            buf: Slots::default(),
        }
    }
}

/// [`TorchMomentum`] for one element, its constants rounded to `T`.
struct MomentumStep<T> {
    momentum: T,
    keep: T,
    first: bool,
    nesterov: bool,
}

impl<T: Element> MomentumStep<T> {
    fn new(stage: &TorchMomentum, count: u64) -> Self {
        MomentumStep {
            momentum: T::from_f64(stage.momentum),
            keep: T::from_f64(1.0 - stage.dampening),
            first: count == 1,
            nesterov: stage.nesterov,
        }
    }
}

impl<T: Element> ElementStep<T, 1> for MomentumStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [buf]: [&mut T; 1]) -> T {
        *buf = if self.first {
            g
        } else {
            *buf * self.momentum + g * self.keep
        };
        if self.nesterov {
            g + *buf * self.momentum
        } else {
            *buf
        }
    }
}

impl Transform for TorchMomentum {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.momentum == 0.0 {
            return Ok(updates);
        }
        if !all_on_cpu(&updates) {
            return self.update_with_tensor_ops(updates, info);
        }
        let step = (
            &MomentumStep::new(self, info.count),
            &MomentumStep::new(self, info.count),
        );
        one_pass(&mut updates, [&mut self.buf], step)?;
        Ok(updates)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.buf.save(prefix, "momentum", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.buf.load(prefix, "momentum", state);
        Ok(())
    }
}

impl TensorOpsReference for TorchMomentum {
    fn update_with_tensor_ops(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if self.momentum == 0.0 {
            return Ok(updates);
        }
        let mut out = Vec::with_capacity(updates.len());
        for (i, g) in updates.iter().enumerate() {
            let old = self.buf.get(i, g)?;
            let buf = if info.count == 1 {
                g.clone()
            } else {
                old.mul_scalar(self.momentum)?
                    .add(&g.mul_scalar(1.0 - self.dampening)?)?
            };
            out.push(if self.nesterov {
                g.add(&buf.mul_scalar(self.momentum)?)?
            } else {
                buf.clone()
            });
            self.buf.set(i, buf);
        }
        Ok(out)
    }
}

/// Adagrad's direction (Duchi, Hazan and Singer, "Adaptive Subgradient
/// Methods for Online Learning and Stochastic Optimization", JMLR 2011), as
/// `torch.optim.Adagrad` computes it:
///
/// ```text
/// s_0 = initial_accumulator_value
/// s_t = s_{t-1} + g_t^2
/// out = g_t / (sqrt(s_t) + eps)
/// ```
#[derive(Debug, Clone)]
pub struct ScaleByAdagrad {
    /// The accumulator's starting value.
    pub initial_accumulator_value: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    sum: Slots,
}

impl ScaleByAdagrad {
    /// Adagrad's accumulator starting at `initial_accumulator_value`.
    pub fn new(initial_accumulator_value: f64, eps: f64) -> Self {
        ScaleByAdagrad {
            initial_accumulator_value,
            eps,
            sum: Slots::default(),
        }
    }
}

/// [`ScaleByAdagrad`] for one element, its constants rounded to `T`.
struct AdagradStep<T> {
    initial: T,
    eps: T,
    first: bool,
}

impl<T: Element> AdagradStep<T> {
    fn new(stage: &ScaleByAdagrad, count: u64) -> Self {
        AdagradStep {
            initial: T::from_f64(stage.initial_accumulator_value),
            eps: T::from_f64(stage.eps),
            first: count == 1,
        }
    }
}

impl<T: Element> ElementStep<T, 1> for AdagradStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [sum]: [&mut T; 1]) -> T {
        *sum = if self.first { g * g + self.initial } else { *sum + g * g };
        g / (sum.sqrt() + self.eps)
    }
}

impl Transform for ScaleByAdagrad {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&AdagradStep::new(self, info.count), &AdagradStep::new(self, info.count));
        one_pass(&mut grads, [&mut self.sum], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.sum.save(prefix, "sum", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.sum.load(prefix, "sum", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByAdagrad {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let old = self.sum.get(i, g)?;
            let sum = if info.count == 1 {
                g.square()?.add_scalar(self.initial_accumulator_value)
            } else {
                Ok(old.add(&g.square()?)?)
            }?;
            out.push(g.div(&sum.sqrt()?.add_scalar(self.eps)?)?);
            self.sum.set(i, sum);
        }
        Ok(out)
    }
}

/// Adagrad's learning-rate decay: `lr(t) = lr / (1 + (t - 1) * decay)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTimeDecay {
    /// The learning rate at step 1.
    pub lr: f64,
    /// How fast it falls.
    pub decay: f64,
}

impl Schedule for InverseTimeDecay {
    fn lr(&mut self, count: u64, _ctx: &StepContext) -> f64 {
        self.lr / (1.0 + (count - 1) as f64 * self.decay)
    }
}

/// RMSprop's direction (Tieleman and Hinton, COURSERA "Neural Networks for
/// Machine Learning" lecture 6.5, 2012; the centered variant from Graves,
/// "Generating Sequences With Recurrent Neural Networks", 2013, eq. 38), as
/// `torch.optim.RMSprop` computes it:
///
/// ```text
/// s_t = alpha s_{t-1} + (1 - alpha) g_t^2
/// a_t = alpha a_{t-1} + (1 - alpha) g_t                     (centered only)
/// out = g_t / (sqrt(s_t - a_t^2) + eps)    if centered,  else  g_t / (sqrt(s_t) + eps)
/// ```
///
/// PyTorch's momentum is [`TorchMomentum`] (dampening 0) after this stage.
#[derive(Debug, Clone)]
pub struct ScaleByRmsprop {
    /// Decay of the moving averages.
    pub alpha: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Divide by the estimated standard deviation instead of the RMS.
    pub centered: bool,
    square_avg: Slots,
    grad_avg: Slots,
}

impl ScaleByRmsprop {
    /// RMSprop's moving averages with decay `alpha`.
    pub fn new(alpha: f64, eps: f64, centered: bool) -> Self {
        ScaleByRmsprop {
            alpha,
            eps,
            centered,
            square_avg: Slots::default(),
            grad_avg: Slots::default(),
        }
    }

    /// `sqrt(s - a^2)` (centered) or `sqrt(s)`, updating the mean `a`.
    fn root(&mut self, i: usize, g: &Tensor, square_avg: &Tensor) -> Result<Tensor> {
        if !self.centered {
            return square_avg.sqrt();
        }
        let grad_avg = ema(self.grad_avg.get(i, g)?, g, self.alpha)?;
        let root = square_avg.sub(&grad_avg.square()?)?.sqrt()?;
        self.grad_avg.set(i, grad_avg);
        Ok(root)
    }
}

/// [`ScaleByRmsprop`] for one element, its constants rounded to `T`: the
/// plain form updates `[square_avg]`, the centered one
/// `[square_avg, grad_avg]`.
struct RmspropStep<T> {
    alpha: T,
    rest: T,
    eps: T,
}

impl<T: Element> RmspropStep<T> {
    fn new(stage: &ScaleByRmsprop) -> Self {
        RmspropStep {
            alpha: T::from_f64(stage.alpha),
            rest: T::from_f64(1.0 - stage.alpha),
            eps: T::from_f64(stage.eps),
        }
    }

    /// `avg` moved towards `x` (the tensor form's `ema`).
    #[inline(always)]
    fn average(&self, avg: &mut T, x: T) {
        *avg = *avg * self.alpha + x * self.rest;
    }
}

impl<T: Element> ElementStep<T, 1> for RmspropStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [square_avg]: [&mut T; 1]) -> T {
        self.average(square_avg, g * g);
        g / (square_avg.sqrt() + self.eps)
    }
}

impl<T: Element> ElementStep<T, 2> for RmspropStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [square_avg, grad_avg]: [&mut T; 2]) -> T {
        self.average(square_avg, g * g);
        self.average(grad_avg, g);
        g / ((*square_avg - *grad_avg * *grad_avg).sqrt() + self.eps)
    }
}

impl Transform for ScaleByRmsprop {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&RmspropStep::new(self), &RmspropStep::new(self));
        if self.centered {
            one_pass(&mut grads, [&mut self.square_avg, &mut self.grad_avg], step)?;
        } else {
            one_pass(&mut grads, [&mut self.square_avg], step)?;
        }
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.square_avg.save(prefix, "square_avg", state);
        self.grad_avg.save(prefix, "grad_avg", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.square_avg.load(prefix, "square_avg", state);
        self.grad_avg.load(prefix, "grad_avg", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByRmsprop {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let square_avg = ema(self.square_avg.get(i, g)?, &g.square()?, self.alpha)?;
            let root = self.root(i, g, &square_avg)?;
            out.push(g.div(&root.add_scalar(self.eps)?)?);
            self.square_avg.set(i, square_avg);
        }
        Ok(out)
    }
}

/// Adadelta's direction (Zeiler, "ADADELTA: An Adaptive Learning Rate
/// Method", arXiv:1212.5701, 2012, Algorithm 1), as `torch.optim.Adadelta`
/// computes it (its `lr`, default 1, scales the result afterwards):
///
/// ```text
/// s_t     = rho s_{t-1} + (1 - rho) g_t^2
/// delta_t = sqrt(d_{t-1} + eps) / sqrt(s_t + eps) * g_t
/// d_t     = rho d_{t-1} + (1 - rho) delta_t^2
/// out     = delta_t
/// ```
#[derive(Debug, Clone)]
pub struct ScaleByAdadelta {
    /// Decay of both moving averages.
    pub rho: f64,
    /// Stabiliser inside both square roots.
    pub eps: f64,
    square_avg: Slots,
    acc_delta: Slots,
}

impl ScaleByAdadelta {
    /// Adadelta's moving averages with decay `rho`.
    pub fn new(rho: f64, eps: f64) -> Self {
        ScaleByAdadelta {
            rho,
            eps,
            square_avg: Slots::default(),
            acc_delta: Slots::default(),
        }
    }
}

/// [`ScaleByAdadelta`] for one element (state `[square_avg, acc_delta]`),
/// its constants rounded to `T`.
struct AdadeltaStep<T> {
    rho: T,
    rest: T,
    eps: T,
}

impl<T: Element> AdadeltaStep<T> {
    fn new(stage: &ScaleByAdadelta) -> Self {
        AdadeltaStep {
            rho: T::from_f64(stage.rho),
            rest: T::from_f64(1.0 - stage.rho),
            eps: T::from_f64(stage.eps),
        }
    }
}

impl<T: Element> ElementStep<T, 2> for AdadeltaStep<T> {
    #[inline(always)]
    fn apply(&self, g: T, [square_avg, acc_delta]: [&mut T; 2]) -> T {
        *square_avg = *square_avg * self.rho + (g * g) * self.rest;
        let delta = ((*acc_delta + self.eps).sqrt() / (*square_avg + self.eps).sqrt()) * g;
        *acc_delta = *acc_delta * self.rho + (delta * delta) * self.rest;
        delta
    }
}

impl Transform for ScaleByAdadelta {
    /// One pass per tensor on the CPU, the tensor form elsewhere.
    fn update(&mut self, mut grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if !all_on_cpu(&grads) {
            return self.update_with_tensor_ops(grads, info);
        }
        let step = (&AdadeltaStep::new(self), &AdadeltaStep::new(self));
        one_pass(&mut grads, [&mut self.square_avg, &mut self.acc_delta], step)?;
        Ok(grads)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.square_avg.save(prefix, "square_avg", state);
        self.acc_delta.save(prefix, "acc_delta", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.square_avg.load(prefix, "square_avg", state);
        self.acc_delta.load(prefix, "acc_delta", state);
        Ok(())
    }
}

impl TensorOpsReference for ScaleByAdadelta {
    fn update_with_tensor_ops(&mut self, grads: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let square_avg = ema(self.square_avg.get(i, g)?, &g.square()?, self.rho)?;
            let acc_delta = self.acc_delta.get(i, g)?;
            let rms_delta = acc_delta.add_scalar(self.eps)?.sqrt()?;
            let delta = rms_delta.div(&square_avg.add_scalar(self.eps)?.sqrt()?)?.mul(g)?;
            let acc_delta = ema(acc_delta, &delta.square()?, self.rho)?;
            self.square_avg.set(i, square_avg);
            self.acc_delta.set(i, acc_delta);
            out.push(delta);
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

        /// Heavy-ball and Nesterov momentum, with and without dampening.
        #[test]
        fn momentum_in_one_pass_is_the_tensor_form(
            run in runs(), momentum in 0.0f64..1.0, dampening in 0.0f64..1.0, nesterov in any::<bool>()
        ) {
            assert_one_pass_matches_tensor_ops(TorchMomentum::new(momentum, dampening, nesterov), &run)?;
        }

        /// Adagrad, from any starting accumulator.
        #[test]
        fn adagrad_in_one_pass_is_the_tensor_form(run in runs(), initial in 0.0f64..1.0, eps in 1e-12f64..1e-2) {
            assert_one_pass_matches_tensor_ops(ScaleByAdagrad::new(initial, eps), &run)?;
        }

        /// RMSprop, plain and centered.
        #[test]
        fn rmsprop_in_one_pass_is_the_tensor_form(
            run in runs(), alpha in 0.5f64..1.0, eps in 1e-12f64..1e-2, centered in any::<bool>()
        ) {
            assert_one_pass_matches_tensor_ops(ScaleByRmsprop::new(alpha, eps, centered), &run)?;
        }

        /// Adadelta.
        #[test]
        fn adadelta_in_one_pass_is_the_tensor_form(run in runs(), rho in 0.5f64..1.0, eps in 1e-10f64..1e-2) {
            assert_one_pass_matches_tensor_ops(ScaleByAdadelta::new(rho, eps), &run)?;
        }
    }
}
