//! Sliding windows over images: `unfold` (im2col) and its adjoint `fold`
//! (col2im), the two linear ops convolutions and pooling are built from.
//!
//! For an input `[n, c, h, w]` and a [`Window2d`] of kernel `kh x kw`,
//! `unfold` writes every window position as a column: the result is
//! `[n, c * kh * kw, l]` with `l = oh * ow` window positions, row
//! `(ci * kh + ki) * kw + kj` holding input pixel
//! `(oy * sh + ki * dh - ph, ox * sw + kj * dw - pw)` of channel `ci` (zero
//! where that falls in the padding). `fold` sums columns back into an image.
//! It is written as a gather (each output pixel adds up the column entries
//! that read it, in a fixed order), so it needs no atomics on a GPU and gives
//! the same bits on every run.

use crate::{alloc, checked_numel, with_dtype, Element, Error, Result, Shape, Tensor};

/// The geometry of a 2-D sliding window: kernel size, stride, zero padding
/// (on both sides) and dilation, each as `(rows, columns)`. The same
/// parameters as PyTorch's `nn.Unfold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window2d {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Step between window positions.
    pub stride: (usize, usize),
    /// Zeros added before and after each spatial axis.
    pub padding: (usize, usize),
    /// Spacing between the kernel's taps (1: adjacent pixels).
    pub dilation: (usize, usize),
}

impl Window2d {
    /// A `kh x kw` window with stride 1, no padding and dilation 1.
    pub fn new(kernel: (usize, usize)) -> Window2d {
        Window2d {
            kernel,
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
        }
    }

    /// The same window with another stride.
    pub fn stride(self, stride: (usize, usize)) -> Window2d {
        Window2d { stride, ..self }
    }

    /// The same window with another zero padding.
    pub fn padding(self, padding: (usize, usize)) -> Window2d {
        Window2d { padding, ..self }
    }

    /// The same window with another dilation.
    pub fn dilation(self, dilation: (usize, usize)) -> Window2d {
        Window2d { dilation, ..self }
    }

    /// The number of taps, `kh * kw`.
    pub fn taps(&self) -> usize {
        self.kernel.0 * self.kernel.1
    }

    /// The output size `(oh, ow)` over an `h x w` image, or an error naming
    /// `op` if a parameter is zero or the padded image is smaller than the
    /// (dilated) kernel.
    pub fn output_size(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        let parts = [self.kernel, self.stride, self.dilation];
        if parts.iter().any(|&(a, b)| a == 0 || b == 0) {
            return Err(Error::invalid(
                op,
                format!("kernel, stride and dilation must be at least 1, got {self:?}"),
            ));
        }
        let oh = axis_output(
            op,
            "height",
            h,
            self.kernel.0,
            self.stride.0,
            self.padding.0,
            self.dilation.0,
        )?;
        let ow = axis_output(
            op,
            "width",
            w,
            self.kernel.1,
            self.stride.1,
            self.padding.1,
            self.dilation.1,
        )?;
        Ok((oh, ow))
    }
}

/// The number of window positions along one axis:
/// `(size + 2 pad - dilation (kernel - 1) - 1) / stride + 1`.
fn axis_output(
    op: &'static str,
    axis: &str,
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
) -> Result<usize> {
    let span = (kernel - 1).saturating_mul(dilation).saturating_add(1);
    let padded = size.saturating_add(pad.saturating_mul(2));
    if padded < span {
        return Err(Error::invalid(
            op,
            format!(
                "the {axis} {size} (padded: {padded}) is smaller than the kernel's span {span} (kernel {kernel}, dilation {dilation}); use a larger input, more padding or a smaller kernel"
            ),
        ));
    }
    Ok((padded - span) / stride + 1)
}

/// The input pixel a tap reads along one axis, or `None` in the padding.
fn source_index(out: usize, tap: usize, stride: usize, pad: usize, dilation: usize, size: usize) -> Option<usize> {
    let padded = out * stride + tap * dilation;
    padded.checked_sub(pad).filter(|&i| i < size)
}

/// The window position whose tap `tap` reads pixel `pixel` along one axis,
/// or `None` if no position does (the inverse of [`source_index`]).
fn position_of(
    pixel: usize,
    tap: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    positions: usize,
) -> Option<usize> {
    let padded = (pixel + pad).checked_sub(tap * dilation)?;
    (padded % stride == 0 && padded / stride < positions).then_some(padded / stride)
}

/// Sizes shared by the two kernels.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

