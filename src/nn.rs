//! Neural-network layers for the benchmark model (`docs/task.md` section 2):
//! [`Linear`], [`BatchNorm1d`], activations, the [`Mlp`] with frozen layers,
//! and the [`mse`] and [`cross_entropy`] losses.
//!
//! [`Linear`] and [`BatchNorm1d`] here are the functional forms: plain
//! tensors, and forward passes that take the `Var`s to compute with. The
//! [`Mlp`] is built from the [`crate::module`] layers that wrap them, so it
//! is a [`Module`] like any other network; it adds what the task's trainer
//! needs (tensors by [`Role`] in the task's order, frozen layers, a forward
//! pass at given `Var`s).

use crate::autograd::Var;
use crate::engine::Draw;
use crate::engine::{DType, Device, Error, Result, Shape, Tensor};
use crate::module::{self, Module, Slot, SlotMut};
use crate::optim::layout::ModelLayout;
pub use crate::optim::layout::Role;

/// The BatchNorm running-statistics momentum: `running = 0.9 running + 0.1 batch`.
pub const BN_MOMENTUM: f64 = 0.1;
/// The BatchNorm variance epsilon.
pub const BN_EPS: f64 = 1e-5;

/// A fully connected layer `y = x W^T + b`, with `W` stored `[out, in]` as
/// PyTorch stores it.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Tensor,
}

impl Linear {
    /// The task's init: weights uniform in `±0.5 sqrt(2 / (fan_in + fan_out))`, biases 0.
    ///
    /// A layer too large to hold is an error, never an abort:
    /// [`Error::TooManyElements`] past the engine's `MAX_ELEMENTS` (2^40
    /// weights), [`Error::OutOfMemory`] when memory cannot hold it.
    pub fn new(fan_in: usize, fan_out: usize, dtype: DType, rng: &mut (impl Draw + ?Sized)) -> Result<Linear> {
        // The sum in f64 cannot overflow; it is exact below 2^53.
        let bound = 0.5 * (2.0 / (fan_in as f64 + fan_out as f64)).sqrt();
        Ok(Linear {
            weight: Tensor::rand_uniform([fan_out, fan_in], -bound, bound, dtype, rng)?,
            bias: Tensor::zeros([fan_out], dtype)?,
        })
    }

    /// `x W^T + b` for `x: [batch, in]`, with `W` read transposed (no copy).
    pub fn forward(x: &Var, weight: &Var, bias: &Var) -> Result<Var> {
        x.matmul_t(false, weight, true)?.add(bias)
    }
}

/// Batch normalisation over the batch axis of `[batch, features]`.
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    /// Scale `gamma`, init 1.
    pub scale: Tensor,
    /// Shift `beta`, init 0.
    pub shift: Tensor,
    /// Running mean, init 0.
    pub running_mean: Tensor,
    /// Running (unbiased) variance, init 1.
    pub running_var: Tensor,
}

impl BatchNorm1d {
    /// A fresh layer for `features` channels, or an error if they are too
    /// many to hold.
    pub fn new(features: usize, dtype: DType) -> Result<BatchNorm1d> {
        Ok(BatchNorm1d {
            scale: Tensor::ones([features], dtype)?,
            shift: Tensor::zeros([features], dtype)?,
            running_mean: Tensor::zeros([features], dtype)?,
            running_var: Tensor::ones([features], dtype)?,
        })
    }

    /// Training mode: normalise with the batch mean and biased variance, and
    /// return the new running statistics (updated with the unbiased variance,
    /// as PyTorch and cuDNN do).
    pub fn forward_train(&self, x: &Var, scale: &Var, shift: &Var) -> Result<(Var, Tensor, Tensor)> {
        let (y, mean, unbiased) = self.normalise_batch(x, scale, shift)?;
        let running_mean = blend(&self.running_mean, &mean, BN_MOMENTUM)?;
        let running_var = blend(&self.running_var, &unbiased, BN_MOMENTUM)?;
        Ok((y, running_mean, running_var))
    }

    /// Training mode without the running averages: the normalised output,
    /// the batch mean and the batch's unbiased variance (what
    /// [`BatchNorm1d::forward_train`] blends into the running statistics).
    pub fn normalise_batch(&self, x: &Var, scale: &Var, shift: &Var) -> Result<(Var, Tensor, Tensor)> {
        let Some(&n) = x.dims().first() else {
            return Err(Error::invalid(
                "batch_norm",
                "training mode needs a [batch, features] input, got a scalar (shape [])",
            ));
        };
        if n < 2 {
            return Err(Error::invalid(
                "batch_norm",
                "training mode needs at least 2 samples per batch to estimate a variance",
            ));
        }
        let (normalised, mean, var) = normalise_with_batch_stats(x, &[0], false, BN_EPS)?;
        let y = normalised.mul(scale)?.add(shift)?;
        let unbiased = var.mul_scalar(n as f64 / (n - 1) as f64);
        Ok((y, mean, unbiased?))
    }

    /// Inference mode: normalise with the running statistics.
    pub fn forward_eval(&self, x: &Var, scale: &Var, shift: &Var) -> Result<Var> {
        normalise_with_stats(x, &self.running_mean, &self.running_var, BN_EPS)?
            .mul(scale)?
            .add(shift)
    }
}

/// BatchNorm's training-mode normalisation, shared by every BatchNorm
/// layer: `(x - mean) / sqrt(var + eps)` with the mean and biased variance
/// of `x` over `axes` (kept as size-1 axes when `keepdim`, so that they
/// broadcast against `x`), and those two statistics.
pub fn normalise_with_batch_stats(x: &Var, axes: &[isize], keepdim: bool, eps: f64) -> Result<(Var, Tensor, Tensor)> {
    let mean = x.mean(Some(axes), keepdim)?;
    let var = x.var(Some(axes), keepdim, false)?;
    let normalised = x.sub(&mean)?.mul(&var.add_scalar(eps)?.rsqrt()?)?;
    Ok((normalised, mean.value().clone(), var.value().clone()))
}

