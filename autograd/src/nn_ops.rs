//! The ops of the normalisation, dropout and embedding layers:
//! [`Var::layer_norm`], [`Var::dropout`] (with [`dropout_mask`] and
//! [`Var::dropout_with_mask`]) and [`Var::embedding`].
//!
//! Each is a composite: its graph records existing kinds (sum, mul, rsqrt,
//! index_select, ...), so its backward rule, forward (JVP) rule and second
//! derivatives are theirs, and it runs on every device they run on, the GPU
//! included. A fused kernel may replace one later; the registry's gradient
//! checks (`layer_norm`, `dropout`, `embedding`) pin down what it computes.

use crate::Var;
use ferrograd_engine::{Draw, Error, Result, Shape, Tensor};

/// An error unless `p` is a probability in `[0, 1]`.
fn check_probability(op: &'static str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(
            op,
            format!("the drop probability must be in [0, 1], got {p}; pass e.g. 0.1 for 10% of elements dropped"),
        ));
    }
    Ok(())
}

/// A dropout mask of `shape`: each element 1 (kept) with probability
/// `1 - p`, else 0, drawn in row-major order from `rng`, as f64 on the CPU.
/// The same generator state gives the same mask.
pub fn dropout_mask(shape: impl Into<Shape>, p: f64, rng: &mut (impl Draw + ?Sized)) -> Result<Tensor> {
    check_probability("dropout", p)?;
    let shape = shape.into();
    let n = shape.checked_numel("dropout")?;
    let keep: Vec<f64> = (0..n).map(|_| if rng.uniform() >= p { 1.0 } else { 0.0 }).collect();
    Tensor::from_vec(keep, shape)
}

impl Var {
    /// Layer normalisation over the trailing axes `normalized_shape`
    /// (PyTorch's `F.layer_norm`): each group of those axes is shifted to
    /// mean 0 and scaled by `1 / sqrt(biased variance + eps)`, then
    /// multiplied by `weight` and shifted by `bias` (each of
    /// `normalized_shape`) when given.
    ///
    /// Errors: an empty `normalized_shape`, one that is not the input's
    /// trailing dimensions, a weight or bias of another shape, or an `eps`
    /// that is negative or not finite.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f64,
    ) -> Result<Var> {
        check_normalized_shape(self.shape(), normalized_shape)?;
        for (what, affine) in [("weight", weight), ("bias", bias)] {
            if let Some(t) = affine {
                check_affine(what, t, normalized_shape)?;
            }
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::invalid(
                "layer_norm",
                format!("eps must be finite and >= 0, got {eps}; PyTorch's default is 1e-5"),
            ));
        }
        let rank = self.shape().rank();
        let axes: Vec<isize> = (rank - normalized_shape.len()..rank).map(|a| a as isize).collect();
        let centered = self.sub(&self.mean(Some(&axes), true)?)?;
        let variance = centered.square()?.mean(Some(&axes), true)?;
        let mut y = centered.mul(&variance.add_scalar(eps)?.rsqrt()?)?;
        if let Some(w) = weight {
            y = y.mul(w)?;
        }
        if let Some(b) = bias {
            y = y.add(b)?;
        }
        Ok(y)
    }

    /// Dropout (PyTorch's `F.dropout`): in training mode each element is
    /// zeroed with probability `p` (the mask drawn from `rng` by
    /// [`dropout_mask`]) and the kept ones scaled by `1 / (1 - p)`, so the
    /// expected output is the input; in evaluation mode (`training` false)
    /// the input itself, and `rng` is not drawn from. `p = 1` gives zeros.
    pub fn dropout(&self, p: f64, training: bool, rng: &mut (impl Draw + ?Sized)) -> Result<Var> {
        check_probability("dropout", p)?;
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let mask = dropout_mask(self.shape().clone(), p, rng)?;
        self.dropout_with_mask(&mask, p)
    }

    /// Dropout with a given `mask` (1 keeps an element, 0 drops it; of the
    /// input's shape, any dtype and device): `x * mask / (1 - p)`, or zeros
    /// for `p = 1`. A fixed mask makes dropout a deterministic function, as
    /// its gradient check needs.
    pub fn dropout_with_mask(&self, mask: &Tensor, p: f64) -> Result<Var> {
        check_probability("dropout", p)?;
        if mask.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "dropout",
                lhs: self.shape().clone(),
                rhs: mask.shape().clone(),
                hint: "the mask must have the input's shape",
            });
        }
        if p == 1.0 {
            return self.mul_scalar(0.0);
        }
        let scaled = mask.to_dtype(self.dtype())?.mul_scalar(1.0 / (1.0 - p));
        self.mul(&Var::constant(scaled?.to_device(self.device())?))
    }

    /// Embedding lookup (PyTorch's `F.embedding`), with `self` the
    /// `[num_embeddings, embedding_dim]` table: the rows named by `indices`,
    /// shaped `index_dims ++ [embedding_dim]` (`indices` holds
    /// `index_dims`' elements, row-major). A row picked several times gets
    /// the sum of their gradients.
    ///
    /// Errors: a table that is not a matrix, `indices` of another length
    /// than `index_dims` holds, or an index past the table's rows
    /// ([`Error::IndexOutOfRange`]).
    pub fn embedding(&self, indices: &[usize], index_dims: &[usize]) -> Result<Var> {
        let &[rows, dim] = self.dims() else {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "the table must be [num_embeddings, embedding_dim], got shape {}",
                    self.shape()
                ),
            ));
        };
        let index_shape = Shape::new(index_dims.to_vec());
        let expected = index_shape.checked_numel("embedding")?;
        if expected != indices.len() {
            return Err(Error::LengthMismatch {
                op: "embedding",
                shape: index_shape,
                expected,
                got: indices.len(),
            });
        }
        if let Some(&index) = indices.iter().find(|&&i| i >= rows) {
            return Err(Error::IndexOutOfRange {
                op: "embedding",
                index,
                size: rows,
            });
        }
        let mut out_dims = index_dims.to_vec();
        out_dims.push(dim);
        self.index_select(indices)?.reshape(out_dims)
    }
}