/// im2col on a contiguous `[n, c, h, w]` buffer.
fn unfold_kernel<T: Element>(x: &[T], d: Dims, win: &Window2d, out: &mut Vec<T>) {
    let (kh, kw) = win.kernel;
    for img in x.chunks_exact(d.c * d.h * d.w).take(d.n) {
        for plane in img.chunks_exact(d.h * d.w) {
            for ki in 0..kh {
                for kj in 0..kw {
                    for oy in 0..d.oh {
                        let y = source_index(oy, ki, win.stride.0, win.padding.0, win.dilation.0, d.h);
                        for ox in 0..d.ow {
                            let x_ = source_index(ox, kj, win.stride.1, win.padding.1, win.dilation.1, d.w);
                            out.push(match (y, x_) {
                                (Some(y), Some(x_)) => plane[y * d.w + x_],
                                _ => T::zero(),
                            });
                        }
                    }
                }
            }
        }
    }
}

/// col2im on a contiguous `[n, c * kh * kw, oh * ow]` buffer, as a gather:
/// each output pixel sums the entries that read it, taps in row-major order.
fn fold_kernel<T: Element>(cols: &[T], d: Dims, win: &Window2d, out: &mut Vec<T>) {
    let (kh, kw) = win.kernel;
    let l = d.oh * d.ow;
    // position_of for every pixel and tap, computed once, not per channel.
    let rows = positions_table(d.h, kh, win.stride.0, win.padding.0, win.dilation.0, d.oh);
    let columns = positions_table(d.w, kw, win.stride.1, win.padding.1, win.dilation.1, d.ow);
    for img in cols.chunks_exact(d.c * kh * kw * l).take(d.n) {
        for ci in 0..d.c {
            for y in 0..d.h {
                for x_ in 0..d.w {
                    let mut total = T::zero();
                    for ki in 0..kh {
                        let Some(oy) = rows[y * kh + ki] else {
                            continue;
                        };
                        for kj in 0..kw {
                            if let Some(ox) = columns[x_ * kw + kj] {
                                total = total + img[((ci * kh + ki) * kw + kj) * l + oy * d.ow + ox];
                            }
                        }
                    }
                    out.push(total);
                }
            }
        }
    }
}

/// [`position_of`] for every pixel `0..size` and tap `0..taps` along one
/// axis, pixel-major: entry `pixel * taps + tap`.
fn positions_table(
    size: usize,
    taps: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    positions: usize,
) -> Vec<Option<usize>> {
    (0..size)
        .flat_map(|pixel| (0..taps).map(move |tap| position_of(pixel, tap, stride, pad, dilation, positions)))
        .collect()
}