/// BatchNorm's evaluation-mode normalisation, shared by every BatchNorm
/// layer: `(x - mean) / sqrt(var + eps)` with given statistics (shaped to
/// broadcast against `x`), constants of the graph.
pub fn normalise_with_stats(x: &Var, mean: &Tensor, var: &Tensor, eps: f64) -> Result<Var> {
    let inv_std = var.add_scalar(eps)?.rsqrt();
    x.sub(&Var::constant(mean.clone()))?.mul(&Var::constant(inv_std?))
}

/// `(1 - momentum) * running + momentum * batch`: how every BatchNorm
/// layer updates its running statistics.
pub fn blend(running: &Tensor, batch: &Tensor, momentum: f64) -> Result<Tensor> {
    running.mul_scalar(1.0 - momentum)?.add(&batch.mul_scalar(momentum)?)
}

/// An activation function between layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`: the task's activation.
    Relu,
    /// Leaky ReLU with the given slope.
    LeakyRelu(f64),
    /// `tanh`
    Tanh,
    /// GELU (tanh form)
    Gelu,
    /// SiLU
    Silu,
    /// Logistic sigmoid
    Sigmoid,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, x: &Var) -> Result<Var> {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(s),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu(),
            Activation::Silu => x.silu(),
            Activation::Sigmoid => x.sigmoid(),
        }
    }
}

impl Module for Activation {
    /// [`Activation::apply`]: an activation is a module without tensors.
    fn forward(&mut self, x: &Var) -> crate::Result<Var> {
        Ok(self.apply(x)?)
    }
}

/// A multilayer perceptron built from modules: every layer but the last is
/// [`module::Linear`] -> activation -> [`module::BatchNorm1d`] (BatchNorm
/// after the activation, as in the task), the last a plain Linear. The
/// last `frozen` Linear layers (with their BatchNorms) are never trained:
/// their parameters are frozen ([`module::Parameter::set_trained`]).
///
/// As a [`Module`] it is PyTorch's `nn.Sequential(Linear, ReLU,
/// BatchNorm1d, ..., Linear)`: the state dict names are `0.weight`,
/// `0.bias`, `2.weight` (the first BatchNorm's scale), `2.running_mean`,
/// `3.weight`, ... Its tensors are listed in the task's order (every
/// Linear's weight and bias first, then every BatchNorm's scale, shift,
/// running mean and running variance), which is the order of
/// [`Mlp::roles`], of checkpoints and of what optimizers are given.
#[derive(Debug, Clone)]
pub struct Mlp {
    linears: Vec<module::Linear>,
    norms: Vec<module::BatchNorm1d>,
    activation: Activation,
    training: bool,
}

