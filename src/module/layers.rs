//! The layers: [`Linear`], [`BatchNorm1d`], [`BatchNorm2d`], [`LayerNorm`],
//! [`Dropout`], [`Embedding`], the activations, [`Flatten`], and the
//! container [`Sequential`]. Each is built from the ops the
//! autograd registry has, with the numerics of [`crate::nn`]'s layers.

use super::{Buffer, Module, ModuleError, Parameter, Slot, SlotMut};
use crate::autograd::Var;
use crate::engine::{DType, Rng, Tensor};
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
/// tensors `weight` `[out, in]` and, unless built without one, `bias`
/// `[out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Parameter,
    bias: Option<Parameter>,
}

impl Linear {
    /// A layer with [`nn::Linear::new`]'s initialisation (the task's:
    /// weights uniform in `±0.5 sqrt(2 / (in + out))`, biases 0), drawing
    /// from `rng` exactly as it does.
    pub fn new(in_features: usize, out_features: usize, dtype: DType, rng: &mut Rng) -> Result<Linear> {
        Ok(Linear::from(nn::Linear::new(in_features, out_features, dtype, rng)?))
    }

    /// [`Linear::new`] with a bias (`bias` true) or without one (PyTorch's
    /// `bias=False`: `y = x W^T`, no `bias` in the state dict). The weights
    /// drawn are the same either way.
    pub fn with_bias(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Linear> {
        let mut layer = Linear::new(in_features, out_features, dtype, rng)?;
        if !bias {
            layer.bias = None;
        }
        Ok(layer)
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

    /// The bias `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Parameter> {
        self.bias.as_ref()
    }

    /// The weight and the bias (if any), open to change together.
    pub fn parameters_mut(&mut self) -> (&mut Parameter, Option<&mut Parameter>) {
        (&mut self.weight, self.bias.as_mut())
    }
}

impl From<nn::Linear> for Linear {
    /// The module holding an [`nn::Linear`]'s tensors.
    fn from(layer: nn::Linear) -> Linear {
        Linear {
            weight: Parameter::new(layer.weight, Some(Role::Weight(0))),
            bias: Some(Parameter::new(layer.bias, Some(Role::Bias(0)))),
        }
    }
}

impl std::fmt::Display for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bias = if self.bias.is_some() { "" } else { ", no bias" };
        write!(f, "Linear({} -> {}{bias})", self.in_features(), self.out_features())
    }
}

impl Module for Linear {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        expect_features(self, x, self.in_features())?;
        match &self.bias {
            Some(bias) => Ok(nn::Linear::forward(x, self.weight.var(), bias.var())?),
            None => Ok(x.matmul_t(false, self.weight.var(), true)?),
        }
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f("weight", Slot::Parameter(&self.weight));
        if let Some(bias) = &self.bias {
            f("bias", Slot::Parameter(bias));
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        f("weight", SlotMut::Parameter(&mut self.weight));
        if let Some(bias) = &mut self.bias {
            f("bias", SlotMut::Parameter(bias));
        }
    }
}

/// The options of PyTorch's BatchNorm layers, with its defaults
/// ([`BatchNormOptions::default`]: eps 1e-5, momentum 0.1, affine, running
/// statistics tracked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormOptions {
    /// Added to the variance before its square root; finite and >= 0.
    pub eps: f64,
    /// The weight of each batch in the running statistics:
    /// `running = (1 - momentum) running + momentum batch`; in `[0, 1]`.
    /// (PyTorch's `momentum=None`, a cumulative average, is not offered.)
    pub momentum: f64,
    /// Whether the layer has a trained scale `weight` and shift `bias`.
    pub affine: bool,
    /// Whether the layer keeps `running_mean` and `running_var`; without
    /// them it normalises with the batch's statistics in both modes.
    pub track_running_stats: bool,
}

impl Default for BatchNormOptions {
    /// PyTorch's defaults, which are the task's ([`nn::BN_EPS`],
    /// [`nn::BN_MOMENTUM`]).
    fn default() -> BatchNormOptions {
        BatchNormOptions {
            eps: nn::BN_EPS,
            momentum: nn::BN_MOMENTUM,
            affine: true,
            track_running_stats: true,
        }
    }
}

