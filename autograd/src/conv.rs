//! Convolution and pooling on [`Var`]s, built from two recorded linear ops:
//! [`Var::unfold`] (im2col) and its adjoint [`Var::fold`] (col2im).
//!
//! `unfold` turns every window position of a `[n, c, h, w]` batch into a
//! column of `c * kh * kw` values, giving `[n, c * kh * kw, oh * ow]`. Then
//!
//! * a convolution is one matrix product: the weight `[o, c * kh * kw]`
//!   times the columns (per group of channels when `groups > 1`);
//! * average pooling is the mean of each channel's `kh * kw` rows;
//! * max pooling is their maximum (the `max` reduction's rule: the
//!   gradient goes to the window's largest value, shared equally among
//!   exact ties, where PyTorch gives it all to the first).
//!
//! The backward rule of `unfold` is `fold` and that of `fold` is `unfold`;
//! both are linear, so every op here has second derivatives for free.

use crate::op::Op;
use crate::Var;
use ferrograd_engine::{Error, Result, Tensor, Window2d};

/// The hyperparameters of a 2-D convolution beside its weight: stride, zero
/// padding and dilation as `(rows, columns)`, and the number of channel
/// groups (PyTorch's `nn.Conv2d` arguments of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between window positions.
    pub stride: (usize, usize),
    /// Zeros added on both sides of each spatial axis.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels are split into `groups`
    /// blocks and block `g` of the output sees only block `g` of the input.
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Conv2dParams {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// The hyperparameters of a 1-D convolution (see [`Conv2dParams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dParams {
    /// Step between window positions.
    pub stride: usize,
    /// Zeros added on both ends.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
}

impl Default for Conv1dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Conv1dParams {
        Conv1dParams {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dParams {
    /// The same convolution over a height-1 image.
    fn as_2d(&self) -> Conv2dParams {
        Conv2dParams {
            stride: (1, self.stride),
            padding: (0, self.padding),
            dilation: (1, self.dilation),
            groups: self.groups,
        }
    }
}

/// The `[n, c, h, w]` dims of an image batch, or an error naming `op`.
fn image_dims(op: &'static str, x: &Var) -> Result<[usize; 4]> {
    match *x.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::invalid(
            op,
            format!(
                "needs a [batch, channels, height, width] input, got shape {}",
                x.shape()
            ),
        )),
    }
}

impl Var {
    /// The sliding windows of a `[n, c, h, w]` batch as columns,
    /// `[n, c * kh * kw, oh * ow]` (see [`Tensor::unfold`]).
    pub fn unfold(&self, window: &Window2d) -> Result<Var> {
        let value = self.value().unfold(window)?;
        Var::from_op(value, Op::Unfold(*window), vec![self.clone()])
    }

    /// Columns `[n, c * kh * kw, oh * ow]` summed back into a
    /// `[n, c, height, width]` image (see [`Tensor::fold`]).
    pub fn fold(&self, window: &Window2d, height: usize, width: usize) -> Result<Var> {
        let value = self.value().fold(window, height, width)?;
        Var::from_op(value, Op::Fold(*window), vec![self.clone()])
    }

