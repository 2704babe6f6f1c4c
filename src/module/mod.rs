//! Networks as composable modules, in the manner of PyTorch's `nn.Module`:
//! a [`Module`] maps `Var`s to `Var`s, switches between training and
//! evaluation mode, and lists its tensors by name, parameters (trained) and
//! buffers (BatchNorm's running statistics) alike, in a fixed order and
//! under the names PyTorch's `state_dict` gives them (`0.weight`,
//! `1.running_mean`, ...).
//!
//! ```
//! use ferrograd::autograd::Var;
//! use ferrograd::engine::{DType, Rng, Tensor};
//! use ferrograd::module::{BatchNorm1d, Linear, Module, Relu, Sequential};
//!
//! let mut rng = Rng::new(0);
//! let mut model = Sequential::new()
//!     .append(Linear::new(3, 4, DType::F64, &mut rng)?)
//!     .append(BatchNorm1d::new(4, DType::F64)?)
//!     .append(Relu)
//!     .append(Linear::new(4, 2, DType::F64, &mut rng)?);
//! let names: Vec<String> = model.state_dict().into_iter().map(|(name, _)| name).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "3.weight", "3.bias"]);
//! let y = model.forward(&Var::constant(Tensor::zeros([5, 3], DType::F64)?))?;
//! assert_eq!(y.dims(), &[5, 2]);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! [`ModuleOptimizer`] trains a module's parameters with any catalog
//! optimizer; [`crate::data::DataLoader`] cuts a data set into shuffled
//! mini-batches.

mod conv;
#[cfg(test)]
mod layer_tests;
mod layers;
mod optimizer;
#[cfg(test)]
mod tests;

pub use conv::{AvgPool2d, Conv1d, Conv2d, MaxPool2d};
pub(crate) use layers::locate;
pub use layers::{
    BatchNorm1d, BatchNorm2d, BatchNormOptions, Dropout, Embedding, Flatten, Gelu, LayerNorm, Linear, Relu, Sequential,
    Sigmoid, Tanh,
};
pub use optimizer::{ModuleOptimizer, MODULE_OPTIMIZER_FILE};

use crate::autograd::{no_grad, Var};
use crate::engine::{Shape, Tensor};
use crate::error::Result;
use crate::optim::layout::{ModelLayout, Role};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What can go wrong between a module and its tensors: an input of the
/// wrong shape, a state dict that does not fit, a parameter without a
/// gradient.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// A layer was given an input it cannot take.
    #[error("{layer} expects an input of shape {expected}, got {actual}; reshape the input or fix the previous layer's width")]
    InputShape {
        /// The layer, with its position in the model when known (`1: Linear(4 -> 2)`).
        layer: String,
        /// The shape it takes (`[batch, 4]`).
        expected: String,
        /// The shape it was given.
        actual: Shape,
    },
    /// A layer was built with an option outside its range.
    #[error("{layer}: {option} = {value} is out of range; it must be {valid}")]
    InvalidOption {
        /// The layer being built (`BatchNorm1d(4)`).
        layer: String,
        /// The option (`momentum`).
        option: &'static str,
        /// The value given.
        value: f64,
        /// The range it must lie in (`in [0, 1]`).
        valid: &'static str,
    },
    /// An embedding was given an index that names none of its rows.
    #[error("{layer} got index {index}, which is not a row of its table; indices must be whole numbers in 0..{rows}")]
    InputIndex {
        /// The layer (`Embedding(10, 3)`).
        layer: String,
        /// The index given (a float input's value, as it was).
        index: f64,
        /// The number of rows.
        rows: usize,
    },
    /// A state dict lacks a tensor the model has.
    #[error(
        "the state dict has no tensor {name:?}, which the model needs; was it saved from a different architecture?"
    )]
    MissingTensor {
        /// The model's name for the tensor.
        name: String,
    },
    /// A state dict has a tensor the model does not.
    #[error("the state dict has a tensor {name:?} that the model does not have; was it saved from a different architecture?")]
    UnexpectedTensor {
        /// The state dict's name for the tensor.
        name: String,
    },
    /// A state dict's tensor has another shape than the model's.
    #[error(
        "tensor {name:?} has shape {actual} in the state dict but {expected} in the model; check the layer widths"
    )]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// The model's shape.
        expected: Shape,
        /// The state dict's shape.
        actual: Shape,
    },
    /// A trained parameter received no gradient from a loss.
    #[error("parameter {name:?} got no gradient from the loss; compute the loss from this model's forward pass (with recording on), or freeze the parameter")]
    NoGradient {
        /// The parameter's name.
        name: String,
    },
    /// The model's tensors are not those the optimizer was set up for.
    #[error("the optimizer was set up for tensors {expected:?} but the model now has {actual:?}; build a new ModuleOptimizer for the changed model")]
    ModelChanged {
        /// The names the optimizer was set up for.
        expected: Vec<String>,
        /// The model's names now.
        actual: Vec<String>,
    },
}