impl BatchNormOptions {
    /// An error naming `layer` unless eps and momentum are in range.
    fn check(&self, layer: &str) -> Result<()> {
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(invalid_option(
                layer,
                "eps",
                self.eps,
                "finite and >= 0 (PyTorch's default is 1e-5)",
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(invalid_option(
                layer,
                "momentum",
                self.momentum,
                "in [0, 1] (PyTorch's default is 0.1)",
            ));
        }
        Ok(())
    }
}

/// A [`ModuleError::InvalidOption`].
fn invalid_option(layer: &str, option: &'static str, value: f64, valid: &'static str) -> Error {
    ModuleError::InvalidOption {
        layer: layer.to_string(),
        option,
        value,
        valid,
    }
    .into()
}

/// What the BatchNorm layers share: their tensors, options and mode, and
/// the normalisation over every axis but the channel axis (1).
#[derive(Debug, Clone)]
struct BatchNormCore {
    options: BatchNormOptions,
    features: usize,
    weight: Option<Parameter>,
    bias: Option<Parameter>,
    running: Option<(Buffer, Buffer)>,
    training: bool,
}

impl BatchNormCore {
    /// A fresh core for `features` channels (scale 1, shift 0, running mean
    /// 0, running variance 1, as far as the options keep them).
    fn new(layer: &str, features: usize, options: BatchNormOptions, dtype: DType) -> Result<BatchNormCore> {
        options.check(layer)?;
        let fresh = nn::BatchNorm1d::new(features, dtype)?;
        let affine = options.affine;
        let tracked = options.track_running_stats;
        Ok(BatchNormCore {
            options,
            features,
            weight: affine.then(|| Parameter::new(fresh.scale, Some(Role::BnScale(0)))),
            bias: affine.then(|| Parameter::new(fresh.shift, Some(Role::BnShift(0)))),
            running: tracked.then(|| {
                (
                    Buffer::new(fresh.running_mean, Some(Role::RunningMean(0))),
                    Buffer::new(fresh.running_var, Some(Role::RunningVar(0))),
                )
            }),
            training: true,
        })
    }

    /// Whether a forward pass now uses the batch's statistics (training
    /// mode, or no running statistics kept), and so needs at least 2
    /// values per channel.
    fn uses_batch_stats(&self) -> bool {
        self.training || self.running.is_none()
    }

    /// Normalises `x` (channels on axis 1, already checked, with at least
    /// 2 values per channel where [`BatchNormCore::uses_batch_stats`]) over
    /// every other axis; `channel_dims` is the shape a `[C]` tensor takes
    /// to broadcast against `x` (`[C]`, `[C, 1]`, `[C, 1, 1]`). In training
    /// mode the batch's statistics are used and blended into the running
    /// ones; in evaluation mode the running ones (the batch's when none are
    /// kept).
    fn forward(&mut self, x: &Var, channel_dims: &[usize]) -> Result<Var> {
        let eps = self.options.eps;
        let normalised = match (&self.running, self.training) {
            (Some((mean, var)), false) => {
                let (mean, var) = (
                    mean.value().reshape(channel_dims.to_vec())?,
                    var.value().reshape(channel_dims.to_vec())?,
                );
                nn::normalise_with_stats(x, &mean, &var, eps)?
            }
            _ => {
                let axes: Vec<isize> = (0..x.dims().len() as isize).filter(|&a| a != 1).collect();
                let (normalised, mean, var) = nn::normalise_with_batch_stats(x, &axes, channel_dims.len() > 1, eps)?;
                if self.training {
                    let count = values_per_channel(x);
                    self.update_running(&mean, &var.mul_scalar(count as f64 / (count - 1) as f64)?)?;
                }
                normalised
            }
        };
        self.apply_affine(normalised, channel_dims)
    }

    /// Blends the batch's mean and unbiased variance into the running
    /// statistics, if kept.
    fn update_running(&mut self, mean: &Tensor, unbiased: &Tensor) -> Result<()> {
        let momentum = self.options.momentum;
        let features = [self.features];
        if let Some((running_mean, running_var)) = &mut self.running {
            for (buffer, batch) in [(running_mean, mean), (running_var, unbiased)] {
                buffer.set(nn::blend(buffer.value(), &batch.reshape(features)?, momentum)?);
            }
        }
        Ok(())
    }