    /// 2-D cross-correlation (PyTorch's `conv2d`): input `[n, c, h, w]`,
    /// weight `[o, c / groups, kh, kw]`, optional bias `[o]`; the result is
    /// `[n, o, oh, ow]`. Computed as the weight times `unfold(x)`.
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, params: &Conv2dParams) -> Result<Var> {
        let [n, c, h, w] = image_dims("conv2d", self)?;
        let (o, kh, kw) = check_weight(c, weight, bias, params.groups)?;
        let window = Window2d::new((kh, kw))
            .stride(params.stride)
            .padding(params.padding)
            .dilation(params.dilation);
        let (oh, ow) = window.output_size("conv2d", h, w)?;
        // [n, c * taps, l] -> [c * taps, n * l]: one column per output pixel.
        let cols = self
            .unfold(&window)?
            .permute(&[1, 0, 2])?
            .reshape([c * kh * kw, n * oh * ow])?;
        let out = grouped_product(&weight.reshape([o, weight.shape().numel() / o])?, &cols, params.groups)?;
        let out = out.reshape([o, n, oh, ow])?.permute(&[1, 0, 2, 3])?;
        match bias {
            Some(b) => out.add(&b.reshape([1, o, 1, 1])?),
            None => Ok(out),
        }
    }

    /// 1-D cross-correlation (PyTorch's `conv1d`): input `[n, c, l]`, weight
    /// `[o, c / groups, k]`, optional bias `[o]`; the result is `[n, o, ol]`.
    /// Computed as [`Var::conv2d`] on a height-1 image.
    pub fn conv1d(&self, weight: &Var, bias: Option<&Var>, params: &Conv1dParams) -> Result<Var> {
        let &[n, c, l] = self.dims() else {
            return Err(Error::invalid(
                "conv1d",
                format!("needs a [batch, channels, length] input, got shape {}", self.shape()),
            ));
        };
        let &[o, cg, k] = weight.dims() else {
            return Err(Error::invalid(
                "conv1d",
                format!(
                    "needs a [out_channels, in_channels / groups, kernel] weight, got shape {}",
                    weight.shape()
                ),
            ));
        };
        let image = self.reshape([n, c, 1, l])?;
        let out = image.conv2d(&weight.reshape([o, cg, 1, k])?, bias, &params.as_2d())?;
        let ol = out.dims()[3];
        out.reshape([n, o, ol])
    }

    /// 2-D max pooling over `window` (PyTorch's `max_pool2d`; pass the
    /// kernel as the stride for the usual non-overlapping pools). Padding,
    /// at most half the kernel, never wins: padded taps count as -inf. The
    /// gradient goes to each window's maximum, shared equally among exact
    /// ties.
    pub fn max_pool2d(&self, window: &Window2d) -> Result<Var> {
        let [n, c, h, w] = image_dims("max_pool2d", self)?;
        let (oh, ow) = window.output_size("max_pool2d", h, w)?;
        check_pool_padding(window, (h, w), (oh, ow))?;
        let mut cols = self.unfold(window)?;
        if window.padding != (0, 0) {
            let real = self.value().ones_like()?.unfold(window)?;
            let neg_inf = Tensor::full([1], f64::NEG_INFINITY, self.dtype())?.to_device(self.device())?;
            cols = Var::where_mask(&real, &cols, &Var::constant(neg_inf))?;
        }
        cols.reshape([n, c, window.taps(), oh * ow])?
            .max(Some(&[2]), false)?
            .reshape([n, c, oh, ow])
    }

    /// 2-D average pooling over `window` (PyTorch's `avg_pool2d` with
    /// `count_include_pad=True`: padded zeros count in the mean).
    pub fn avg_pool2d(&self, window: &Window2d) -> Result<Var> {
        let [n, c, h, w] = image_dims("avg_pool2d", self)?;
        let (oh, ow) = window.output_size("avg_pool2d", h, w)?;
        self.unfold(window)?
            .reshape([n, c, window.taps(), oh * ow])?
            .mean(Some(&[2]), false)?
            .reshape([n, c, oh, ow])
    }
}

/// `(out_channels, kh, kw)` of a conv weight after checking it (and the
/// bias) against `c` input channels and `groups`.
fn check_weight(c: usize, weight: &Var, bias: Option<&Var>, groups: usize) -> Result<(usize, usize, usize)> {
    let &[o, cg, kh, kw] = weight.dims() else {
        return Err(Error::invalid(
            "conv2d",
            format!(
                "needs a [out_channels, in_channels / groups, kh, kw] weight, got shape {}",
                weight.shape()
            ),
        ));
    };
    if groups == 0 || o % groups != 0 || cg * groups != c {
        return Err(Error::invalid(
            "conv2d",
            format!(
                "{c} input channels, weight {} and {groups} groups do not fit: groups must divide the output channels ({o}) and the weight's axis 1 must be channels / groups",
                weight.shape()
            ),
        ));
    }
    if let Some(b) = bias {
        if b.dims() != [o] {
            return Err(Error::invalid(
                "conv2d",
                format!(
                    "the bias must have shape [{o}] (one per output channel), got {}",
                    b.shape()
                ),
            ));
        }
    }
    Ok((o, kh, kw))
}