impl Mlp {
    /// Builds an MLP with layer widths `widths` (input first, output last),
    /// in training mode. The weights are drawn from `rng` layer by layer
    /// with [`Linear::new`]'s initialisation.
    pub fn new(
        widths: &[usize],
        activation: Activation,
        frozen: usize,
        dtype: DType,
        rng: &mut (impl Draw + ?Sized),
    ) -> Result<Mlp> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(Error::invalid(
                "Mlp::new",
                format!("need at least an input and an output width, all positive; got {widths:?}"),
            ));
        }
        if frozen > widths.len() - 1 {
            return Err(Error::invalid(
                "Mlp::new",
                format!("cannot freeze {frozen} of {} linear layers", widths.len() - 1),
            ));
        }
        let mut linears = widths
            .windows(2)
            .map(|w| Ok(module::Linear::from(Linear::new(w[0], w[1], dtype, &mut *rng)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut norms = widths[1..widths.len() - 1]
            .iter()
            .map(|&w| module::BatchNorm1d::new(w, dtype).map_err(engine_error))
            .collect::<Result<Vec<_>>>()?;
        let first_frozen = linears.len() - frozen;
        linears.iter_mut().skip(first_frozen).for_each(|l| freeze(l));
        norms.iter_mut().skip(first_frozen).for_each(|n| freeze(n));
        Ok(Mlp {
            linears,
            norms,
            activation,
            training: true,
        })
    }

    /// The task's model: `[input, 256 x n_hidden, output]`, ReLU, last 2 Linear frozen.
    pub fn task(
        input: usize,
        output: usize,
        n_hidden: usize,
        dtype: DType,
        rng: &mut (impl Draw + ?Sized),
    ) -> Result<Mlp> {
        if n_hidden < 1 {
            return Err(Error::invalid("Mlp::task", "n_hidden must be at least 1"));
        }
        let mut widths = vec![input];
        widths.extend(std::iter::repeat_n(256, n_hidden));
        widths.push(output);
        Mlp::new(&widths, Activation::Relu, 2, dtype, rng)
    }

    /// The Linear layers, input first.
    pub fn linears(&self) -> &[module::Linear] {
        &self.linears
    }

    /// The BatchNorms, one per hidden layer, input first.
    pub fn norms(&self) -> &[module::BatchNorm1d] {
        &self.norms
    }

    /// The activation of every hidden layer.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// How many of the last Linear layers are frozen.
    pub fn frozen(&self) -> usize {
        self.linears.len() - self.first_frozen_layer()
    }

    /// The layer widths, input first (what [`Mlp::new`] was given).
    pub fn widths(&self) -> Vec<usize> {
        let input = self.linears[0].in_features();
        std::iter::once(input)
            .chain(self.linears.iter().map(module::Linear::out_features))
            .collect()
    }

    /// The roles of [`Mlp::tensors`], in the task's order: `W0, b0, ..., Wn, bn`,
    /// then per BatchNorm `scale, shift, running_mean, running_var`.
    pub fn roles(&self) -> Vec<Role> {
        (0..self.tensor_count()).map(|i| self.role(i)).collect()
    }

    /// How many tensors the model has (the length of [`Mlp::roles`]).
    pub fn tensor_count(&self) -> usize {
        2 * self.linears.len() + 4 * self.norms.len()
    }

    /// The role of the tensor at `index` in the task's order (the same as
    /// `roles()[index]`, without building the list).
    ///
    /// Panics if `index >= tensor_count()`.
    pub fn role(&self, index: usize) -> Role {
        let n_lin = 2 * self.linears.len();
        assert!(index < self.tensor_count(), "tensor {index} of {}", self.tensor_count());
        if index < n_lin {
            return if index % 2 == 0 {
                Role::Weight(index / 2)
            } else {
                Role::Bias(index / 2)
            };
        }
        let (i, which) = ((index - n_lin) / 4, (index - n_lin) % 4);
        match which {
            0 => Role::BnScale(i),
            1 => Role::BnShift(i),
            2 => Role::RunningMean(i),
            _ => Role::RunningVar(i),
        }
    }

    /// Copies every tensor of `other` (same architecture) into this model's
    /// buffers, in place: no allocation when this model's tensors are not
    /// shared (how the trainer keeps its best model without reallocating).
    pub fn copy_from(&mut self, other: &Mlp) -> Result<()> {
        if self.tensor_count() != other.tensor_count() {
            return Err(Error::invalid(
                "Mlp::copy_from",
                format!(
                    "{} tensors into a model with {}",
                    other.tensor_count(),
                    self.tensor_count()
                ),
            ));
        }
        for i in 0..self.tensor_count() {
            let role = self.role(i);
            self.tensor_mut(role).copy_from(other.tensor(role))?;
        }
        Ok(())
    }

    /// Every tensor, in the task's order (see [`Mlp::roles`]).
    pub fn tensors(&self) -> Vec<Tensor> {
        self.roles().into_iter().map(|r| self.tensor(r).clone()).collect()
    }

    /// The tensor with role `role`.
    ///
    /// Panics if `role`'s layer is past the model's layers (a hot-path
    /// accessor: take roles from [`Mlp::roles`] or [`Mlp::role`]).
    pub fn tensor(&self, role: Role) -> &Tensor {
        self.check_role(role);
        match role {
            Role::Weight(i) => self.linears[i].weight().value(),
            Role::Bias(i) => self.linears[i].bias().expect(HAS_BIAS).value(),
            Role::BnScale(i) => self.norms[i].affine().expect(AFFINE).0.value(),
            Role::BnShift(i) => self.norms[i].affine().expect(AFFINE).1.value(),
            Role::RunningMean(i) => self.norms[i].running_stats().expect(TRACKED).0.value(),
            Role::RunningVar(i) => self.norms[i].running_stats().expect(TRACKED).1.value(),
        }
    }

    /// Mutable access to the tensor with role `role`, to change in place
    /// (a parameter that a clone of the model or a recorded graph still
    /// holds moves to a fresh leaf first; see
    /// [`module::Parameter::value_mut`]).
    ///
    /// Panics if `role`'s layer is past the model's layers, as [`Mlp::tensor`].
    pub fn tensor_mut(&mut self, role: Role) -> &mut Tensor {
        self.check_role(role);
        match role {
            Role::Weight(i) => self.linears[i].parameters_mut().0.value_mut(),
            Role::Bias(i) => self.linears[i].parameters_mut().1.expect(HAS_BIAS).value_mut(),
            Role::BnScale(i) => self.norms[i].affine_mut().expect(AFFINE).0.value_mut(),
            Role::BnShift(i) => self.norms[i].affine_mut().expect(AFFINE).1.value_mut(),
            Role::RunningMean(i) => self.norms[i].running_stats_mut().expect(TRACKED).0.value_mut(),
            Role::RunningVar(i) => self.norms[i].running_stats_mut().expect(TRACKED).1.value_mut(),
        }
    }

    /// The parameter with role `role`; `None` for the running statistics,
    /// which are buffers.
    fn parameter(&self, role: Role) -> Option<&module::Parameter> {
        self.check_role(role);
        match role {
            Role::Weight(i) => Some(self.linears[i].weight()),
            Role::Bias(i) => self.linears[i].bias(),
            Role::BnScale(i) => Some(self.norms[i].affine().expect(AFFINE).0),
            Role::BnShift(i) => Some(self.norms[i].affine().expect(AFFINE).1),
            Role::RunningMean(_) | Role::RunningVar(_) => None,
        }
    }

    /// [`Mlp::parameter`], open to change.
    fn parameter_mut(&mut self, role: Role) -> Option<&mut module::Parameter> {
        self.check_role(role);
        match role {
            Role::Weight(i) => Some(self.linears[i].parameters_mut().0),
            Role::Bias(i) => self.linears[i].parameters_mut().1,
            Role::BnScale(i) => Some(self.norms[i].affine_mut().expect(AFFINE).0),
            Role::BnShift(i) => Some(self.norms[i].affine_mut().expect(AFFINE).1),
            Role::RunningMean(_) | Role::RunningVar(_) => None,
        }
    }

    /// Panics, saying which role and how many layers, if `role` is past the model.
    fn check_role(&self, role: Role) {
        let (i, layers, kind) = match role {
            Role::Weight(i) | Role::Bias(i) => (i, self.linears.len(), "linear layers"),
            Role::BnScale(i) | Role::BnShift(i) | Role::RunningMean(i) | Role::RunningVar(i) => {
                (i, self.norms.len(), "BatchNorms")
            }
        };
        assert!(i < layers, "Mlp::tensor: {role:?} is past the model's {layers} {kind}");
    }

    /// Replaces every tensor, in the task's order; shapes must match.
    pub fn set_tensors(&mut self, tensors: &[Tensor]) -> Result<()> {
        let roles = self.roles();
        if tensors.len() != roles.len() {
            return Err(Error::invalid(
                "Mlp::set_tensors",
                format!("got {} tensors for a model with {}", tensors.len(), roles.len()),
            ));
        }
        for (&role, t) in roles.iter().zip(tensors) {
            let own = self.tensor(role);
            if own.shape() != t.shape() || own.dtype() != t.dtype() {
                return Err(Error::ShapeMismatch {
                    op: "Mlp::set_tensors",
                    lhs: own.shape().clone(),
                    rhs: t.shape().clone(),
                    hint: "each tensor must keep its shape and dtype",
                });
            }
        }
        for (role, t) in roles.into_iter().zip(tensors) {
            *self.tensor_mut(role) = t.clone();
        }
        Ok(())
    }

    /// Whether the tensor with role `role` is trained (running statistics and
    /// the frozen layers are not).
    pub fn is_trainable(&self, role: Role) -> bool {
        self.parameter(role).is_some_and(module::Parameter::is_trained)
    }

    /// The index of the first frozen Linear layer (every layer from it on
    /// is frozen).
    fn first_frozen_layer(&self) -> usize {
        let frozen = self
            .linears
            .iter()
            .rev()
            .take_while(|l| !l.weight().is_trained())
            .count();
        self.linears.len() - frozen
    }

    /// The number of trained scalars.
    pub fn trainable_count(&self) -> usize {
        self.roles()
            .into_iter()
            .filter(|&r| self.is_trainable(r))
            .map(|r| self.tensor(r).numel())
            .sum()
    }

    /// The `Var`s a forward pass computes with, in the task's order: each
    /// trained tensor's parameter (the leaf the model's own forward pass
    /// uses), constants for the rest.
    pub fn vars(&self) -> Vec<Var> {
        self.roles()
            .into_iter()
            .map(|r| match self.parameter(r) {
                Some(p) => p.var().clone(),
                None => Var::constant(self.tensor(r).clone()),
            })
            .collect()
    }

    /// The model's forward pass computed with the tensors in `vars` (one
    /// per tensor, in the task's order, as [`Mlp::vars`] makes them) in
    /// place of its parameters, PyTorch's `torch.func.functional_call`:
    /// gradients and tangents are taken with respect to those `Var`s, and
    /// the model is not changed. The running statistics come from the
    /// model (their entries in `vars` are not read). In training mode, also
    /// returns the updated running statistics (`[mean0, var0, mean1, var1,
    /// ...]`) without storing them (see [`Mlp::set_running_stats`]).
    pub fn functional_forward(&self, x: &Var, vars: &[Var], training: bool) -> Result<(Var, Vec<Tensor>)> {
        if vars.len() != self.tensor_count() {
            return Err(Error::invalid(
                "Mlp::forward",
                format!(
                    "got {} vars for a model of {} tensors (make them with Mlp::vars)",
                    vars.len(),
                    self.tensor_count()
                ),
            ));
        }
        let mut probe = self.clone();
        for (i, var) in vars.iter().enumerate() {
            let role = self.role(i);
            if let Some(parameter) = probe.parameter_mut(role) {
                if var.shape() != parameter.value().shape() {
                    return Err(Error::ShapeMismatch {
                        op: "Mlp::functional_forward",
                        lhs: parameter.value().shape().clone(),
                        rhs: var.shape().clone(),
                        hint: "each var must have its tensor's shape (make them with Mlp::vars)",
                    });
                }
                parameter.bind(var.clone());
            }
        }
        probe.set_training(training);
        let y = probe.forward(x).map_err(engine_error)?;
        let stats = match training {
            true => probe.running_stats(),
            false => Vec::new(),
        };
        Ok((y, stats))
    }

    /// The running statistics `[mean0, var0, mean1, var1, ...]`.
    fn running_stats(&self) -> Vec<Tensor> {
        let pair = |n: &module::BatchNorm1d| {
            let (mean, var) = n.running_stats().expect(TRACKED);
            [mean.value().clone(), var.value().clone()]
        };
        self.norms.iter().flat_map(pair).collect()
    }

    /// The model with every BatchNorm's running statistics replaced by the
    /// statistics of `inputs` taken as one batch (mean and unbiased
    /// variance, layer by layer in training mode), the weights unchanged.
    ///
    /// Under the task's protocol the running statistics are averages over
    /// the last ~10 mini-batches, taken while the weights moved, so they
    /// differ from the statistics of the weights they are kept with; on the
    /// whole training set this removes that difference, and what is left
    /// is the model itself (`docs/champion.md`, "What the score measures").
    pub fn recalibrated(&self, inputs: &Tensor) -> Result<Mlp> {
        let mut model = self.clone();
        for norm in &mut model.norms {
            // Momentum 1 from mean 0 and variance 1: the batch replaces them.
            norm.reset_running_stats().map_err(engine_error)?;
            norm.set_momentum(1.0).map_err(engine_error)?;
        }
        model.set_training(true);
        crate::autograd::no_grad(|| model.forward(&Var::constant(inputs.clone()))).map_err(engine_error)?;
        for (norm, own) in model.norms.iter_mut().zip(&self.norms) {
            norm.set_momentum(own.options().momentum).map_err(engine_error)?;
        }
        model.set_training(self.training);
        Ok(model)
    }

    /// Stores running statistics returned by a training-mode
    /// [`Mlp::functional_forward`] (`[mean0, var0, mean1, var1, ...]`, one
    /// pair per BatchNorm, each of its width).
    pub fn set_running_stats(&mut self, stats: Vec<Tensor>) -> Result<()> {
        if stats.len() != 2 * self.norms.len() {
            return Err(Error::invalid(
                "Mlp::set_running_stats",
                format!(
                    "got {} tensors for {} BatchNorms (a mean and a variance each)",
                    stats.len(),
                    self.norms.len()
                ),
            ));
        }
        for (i, t) in stats.iter().enumerate() {
            let own = self.tensor(Role::RunningMean(i / 2));
            if t.shape() != own.shape() {
                return Err(Error::ShapeMismatch {
                    op: "Mlp::set_running_stats",
                    lhs: own.shape().clone(),
                    rhs: t.shape().clone(),
                    hint: "each statistic has the shape of its BatchNorm's features",
                });
            }
        }
        for (i, t) in stats.into_iter().enumerate() {
            let role = match i % 2 {
                0 => Role::RunningMean(i / 2),
                _ => Role::RunningVar(i / 2),
            };
            *self.tensor_mut(role) = t;
        }
        Ok(())
    }

    /// Inference-mode predictions for `x: [batch, input]`, without recording.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let mut model = self.clone();
        model.set_training(false);
        let y = crate::autograd::no_grad(|| model.forward(&Var::constant(x.clone()))).map_err(engine_error)?;
        Ok(y.value().clone())
    }

    /// The shapes of [`Mlp::tensors`].
    pub fn shapes(&self) -> Vec<Shape> {
        self.roles()
            .into_iter()
            .map(|r| self.tensor(r).shape().clone())
            .collect()
    }

    /// What an optimizer is told about this model: each tensor's shape and
    /// role, in the task's order, and which tensors are trained (what a
    /// training loop passes to `TaskOptimizer::init_state`). The same as
    /// [`Module::layout`], which cannot fail here.
    pub fn layout(&self) -> ModelLayout {
        let roles = self.roles();
        let trained = roles.iter().map(|&r| self.is_trainable(r)).collect();
        ModelLayout::new(self.shapes(), Some(roles), trained)
            .expect("one role and one flag per tensor, by construction")
    }

    /// This model with every tensor on `device`.
    pub fn to_device(&self, device: Device) -> Result<Mlp> {
        let mut moved = self.clone();
        for i in 0..self.tensor_count() {
            let role = self.role(i);
            *moved.tensor_mut(role) = self.tensor(role).to_device(device)?;
        }
        Ok(moved)
    }

    /// The trained tensors (see [`Mlp::is_trainable`]) for updating in
    /// place, in the task's order, with their indices in that order.
    pub fn trainable_tensors_mut(&mut self) -> (Vec<usize>, Vec<&mut Tensor>) {
        let n_lin = self.linears.len();
        let first_frozen = self.first_frozen_layer();
        let (mut indices, mut tensors) = (Vec::new(), Vec::new());
        for (i, linear) in self.linears.iter_mut().enumerate().take(first_frozen) {
            let (weight, bias) = linear.parameters_mut();
            indices.extend([2 * i, 2 * i + 1]);
            tensors.extend([weight.value_mut(), bias.expect(HAS_BIAS).value_mut()]);
        }
        for (i, norm) in self.norms.iter_mut().enumerate().take(first_frozen) {
            let (scale, shift) = norm.affine_mut().expect(AFFINE);
            indices.extend([2 * n_lin + 4 * i, 2 * n_lin + 4 * i + 1]);
            tensors.extend([scale.value_mut(), shift.value_mut()]);
        }
        (indices, tensors)
    }

    /// BatchNorm `i`'s running mean and variance, open to change together
    /// (the fused and GPU steps blend into them in place).
    pub(crate) fn running_stats_mut(&mut self, i: usize) -> (&mut Tensor, &mut Tensor) {
        let (mean, var) = self.norms[i].running_stats_mut().expect(TRACKED);
        (mean.value_mut(), var.value_mut())
    }

    /// Whether every tensor lives on `device` (allocates nothing).
    pub fn tensors_on(&self, device: Device) -> bool {
        (0..self.tensor_count()).all(|i| self.tensor(self.role(i)).device() == device)
    }

    /// The position of hidden layer `i`'s Linear in the equivalent
    /// `nn.Sequential` (Linear, activation, BatchNorm per hidden layer);
    /// its BatchNorm is 2 further on.
    fn sequential_index(i: usize) -> usize {
        3 * i
    }
}

