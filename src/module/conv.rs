//! The convolution and pooling layers: [`Conv1d`], [`Conv2d`],
//! [`MaxPool2d`] and [`AvgPool2d`], thin modules over the autograd ops
//! [`Var::conv1d`], [`Var::conv2d`], [`Var::max_pool2d`] and
//! [`Var::avg_pool2d`] (all built on `unfold`; see the guide chapter
//! "Your own network"). Every forward pass checks its input's rank,
//! channels and spatial size and names the layer in the error.

use super::{Module, ModuleError, Parameter, Slot, SlotMut};
use crate::autograd::{Conv1dParams, Conv2dParams, Var};
use crate::engine::{DType, Error as EngineError, Rng, Tensor, Window2d};
use crate::error::Result;

/// The smallest input size along one axis that a window of `kernel` taps
/// with `dilation` and `padding` fits (at least 1).
fn min_size(kernel: usize, dilation: usize, padding: usize) -> usize {
    (dilation * (kernel - 1) + 1).saturating_sub(2 * padding).max(1)
}

/// An input-shape error for `layer`.
fn shape_error(layer: &dyn std::fmt::Display, expected: String, x: &Var) -> crate::Error {
    ModuleError::InputShape {
        layer: layer.to_string(),
        expected,
        actual: x.shape().clone(),
    }
    .into()
}

/// A `[dims]` tensor uniform in `±1 / sqrt(fan_in)`: PyTorch's default
/// initialisation of a convolution's weight and bias (its
/// `kaiming_uniform_(a = sqrt(5))` reduces to this bound).
fn pytorch_uniform(dims: Vec<usize>, fan_in: usize, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Ok(Tensor::rand_uniform(dims, -bound, bound, dtype, rng)?)
}

/// Checks the channel counts and sizes a convolution is built with.
fn check_conv_sizes(
    layer: &'static str,
    in_channels: usize,
    out_channels: usize,
    kernel: &[usize],
    groups: usize,
) -> Result<()> {
    if in_channels == 0 || out_channels == 0 || kernel.contains(&0) || groups == 0 {
        return Err(EngineError::invalid(layer, "channels, kernel sizes and groups must be at least 1").into());
    }
    if in_channels % groups != 0 || out_channels % groups != 0 {
        return Err(EngineError::invalid(
            layer,
            format!("groups ({groups}) must divide both in_channels ({in_channels}) and out_channels ({out_channels})"),
        )
        .into());
    }
    Ok(())
}

/// A weight (`[out, in / groups, kernel...]`) and an optional bias
/// (`[out]`), initialised as PyTorch does.
fn conv_parameters(
    out_channels: usize,
    fan_in: usize,
    weight_dims: Vec<usize>,
    bias: bool,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(Parameter, Option<Parameter>)> {
    let weight = Parameter::new(pytorch_uniform(weight_dims, fan_in, dtype, rng)?, None);
    let bias = match bias {
        true => Some(Parameter::new(
            pytorch_uniform(vec![out_channels], fan_in, dtype, rng)?,
            None,
        )),
        false => None,
    };
    Ok((weight, bias))
}

/// Visits a convolution's `weight` and, if it has one, its `bias`.
fn visit_conv(weight: &Parameter, bias: &Option<Parameter>, f: &mut dyn FnMut(&str, Slot<'_>)) {
    f("weight", Slot::Parameter(weight));
    if let Some(b) = bias {
        f("bias", Slot::Parameter(b));
    }
}

/// Visits a convolution's tensors mutably.
fn visit_conv_mut(weight: &mut Parameter, bias: &mut Option<Parameter>, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
    f("weight", SlotMut::Parameter(weight));
    if let Some(b) = bias {
        f("bias", SlotMut::Parameter(b));
    }
}

/// A 2-D convolution (PyTorch's `nn.Conv2d`): input `[batch, in, h, w]`,
/// output `[batch, out, oh, ow]`; tensors `weight`
/// `[out, in / groups, kh, kw]` and, unless built without, `bias` `[out]`,
/// both initialised uniform in `±1 / sqrt(in / groups * kh * kw)` as in
/// PyTorch. Its tensors have no optimizer [`Role`](crate::optim::layout::Role)
/// (those describe MLP layers), so a model holding one has no role list.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Parameter,
    bias: Option<Parameter>,
    params: Conv2dParams,
}

impl Conv2d {
    /// A `kernel` convolution from `in_channels` to `out_channels` with
    /// stride 1, no padding, dilation 1, one group and a bias.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        Conv2d::with_params(
            in_channels,
            out_channels,
            kernel,
            Conv2dParams::default(),
            true,
            dtype,
            rng,
        )
    }

    /// A convolution with the given stride, padding, dilation and groups,
    /// with a bias if `bias`. Fails on a zero size or groups that do not
    /// divide both channel counts.
    pub fn with_params(
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        params: Conv2dParams,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        check_conv_sizes(
            "Conv2d",
            in_channels,
            out_channels,
            &[kernel.0, kernel.1],
            params.groups,
        )?;
        let per_group = in_channels / params.groups;
        let dims = vec![out_channels, per_group, kernel.0, kernel.1];
        let fan_in = per_group * kernel.0 * kernel.1;
        let (weight, bias) = conv_parameters(out_channels, fan_in, dims, bias, dtype, rng)?;
        Ok(Conv2d { weight, bias, params })
    }

    /// The weight `[out, in / groups, kh, kw]`.
    pub fn weight(&self) -> &Parameter {
        &self.weight
    }

    /// The bias `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Parameter> {
        self.bias.as_ref()
    }

    /// The input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.value().dims()[1] * self.params.groups
    }

    /// The output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// The kernel's `(height, width)`.
    pub fn kernel(&self) -> (usize, usize) {
        (self.weight.value().dims()[2], self.weight.value().dims()[3])
    }

    /// The stride, padding, dilation and groups.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// Checks `x` is `[batch, in, h, w]` with `h, w` at least the kernel's span.
    fn check_input(&self, x: &Var) -> Result<()> {
        let (kh, kw) = self.kernel();
        let p = &self.params;
        let (min_h, min_w) = (
            min_size(kh, p.dilation.0, p.padding.0),
            min_size(kw, p.dilation.1, p.padding.1),
        );
        let fits = matches!(*x.dims(), [_, c, h, w] if c == self.in_channels() && h >= min_h && w >= min_w);
        if !fits {
            let expected = format!("[batch, {}, >= {min_h}, >= {min_w}]", self.in_channels());
            return Err(shape_error(self, expected, x));
        }
        Ok(())
    }
}