    /// `normalised * weight + bias`, as far as the layer has them.
    fn apply_affine(&self, normalised: Var, channel_dims: &[usize]) -> Result<Var> {
        let mut y = normalised;
        if let Some(weight) = &self.weight {
            y = y.mul(&fit(weight.var(), channel_dims)?)?;
        }
        if let Some(bias) = &self.bias {
            y = y.add(&fit(bias.var(), channel_dims)?)?;
        }
        Ok(y)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        if let (Some(weight), Some(bias)) = (&self.weight, &self.bias) {
            f("weight", Slot::Parameter(weight));
            f("bias", Slot::Parameter(bias));
        }
        if let Some((mean, var)) = &self.running {
            f("running_mean", Slot::Buffer(mean));
            f("running_var", Slot::Buffer(var));
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        if let (Some(weight), Some(bias)) = (&mut self.weight, &mut self.bias) {
            f("weight", SlotMut::Parameter(weight));
            f("bias", SlotMut::Parameter(bias));
        }
        if let Some((mean, var)) = &mut self.running {
            f("running_mean", SlotMut::Buffer(mean));
            f("running_var", SlotMut::Buffer(var));
        }
    }
}

/// How many values each channel (axis 1) of `x` has.
fn values_per_channel(x: &Var) -> usize {
    x.dims()
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != 1)
        .map(|(_, &d)| d)
        .product()
}

/// `v` reshaped to `dims` (itself when it has them already).
fn fit(v: &Var, dims: &[usize]) -> Result<Var> {
    if v.dims() == dims {
        return Ok(v.clone());
    }
    Ok(v.reshape(dims.to_vec())?)
}

/// Declares a BatchNorm layer around a [`BatchNormCore`]: its constructors,
/// accessors and the [`Module`] methods other than `forward`.
macro_rules! batch_norm_layer {
    ($name:ident) => {
        impl $name {
            /// A fresh layer for `features` channels with PyTorch's default
            /// options (scale 1, shift 0, running mean 0, running variance
            /// 1), in training mode.
            pub fn new(features: usize, dtype: DType) -> Result<$name> {
                $name::with_options(features, BatchNormOptions::default(), dtype)
            }

            /// A fresh layer with `options` (eps, momentum, affine,
            /// track_running_stats); an eps or momentum out of range is a
            /// [`ModuleError::InvalidOption`].
            pub fn with_options(features: usize, options: BatchNormOptions, dtype: DType) -> Result<$name> {
                let layer = format!("{}({features})", stringify!($name));
                Ok($name {
                    core: BatchNormCore::new(&layer, features, options, dtype)?,
                })
            }

            /// The number of features (channels).
            pub fn features(&self) -> usize {
                self.core.features
            }

            /// The options the layer was built with.
            pub fn options(&self) -> BatchNormOptions {
                self.core.options
            }

            /// The running statistics `(mean, variance)`, if the layer keeps them.
            pub fn running_stats(&self) -> Option<(&Buffer, &Buffer)> {
                self.core.running.as_ref().map(|(mean, var)| (mean, var))
            }

            /// The running statistics, open to change.
            pub fn running_stats_mut(&mut self) -> Option<(&mut Buffer, &mut Buffer)> {
                self.core.running.as_mut().map(|(mean, var)| (mean, var))
            }

            /// The scale `weight` and shift `bias`, if the layer is affine.
            pub fn affine(&self) -> Option<(&Parameter, &Parameter)> {
                self.core.weight.as_ref().zip(self.core.bias.as_ref())
            }

            /// The scale and shift, open to change together.
            pub fn affine_mut(&mut self) -> Option<(&mut Parameter, &mut Parameter)> {
                self.core.weight.as_mut().zip(self.core.bias.as_mut())
            }

            /// Sets the running statistics back to mean 0 and variance 1
            /// (PyTorch's `reset_running_stats`), if the layer keeps them.
            pub fn reset_running_stats(&mut self) -> Result<()> {
                if let Some((mean, var)) = &mut self.core.running {
                    mean.set(mean.value().zeros_like()?);
                    var.set(var.value().ones_like()?);
                }
                Ok(())
            }

            /// Changes the momentum of the running statistics (in `[0, 1]`,
            /// else a [`ModuleError::InvalidOption`] and no change). With
            /// momentum 1 the next training-mode batch replaces them.
            pub fn set_momentum(&mut self, momentum: f64) -> Result<()> {
                let options = BatchNormOptions {
                    momentum,
                    ..self.core.options
                };
                options.check(&self.to_string())?;
                self.core.options = options;
                Ok(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.features())
            }
        }
    };
}

/// The [`Module`] methods every BatchNorm layer delegates to its core.
macro_rules! delegate_to_core {
    () => {
        fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
            self.core.visit(f);
        }

        fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
            self.core.visit_mut(f);
        }

        fn set_training(&mut self, training: bool) {
            self.core.training = training;
        }

        fn is_training(&self) -> bool {
            self.core.training
        }
    };
}

