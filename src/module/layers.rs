//! The layers: [`Linear`], [`BatchNorm1d`], the activations, [`Flatten`],
//! and the container [`Sequential`]. Each is built from the ops the
//! autograd registry has, with the numerics of [`crate::nn`]'s layers.

use super::{Buffer, Module, ModuleError, Parameter, Slot, SlotMut};
use crate::autograd::Var;
use crate::engine::{DType, Rng};
use crate::error::{Error, Result};
use crate::nn;
use crate::optim::layout::Role;

/// Checks that `x` is `[batch, features]`, naming `layer` otherwise.
fn expect_features(layer: &dyn std::fmt::Display, x: &Var, features: usize) -> Result<()> {
    if x.dims().len() != 2 || x.dims()[1] != features {
        return Err(ModuleError::InputShape {
            layer: layer.to_string(),
            expected: format!("[batch, {features}]"),
            actual: x.shape().clone(),
        }
        .into());
    }
    Ok(())
}

/// A fully connected layer `y = x W^T + b` (PyTorch's `nn.Linear`), with
/// tensors `weight` `[out, in]` and `bias` `[out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Parameter,
    bias: Parameter,
}

impl Linear {
    /// A layer with [`nn::Linear::new`]'s initialisation (the task's:
    /// weights uniform in `±0.5 sqrt(2 / (in + out))`, biases 0), drawing
    /// from `rng` exactly as it does.
    pub fn new(in_features: usize, out_features: usize, dtype: DType, rng: &mut Rng) -> Result<Linear> {
        Ok(Linear::from(nn::Linear::new(in_features, out_features, dtype, rng)?))
    }

    /// The input width.
    pub fn in_features(&self) -> usize {
        self.weight.value().dims()[1]
    }

    /// The output width.
    pub fn out_features(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Parameter {
        &self.weight
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &Parameter {
        &self.bias
    }
}

impl From<nn::Linear> for Linear {
    /// The module holding an [`nn::Linear`]'s tensors.
    fn from(layer: nn::Linear) -> Linear {
        Linear {
            weight: Parameter::new(layer.weight, Some(Role::Weight(0))),
            bias: Parameter::new(layer.bias, Some(Role::Bias(0))),
        }
    }
}

impl std::fmt::Display for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Linear({} -> {})", self.in_features(), self.out_features())
    }
}

impl Module for Linear {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        expect_features(self, x, self.in_features())?;
        Ok(nn::Linear::forward(x, self.weight.var(), self.bias.var())?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f("weight", Slot::Parameter(&self.weight));
        f("bias", Slot::Parameter(&self.bias));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        f("weight", SlotMut::Parameter(&mut self.weight));
        f("bias", SlotMut::Parameter(&mut self.bias));
    }
}

/// Batch normalisation of `[batch, features]` (PyTorch's `nn.BatchNorm1d`
/// with its defaults: momentum 0.1, eps 1e-5, affine, running statistics):
/// in training mode it normalises with the batch's mean and biased variance
/// and blends the mean and the unbiased variance into the running
/// statistics; in evaluation mode it normalises with those. The numerics are
/// [`nn::BatchNorm1d`]'s. Its state dict has `weight`, `bias`,
/// `running_mean` and `running_var` (not PyTorch's `num_batches_tracked`,
/// which only a momentum of `None` uses).
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    weight: Parameter,
    bias: Parameter,
    running_mean: Buffer,
    running_var: Buffer,
    training: bool,
}

impl BatchNorm1d {
    /// A fresh layer for `features` channels (scale 1, shift 0, running
    /// mean 0, running variance 1), in training mode.
    pub fn new(features: usize, dtype: DType) -> Result<BatchNorm1d> {
        let fresh = nn::BatchNorm1d::new(features, dtype)?;
        Ok(BatchNorm1d {
            weight: Parameter::new(fresh.scale, Some(Role::BnScale(0))),
            bias: Parameter::new(fresh.shift, Some(Role::BnShift(0))),
            running_mean: Buffer::new(fresh.running_mean, Some(Role::RunningMean(0))),
            running_var: Buffer::new(fresh.running_var, Some(Role::RunningVar(0))),
            training: true,
        })
    }

    /// The number of features.
    pub fn features(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// The running statistics `(mean, variance)`.
    pub fn running_stats(&self) -> (&Buffer, &Buffer) {
        (&self.running_mean, &self.running_var)
    }

    /// The layer's tensors as an [`nn::BatchNorm1d`] (shared, not copied).
    fn as_nn(&self) -> nn::BatchNorm1d {
        nn::BatchNorm1d {
            scale: self.weight.value().clone(),
            shift: self.bias.value().clone(),
            running_mean: self.running_mean.value().clone(),
            running_var: self.running_var.value().clone(),
        }
    }
}

impl std::fmt::Display for BatchNorm1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BatchNorm1d({})", self.features())
    }
}