/// `weight [o, ck] x cols [groups * ck, m]`, block-diagonal over groups:
/// output rows of group `g` use only column rows of group `g`.
fn grouped_product(weight: &Var, cols: &Var, groups: usize) -> Result<Var> {
    if groups == 1 {
        return weight.matmul(cols);
    }
    let (o, ck) = (weight.dims()[0] / groups, weight.dims()[1]);
    let blocks = (0..groups)
        .map(|g| weight.narrow(0, g * o, o)?.matmul(&cols.narrow(0, g * ck, ck)?))
        .collect::<Result<Vec<Var>>>()?;
    Var::concat(&blocks, 0)
}

/// Max pooling's padding rules: at most half the kernel (PyTorch's rule),
/// and no window entirely in the padding (its max would be -inf; PyTorch
/// returns that, this refuses it).
fn check_pool_padding(window: &Window2d, (h, w): (usize, usize), (oh, ow): (usize, usize)) -> Result<()> {
    let (kh, kw) = window.kernel;
    let (ph, pw) = window.padding;
    if ph > kh / 2 || pw > kw / 2 {
        return Err(Error::invalid(
            "max_pool2d",
            format!(
                "padding {:?} must be at most half the kernel {:?}",
                window.padding, window.kernel
            ),
        ));
    }
    let rows = every_window_overlaps(h, oh, kh, window.stride.0, ph, window.dilation.0);
    let cols = every_window_overlaps(w, ow, kw, window.stride.1, pw, window.dilation.1);
    if !(rows && cols) {
        return Err(Error::invalid(
            "max_pool2d",
            format!("with {window:?} some window lies entirely in the padding of a {h}x{w} image; use less padding or dilation"),
        ));
    }
    Ok(())
}