/// A trained tensor of a module: a leaf `Var` that forward passes use
/// directly, so a loss computed from them has a gradient for it.
#[derive(Debug, Clone)]
pub struct Parameter {
    var: Var,
    role: Option<Role>,
}

impl Parameter {
    /// A trained parameter holding `value`, with what it is in the model
    /// (`role`, `None` when it is none of the [`Role`]s; see [`Slot::role`]).
    pub fn new(value: Tensor, role: Option<Role>) -> Parameter {
        Parameter {
            var: Var::parameter(value),
            role,
        }
    }

    /// The leaf `Var` to compute with.
    pub fn var(&self) -> &Var {
        &self.var
    }

    /// The current value.
    pub fn value(&self) -> &Tensor {
        self.var.value()
    }

    /// Whether an optimizer trains it (see [`Parameter::set_trained`]).
    pub fn is_trained(&self) -> bool {
        self.var.requires_grad()
    }

    /// Freezes (`false`) or unfreezes the parameter: a frozen one is a
    /// constant of every later forward pass and gets no update.
    pub fn set_trained(&mut self, trained: bool) {
        let value = self.value().clone();
        self.var = if trained {
            Var::parameter(value)
        } else {
            Var::constant(value)
        };
    }

    /// The value, open to change in place (how a trainer applies an
    /// update without a copy). When a recorded graph or a clone of the
    /// module still holds the current leaf, the parameter first moves to a
    /// fresh leaf with the same value, so what they see does not change.
    pub fn value_mut(&mut self) -> &mut Tensor {
        if self.var.unshared_leaf_value_mut().is_none() {
            self.set_value(self.value().clone());
        }
        self.var
            .unshared_leaf_value_mut()
            .expect("a fresh leaf is seen by nothing else")
    }

    /// Binds the parameter to `var` (same shape and dtype, checked by the
    /// caller): the next forward passes compute with it, so gradients (and
    /// tangents) are taken with respect to `var`, as in PyTorch's
    /// `torch.func.functional_call`.
    pub(crate) fn bind(&mut self, var: Var) {
        self.var = var;
    }

    /// Replaces the value (a fresh leaf, trained as before).
    fn set_value(&mut self, value: Tensor) {
        let trained = self.is_trained();
        self.var = Var::parameter(value);
        if !trained {
            self.set_trained(false);
        }
    }
}

/// A tensor of a module that no optimizer trains (BatchNorm's running
/// statistics): part of the state dict, updated by the forward pass.
#[derive(Debug, Clone)]
pub struct Buffer {
    value: Tensor,
    role: Option<Role>,
}

impl Buffer {
    /// A buffer holding `value`, with its role as for [`Parameter::new`].
    pub fn new(value: Tensor, role: Option<Role>) -> Buffer {
        Buffer { value, role }
    }

    /// The current value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// Replaces the value (the caller keeps the shape).
    pub fn set(&mut self, value: Tensor) {
        self.value = value;
    }

    /// The value, open to change in place.
    pub fn value_mut(&mut self) -> &mut Tensor {
        &mut self.value
    }
}

