//! Indexing ops: `index_select` of rows and its adjoint `index_add`;
//! `gather` of one column per row (class labels) and its adjoint `scatter`.

use crate::storage::CpuSlice;
use crate::{alloc, checked_numel, with_dtype, Element, Error, Result, Shape, Tensor};
use num_traits::Zero;

fn check_indices(op: &'static str, indices: &[usize], size: usize) -> Result<()> {
    match indices.iter().find(|&&i| i >= size) {
        Some(&index) => Err(Error::IndexOutOfRange { op, index, size }),
        None => Ok(()),
    }
}

/// The output buffer of the rows `indices` of rows of `row_len` values;
/// `n` is the output's checked element count.
fn select_rows<T: CpuSlice>(src: &[T], row_len: usize, indices: &[usize], n: usize) -> Result<Vec<T>> {
    let mut out = alloc::with_capacity("index_select", n)?;
    for &i in indices {
        out.extend_from_slice(&src[i * row_len..(i + 1) * row_len]);
    }
    Ok(out)
}

/// `rows` rows of `row_len` zeros with row `k` of `src` added into row
/// `indices[k]`; `n` is the output's checked element count.
fn add_rows<T: CpuSlice + Element>(src: &[T], row_len: usize, indices: &[usize], n: usize) -> Result<Vec<T>> {
    let mut out = alloc::filled("index_add", n, T::zero())?;
    for (k, &i) in indices.iter().enumerate() {
        for (o, &v) in out[i * row_len..(i + 1) * row_len]
            .iter_mut()
            .zip(&src[k * row_len..(k + 1) * row_len])
        {
            *o = *o + v;
        }
    }
    Ok(out)
}

impl Tensor {
    /// The rows (entries of axis 0) listed in `indices`, in that order.
    pub fn index_select(&self, indices: &[usize]) -> Result<Tensor> {
        if self.rank() == 0 {
            return Err(Error::invalid("index_select", "needs a tensor of rank >= 1"));
        }
        check_indices("index_select", indices, self.dims()[0])?;
        let mut dims = self.dims().to_vec();
        dims[0] = indices.len();
        let n = checked_numel("index_select", &dims)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::index_select(self, indices);
        }
        let row_len: usize = self.dims()[1..].iter().product();
        Ok(with_dtype!(self.dtype(), T => {
            Tensor::from_typed(select_rows(self.data::<T>(), row_len, indices, n)?, Shape::new(dims))
        }))
    }

    /// A tensor with `rows` rows, zero except that row `k` of `self` is added
    /// into row `indices[k]` (the adjoint of `index_select`).
    pub fn index_add(&self, indices: &[usize], rows: usize) -> Result<Tensor> {
        if self.rank() == 0 || self.dims()[0] != indices.len() {
            return Err(Error::invalid(
                "index_add",
                format!(
                    "needs one index per row: shape {} with {} indices",
                    self.shape(),
                    indices.len()
                ),
            ));
        }
        check_indices("index_add", indices, rows)?;
        let mut dims = self.dims().to_vec();
        dims[0] = rows;
        let n = checked_numel("index_add", &dims)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::index_add(self, indices, rows);
        }
        let row_len: usize = self.dims()[1..].iter().product();
        Ok(with_dtype!(self.dtype(), T => {
            Tensor::from_typed(add_rows(self.data::<T>(), row_len, indices, n)?, Shape::new(dims))
        }))
    }

    /// For a `[n, c]` matrix and `n` labels, the `[n]` vector `x[i, labels[i]]`
    /// (how cross-entropy picks each sample's class score).
    pub fn gather(&self, labels: &[usize]) -> Result<Tensor> {
        let (n, c) = self.matrix_dims("gather")?;
        if labels.len() != n {
            return Err(Error::invalid(
                "gather",
                format!("{} labels for {n} rows; pass one label per row", labels.len()),
            ));
        }
        check_indices("gather", labels, c)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::gather(self, labels);
        }
        Ok(with_dtype!(self.dtype(), T => {
            let x = self.data::<T>();
            Tensor::from_typed(labels.iter().enumerate().map(|(i, &l)| x[i * c + l]).collect(), Shape::new([n]))
        }))
    }

    /// For an `[n]` vector and `n` labels, the `[n, classes]` matrix that is
    /// zero except `out[i, labels[i]] = self[i]` (the adjoint of `gather`).
    pub fn scatter(&self, labels: &[usize], classes: usize) -> Result<Tensor> {
        if self.rank() != 1 || self.dims()[0] != labels.len() {
            return Err(Error::invalid(
                "scatter",
                format!(
                    "needs a vector with one value per label: shape {} with {} labels",
                    self.shape(),
                    labels.len()
                ),
            ));
        }
        check_indices("scatter", labels, classes)?;
        let n = checked_numel("scatter", &[labels.len(), classes])?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::scatter(self, labels, classes);
        }
        Ok(with_dtype!(self.dtype(), T => {
            let v = self.data::<T>();
            let mut out = alloc::filled("scatter", n, T::zero())?;
            for (i, &l) in labels.iter().enumerate() {
                out[i * classes + l] = v[i];
            }
            Tensor::from_typed(out, Shape::new([labels.len(), classes]))
        }))
    }

    /// `(rows, cols)` of a rank-2 tensor, or an error naming `op`.
    pub fn matrix_dims(&self, op: &'static str) -> Result<(usize, usize)> {
        match self.dims() {
            &[r, c] => Ok((r, c)),
            _ => Err(Error::invalid(
                op,
                format!("needs a 2-D matrix, got shape {}", self.shape()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn select_add_gather_scatter() {
        let a = Tensor::from_vec((0..6).map(|x| x as f64).collect(), [3, 2]).unwrap();
        let s = a.index_select(&[2, 0, 2]).unwrap();
        assert_eq!(s.to_vec::<f64>().unwrap(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        let back = s.index_add(&[2, 0, 2], 3).unwrap();
        assert_eq!(back.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 0.0, 0.0, 8.0, 10.0]);
        assert!(a.index_select(&[3]).is_err());
        let g = a.gather(&[1, 0, 1]).unwrap();
        assert_eq!(g.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 5.0]);
        let sc = g.scatter(&[1, 0, 1], 2).unwrap();
        assert_eq!(sc.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 2.0, 0.0, 0.0, 5.0]);
        assert!(a.gather(&[0, 2, 0]).is_err());
    }
}