impl std::fmt::Display for Conv2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kh, kw) = self.kernel();
        write!(
            f,
            "Conv2d({} -> {}, kernel {kh}x{kw})",
            self.in_channels(),
            self.out_channels()
        )
    }
}

impl Module for Conv2d {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        self.check_input(x)?;
        let bias = self.bias.as_ref().map(Parameter::var);
        Ok(x.conv2d(self.weight.var(), bias, &self.params)?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        visit_conv(&self.weight, &self.bias, f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        visit_conv_mut(&mut self.weight, &mut self.bias, f);
    }
}

/// A 1-D convolution (PyTorch's `nn.Conv1d`): input `[batch, in, length]`,
/// output `[batch, out, out_length]`; tensors `weight` `[out, in / groups, k]`
/// and, unless built without, `bias` `[out]`, initialised as PyTorch does
/// (see [`Conv2d`]).
#[derive(Debug, Clone)]
pub struct Conv1d {
    weight: Parameter,
    bias: Option<Parameter>,
    params: Conv1dParams,
}

impl Conv1d {
    /// A `kernel`-tap convolution from `in_channels` to `out_channels` with
    /// stride 1, no padding, dilation 1, one group and a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, dtype: DType, rng: &mut Rng) -> Result<Conv1d> {
        Conv1d::with_params(
            in_channels,
            out_channels,
            kernel,
            Conv1dParams::default(),
            true,
            dtype,
            rng,
        )
    }

    /// A convolution with the given stride, padding, dilation and groups,
    /// with a bias if `bias`. Fails on a zero size or groups that do not
    /// divide both channel counts.
    pub fn with_params(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        params: Conv1dParams,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Conv1d> {
        check_conv_sizes("Conv1d", in_channels, out_channels, &[kernel], params.groups)?;
        let per_group = in_channels / params.groups;
        let dims = vec![out_channels, per_group, kernel];
        let (weight, bias) = conv_parameters(out_channels, per_group * kernel, dims, bias, dtype, rng)?;
        Ok(Conv1d { weight, bias, params })
    }

    /// The weight `[out, in / groups, k]`.
    pub fn weight(&self) -> &Parameter {
        &self.weight
    }

    /// The bias `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Parameter> {
        self.bias.as_ref()
    }

    /// The input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.value().dims()[1] * self.params.groups
    }

    /// The output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// The number of taps.
    pub fn kernel(&self) -> usize {
        self.weight.value().dims()[2]
    }
}

impl std::fmt::Display for Conv1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Conv1d({} -> {}, kernel {})",
            self.in_channels(),
            self.out_channels(),
            self.kernel()
        )
    }
}