/// One named tensor of a module, as [`Module::visit`] shows it.
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    /// A parameter.
    Parameter(&'a Parameter),
    /// A buffer.
    Buffer(&'a Buffer),
}

impl Slot<'_> {
    /// The tensor's value.
    pub fn value(&self) -> &Tensor {
        match self {
            Slot::Parameter(p) => p.value(),
            Slot::Buffer(b) => b.value(),
        }
    }

    /// What the tensor is, with layer index 0: a layer does not know its
    /// position; [`Module::layout`] numbers the layers in visiting order.
    pub fn role(&self) -> Option<Role> {
        match self {
            Slot::Parameter(p) => p.role,
            Slot::Buffer(b) => b.role,
        }
    }

    /// Whether an optimizer updates it: trained parameters, never buffers.
    pub fn is_trained(&self) -> bool {
        matches!(self, Slot::Parameter(p) if p.is_trained())
    }
}

/// One named tensor of a module, for changing it ([`Module::visit_mut`]).
#[derive(Debug)]
pub enum SlotMut<'a> {
    /// A parameter.
    Parameter(&'a mut Parameter),
    /// A buffer.
    Buffer(&'a mut Buffer),
}

impl SlotMut<'_> {
    /// Replaces the tensor's value (a parameter becomes a fresh leaf).
    pub fn set_value(&mut self, value: Tensor) {
        match self {
            SlotMut::Parameter(p) => p.set_value(value),
            SlotMut::Buffer(b) => b.set(value),
        }
    }

    /// The tensor's value.
    pub fn value(&self) -> &Tensor {
        match self {
            SlotMut::Parameter(p) => p.value(),
            SlotMut::Buffer(b) => b.value(),
        }
    }
}

/// A piece of a network: a layer, or a container of layers.
///
/// Implement [`Module::forward`] and, for a module with tensors,
/// [`Module::visit`] and [`Module::visit_mut`] (both must visit the same
/// tensors in the same order); a module whose forward pass depends on the
/// mode also implements [`Module::set_training`] and [`Module::is_training`].
/// Everything else (state dicts, layouts, saving) comes from these.
pub trait Module {
    /// The output for input `x`. In training mode a module may update its
    /// buffers (BatchNorm's running statistics).
    fn forward(&mut self, x: &Var) -> Result<Var>;

    /// Calls `f` with the local name and the tensor of each parameter and
    /// buffer, in a fixed order (a container prefixes its children's names
    /// with theirs and a dot, as PyTorch's `state_dict` does).
    fn visit(&self, _f: &mut dyn FnMut(&str, Slot<'_>)) {}

    /// [`Module::visit`], with the tensors open to change.
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, SlotMut<'_>)) {}

    /// Switches training mode on or off (a container passes it on). Modules
    /// whose forward pass is the same in both modes ignore it.
    fn set_training(&mut self, _training: bool) {}

    /// Whether the module is in training mode. Modules that ignore the mode
    /// keep none and say `true`.
    fn is_training(&self) -> bool {
        true
    }

    /// Training mode (batch statistics for BatchNorm), as `model.train()`.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (running statistics for BatchNorm), as `model.eval()`.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Every parameter and buffer by name, in visiting order: PyTorch's
    /// `state_dict()` (the tensors are shared, not copied).
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit(&mut |name, slot| out.push((name.to_string(), slot.value().clone())));
        out
    }

    /// The trained parameters by name, in visiting order, as the `Var`s the
    /// next forward pass uses.
    fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        self.visit(&mut |name, slot| {
            if let Slot::Parameter(p) = slot {
                if p.is_trained() {
                    out.push((name.to_string(), p.var().clone()));
                }
            }
        });
        out
    }

    /// What an optimizer is told about this model: every tensor of the
    /// state dict in its order, its [`Role`] (layers numbered by kind in
    /// visiting order: the second Linear's weight is `Weight(1)`) when every
    /// tensor has one, and trained for the trained parameters only.
    fn layout(&self) -> Result<ModelLayout> {
        let (mut shapes, mut roles, mut trained) = (Vec::new(), Vec::new(), Vec::new());
        self.visit(&mut |_, slot| {
            shapes.push(slot.value().shape().clone());
            roles.push(slot.role());
            trained.push(slot.is_trained());
        });
        let roles = roles.into_iter().collect::<Option<Vec<Role>>>().map(number_layers);
        Ok(ModelLayout::new(shapes, roles, trained)?)
    }

