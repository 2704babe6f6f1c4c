//! Neural-network layers for the benchmark model (`docs/task.md` section 2):
//! [`Linear`], [`BatchNorm1d`], activations, the [`Mlp`] with frozen layers,
//! and the [`mse`] and [`cross_entropy`] losses.
//!
//! Layers hold plain tensors. A forward pass wraps them in `Var`s (trainable
//! tensors as parameters, frozen ones as constants) so backward returns
//! gradients for exactly the trainable ones.

use crate::autograd::Var;
use crate::engine::Draw;
use crate::engine::{DType, Device, Error, Result, Shape, Tensor};
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

/// A multilayer perceptron: every layer but the last is
/// `Linear -> activation -> BatchNorm1d` (BatchNorm after the activation, as
/// in the task), the last a plain `Linear`. The last `frozen` Linear layers
/// (with their BatchNorms) are never trained.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// The linear layers, input first.
    pub linears: Vec<Linear>,
    /// One BatchNorm per hidden layer.
    pub norms: Vec<BatchNorm1d>,
    /// The activation of every hidden layer.
    pub activation: Activation,
    /// How many of the last Linear layers are frozen.
    pub frozen: usize,
}

impl Mlp {
    /// Builds an MLP with layer widths `widths` (input first, output last).
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
        let linears = widths
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], dtype, &mut *rng))
            .collect::<Result<Vec<_>>>()?;
        let norms = widths[1..widths.len() - 1]
            .iter()
            .map(|&w| BatchNorm1d::new(w, dtype))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            linears,
            norms,
            activation,
            frozen,
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

    /// The roles of [`Mlp::tensors`], in the task's order: `W0, b0, ..., Wn, bn`,
    /// then per BatchNorm `scale, shift, running_mean, running_var`.
    pub fn roles(&self) -> Vec<Role> {
        let mut roles = Vec::new();
        for i in 0..self.linears.len() {
            roles.extend([Role::Weight(i), Role::Bias(i)]);
        }
        for i in 0..self.norms.len() {
            roles.extend([
                Role::BnScale(i),
                Role::BnShift(i),
                Role::RunningMean(i),
                Role::RunningVar(i),
            ]);
        }
        roles
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
            Role::Weight(i) => &self.linears[i].weight,
            Role::Bias(i) => &self.linears[i].bias,
            Role::BnScale(i) => &self.norms[i].scale,
            Role::BnShift(i) => &self.norms[i].shift,
            Role::RunningMean(i) => &self.norms[i].running_mean,
            Role::RunningVar(i) => &self.norms[i].running_var,
        }
    }

    /// Mutable access to the tensor with role `role`.
    ///
    /// Panics if `role`'s layer is past the model's layers, as [`Mlp::tensor`].
    pub fn tensor_mut(&mut self, role: Role) -> &mut Tensor {
        self.check_role(role);
        match role {
            Role::Weight(i) => &mut self.linears[i].weight,
            Role::Bias(i) => &mut self.linears[i].bias,
            Role::BnScale(i) => &mut self.norms[i].scale,
            Role::BnShift(i) => &mut self.norms[i].shift,
            Role::RunningMean(i) => &mut self.norms[i].running_mean,
            Role::RunningVar(i) => &mut self.norms[i].running_var,
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
        for (role, t) in roles.into_iter().zip(tensors) {
            let slot = self.tensor_mut(role);
            if slot.shape() != t.shape() || slot.dtype() != t.dtype() {
                return Err(Error::ShapeMismatch {
                    op: "Mlp::set_tensors",
                    lhs: slot.shape().clone(),
                    rhs: t.shape().clone(),
                    hint: "each tensor must keep its shape and dtype",
                });
            }
            *slot = t.clone();
        }
        Ok(())
    }

    /// Whether the tensor with role `role` is trained (running statistics and
    /// the frozen layers are not).
    pub fn is_trainable(&self, role: Role) -> bool {
        let first_frozen = self.first_frozen_layer();
        match role {
            Role::Weight(i) | Role::Bias(i) | Role::BnScale(i) | Role::BnShift(i) => i < first_frozen,
            Role::RunningMean(_) | Role::RunningVar(_) => false,
        }
    }

    /// The index of the first frozen Linear layer (every layer from it on
    /// is frozen; `frozen` past the layer count freezes them all).
    fn first_frozen_layer(&self) -> usize {
        self.linears.len().saturating_sub(self.frozen)
    }

    /// The number of trained scalars.
    pub fn trainable_count(&self) -> usize {
        self.roles()
            .into_iter()
            .filter(|&r| self.is_trainable(r))
            .map(|r| self.tensor(r).numel())
            .sum()
    }

    /// The `Var`s of a forward pass: parameters for trainable tensors,
    /// constants for the rest, in the task's order.
    pub fn vars(&self) -> Vec<Var> {
        self.roles()
            .into_iter()
            .map(|r| {
                if self.is_trainable(r) {
                    Var::parameter(self.tensor(r).clone())
                } else {
                    Var::constant(self.tensor(r).clone())
                }
            })
            .collect()
    }

    /// Forward pass with the tensors in `vars` (from [`Mlp::vars`]). In
    /// training mode, also returns the updated running statistics
    /// (`[mean0, var0, mean1, var1, ...]`) without storing them.
    pub fn forward(&self, x: &Var, vars: &[Var], training: bool) -> Result<(Var, Vec<Tensor>)> {
        let mut stats = Vec::new();
        let y = self.forward_with(x, vars, |norm, h, scale, shift| {
            if !training {
                return norm.forward_eval(h, scale, shift);
            }
            let (y, mean, var) = norm.forward_train(h, scale, shift)?;
            stats.extend([mean, var]);
            Ok(y)
        })?;
        Ok((y, stats))
    }

    /// The layers, with `normalise(norm, h, scale, shift)` in place of each
    /// BatchNorm: the one loop behind every kind of forward pass.
    fn forward_with(
        &self,
        x: &Var,
        vars: &[Var],
        mut normalise: impl FnMut(&BatchNorm1d, &Var, &Var, &Var) -> Result<Var>,
    ) -> Result<Var> {
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
        let n_lin = self.linears.len();
        let bn_base = 2 * n_lin;
        let mut h = x.clone();
        for i in 0..n_lin {
            h = Linear::forward(&h, &vars[2 * i], &vars[2 * i + 1])?;
            if i + 1 == n_lin {
                break;
            }
            h = self.activation.apply(&h)?;
            let (scale, shift) = (&vars[bn_base + 4 * i], &vars[bn_base + 4 * i + 1]);
            h = normalise(&self.norms[i], &h, scale, shift)?;
        }
        Ok(h)
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
        let mut stats = Vec::new();
        crate::autograd::no_grad(|| {
            let vars: Vec<Var> = self.tensors().into_iter().map(Var::constant).collect();
            self.forward_with(&Var::constant(inputs.clone()), &vars, |norm, h, scale, shift| {
                let (y, mean, var) = norm.normalise_batch(h, scale, shift)?;
                stats.extend([mean, var]);
                Ok(y)
            })
        })?;
        let mut model = self.clone();
        model.set_running_stats(stats)?;
        Ok(model)
    }

    /// Stores running statistics returned by a training-mode [`Mlp::forward`]
    /// (`[mean0, var0, mean1, var1, ...]`, one pair per BatchNorm, each of
    /// its width).
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
        for (norm, pair) in self.norms.iter().zip(stats.chunks_exact(2)) {
            for t in pair {
                if t.shape() != norm.running_mean.shape() {
                    return Err(Error::ShapeMismatch {
                        op: "Mlp::set_running_stats",
                        lhs: norm.running_mean.shape().clone(),
                        rhs: t.shape().clone(),
                        hint: "each statistic has the shape of its BatchNorm's features",
                    });
                }
            }
        }
        for (norm, pair) in self.norms.iter_mut().zip(stats.chunks_exact(2)) {
            norm.running_mean = pair[0].clone();
            norm.running_var = pair[1].clone();
        }
        Ok(())
    }

    /// Inference-mode predictions for `x: [batch, input]`, without recording.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        crate::autograd::no_grad(|| {
            let vars: Vec<Var> = self.tensors().into_iter().map(Var::constant).collect();
            Ok(self.forward(&Var::constant(x.clone()), &vars, false)?.0.value().clone())
        })
    }

    /// The shapes of [`Mlp::tensors`].
    pub fn shapes(&self) -> Vec<Shape> {
        self.tensors().iter().map(|t| t.shape().clone()).collect()
    }

    /// What an optimizer is told about this model: each tensor's shape and
    /// role, in the task's order, and which tensors are trained (what a
    /// training loop passes to `TaskOptimizer::init_state`).
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
            indices.extend([2 * i, 2 * i + 1]);
            tensors.extend([&mut linear.weight, &mut linear.bias]);
        }
        for (i, norm) in self.norms.iter_mut().enumerate().take(first_frozen) {
            indices.extend([2 * n_lin + 4 * i, 2 * n_lin + 4 * i + 1]);
            tensors.extend([&mut norm.scale, &mut norm.shift]);
        }
        (indices, tensors)
    }

    /// Whether every tensor lives on `device` (allocates nothing).
    pub fn tensors_on(&self, device: Device) -> bool {
        (0..self.tensor_count()).all(|i| self.tensor(self.role(i)).device() == device)
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
        for (i, norm) in model.norms.iter().enumerate() {
            let (w, b) = (
                model.linears[i].weight.to_vec::<f64>().unwrap(),
                model.linears[i].bias.to_vec::<f64>().unwrap(),
            );
            let fan_in = rows[0].len();
            let h: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| {
                    (0..b.len())
                        .map(|j| (b[j] + (0..fan_in).map(|k| w[j * fan_in + k] * r[k]).sum::<f64>()).max(0.0))
                        .collect()
                })
                .collect();
            let (scale, shift) = (norm.scale.to_vec::<f64>().unwrap(), norm.shift.to_vec::<f64>().unwrap());
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
        for (i, norm) in model.norms.iter_mut().enumerate() {
            let f = norm.scale.dims()[0];
            norm.scale = Tensor::from_vec((0..f).map(|j| 0.5 + 0.3 * (i + j) as f64).collect(), [f]).unwrap();
            norm.shift = Tensor::from_vec((0..f).map(|j| 0.1 * j as f64 - 0.2).collect(), [f]).unwrap();
        }
        model.linears[0].bias = Tensor::from_vec(vec![0.1, -0.05, 0.2, 0.0, 0.03], [5]).unwrap();
        let x: Vec<Vec<f64>> = (0..9)
            .map(|i| vec![(i as f64 * 0.37).sin(), (i as f64 * 0.91).cos()])
            .collect();
        let inputs = Tensor::from_vec(x.concat(), [9, 2]).unwrap();

        let recalibrated = model.recalibrated(&inputs).unwrap();

        let n = x.len() as f64;
        for (layer, h) in hidden_activations_by_hand(&model, &x).iter().enumerate() {
            let norm = &recalibrated.norms[layer];
            let (means, vars) = (
                norm.running_mean.to_vec::<f64>().unwrap(),
                norm.running_var.to_vec::<f64>().unwrap(),
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
            recalibrated.linears[1].weight.to_vec::<f64>().unwrap(),
            model.linears[1].weight.to_vec::<f64>().unwrap()
        );
        assert_eq!(model.norms[0].running_var.to_vec::<f64>().unwrap(), vec![1.0; 5]);
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
}