/// Why an `Mlp`'s Linear layers have biases: [`Mlp::new`] builds them so.
const HAS_BIAS: &str = "an Mlp's Linear layers have biases";
/// Why an `Mlp`'s BatchNorms have a scale and shift.
const AFFINE: &str = "an Mlp's BatchNorms are affine";
/// Why an `Mlp`'s BatchNorms have running statistics.
const TRACKED: &str = "an Mlp's BatchNorms track running statistics";

/// The engine error behind a module's error: itself when the engine
/// raised it, else the module's message (a layer given an input of the
/// wrong width) as an invalid argument of `Mlp`.
fn engine_error(error: crate::Error) -> Error {
    match error {
        crate::Error::Engine(e) => e,
        other => Error::invalid("Mlp", other.to_string()),
    }
}

/// Freezes every parameter of `layer`.
fn freeze(layer: &mut dyn Module) {
    layer.visit_mut(&mut |_, slot| {
        if let SlotMut::Parameter(p) = slot {
            p.set_trained(false);
        }
    });
}

impl Module for Mlp {
    /// Linear, activation and BatchNorm for each hidden layer, then the
    /// last Linear. In training mode the BatchNorms use the batch's
    /// statistics and update their running ones.
    fn forward(&mut self, x: &Var) -> crate::Result<Var> {
        let n_lin = self.linears.len();
        let mut h = x.clone();
        for i in 0..n_lin {
            let at = Mlp::sequential_index(i);
            h = self.linears[i].forward(&h).map_err(|e| module::locate(e, at))?;
            if i + 1 == n_lin {
                break;
            }
            h = self.activation.forward(&h)?;
            h = self.norms[i].forward(&h).map_err(|e| module::locate(e, at + 2))?;
        }
        Ok(h)
    }

