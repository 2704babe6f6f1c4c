//! [`Shape`]: the dimensions of a tensor, and the broadcasting rules.

use crate::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// The dimensions of a tensor, outermost first (row-major). A rank-0 shape
/// (`[]`) is a scalar and holds one element.
///
/// The dimensions live behind a reference count, so cloning a shape (and so
/// a tensor) allocates nothing: the training step hands clones of every
/// parameter to the optimizer each step and must not touch the heap doing so.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Arc<[usize]>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape::from(dims.into())
    }

    /// The shape of a scalar.
    pub fn scalar() -> Self {
        Shape(Arc::from([]))
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims().len()
    }

    /// The number of elements (1 for a scalar).
    ///
    /// Exact for the shape of any tensor (every constructor checks its shape
    /// with [`Shape::checked_numel`]); for a shape from outside, whose
    /// product may overflow, use [`Shape::checked_numel`].
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// The number of elements, or [`Error::TooManyElements`] (naming `op`)
    /// if it exceeds [`crate::MAX_ELEMENTS`]. See [`checked_numel`].
    pub fn checked_numel(&self, op: &'static str) -> Result<usize> {
        checked_numel(op, self.dims())
    }

    /// Row-major strides, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.rank()];
        let mut acc = 1;
        for (s, d) in strides.iter_mut().zip(self.dims()).rev() {
            *s = acc;
            acc *= d;
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) to an index.
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(Error::InvalidAxis {
                op,
                axis,
                rank: self.rank(),
            });
        }
        Ok(resolved as usize)
    }

    /// Resolves a list of axes; `None` means all axes. Rejects duplicates.
    pub fn axes(&self, op: &'static str, axes: Option<&[isize]>) -> Result<Vec<usize>> {
        let mut out: Vec<usize> = match axes {
            None => (0..self.rank()).collect(),
            Some(list) => list.iter().map(|&a| self.axis(op, a)).collect::<Result<_>>()?,
        };
        out.sort_unstable();
        let before = out.len();
        out.dedup();
        if out.len() != before {
            return Err(Error::invalid(op, "an axis is listed twice; list each axis once"));
        }
        Ok(out)
    }

    /// The NumPy broadcast of two shapes: align on the right, each pair of
    /// dimensions must be equal or one of them 1. Fails with
    /// [`Error::TooManyElements`] if the broadcast shape holds more than
    /// [`crate::MAX_ELEMENTS`] elements (`[2^30, 1]` against `[1, 2^30]`).
    pub fn broadcast(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let rank = self.rank().max(other.rank());
        let mut dims = vec![0; rank];
        for (i, d) in dims.iter_mut().enumerate() {
            let a = dim_from_right(self, rank - 1 - i);
            let b = dim_from_right(other, rank - 1 - i);
            *d = match (a, b) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: self.clone(),
                        rhs: other.clone(),
                        hint: "each pair of trailing dimensions must be equal or 1 (NumPy broadcasting)",
                    })
                }
            };
        }
        checked_numel(op, &dims)?;
        Ok(Shape::from(dims))
    }

    /// Strides for reading this shape as if broadcast to `target` (0 where a
    /// dimension is stretched). `target` must be a valid broadcast of `self`.
    pub fn broadcast_strides(&self, target: &Shape) -> Vec<usize> {
        let own = self.strides();
        let offset = target.rank() - self.rank();
        (0..target.rank())
            .map(|i| {
                if i < offset || self.dims()[i - offset] == 1 {
                    0
                } else {
                    own[i - offset]
                }
            })
            .collect()
    }
}

/// The element count of a tensor with dimensions `dims`: the one place
/// where the engine turns dimensions into a count, so every constructor and
/// op that sizes a buffer from dimensions goes through it before it
/// allocates.
///
/// Fails with [`Error::TooManyElements`] (naming `op`, the shape and the
/// limit) when the product of the non-zero dimensions exceeds
/// [`crate::MAX_ELEMENTS`] or overflows `usize`. A zero dimension makes the
/// count 0 but does not excuse the others: strides and partial products of
/// a tensor's shape must stay in range too, so `[0, 2^41]` is refused.
///
/// ```
/// use ferrograd_engine::{checked_numel, Error, MAX_ELEMENTS};
/// assert_eq!(checked_numel("doc", &[2, 3, 4])?, 24);
/// assert_eq!(checked_numel("doc", &[])?, 1);
/// assert_eq!(checked_numel("doc", &[1 << 20, 1 << 20])?, MAX_ELEMENTS);
/// let err = checked_numel("doc", &[1 << 32, 1 << 32]).unwrap_err();
/// assert!(matches!(err, Error::TooManyElements { .. }), "{err}");
/// # Ok::<(), Error>(())
/// ```
pub fn checked_numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    let limit = crate::MAX_ELEMENTS;
    let nonzero = dims
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d).filter(|&n| n <= limit));
    match nonzero {
        Some(_) if dims.contains(&0) => Ok(0),
        Some(n) => Ok(n),
        None => Err(Error::TooManyElements {
            op,
            shape: Shape::from(dims),
            limit,
        }),
    }
}

/// The dimension `k` places from the right, or 1 past the shape's rank.
fn dim_from_right(shape: &Shape, k: usize) -> usize {
    if k < shape.rank() {
        shape.dims()[shape.rank() - 1 - k]
    } else {
        1
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(Arc::from(d))
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(Arc::from(d))
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(Arc::from(d.as_slice()))
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let a = Shape::new([3, 1, 5]);
        let b = Shape::new([4, 5]);
        assert_eq!(a.broadcast(&b, "t").unwrap(), Shape::new([3, 4, 5]));
        assert!(Shape::new([3]).broadcast(&Shape::new([4]), "t").is_err());
        assert_eq!(
            Shape::new([4, 5]).broadcast_strides(&Shape::new([3, 4, 5])),
            vec![0, 5, 1]
        );
    }

    #[test]
    fn shapes_compare_by_value_and_clone_cheaply() {
        let small = Shape::new([2, 3, 4]);
        let big = Shape::new(vec![1, 2, 1, 2, 1, 2, 1, 2]);
        assert_eq!(small.dims(), &[2, 3, 4]);
        assert_eq!((big.rank(), big.numel()), (8, 16));
        assert_eq!(small.clone(), Shape::from(&[2usize, 3, 4][..]));
        assert_ne!(small, Shape::new([2, 3]));
        assert_eq!(Shape::default(), Shape::scalar());
        assert_eq!(Shape::scalar().numel(), 1);
        assert_eq!(format!("{big}"), "[1, 2, 1, 2, 1, 2, 1, 2]");
        let copy = small.clone();
        assert!(std::ptr::eq(copy.dims(), small.dims()), "a clone shares the dimensions");
    }

    #[test]
    fn negative_axes_resolve() {
        let s = Shape::new([2, 3, 4]);
        assert_eq!(s.axis("t", -1).unwrap(), 2);
        assert!(s.axis("t", 3).is_err());
        assert!(s.axes("t", Some(&[0, -3])).is_err());
    }
}