impl Tensor {
    /// The sliding windows of a `[n, c, h, w]` image batch as columns:
    /// `[n, c * kh * kw, oh * ow]` (im2col, PyTorch's `nn.functional.unfold`).
    /// See the [module docs](self) for the layout.
    pub fn unfold(&self, window: &Window2d) -> Result<Tensor> {
        let &[n, c, h, w] = self.dims() else {
            return Err(Error::invalid(
                "unfold",
                format!(
                    "needs a [batch, channels, height, width] tensor, got shape {}",
                    self.shape()
                ),
            ));
        };
        let (oh, ow) = window.output_size("unfold", h, w)?;
        let dims = [n, c * window.taps(), oh * ow];
        let numel = checked_numel("unfold", &dims)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unfold(self, window, oh, ow);
        }
        let d = Dims { n, c, h, w, oh, ow };
        Ok(with_dtype!(self.dtype(), T => {
            let mut out = alloc::with_capacity("unfold", numel)?;
            unfold_kernel(self.data::<T>(), d, window, &mut out);
            Tensor::from_typed(out, Shape::new(dims))
        }))
    }

    /// The adjoint of [`Tensor::unfold`] (col2im, PyTorch's
    /// `nn.functional.fold`): `[n, c * kh * kw, oh * ow]` columns summed back
    /// into a `[n, c, height, width]` image, overlapping taps added.
    pub fn fold(&self, window: &Window2d, height: usize, width: usize) -> Result<Tensor> {
        let (oh, ow) = window.output_size("fold", height, width)?;
        let taps = window.taps();
        let &[n, rows, l] = self.dims() else {
            return Err(Error::invalid(
                "fold",
                format!(
                    "needs a [batch, channels * taps, positions] tensor, got shape {}",
                    self.shape()
                ),
            ));
        };
        if rows % taps != 0 || l != oh * ow {
            return Err(Error::invalid(
                "fold",
                format!(
                    "shape {} does not fit a {height}x{width} image with {taps} taps and {oh}x{ow} positions: axis 1 must be a multiple of {taps} and axis 2 must be {}",
                    self.shape(),
                    oh * ow
                ),
            ));
        }
        let c = rows / taps;
        let dims = [n, c, height, width];
        let numel = checked_numel("fold", &dims)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::fold(self, window, oh, ow, height, width);
        }
        let d = Dims {
            n,
            c,
            h: height,
            w: width,
            oh,
            ow,
        };
        Ok(with_dtype!(self.dtype(), T => {
            let mut out = alloc::with_capacity("fold", numel)?;
            fold_kernel(self.data::<T>(), d, window, &mut out);
            Tensor::from_typed(out, Shape::new(dims))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Window2d;
    use crate::{DType, Rng, Tensor};

    /// A naive direct cross-correlation of one `[1, 1, h, w]` image with a
    /// `kh x kw` kernel: the independent reference for unfold's layout.
    fn direct_conv(x: &[f64], h: usize, w: usize, k: &[f64], win: &Window2d) -> Vec<f64> {
        let (kh, kw) = win.kernel;
        let (oh, ow) = win.output_size("test", h, w).unwrap();
        let mut out = vec![0.0; oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let y = (oy * win.stride.0 + ki * win.dilation.0) as isize - win.padding.0 as isize;
                        let x_ = (ox * win.stride.1 + kj * win.dilation.1) as isize - win.padding.1 as isize;
                        if y >= 0 && x_ >= 0 && (y as usize) < h && (x_ as usize) < w {
                            out[oy * ow + ox] += k[ki * kw + kj] * x[y as usize * w + x_ as usize];
                        }
                    }
                }
            }
        }
        out
    }

    fn windows() -> Vec<Window2d> {
        vec![
            Window2d::new((3, 3)),
            Window2d::new((2, 3)).stride((2, 1)).padding((1, 2)),
            Window2d::new((3, 2)).dilation((2, 1)).padding((1, 0)).stride((1, 3)),
        ]
    }

    #[test]
    fn unfold_then_weights_match_a_direct_convolution() {
        let mut rng = Rng::new(7);
        for win in windows() {
            let (h, w) = (6, 7);
            let x = Tensor::rand_normal([1, 1, h, w], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let k = Tensor::rand_normal([1, win.taps()], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let unfolded = x.unfold(&win).unwrap();
            let cols = unfolded.reshape([win.taps(), unfolded.dims()[2]]).unwrap();
            let got = k.matmul(&cols).unwrap().to_vec::<f64>().unwrap();
            let want = direct_conv(&x.to_vec::<f64>().unwrap(), h, w, &k.to_vec::<f64>().unwrap(), &win);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-12, "{win:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <unfold(x), y> = <x, fold(y)> for random x, y.
        let mut rng = Rng::new(11);
        for win in windows() {
            let x = Tensor::rand_normal([2, 3, 5, 6], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let ux = x.unfold(&win).unwrap();
            let y = Tensor::rand_normal(ux.dims().to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let fy = y.fold(&win, 5, 6).unwrap();
            assert_eq!(fy.dims(), x.dims());
            let left: f64 = ux
                .to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(y.to_vec::<f64>().unwrap())
                .map(|(a, b)| a * b)
                .sum();
            let right: f64 = x
                .to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(fy.to_vec::<f64>().unwrap())
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (left - right).abs() < 1e-10 * left.abs().max(1.0),
                "{win:?}: {left} vs {right}"
            );
        }
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let x = Tensor::zeros([1, 1, 2, 2], DType::F64).unwrap();
        let err = x.unfold(&Window2d::new((3, 3))).unwrap_err().to_string();
        assert!(err.contains("smaller than the kernel"), "{err}");
        assert!(x.unfold(&Window2d::new((0, 1))).is_err());
        assert!(x.unfold(&Window2d::new((1, 1)).stride((0, 1))).is_err());
        assert!(Tensor::zeros([2, 2], DType::F64)
            .unwrap()
            .unfold(&Window2d::new((1, 1)))
            .is_err());
        let cols = Tensor::zeros([1, 4, 3], DType::F64).unwrap();
        assert!(
            cols.fold(&Window2d::new((2, 2)), 3, 3).is_err(),
            "3x3 with 2x2 taps has 4 positions"
        );
        assert!(
            cols.fold(&Window2d::new((3, 3)), 3, 5).is_err(),
            "4 rows are not a multiple of 9 taps"
        );
    }
}