impl Module for Conv1d {
    fn forward(&mut self, x: &Var) -> Result<Var> {
        let min_len = min_size(self.kernel(), self.params.dilation, self.params.padding);
        if !matches!(*x.dims(), [_, c, l] if c == self.in_channels() && l >= min_len) {
            return Err(shape_error(
                self,
                format!("[batch, {}, >= {min_len}]", self.in_channels()),
                x,
            ));
        }
        let bias = self.bias.as_ref().map(Parameter::var);
        Ok(x.conv1d(self.weight.var(), bias, &self.params)?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, Slot<'_>)) {
        visit_conv(&self.weight, &self.bias, f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, SlotMut<'_>)) {
        visit_conv_mut(&mut self.weight, &mut self.bias, f);
    }
}

/// Checks a pooling layer's input is `[batch, channels, h, w]` and at least
/// as large as its window's span.
fn check_pool_input(layer: &dyn std::fmt::Display, window: &Window2d, x: &Var) -> Result<()> {
    let min_h = min_size(window.kernel.0, window.dilation.0, window.padding.0);
    let min_w = min_size(window.kernel.1, window.dilation.1, window.padding.1);
    if !matches!(*x.dims(), [_, _, h, w] if h >= min_h && w >= min_w) {
        return Err(shape_error(
            layer,
            format!("[batch, channels, >= {min_h}, >= {min_w}]"),
            x,
        ));
    }
    Ok(())
}

/// Declares a pooling layer over a [`Window2d`].
macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            window: Window2d,
        }

        impl $name {
            /// Non-overlapping pooling: a `kernel` window moved by its own
            /// size (PyTorch's default stride), no padding.
            pub fn new(kernel: (usize, usize)) -> $name {
                $name {
                    window: Window2d::new(kernel).stride(kernel),
                }
            }

            /// Pooling over any window (stride, padding, dilation).
            pub fn with_window(window: Window2d) -> $name {
                $name { window }
            }

            /// The pooling window.
            pub fn window(&self) -> &Window2d {
                &self.window
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let (kh, kw) = self.window.kernel;
                write!(f, "{}(kernel {kh}x{kw})", stringify!($name))
            }
        }

        impl Module for $name {
            fn forward(&mut self, x: &Var) -> Result<Var> {
                check_pool_input(self, &self.window, x)?;
                Ok(x.$method(&self.window)?)
            }
        }
    };
}