    /// The task's order: every Linear's tensors, then every BatchNorm's,
    /// named as in the equivalent `nn.Sequential`.
    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, linear) in self.linears.iter().enumerate() {
            let at = Mlp::sequential_index(i);
            linear.visit(&mut |name, slot| f(&format!("{at}.{name}"), slot));
        }
        for (i, norm) in self.norms.iter().enumerate() {
            let at = Mlp::sequential_index(i) + 2;
            norm.visit(&mut |name, slot| f(&format!("{at}.{name}"), slot));
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        for (i, linear) in self.linears.iter_mut().enumerate() {
            let at = Mlp::sequential_index(i);
            linear.visit_mut(&mut |name, slot| f(&format!("{at}.{name}"), slot));
        }
        for (i, norm) in self.norms.iter_mut().enumerate() {
            let at = Mlp::sequential_index(i) + 2;
            norm.visit_mut(&mut |name, slot| f(&format!("{at}.{name}"), slot));
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.norms.iter_mut().for_each(|n| n.set_training(training));
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Mean squared error over every element. `prediction` and `target` must
/// have the same shape: a `[n, 1]` prediction against a `[n]` target would
/// broadcast to `[n, n]` and give a wrong loss without a word (reshape one
/// of them first).
pub fn mse(prediction: &Var, target: &Var) -> Result<Var> {
    same_shape("mse", prediction, target)?;
    prediction.sub(target)?.square()?.mean_all()
}

/// Sum of squared errors: the loss whose gradient the task hands to the
/// optimizer. Shapes must match, as in [`mse`].
pub fn sse(prediction: &Var, target: &Var) -> Result<Var> {
    same_shape("sse", prediction, target)?;
    prediction.sub(target)?.square()?.sum_all()
}

/// A loss's prediction and target must line up element for element.
fn same_shape(op: &'static str, prediction: &Var, target: &Var) -> Result<()> {
    let (p, t) = (prediction.value().shape(), target.value().shape());
    if p != t {
        return Err(Error::ShapeMismatch {
            op,
            lhs: p.clone(),
            rhs: t.clone(),
            hint: "prediction and target must have the same shape (reshape one, e.g. a [n, 1] prediction for a [n] target)",
        });
    }
    Ok(())
}

/// Softmax cross-entropy of `logits: [n, classes]` against class labels, averaged.
pub fn cross_entropy(logits: &Var, labels: &[usize]) -> Result<Var> {
    logits.log_softmax(-1)?.gather(labels)?.mean_all()?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rng;

    #[test]
    fn task_model_has_the_published_trainable_counts() {
        let want = [
            (4, 133_632),
            (7, 332_544),
            (10, 531_456),
            (14, 796_672),
            (18, 1_061_888),
        ];
        for (n, count) in want {
            let m = Mlp::task(1, 2, n, DType::F32, &mut Rng::new(0)).unwrap();
            assert_eq!(m.trainable_count(), count, "n_hidden={n}");
        }
    }

    #[test]
    fn role_by_index_matches_the_role_list() {
        let m = Mlp::task(1, 2, 3, DType::F32, &mut Rng::new(0)).unwrap();
        let roles = m.roles();
        assert_eq!(m.tensor_count(), roles.len());
        for (i, r) in roles.into_iter().enumerate() {
            assert_eq!(m.role(i), r);
        }
    }

    /// The model's own layout and the one read from its shapes (what an
    /// optimizer without the model would infer) agree on the task's model;
    /// a model with nothing frozen trains every parameter.
    #[test]
    fn the_layout_the_model_passes_is_the_one_its_shapes_imply() {
        for n in [1, 4, 10] {
            let m = Mlp::task(3, 2, n, DType::F32, &mut Rng::new(0)).unwrap();
            assert_eq!(
                m.layout(),
                ModelLayout::task_model(&m.shapes()).unwrap(),
                "n_hidden={n}"
            );
        }
        let free = Mlp::new(&[2, 5, 3], Activation::Tanh, 0, DType::F64, &mut Rng::new(0)).unwrap();
        let layout = free.layout();
        let params: Vec<bool> = layout.roles().unwrap().iter().map(|r| r.is_parameter()).collect();
        assert_eq!(layout.trained(), params.as_slice());
        assert_eq!(layout.linear_layers(), 2);
    }

    #[test]
    fn copy_from_copies_values_into_own_buffers() {
        let a = Mlp::task(1, 2, 2, DType::F32, &mut Rng::new(0)).unwrap();
        let mut b = Mlp::task(1, 2, 2, DType::F32, &mut Rng::new(1)).unwrap();
        b.copy_from(&a).unwrap();
        for (x, y) in a.tensors().iter().zip(b.tensors()) {
            assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
            assert!(!x.same_storage(&y));
        }
        let deeper = Mlp::task(1, 2, 3, DType::F32, &mut Rng::new(0)).unwrap();
        assert!(b.copy_from(&deeper).is_err());
    }

    #[test]
    fn linear_init_is_within_the_task_bound() {
        let l = Linear::new(256, 256, DType::F64, &mut Rng::new(1)).unwrap();
        let bound = 0.5 * (2.0f64 / 512.0).sqrt();
        let w = l.weight.to_vec::<f64>().unwrap();
        assert!(w.iter().all(|x| x.abs() <= bound));
        assert!(w.iter().any(|x| x.abs() > 0.9 * bound));
        assert!(l.bias.to_vec::<f64>().unwrap().iter().all(|&b| b == 0.0));
    }

    /// Plain loops, independent of the tensor code: the training-mode pass
    /// of `model` over `x` (rows of `width[0]` numbers), returning each
    /// hidden layer's pre-BatchNorm activations.
    fn hidden_activations_by_hand(model: &Mlp, x: &[Vec<f64>]) -> Vec<Vec<Vec<f64>>> {
        let mut rows = x.to_vec();
        let mut layers = Vec::new();
        let read = |role| model.tensor(role).to_vec::<f64>().unwrap();
        for i in 0..model.norms().len() {
            let (w, b) = (read(Role::Weight(i)), read(Role::Bias(i)));
            let fan_in = rows[0].len();
            let h: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| {
                    (0..b.len())
                        .map(|j| (b[j] + (0..fan_in).map(|k| w[j * fan_in + k] * r[k]).sum::<f64>()).max(0.0))
                        .collect()
                })
                .collect();
            let (scale, shift) = (read(Role::BnScale(i)), read(Role::BnShift(i)));
            let n = h.len() as f64;
            rows = h.clone();
            for j in 0..b.len() {
                let mean = h.iter().map(|r| r[j]).sum::<f64>() / n;
                let var = h.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
                for (row, hr) in rows.iter_mut().zip(&h) {
                    row[j] = (hr[j] - mean) / (var + BN_EPS).sqrt() * scale[j] + shift[j];
                }
            }
            layers.push(h);
        }
        layers
    }

    #[test]
    fn recalibration_sets_each_layers_statistics_of_the_whole_input() {
        let mut rng = Rng::new(7);
        let mut model = Mlp::new(&[2, 5, 4, 3], Activation::Relu, 0, DType::F64, &mut rng).unwrap();
        // Non-trivial scales, shifts and biases, so every term of the pass matters.
        for i in 0..model.norms().len() {
            let f = model.norms()[i].features();
            *model.tensor_mut(Role::BnScale(i)) =
                Tensor::from_vec((0..f).map(|j| 0.5 + 0.3 * (i + j) as f64).collect(), [f]).unwrap();
            *model.tensor_mut(Role::BnShift(i)) =
                Tensor::from_vec((0..f).map(|j| 0.1 * j as f64 - 0.2).collect(), [f]).unwrap();
        }
        *model.tensor_mut(Role::Bias(0)) = Tensor::from_vec(vec![0.1, -0.05, 0.2, 0.0, 0.03], [5]).unwrap();
        let x: Vec<Vec<f64>> = (0..9)
            .map(|i| vec![(i as f64 * 0.37).sin(), (i as f64 * 0.91).cos()])
            .collect();
        let inputs = Tensor::from_vec(x.concat(), [9, 2]).unwrap();

        let recalibrated = model.recalibrated(&inputs).unwrap();

        let n = x.len() as f64;
        for (layer, h) in hidden_activations_by_hand(&model, &x).iter().enumerate() {
            let (means, vars) = (
                recalibrated.tensor(Role::RunningMean(layer)).to_vec::<f64>().unwrap(),
                recalibrated.tensor(Role::RunningVar(layer)).to_vec::<f64>().unwrap(),
            );
            for j in 0..means.len() {
                let mean = h.iter().map(|r| r[j]).sum::<f64>() / n;
                let unbiased = h.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / (n - 1.0);
                assert!(
                    (means[j] - mean).abs() < 1e-12,
                    "layer {layer} unit {j}: mean {} vs {mean}",
                    means[j]
                );
                assert!(
                    (vars[j] - unbiased).abs() < 1e-12,
                    "layer {layer} unit {j}: var {} vs {unbiased}",
                    vars[j]
                );
            }
        }
        // The weights are the model's, and the model itself is untouched.
        assert_eq!(
            recalibrated.tensor(Role::Weight(1)).to_vec::<f64>().unwrap(),
            model.tensor(Role::Weight(1)).to_vec::<f64>().unwrap()
        );
        assert_eq!(model.tensor(Role::RunningVar(0)).to_vec::<f64>().unwrap(), vec![1.0; 5]);
    }

    #[test]
    fn batchnorm_training_matches_hand_computation() {
        let bn = BatchNorm1d::new(1, DType::F64).unwrap();
        let x = Var::constant(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 6.0], [4, 1]).unwrap());
        let (y, mean, var) = bn
            .forward_train(&x, &Var::constant(bn.scale.clone()), &Var::constant(bn.shift.clone()))
            .unwrap();
        // batch mean 3, biased var 3.5, unbiased 14/3
        let expect: Vec<f64> = [1.0, 2.0, 3.0, 6.0]
            .iter()
            .map(|v| (v - 3.0) / (3.5f64 + 1e-5).sqrt())
            .collect();
        for (a, b) in y.value().to_vec::<f64>().unwrap().iter().zip(expect) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!((mean.to_scalar().unwrap() - 0.3).abs() < 1e-12);
        assert!((var.to_scalar().unwrap() - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn batchnorm_training_refuses_a_scalar_input_with_a_typed_error() {
        let bn = BatchNorm1d::new(3, DType::F64).unwrap();
        let x = Var::constant(Tensor::scalar(1.0, DType::F64));
        let (scale, shift) = (Var::constant(bn.scale.clone()), Var::constant(bn.shift.clone()));
        let err = bn.forward_train(&x, &scale, &shift).unwrap_err().to_string();
        assert!(err.contains("[batch, features]"), "{err}");
    }

    #[test]
    #[should_panic(expected = "Mlp::tensor: Weight(2) is past the model's 2 linear layers")]
    fn a_role_past_the_layers_panics_with_the_documented_message() {
        let model = Mlp::new(&[2, 3, 1], Activation::Relu, 0, DType::F64, &mut Rng::new(0)).unwrap();
        model.tensor(Role::Weight(2));
    }

    /// The same layers, drawn from the same seed, as a `Sequential`.
    fn as_sequential(widths: &[usize], seed: u64) -> module::Sequential {
        let mut rng = Rng::new(seed);
        let mut seq = module::Sequential::new();
        for (i, w) in widths.windows(2).enumerate() {
            seq = seq.append(module::Linear::from(
                Linear::new(w[0], w[1], DType::F64, &mut rng).unwrap(),
            ));
            if i + 2 < widths.len() {
                seq = seq
                    .append(module::Relu)
                    .append(module::BatchNorm1d::new(w[1], DType::F64).unwrap());
            }
        }
        seq
    }

    #[test]
    fn the_mlp_computes_what_the_equivalent_sequential_computes_bit_for_bit() {
        let widths = [3, 5, 4, 2];
        let mut mlp = Mlp::new(&widths, Activation::Relu, 0, DType::F64, &mut Rng::new(4)).unwrap();
        let mut seq = as_sequential(&widths, 4);
        let mut by_name: Vec<(String, Tensor)> = mlp.state_dict();
        let mut seq_dict = seq.state_dict();
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        seq_dict.sort_by(|a, b| a.0.cmp(&b.0));
        for ((n1, t1), (n2, t2)) in by_name.iter().zip(&seq_dict) {
            assert_eq!(n1, n2);
            assert_eq!(t1.to_vec::<f64>().unwrap(), t2.to_vec::<f64>().unwrap(), "{n1}");
        }
        let x = Var::constant(Tensor::rand_uniform([6, 3], -1.0, 1.0, DType::F64, &mut Rng::new(5)).unwrap());
        for training in [true, true, false] {
            mlp.set_training(training);
            seq.set_training(training);
            let (a, b) = (Module::forward(&mut mlp, &x).unwrap(), seq.forward(&x).unwrap());
            assert_eq!(a.value().to_vec::<f64>().unwrap(), b.value().to_vec::<f64>().unwrap());
        }
        let running = |dict: Vec<(String, Tensor)>| -> Vec<Vec<f64>> {
            let mut d: Vec<_> = dict.into_iter().filter(|(n, _)| n.contains("running")).collect();
            d.sort_by(|a, b| a.0.cmp(&b.0));
            d.into_iter().map(|(_, t)| t.to_vec::<f64>().unwrap()).collect()
        };
        assert_eq!(running(mlp.state_dict()), running(seq.state_dict()));
    }

    #[test]
    fn as_a_module_the_mlp_lists_its_tensors_in_the_tasks_order_with_its_roles() {
        let mlp = Mlp::task(3, 2, 2, DType::F64, &mut Rng::new(0)).unwrap();
        let names: Vec<String> = mlp.state_dict().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "0.weight",
                "0.bias",
                "3.weight",
                "3.bias",
                "6.weight",
                "6.bias",
                "2.weight",
                "2.bias",
                "2.running_mean",
                "2.running_var",
                "5.weight",
                "5.bias",
                "5.running_mean",
                "5.running_var",
            ]
        );
        assert_eq!(Module::layout(&mlp).unwrap(), mlp.layout());
        let trained: Vec<String> = mlp.parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            trained,
            ["0.weight", "0.bias", "2.weight", "2.bias"],
            "the last two Linears are frozen"
        );
    }

    #[test]
    fn a_functional_forward_takes_gradients_at_the_given_vars_and_leaves_the_model_alone() {
        let model = Mlp::new(&[2, 4, 1], Activation::Relu, 0, DType::F64, &mut Rng::new(1)).unwrap();
        let before = model.tensors();
        let vars: Vec<Var> = model
            .tensors()
            .into_iter()
            .enumerate()
            .map(|(i, t)| match model.is_trainable(model.role(i)) {
                true => Var::parameter(t.mul_scalar(2.0).unwrap()),
                false => Var::constant(t),
            })
            .collect();
        let x = Var::constant(Tensor::from_vec(vec![0.5, -1.0, 1.5, 0.25, -0.75, 2.0], [3, 2]).unwrap());
        let (y, stats) = model.functional_forward(&x, &vars, true).unwrap();
        assert_eq!(stats.len(), 2);
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get_var(&vars[0]).is_some(), "gradient at the given var");
        assert!(
            grads.get_var(&model.vars()[0]).is_none(),
            "none at the model's own parameter"
        );
        for (a, b) in before.iter().zip(model.tensors()) {
            assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        }
        // With the model's own vars it is the model's own forward pass.
        let mut own = model.clone();
        let (y, _) = model.functional_forward(&x, &model.vars(), true).unwrap();
        let z = Module::forward(&mut own, &x).unwrap();
        assert_eq!(y.value().to_vec::<f64>().unwrap(), z.value().to_vec::<f64>().unwrap());
    }

    #[test]
    fn changing_a_clones_tensor_in_place_leaves_the_original_alone() {
        let model = Mlp::new(&[2, 3, 1], Activation::Relu, 0, DType::F64, &mut Rng::new(2)).unwrap();
        let before = model.tensor(Role::Weight(0)).to_vec::<f64>().unwrap();
        let mut copy = model.clone();
        let ones = |t: &Tensor| t.ones_like().unwrap();
        let one = ones(model.tensor(Role::Weight(0)));
        copy.tensor_mut(Role::Weight(0)).add_assign(&one).unwrap();
        let (indices, trained) = copy.trainable_tensors_mut();
        assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
        for t in trained {
            let one = ones(t);
            t.add_assign(&one).unwrap();
        }
        assert_eq!(model.tensor(Role::Weight(0)).to_vec::<f64>().unwrap(), before);
        let moved: Vec<f64> = before.iter().map(|w| (w + 1.0) + 1.0).collect();
        assert_eq!(copy.tensor(Role::Weight(0)).to_vec::<f64>().unwrap(), moved);
        assert!(copy.is_trainable(Role::Weight(0)), "still a trained parameter");
    }

    #[test]
    fn recalibration_keeps_the_momentum_and_the_mode() {
        let mut model = Mlp::new(&[2, 3, 1], Activation::Relu, 0, DType::F64, &mut Rng::new(3)).unwrap();
        model.eval();
        let inputs = Tensor::from_vec(vec![0.1, 0.2, -0.3, 0.4, 0.9, -1.0], [3, 2]).unwrap();
        let recalibrated = model.recalibrated(&inputs).unwrap();
        assert_eq!(recalibrated.norms()[0].options().momentum, BN_MOMENTUM);
        assert!(!recalibrated.is_training());
    }
}