/// Whether each of `positions` windows along one axis has a tap inside
/// `0..size` (tap `k` of window `o` reads `o * stride + k * dilation - pad`).
fn every_window_overlaps(
    size: usize,
    positions: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
) -> bool {
    (0..positions).all(|o| (0..kernel).any(|k| (o * stride + k * dilation).checked_sub(pad).is_some_and(|i| i < size)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_engine::{DType, Rng};

    fn randn(dims: &[usize], rng: &mut Rng) -> Tensor {
        Tensor::rand_normal(dims.to_vec(), 0.0, 1.0, DType::F64, rng).unwrap()
    }

    /// Direct nested-loop convolution: the independent reference.
    fn naive_conv2d(x: &Tensor, w: &Tensor, b: &[f64], p: &Conv2dParams) -> (Vec<usize>, Vec<f64>) {
        let [n, c, h, wd] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
        let [o, cg, kh, kw] = [w.dims()[0], w.dims()[1], w.dims()[2], w.dims()[3]];
        let og = o / p.groups;
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        let oh = (h + 2 * p.padding.0 - span(kh, p.dilation.0)) / p.stride.0 + 1;
        let ow = (wd + 2 * p.padding.1 - span(kw, p.dilation.1)) / p.stride.1 + 1;
        let (xv, wv) = (x.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
        let mut out = vec![0.0; n * o * oh * ow];
        for (idx, slot) in out.iter_mut().enumerate() {
            let (ni, oi, oy, ox) = (idx / (o * oh * ow), idx / (oh * ow) % o, idx / ow % oh, idx % ow);
            let mut acc = b[oi];
            for ci in 0..cg {
                let cin = oi / og * cg + ci;
                for ki in 0..kh {
                    for kj in 0..kw {
                        let y = (oy * p.stride.0 + ki * p.dilation.0) as isize - p.padding.0 as isize;
                        let xx = (ox * p.stride.1 + kj * p.dilation.1) as isize - p.padding.1 as isize;
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                            acc += wv[((oi * cg + ci) * kh + ki) * kw + kj]
                                * xv[((ni * c + cin) * h + y as usize) * wd + xx as usize];
                        }
                    }
                }
            }
            *slot = acc;
        }
        (vec![n, o, oh, ow], out)
    }

    #[test]
    fn conv2d_matches_nested_loops() {
        let mut rng = Rng::new(3);
        let cases = [
            (Conv2dParams::default(), [2, 3, 5, 6], [4, 3, 3, 2]),
            (
                Conv2dParams {
                    stride: (2, 1),
                    padding: (1, 2),
                    dilation: (1, 2),
                    groups: 2,
                },
                [2, 4, 6, 5],
                [6, 2, 2, 3],
            ),
        ];
        for (params, xs, ws) in cases {
            let x = randn(&xs, &mut rng);
            let w = randn(&ws, &mut rng);
            let b = randn(&[ws[0]], &mut rng);
            let got = Var::constant(x.clone())
                .conv2d(&Var::constant(w.clone()), Some(&Var::constant(b.clone())), &params)
                .unwrap();
            let (dims, want) = naive_conv2d(&x, &w, &b.to_vec::<f64>().unwrap(), &params);
            assert_eq!(got.dims(), dims.as_slice());
            for (g, e) in got.value().to_vec::<f64>().unwrap().iter().zip(&want) {
                assert!((g - e).abs() < 1e-12, "{params:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn pools_match_nested_loops() {
        let mut rng = Rng::new(5);
        let x = randn(&[2, 3, 5, 4], &mut rng);
        let win = Window2d::new((2, 3)).stride((2, 1)).padding((1, 1));
        let max = Var::constant(x.clone()).max_pool2d(&win).unwrap();
        let avg = Var::constant(x.clone()).avg_pool2d(&win).unwrap();
        let (oh, ow) = win.output_size("test", 5, 4).unwrap();
        assert_eq!(max.dims(), &[2, 3, oh, ow]);
        let xv = x.to_vec::<f64>().unwrap();
        let (mv, av) = (
            max.value().to_vec::<f64>().unwrap(),
            avg.value().to_vec::<f64>().unwrap(),
        );
        for plane in 0..6 {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut sum) = (f64::NEG_INFINITY, 0.0);
                    for ki in 0..2 {
                        for kj in 0..3 {
                            let y = (oy * 2 + ki) as isize - 1;
                            let xx = (ox + kj) as isize - 1;
                            if (0..5).contains(&y) && (0..4).contains(&xx) {
                                let v = xv[plane * 20 + y as usize * 4 + xx as usize];
                                best = best.max(v);
                                sum += v;
                            }
                        }
                    }
                    let at = plane * oh * ow + oy * ow + ox;
                    assert_eq!(mv[at], best);
                    assert!((av[at] - sum / 6.0).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn conv1d_is_conv2d_on_a_row() {
        let mut rng = Rng::new(9);
        let x = randn(&[2, 2, 7], &mut rng);
        let w = randn(&[3, 2, 3], &mut rng);
        let p = Conv1dParams {
            stride: 2,
            padding: 1,
            dilation: 2,
            groups: 1,
        };
        let got = Var::constant(x.clone())
            .conv1d(&Var::constant(w.clone()), None, &p)
            .unwrap();
        let x4 = x.reshape([2, 2, 1, 7]).unwrap();
        let w4 = w.reshape([3, 2, 1, 3]).unwrap();
        let (dims, want) = naive_conv2d(&x4, &w4, &[0.0; 3], &p.as_2d());
        assert_eq!(got.dims(), &[dims[0], dims[1], dims[3]]);
        for (g, e) in got.value().to_vec::<f64>().unwrap().iter().zip(&want) {
            assert!((g - e).abs() < 1e-12);
        }
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let x = Var::constant(Tensor::zeros([1, 3, 4, 4], DType::F64).unwrap());
        let w = Var::constant(Tensor::zeros([2, 2, 3, 3], DType::F64).unwrap());
        let err = x.conv2d(&w, None, &Conv2dParams::default()).unwrap_err().to_string();
        assert!(err.contains("input channels"), "{err}");
        let w = Var::constant(Tensor::zeros([2, 3, 3, 3], DType::F64).unwrap());
        let b = Var::constant(Tensor::zeros([3], DType::F64).unwrap());
        assert!(x.conv2d(&w, Some(&b), &Conv2dParams::default()).is_err());
        let big = Window2d::new((3, 3)).padding((2, 0));
        assert!(x.max_pool2d(&big).is_err());
        let row = Var::constant(Tensor::zeros([1, 1, 1, 1], DType::F64).unwrap());
        let all_padding = Window2d::new((1, 2)).padding((0, 1)).dilation((1, 2));
        let err = row.max_pool2d(&all_padding).unwrap_err().to_string();
        assert!(err.contains("entirely in the padding"), "{err}");
        assert!(Var::constant(Tensor::zeros([4, 4], DType::F64).unwrap())
            .avg_pool2d(&Window2d::new((2, 2)))
            .is_err());
    }
}
