//! The stages of PyTorch's SGD-style optimizers: heavy-ball / Nesterov
//! momentum, Adagrad's accumulator, RMSprop's and Adadelta's moving averages,
//! and Adagrad's inverse-time learning-rate decay.

use crate::basic::ema;
use crate::schedule::Schedule;
use crate::transform::{Slots, StepInfo, Transform};
use crate::{OptimizerState, StepContext};
use ferrograd_engine::{Result, Tensor};

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

impl Transform for TorchMomentum {
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
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

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.buf.save(prefix, "momentum", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.buf.load(prefix, "momentum", state);
        Ok(())
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

impl Transform for ScaleByAdagrad {
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
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

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.sum.save(prefix, "sum", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.sum.load(prefix, "sum", state);
        Ok(())
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

impl Transform for ScaleByRmsprop {
    fn update(&mut self, grads: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let square_avg = ema(self.square_avg.get(i, g)?, &g.square()?, self.alpha)?;
            let root = self.root(i, g, &square_avg)?;
            out.push(g.div(&root.add_scalar(self.eps)?)?);
            self.square_avg.set(i, square_avg);
        }
        Ok(out)
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

impl Transform for ScaleByAdadelta {
    fn update(&mut self, grads: Vec<Tensor>, _: &StepInfo<'_>) -> Result<Vec<Tensor>> {
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
