//! Shape ops: reshape, permute/transpose, broadcast_to, sum_to, squeeze,
//! unsqueeze, concat, narrow and its inverse pad.

use super::for_each_strided;
use crate::{alloc, checked_numel, with_dtype, Element, Error, Result, Shape, Tensor};

/// Copies `src` read through `strides` (starting at `offset`) into a new
/// row-major buffer of shape `dims` (a checked shape), allocated fallibly.
pub(crate) fn gather_strided<T: Element>(
    op: &'static str,
    src: &[T],
    offset: usize,
    strides: &[usize],
    dims: &[usize],
) -> Result<Vec<T>> {
    let mut out = alloc::with_capacity(op, dims.iter().product())?;
    match (dims.split_last(), strides.split_last()) {
        // The last axis is contiguous: copy whole runs of it.
        (Some((&run, outer_dims)), Some((1, outer_strides))) => {
            for_each_strided(outer_dims, [outer_strides], |_, [o]| {
                out.extend_from_slice(&src[offset + o..offset + o + run]);
            });
        }
        _ => for_each_strided(dims, [strides], |_, [o]| out.push(src[offset + o])),
    }
    Ok(out)
}

impl Tensor {
    /// The same elements viewed with another shape of equal size (no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_numel("reshape")? != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().clone(),
                rhs: shape,
                hint: "a reshape must keep the number of elements",
            });
        }
        Ok(self.with_shape(shape))
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if axes.len() != rank || axes.iter().any(|&a| a >= rank || std::mem::replace(&mut seen[a], true)) {
            return Err(Error::invalid(
                "permute",
                format!("{axes:?} is not a permutation of 0..{rank}"),
            ));
        }
        let in_strides = self.shape().strides();
        let dims: Vec<usize> = axes.iter().map(|&a| self.dims()[a]).collect();
        let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::permute(self, axes);
        }
        Ok(with_dtype!(self.dtype(), T => {
            Tensor::from_typed(gather_strided("permute", self.data::<T>(), 0, &strides, &dims)?, Shape::new(dims))
        }))
    }

    /// Swaps two axes (negative axes count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (self.shape().axis("transpose", a)?, self.shape().axis("transpose", b)?);
        let mut axes: Vec<usize> = (0..self.rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// The transpose of a matrix (swaps the last two axes).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs rank >= 2, got shape {}", self.shape()),
            ));
        }
        self.transpose(-2, -1)
    }

    /// Materialises this tensor broadcast to `shape` (NumPy rules).
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let joint = self.shape().broadcast(&shape, "broadcast_to")?;
        if joint != shape {
            return Err(Error::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape().clone(),
                rhs: shape,
                hint: "the target must be a broadcast of the source (dims equal, or source dim 1)",
            });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::broadcast_to(self, &shape);
        }
        let strides = self.shape().broadcast_strides(&shape);
        let layout = super::layout(self.shape(), &shape);
        let n = shape.numel(); // checked by the broadcast above
        let op = "broadcast_to";
        Ok(with_dtype!(self.dtype(), T => {
            let src = self.data::<T>();
            let data: Vec<T> = match layout {
                super::Layout::Tail(len) => {
                    let mut data = alloc::with_capacity(op, n)?;
                    for _ in 0..n / len {
                        data.extend_from_slice(&src[..len]);
                    }
                    data
                }
                super::Layout::Spread(inner) => {
                    let mut data = alloc::with_capacity(op, n)?;
                    for &v in src {
                        data.resize(data.len() + inner, v);
                    }
                    data
                }
                _ => gather_strided(op, src, 0, &strides, shape.dims())?,
            };
            Tensor::from_typed(data, shape)
        }))
    }

    /// Sums over the axes that broadcasting to this tensor's shape would have
    /// stretched, giving a tensor of `shape` (the adjoint of `broadcast_to`).
    pub fn sum_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let joint = shape.broadcast(self.shape(), "sum_to")?;
        if &joint != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "sum_to",
                lhs: self.shape().clone(),
                rhs: shape,
                hint: "the target must broadcast to the source",
            });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let lead = self.rank() - shape.rank();
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&i| i < lead || shape.dims()[i - lead] == 1)
            .map(|i| i as isize)
            .collect();
        self.sum(Some(&axes), true)?.reshape(shape)
    }

    /// Removes axis `axis`, which must have size 1.
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        let a = self.shape().axis("squeeze", axis)?;
        if self.dims()[a] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("axis {a} of shape {} has size {}, not 1", self.shape(), self.dims()[a]),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims.remove(a);
        self.reshape(dims)
    }

    /// Inserts a new axis of size 1 at position `axis` (0..=rank; negative counts from the end).
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        let rank = self.rank() as isize;
        let a = if axis < 0 { axis + rank + 1 } else { axis };
        if a < 0 || a > rank {
            return Err(Error::InvalidAxis {
                op: "unsqueeze",
                axis,
                rank: self.rank() + 1,
            });
        }
        let mut dims = self.dims().to_vec();
        dims.insert(a as usize, 1);
        self.reshape(dims)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    pub fn concat(tensors: &[Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        let a = first.shape().axis("concat", axis)?;
        for t in &tensors[1..] {
            first.check_same_kind(t, "concat")?;
            let same_rest = t.rank() == first.rank()
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (x, y))| i == a || x == y);
            if !same_rest {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                    hint: "all dimensions except the concat axis must be equal",
                });
            }
        }
        let mut dims = first.dims().to_vec();
        dims[a] = tensors
            .iter()
            .try_fold(0usize, |acc, t| acc.checked_add(t.dims()[a]))
            .unwrap_or(usize::MAX);
        let n = checked_numel("concat", &dims)?;
        #[cfg(feature = "cuda")]
        if first.is_cuda() {
            return crate::cuda::ops::concat(tensors, a);
        }
        let outer: usize = first.dims()[..a].iter().product();
        let inner: usize = first.dims()[a + 1..].iter().product();
        Ok(with_dtype!(first.dtype(), T => {
            let mut out: Vec<T> = alloc::with_capacity("concat", n)?;
            for o in 0..outer {
                for t in tensors {
                    let chunk = t.dims()[a] * inner;
                    out.extend_from_slice(&t.data::<T>()[o * chunk..(o + 1) * chunk]);
                }
            }
            Tensor::from_typed(out, Shape::new(dims))
        }))
    }

    /// The slice `start..start+len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let a = self.shape().axis("narrow", axis)?;
        let size = self.dims()[a];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} exceeds axis {a} of size {size}",
                    start.saturating_add(len)
                ),
            ));
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::narrow(self, a, start, len);
        }
        let strides = self.shape().strides();
        let mut dims = self.dims().to_vec();
        dims[a] = len;
        Ok(with_dtype!(self.dtype(), T => {
            let data = gather_strided("narrow", self.data::<T>(), start * strides[a], &strides, &dims)?;
            Tensor::from_typed(data, Shape::new(dims))
        }))
    }

    /// Adds `before` and `after` zeros along `axis` (the adjoint of `narrow`).
    pub fn pad_zeros(&self, axis: isize, before: usize, after: usize) -> Result<Tensor> {
        let a = self.shape().axis("pad_zeros", axis)?;
        let mut padded = self.dims().to_vec();
        padded[a] = padded[a]
            .checked_add(before)
            .and_then(|d| d.checked_add(after))
            .unwrap_or(usize::MAX);
        checked_numel("pad_zeros", &padded)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::pad_zeros(self, a, before, after);
        }
        let mut pieces = Vec::with_capacity(3);
        let side = |n: usize| {
            let mut dims = self.dims().to_vec();
            dims[a] = n;
            Tensor::filled("pad_zeros", Shape::new(dims), 0.0, self.dtype())
        };
        if before > 0 {
            pieces.push(side(before)?);
        }
        pieces.push(self.clone());
        if after > 0 {
            pieces.push(side(after)?);
        }
        Tensor::concat(&pieces, a as isize)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    fn t(v: Vec<f64>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s.to_vec()).unwrap()
    }

    #[test]
    fn permute_and_transpose() {
        let a = t((0..6).map(|x| x as f64).collect(), &[2, 3]);
        assert_eq!(
            a.t().unwrap().to_vec::<f64>().unwrap(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        let b = t((0..24).map(|x| x as f64).collect(), &[2, 3, 4]);
        let p = b.permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.dims(), &[4, 2, 3]);
        assert_eq!(p.get(&[3, 1, 2]).unwrap(), b.get(&[1, 2, 3]).unwrap());
        assert!(b.permute(&[0, 0, 1]).is_err());
    }

    #[test]
    fn broadcast_sum_to_roundtrip() {
        let a = t(vec![1.0, 2.0, 3.0], &[3, 1]);
        let b = a.broadcast_to([2, 3, 4]).unwrap();
        assert_eq!(b.numel(), 24);
        let s = b.sum_to([3, 1]).unwrap();
        assert_eq!(s.to_vec::<f64>().unwrap(), vec![8.0, 16.0, 24.0]);
        assert!(a.broadcast_to([2]).is_err());
    }

    #[test]
    fn broadcast_to_repeats_each_source_value_where_its_index_says() {
        // Trailing-block, spread and general layouts, against indexing.
        let cases: [(&[usize], &[usize]); 4] = [
            (&[4], &[3, 4]),
            (&[3, 1], &[3, 5]),
            (&[2, 1, 3], &[2, 4, 3]),
            (&[1], &[2, 2]),
        ];
        for (from, to) in cases {
            let n: usize = from.iter().product();
            let src = t((0..n).map(|v| v as f64 + 0.5).collect(), from);
            let out = src.broadcast_to(to.to_vec()).unwrap();
            let values = out.to_vec::<f64>().unwrap();
            let mut index = vec![0; to.len()];
            for value in values {
                let lead = to.len() - from.len();
                let at: Vec<usize> = from
                    .iter()
                    .enumerate()
                    .map(|(k, &d)| if d == 1 { 0 } else { index[lead + k] })
                    .collect();
                assert_eq!(value, src.get(&at).unwrap(), "{from:?} -> {to:?} at {index:?}");
                for axis in (0..to.len()).rev() {
                    index[axis] += 1;
                    if index[axis] < to[axis] {
                        break;
                    }
                    index[axis] = 0;
                }
            }
        }
    }

    #[test]
    fn a_permute_keeping_the_last_axis_moves_every_element_where_get_says() {
        let b = t((0..60).map(|x| x as f64).collect(), &[3, 4, 5]);
        let p = b.permute(&[1, 0, 2]).unwrap();
        assert_eq!(p.dims(), &[4, 3, 5]);
        for (i, j, k) in (0..4).flat_map(|i| (0..3).flat_map(move |j| (0..5).map(move |k| (i, j, k)))) {
            assert_eq!(p.get(&[i, j, k]).unwrap(), b.get(&[j, i, k]).unwrap());
        }
        let n = b.narrow(1, 1, 2).unwrap();
        assert_eq!(
            n.to_vec::<f64>().unwrap()[..10],
            [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]
        );
    }

    #[test]
    fn concat_narrow_pad() {
        let a = t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = t(vec![5.0, 6.0], &[2, 1]);
        let c = Tensor::concat(&[a.clone(), b], 1).unwrap();
        assert_eq!(c.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        assert_eq!(
            c.narrow(1, 1, 2).unwrap().to_vec::<f64>().unwrap(),
            vec![2.0, 5.0, 4.0, 6.0]
        );
        assert!(c.narrow(1, 2, 2).is_err());
        let p = a.pad_zeros(0, 1, 0).unwrap();
        assert_eq!(p.to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!(Tensor::concat(&[a, Tensor::zeros([3, 3], DType::F64).unwrap()], 1).is_err());
    }
}