    /// Replaces every tensor with the one of the same name in `tensors`
    /// (PyTorch's `load_state_dict(strict=True)`): fails, changing nothing,
    /// on a missing name, an unexpected name or a wrong shape. A tensor of
    /// another dtype is converted to the model's.
    fn load_state_dict(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let given: BTreeMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        check_state_dict(&self.state_dict(), &given)?;
        self.visit_mut(&mut |name, mut slot| {
            let dtype = slot.value().dtype();
            slot.set_value(given[name].to_dtype(dtype).unwrap());
        });
        Ok(())
    }

    /// Writes [`Module::state_dict`] to a safetensors file (atomically).
    fn save(&self, path: &Path) -> Result<()> {
        crate::io::save_safetensors(path, &self.state_dict(), None)
    }

    /// Reads a safetensors file (one this model or PyTorch's `save_file`
    /// wrote for the same architecture) into the model, as
    /// [`Module::load_state_dict`]. PyTorch's BatchNorm counters
    /// (`*.num_batches_tracked`, int64), which no layer here keeps, are
    /// skipped.
    fn load(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, "read", e))?;
        let own: Vec<String> = self.state_dict().into_iter().map(|(name, _)| name).collect();
        let skip = |name: &str| is_batch_counter(name) && !own.iter().any(|o| o == name);
        let (tensors, _) = crate::io::from_safetensors_bytes_except(&bytes, path, &skip)?;
        self.load_state_dict(&tensors)
    }

    /// Evaluation-mode output for `x`, without recording a tape; the model
    /// is back in its mode afterwards.
    fn predict(&mut self, x: &Tensor) -> Result<Tensor> {
        let was_training = self.is_training();
        self.set_training(false);
        let out = no_grad(|| self.forward(&Var::constant(x.clone())));
        self.set_training(was_training);
        Ok(out?.value().clone())
    }
}

/// Whether `name` is a PyTorch BatchNorm's step counter.
fn is_batch_counter(name: &str) -> bool {
    name == "num_batches_tracked" || name.ends_with(".num_batches_tracked")
}

/// Numbers each role by how many of its kind came before it.
fn number_layers(roles: Vec<Role>) -> Vec<Role> {
    let mut seen: HashMap<std::mem::Discriminant<Role>, usize> = HashMap::new();
    roles
        .into_iter()
        .map(|role| {
            let count = seen.entry(std::mem::discriminant(&role)).or_default();
            let i = *count;
            *count += 1;
            match role {
                Role::Weight(_) => Role::Weight(i),
                Role::Bias(_) => Role::Bias(i),
                Role::BnScale(_) => Role::BnScale(i),
                Role::BnShift(_) => Role::BnShift(i),
                Role::RunningMean(_) => Role::RunningMean(i),
                Role::RunningVar(_) => Role::RunningVar(i),
            }
        })
        .collect()
}

/// Checks that `given` has exactly the names of `own`, each with its shape.
fn check_state_dict(own: &[(String, Tensor)], given: &BTreeMap<&str, &Tensor>) -> Result<()> {
    for (name, tensor) in own {
        let Some(other) = given.get(name.as_str()) else {
            return Err(ModuleError::MissingTensor { name: name.clone() }.into());
        };
        if other.shape() != tensor.shape() {
            return Err(ModuleError::TensorShape {
                name: name.clone(),
                expected: tensor.shape().clone(),
                actual: other.shape().clone(),
            }
            .into());
        }
    }
    if let Some(extra) = given.keys().find(|n| !own.iter().any(|(o, _)| o == *n)) {
        return Err(ModuleError::UnexpectedTensor {
            name: extra.to_string(),
        }
        .into());
    }
    Ok(())
}