/// An error unless `normalized_shape` is non-empty and the trailing
/// dimensions of `input`.
fn check_normalized_shape(input: &Shape, normalized_shape: &[usize]) -> Result<()> {
    let dims = input.dims();
    let fits = !normalized_shape.is_empty()
        && normalized_shape.len() <= dims.len()
        && dims[dims.len() - normalized_shape.len()..] == *normalized_shape;
    if !fits {
        return Err(Error::ShapeMismatch {
            op: "layer_norm",
            lhs: input.clone(),
            rhs: Shape::new(normalized_shape.to_vec()),
            hint: "normalized_shape must be non-empty and equal the input's trailing dimensions",
        });
    }
    Ok(())
}

/// An error unless the affine `weight` or `bias` has `normalized_shape`.
fn check_affine(what: &str, t: &Var, normalized_shape: &[usize]) -> Result<()> {
    if t.dims() != normalized_shape {
        return Err(Error::ShapeMismatch {
            op: "layer_norm",
            lhs: Shape::new(normalized_shape.to_vec()),
            rhs: t.shape().clone(),
            hint: if what == "weight" {
                "the weight must have normalized_shape"
            } else {
                "the bias must have normalized_shape"
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_engine::Rng;

    fn var(values: &[f64], dims: &[usize]) -> Var {
        Var::parameter(Tensor::from_vec(values.to_vec(), dims.to_vec()).unwrap())
    }

    #[test]
    fn layer_norm_refuses_shapes_that_are_not_trailing_and_bad_eps() {
        let x = var(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        for shape in [&[][..], &[2][..], &[2, 2][..], &[1, 2, 3][..]] {
            let err = x.layer_norm(shape, None, None, 1e-5).unwrap_err();
            assert!(
                matches!(err, Error::ShapeMismatch { op: "layer_norm", .. }),
                "{shape:?}: {err}"
            );
        }
        let wrong = var(&[1.0, 1.0], &[2]);
        assert!(x.layer_norm(&[3], Some(&wrong), None, 1e-5).is_err());
        assert!(x.layer_norm(&[3], None, Some(&wrong), 1e-5).is_err());
        assert!(x.layer_norm(&[3], None, None, -1.0).is_err());
        assert!(x.layer_norm(&[3], None, None, f64::NAN).is_err());
        // [1, 2, 3]: mean 2, biased variance 2/3.
        let y = x
            .layer_norm(&[3], None, None, 0.0)
            .unwrap()
            .value()
            .to_vec::<f64>()
            .unwrap();
        let s = (2.0f64 / 3.0).sqrt();
        for (got, want) in y.iter().zip([-1.0 / s, 0.0, 1.0 / s, -1.0 / s, 0.0, 1.0 / s]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn dropout_checks_p_and_the_mask_shape_and_gives_zeros_at_p_one() {
        let x = var(&[1.0, -2.0, 3.0], &[3]);
        let mut rng = Rng::new(0);
        for p in [-0.5, 1.5, f64::NAN] {
            assert!(x.dropout(p, true, &mut rng).is_err(), "p = {p}");
        }
        let ones = Tensor::from_vec(vec![1.0, 1.0, 1.0], [3]).unwrap();
        assert_eq!(
            x.dropout_with_mask(&ones, 1.0)
                .unwrap()
                .value()
                .to_vec::<f64>()
                .unwrap(),
            [0.0; 3]
        );
        let short = Tensor::from_vec(vec![1.0, 0.0], [2]).unwrap();
        assert!(matches!(
            x.dropout_with_mask(&short, 0.5),
            Err(Error::ShapeMismatch { .. })
        ));
        let mask = Tensor::from_vec(vec![1.0, 0.0, 1.0], [3]).unwrap();
        assert_eq!(
            x.dropout_with_mask(&mask, 0.5)
                .unwrap()
                .value()
                .to_vec::<f64>()
                .unwrap(),
            [2.0, 0.0, 6.0]
        );
        let before = rng.state();
        assert_eq!(
            x.dropout(0.5, false, &mut rng)
                .unwrap()
                .value()
                .to_vec::<f64>()
                .unwrap(),
            [1.0, -2.0, 3.0]
        );
        assert_eq!(rng.state(), before, "evaluation mode draws nothing");
    }

    #[test]
    fn embedding_refuses_bad_tables_lengths_and_indices() {
        let table = var(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2]);
        let err = table.embedding(&[0, 3], &[2]).unwrap_err();
        assert_eq!(
            err,
            Error::IndexOutOfRange {
                op: "embedding",
                index: 3,
                size: 3
            }
        );
        assert!(matches!(
            table.embedding(&[0, 1], &[3]),
            Err(Error::LengthMismatch { op: "embedding", .. })
        ));
        let flat = var(&[0.0, 1.0], &[2]);
        assert!(flat.embedding(&[0], &[1]).is_err());
        let rows = table.embedding(&[2, 0], &[2, 1]).unwrap();
        assert_eq!(rows.dims(), [2, 1, 2]);
        assert_eq!(rows.value().to_vec::<f64>().unwrap(), [4.0, 5.0, 0.0, 1.0]);
    }
}