/// Batch normalisation of `[batch, features]` or `[batch, features,
/// length]` (PyTorch's `nn.BatchNorm1d`): in training mode it normalises
/// with the batch's mean and biased variance and blends the mean and the
/// unbiased variance into the running statistics; in evaluation mode it
/// normalises with those. With the default options the numerics are
/// [`nn::BatchNorm1d`]'s. Its state dict has `weight` and `bias` (when
/// affine) and `running_mean` and `running_var` (when tracked), all
/// `[features]`; not PyTorch's `num_batches_tracked`, which only a momentum
/// of `None` uses.
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    core: BatchNormCore,
}

batch_norm_layer!(BatchNorm1d);

impl Module for BatchNorm1d {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let features = self.features();
        let (channel_dims, too_small): (&[usize], String) = match x.dims() {
            [_, c] if *c == features => (&[features], format!("[batch >= 2, {features}] in training mode")),
            [_, c, _] if *c == features => (
                &[features, 1],
                format!("[batch, {features}, length] with batch * length >= 2 in training mode"),
            ),
            _ => {
                return Err(input_shape(
                    self,
                    format!("[batch, {features}] or [batch, {features}, length]"),
                    x,
                ))
            }
        };
        if self.core.uses_batch_stats() && values_per_channel(x) < 2 {
            return Err(input_shape(self, too_small, x));
        }
        self.core.forward(x, channel_dims)
    }

    delegate_to_core!();
}

/// Batch normalisation of images `[batch, channels, height, width]`
/// (PyTorch's `nn.BatchNorm2d`): as [`BatchNorm1d`], with each channel's
/// statistics taken over the batch and both spatial axes (the running
/// variance unbiased over those `batch * height * width` values). Its state
/// dict has `weight`, `bias`, `running_mean` and `running_var`, each
/// `[channels]`, as far as the options keep them.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    core: BatchNormCore,
}

batch_norm_layer!(BatchNorm2d);

impl Module for BatchNorm2d {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let channels = self.features();
        if !matches!(x.dims(), [_, c, _, _] if *c == channels) {
            return Err(input_shape(self, format!("[batch, {channels}, height, width]"), x));
        }
        if self.core.uses_batch_stats() && values_per_channel(x) < 2 {
            let expected =
                format!("[batch, {channels}, height, width] with batch * height * width >= 2 in training mode");
            return Err(input_shape(self, expected, x));
        }
        self.core.forward(x, &[channels, 1, 1])
    }

    delegate_to_core!();
}

/// A [`ModuleError::InputShape`] naming `layer`.
fn input_shape(layer: &dyn std::fmt::Display, expected: String, x: &Var) -> Error {
    ModuleError::InputShape {
        layer: layer.to_string(),
        expected,
        actual: x.shape().clone(),
    }
    .into()
}

/// Layer normalisation over the trailing `normalized_shape` axes
/// (PyTorch's `nn.LayerNorm`): each sample's group of those axes is shifted
/// to mean 0 and scaled to variance 1 (biased, with `eps` added), then
/// scaled by `weight` and shifted by `bias` (both of `normalized_shape`,
/// initialised to 1 and 0) when elementwise-affine. The same in both modes;
/// computed by [`Var::layer_norm`].
#[derive(Debug, Clone)]
pub struct LayerNorm {
    normalized_shape: Vec<usize>,
    eps: f64,
    weight: Option<Parameter>,
    bias: Option<Parameter>,
}

impl LayerNorm {
    /// A layer over `normalized_shape` with PyTorch's defaults: eps 1e-5,
    /// elementwise affine.
    pub fn new(normalized_shape: &[usize], dtype: DType) -> Result<LayerNorm> {
        LayerNorm::with_options(normalized_shape, nn::BN_EPS, true, dtype)
    }

    /// A layer with `eps` (finite, >= 0) and with or without the affine
    /// `weight` and `bias`. An empty `normalized_shape` or an eps out of
    /// range is an error.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        dtype: DType,
    ) -> Result<LayerNorm> {
        let layer = format!("LayerNorm({normalized_shape:?})");
        if normalized_shape.is_empty() {
            return Err(crate::engine::Error::invalid(
                "LayerNorm::new",
                "normalized_shape must name at least one trailing axis, e.g. &[features]",
            )
            .into());
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(invalid_option(
                &layer,
                "eps",
                eps,
                "finite and >= 0 (PyTorch's default is 1e-5)",
            ));
        }
        let affine = |value: f64| -> Result<Option<Parameter>> {
            let tensor = Tensor::full(normalized_shape.to_vec(), value, dtype)?;
            Ok(elementwise_affine.then(|| Parameter::new(tensor, None)))
        };
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight: affine(1.0)?,
            bias: affine(0.0)?,
        })
    }

    /// The trailing shape normalised over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }
}