impl Module for BatchNorm1d {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        expect_features(self, x, self.features())?;
        let layer = self.as_nn();
        let (scale, shift) = (self.weight.var(), self.bias.var());
        if !self.training {
            return Ok(layer.forward_eval(x, scale, shift)?);
        }
        if x.dims()[0] < 2 {
            return Err(ModuleError::InputShape {
                layer: self.to_string(),
                expected: format!("[batch >= 2, {}] in training mode", self.features()),
                actual: x.shape().clone(),
            }
            .into());
        }
        let (y, mean, var) = layer.forward_train(x, scale, shift)?;
        self.running_mean.set(mean);
        self.running_var.set(var);
        Ok(y)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f("weight", Slot::Parameter(&self.weight));
        f("bias", Slot::Parameter(&self.bias));
        f("running_mean", Slot::Buffer(&self.running_mean));
        f("running_var", Slot::Buffer(&self.running_var));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        f("weight", SlotMut::Parameter(&mut self.weight));
        f("bias", SlotMut::Parameter(&mut self.bias));
        f("running_mean", SlotMut::Buffer(&mut self.running_mean));
        f("running_var", SlotMut::Buffer(&mut self.running_var));
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Declares a parameterless elementwise activation module.
macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Module for $name {
            fn forward(&mut self, x: &Var) -> Result<Var> {
                Ok(x.$method()?)
            }
        }
    };
}

activation!(
    /// `max(x, 0)` (PyTorch's `nn.ReLU`).
    Relu,
    relu
);
activation!(
    /// `tanh(x)` (PyTorch's `nn.Tanh`).
    Tanh,
    tanh
);
activation!(
    /// `1 / (1 + exp(-x))` (PyTorch's `nn.Sigmoid`).
    Sigmoid,
    sigmoid
);
activation!(
    /// GELU in its tanh form: PyTorch's `nn.GELU(approximate="tanh")`, not
    /// the default erf form, which differs by up to about 1e-3.
    Gelu,
    gelu
);

/// Flattens every axis after the first: `[batch, d1, d2, ...]` to
/// `[batch, d1 * d2 * ...]` (PyTorch's `nn.Flatten()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let Some((&batch, rest)) = x.dims().split_first() else {
            return Err(ModuleError::InputShape {
                layer: "Flatten".into(),
                expected: "[batch, ...] (at least one axis)".into(),
                actual: x.shape().clone(),
            }
            .into());
        };
        Ok(x.reshape([batch, rest.iter().product()])?)
    }
}

/// Modules applied one after the other (PyTorch's `nn.Sequential`); the
/// children are named `0`, `1`, ... in the state dict.
pub struct Sequential {
    children: Vec<Box<dyn Module>>,
    training: bool,
}

impl Sequential {
    /// An empty container, in training mode.
    pub fn new() -> Sequential {
        Sequential {
            children: Vec::new(),
            training: true,
        }
    }

    /// This container with `module` appended, in this container's mode
    /// (PyTorch's `Sequential.append`).
    pub fn append(mut self, mut module: impl Module + 'static) -> Sequential {
        module.set_training(self.training);
        self.children.push(Box::new(module));
        self
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether it has no children (its forward pass is the identity).
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl Default for Sequential {
    /// [`Sequential::new`]: empty, in training mode.
    fn default() -> Sequential {
        Sequential::new()
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.state_dict().into_iter().map(|(n, _)| n).collect();
        f.debug_struct("Sequential")
            .field("children", &self.children.len())
            .field("tensors", &names)
            .field("training", &self.training)
            .finish()
    }
}

/// Names the child at `index` in a layer error from its forward pass.
fn locate(error: Error, index: usize) -> Error {
    match error {
        Error::Module(ModuleError::InputShape {
            layer,
            expected,
            actual,
        }) => Error::Module(ModuleError::InputShape {
            layer: format!("layer {index} ({layer})"),
            expected,
            actual,
        }),
        other => other,
    }
}

impl Module for Sequential {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for (i, child) in self.children.iter_mut().enumerate() {
            h = child.forward(&h).map_err(|e| locate(e, i))?;
        }
        Ok(h)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, child) in self.children.iter().enumerate() {
            child.visit(&mut |name, slot| f(&format!("{i}.{name}"), slot));
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        for (i, child) in self.children.iter_mut().enumerate() {
            child.visit_mut(&mut |name, slot| f(&format!("{i}.{name}"), slot));
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for child in &mut self.children {
            child.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