pool_layer!(
    /// 2-D max pooling (PyTorch's `nn.MaxPool2d`) of `[batch, channels, h, w]`.
    /// The gradient goes to each window's maximum, shared equally among
    /// exact ties (PyTorch gives it all to the first).
    MaxPool2d,
    max_pool2d
);
pool_layer!(
    /// 2-D average pooling (PyTorch's `nn.AvgPool2d`, padded zeros counted)
    /// of `[batch, channels, h, w]`.
    AvgPool2d,
    avg_pool2d
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Sequential;

    fn image(dims: &[usize]) -> Var {
        let n: usize = dims.iter().product();
        let values = (0..n).map(|i| ((i as f64 + 1.0) * 0.377).sin()).collect();
        Var::constant(Tensor::from_vec::<f64>(values, dims.to_vec()).unwrap())
    }

    fn shape_err(result: Result<Var>) -> (String, String, Vec<usize>) {
        match result {
            Err(crate::Error::Module(ModuleError::InputShape {
                layer,
                expected,
                actual,
            })) => (layer, expected, actual.dims().to_vec()),
            other => panic!("expected an input-shape error, got {other:?}"),
        }
    }

    #[test]
    fn conv2d_has_pytorch_names_shapes_and_init_bounds() {
        let layer = Conv2d::new(2, 8, (3, 3), DType::F64, &mut Rng::new(1)).unwrap();
        let dict = layer.state_dict();
        let names: Vec<&str> = dict.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(dict[0].1.dims(), &[8, 2, 3, 3]);
        assert_eq!(dict[1].1.dims(), &[8]);
        let bound = 1.0 / 18f64.sqrt();
        for (_, t) in &dict {
            let v = t.to_vec::<f64>().unwrap();
            assert!(v.iter().all(|x| x.abs() <= bound), "outside ±{bound}");
            assert!(v.iter().any(|x| x.abs() > bound / 2.0), "the draws fill the range");
        }
        let again = Conv2d::new(2, 8, (3, 3), DType::F64, &mut Rng::new(1)).unwrap();
        assert_eq!(
            again.state_dict()[0].1.to_vec::<f64>().unwrap(),
            dict[0].1.to_vec::<f64>().unwrap()
        );
        let params = Conv2dParams {
            groups: 2,
            ..Conv2dParams::default()
        };
        let grouped = Conv2d::with_params(4, 6, (1, 2), params, false, DType::F32, &mut Rng::new(0)).unwrap();
        assert_eq!(grouped.state_dict().len(), 1);
        assert_eq!(grouped.weight().value().dims(), &[6, 2, 1, 2]);
        assert!(Conv2d::with_params(3, 6, (1, 2), params, true, DType::F32, &mut Rng::new(0)).is_err());
        assert!(Conv2d::new(0, 6, (1, 2), DType::F32, &mut Rng::new(0)).is_err());
    }

    #[test]
    fn conv2d_forward_matches_nested_loops() {
        let params = Conv2dParams {
            padding: (1, 1),
            stride: (2, 1),
            ..Conv2dParams::default()
        };
        let mut layer = Conv2d::with_params(1, 2, (3, 3), params, true, DType::F64, &mut Rng::new(4)).unwrap();
        let x = image(&[1, 1, 4, 3]);
        let y = layer.forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2, 3]);
        let (w, b) = (
            layer.weight().value().to_vec::<f64>().unwrap(),
            layer.bias().unwrap().value().to_vec::<f64>().unwrap(),
        );
        let xv = x.value().to_vec::<f64>().unwrap();
        let got = y.value().to_vec::<f64>().unwrap();
        for o in 0..2 {
            for oy in 0..2 {
                for ox in 0..3 {
                    let mut want = b[o];
                    for ki in 0..3 {
                        for kj in 0..3 {
                            let (yy, xx) = ((oy * 2 + ki) as isize - 1, (ox + kj) as isize - 1);
                            if (0..4).contains(&yy) && (0..3).contains(&xx) {
                                want += w[o * 9 + ki * 3 + kj] * xv[yy as usize * 3 + xx as usize];
                            }
                        }
                    }
                    assert!((got[o * 6 + oy * 3 + ox] - want).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn conv_layers_name_themselves_and_the_shapes_in_errors() {
        let mut conv = Conv2d::new(3, 4, (3, 3), DType::F64, &mut Rng::new(0)).unwrap();
        let (layer, expected, actual) = shape_err(conv.forward(&image(&[2, 1, 5, 5])));
        assert_eq!(
            (layer.as_str(), expected.as_str()),
            ("Conv2d(3 -> 4, kernel 3x3)", "[batch, 3, >= 3, >= 3]")
        );
        assert_eq!(actual, [2, 1, 5, 5]);
        shape_err(conv.forward(&image(&[2, 3, 2, 5])));
        shape_err(conv.forward(&image(&[3, 5, 5])));
        let mut conv1 = Conv1d::new(2, 4, 3, DType::F64, &mut Rng::new(0)).unwrap();
        assert_eq!(conv1.forward(&image(&[2, 2, 5])).unwrap().dims(), &[2, 4, 3]);
        let (layer, expected, _) = shape_err(conv1.forward(&image(&[2, 2, 2])));
        assert_eq!(
            (layer.as_str(), expected.as_str()),
            ("Conv1d(2 -> 4, kernel 3)", "[batch, 2, >= 3]")
        );
        shape_err(conv1.forward(&image(&[2, 2, 1, 5])));
        let (layer, _, _) = shape_err(MaxPool2d::new((2, 2)).forward(&image(&[1, 1, 1, 4])));
        assert_eq!(layer, "MaxPool2d(kernel 2x2)");
        shape_err(AvgPool2d::new((2, 2)).forward(&image(&[4, 4])));
        let mut model = Sequential::new().append(MaxPool2d::new((2, 2))).append(conv);
        let err = model.forward(&image(&[1, 3, 4, 4])).unwrap_err().to_string();
        assert!(err.contains("layer 1 (Conv2d(3 -> 4, kernel 3x3))"), "{err}");
    }

    #[test]
    fn pools_take_the_max_and_mean_of_each_window() {
        // 4x4 image 0..16: the 2x2 windows hold {0,1,4,5}, {2,3,6,7}, ...
        let x = Var::constant(Tensor::from_vec((0..16).map(f64::from).collect::<Vec<f64>>(), [1, 1, 4, 4]).unwrap());
        let max = MaxPool2d::new((2, 2)).forward(&x).unwrap();
        assert_eq!(max.value().to_vec::<f64>().unwrap(), [5.0, 7.0, 13.0, 15.0]);
        let avg = AvgPool2d::new((2, 2)).forward(&x).unwrap();
        assert_eq!(avg.value().to_vec::<f64>().unwrap(), [2.5, 4.5, 10.5, 12.5]);
        let overlapping = MaxPool2d::with_window(Window2d::new((3, 3)).padding((1, 1)).stride((2, 2)));
        assert_eq!(
            *overlapping.window(),
            Window2d::new((3, 3)).padding((1, 1)).stride((2, 2))
        );
        let y = { overlapping }.forward(&x).unwrap();
        assert_eq!(y.value().to_vec::<f64>().unwrap(), [5.0, 7.0, 13.0, 15.0]);
    }
}