impl std::fmt::Display for LayerNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerNorm({:?})", self.normalized_shape)
    }
}

impl Module for LayerNorm {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let k = self.normalized_shape.len();
        if x.dims().len() < k || x.dims()[x.dims().len() - k..] != self.normalized_shape[..] {
            let trailing: Vec<String> = self.normalized_shape.iter().map(usize::to_string).collect();
            return Err(input_shape(self, format!("[..., {}]", trailing.join(", ")), x));
        }
        let (weight, bias) = (
            self.weight.as_ref().map(Parameter::var),
            self.bias.as_ref().map(Parameter::var),
        );
        Ok(x.layer_norm(&self.normalized_shape, weight, bias, self.eps)?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        if let (Some(weight), Some(bias)) = (&self.weight, &self.bias) {
            f("weight", Slot::Parameter(weight));
            f("bias", Slot::Parameter(bias));
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        if let (Some(weight), Some(bias)) = (&mut self.weight, &mut self.bias) {
            f("weight", SlotMut::Parameter(weight));
            f("bias", SlotMut::Parameter(bias));
        }
    }
}

/// Dropout (PyTorch's `nn.Dropout`): in training mode each element is
/// zeroed with probability `p` and the rest scaled by `1 / (1 - p)`, the
/// mask drawn from the layer's own seeded generator (so a run is
/// reproducible); in evaluation mode the identity. No tensors.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    rng: Rng,
    training: bool,
}

impl Dropout {
    /// A layer dropping with probability `p` (in `[0, 1]`), drawing its
    /// masks from `rng`, in training mode.
    pub fn new(p: f64, rng: Rng) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid_option(&format!("Dropout(p={p})"), "p", p, "in [0, 1]"));
        }
        Ok(Dropout { p, rng, training: true })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        Ok(x.dropout(self.p, self.training, &mut self.rng)?)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// A lookup table (PyTorch's `nn.Embedding`): `weight`
/// `[num_embeddings, embedding_dim]`, initialised standard normal as
/// PyTorch does. Its input holds row indices as whole numbers (of any
/// shape, in a float tensor: this engine has no integer dtype); the output
/// is the input's shape with `embedding_dim` appended. A row used several
/// times in a batch gets the sum of their gradients.
#[derive(Debug, Clone)]
pub struct Embedding {
    weight: Parameter,
}

impl Embedding {
    /// A table of `num_embeddings` rows of width `embedding_dim`, drawn
    /// standard normal from `rng`.
    pub fn new(num_embeddings: usize, embedding_dim: usize, dtype: DType, rng: &mut Rng) -> Result<Embedding> {
        let weight = Tensor::rand_normal([num_embeddings, embedding_dim], 0.0, 1.0, dtype, rng)?;
        Ok(Embedding {
            weight: Parameter::new(weight, None),
        })
    }

    /// The number of rows.
    pub fn num_embeddings(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// The width of a row.
    pub fn embedding_dim(&self) -> usize {
        self.weight.value().dims()[1]
    }

    /// The table `[num_embeddings, embedding_dim]`.
    pub fn weight(&self) -> &Parameter {
        &self.weight
    }

    /// The rows at `indices`, shaped `index_dims ++ [embedding_dim]`, for
    /// indices already held as integers.
    pub fn lookup(&self, indices: &[usize], index_dims: &[usize]) -> Result<Var> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.num_embeddings()) {
            return Err(self.bad_index(index as f64));
        }
        Ok(self.weight.var().embedding(indices, index_dims)?)
    }

    /// The [`ModuleError::InputIndex`] for `index`.
    fn bad_index(&self, index: f64) -> Error {
        ModuleError::InputIndex {
            layer: self.to_string(),
            index,
            rows: self.num_embeddings(),
        }
        .into()
    }
}

impl std::fmt::Display for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({}, {})", self.num_embeddings(), self.embedding_dim())
    }
}

impl Module for Embedding {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let rows = self.num_embeddings();
        let mut indices = Vec::with_capacity(x.value().numel());
        for value in x.value().to_vec_f64()? {
            if !(value >= 0.0 && value.fract() == 0.0 && value < rows as f64) {
                return Err(self.bad_index(value));
            }
            indices.push(value as usize);
        }
        self.lookup(&indices, x.dims())
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f("weight", Slot::Parameter(&self.weight));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        f("weight", SlotMut::Parameter(&mut self.weight));
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
pub(crate) fn locate(error: Error, index: usize) -> Error {
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
