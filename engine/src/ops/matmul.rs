//! Matrix multiplication on the CPU through the `gemm` crate's packed,
//! register-blocked GEMM (chosen over `matrixmultiply` by the figures in
//! `bench/RESULTS.md`), single-threaded so the second core stays free. Transposed operands are passed as strides,
//! never copied.

use crate::storage::CpuSlice;
use crate::{alloc, Error, Result, Shape, Tensor};

/// A read-only matrix inside a slice: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`. A transposed view is the same
/// data with the strides swapped ([`MatRef::t`]), so GEMM reads transposed
/// operands in place instead of copying them.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// The row-major `[rows, cols]` matrix at the start of `data`.
    ///
    /// Panics if `data` holds fewer than `rows * cols` elements.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "MatRef: {rows}x{cols} needs {} elements, got {}",
            rows * cols,
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, read through swapped strides (no copy).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `start..start + len` (a view, no copy).
    ///
    /// Panics if the range is outside the matrix.
    pub fn rows(self, start: usize, len: usize) -> Self {
        assert!(
            start + len <= self.rows,
            "MatRef::rows: {start}..{} of {} rows",
            start + len,
            self.rows
        );
        let offset = if len == 0 { 0 } else { start * self.row_stride };
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            rows: len,
            ..self
        }
    }

    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn n_cols(&self) -> usize {
        self.cols
    }
}

/// `c = op(a) * op(b)` (or `c += op(a) * op(b)` when `accumulate`) into the
/// row-major `[a.rows, b.cols]` matrix `c`, through the `gemm` crate on the
/// calling thread. The views say which operand is read transposed.
///
/// Panics if the inner dimensions differ or `c` is not `a.rows * b.cols` long:
/// this is the kernel under [`Tensor::matmul_t`] and the fused training step,
/// whose callers size every buffer once.
pub fn gemm_into<T: CpuSlice>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm_into: inner dimensions {k} and {} differ", b.rows);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_into: output holds {} elements, not {m}x{n}",
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.iter_mut().for_each(|x| *x = T::zero());
        }
        return;
    }
    // Every element either view can address must lie inside its slice.
    let last = |v: &MatRef<'_, T>| (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
    assert!(
        last(&a) < a.data.len() && last(&b) < b.data.len(),
        "gemm_into: a view reaches past its slice"
    );
    // SAFETY: the asserts above keep every index gemm derives from the shapes
    // and strides inside `a.data`, `b.data` and `c` (row-major m x n). gemm
    // computes dst = alpha*dst + beta*lhs*rhs; with read_dst false dst is not
    // read. Strides are given column stride first.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The tensor `t` (shape `[r, c]`) as a view of `op(t)`.
fn view<T: CpuSlice>(t: &Tensor, transposed: bool) -> MatRef<'_, T> {
    let v = MatRef::row_major(t.data::<T>(), t.dims()[0], t.dims()[1]);
    if transposed {
        v.t()
    } else {
        v
    }
}

/// `op(a) * op(b)` into a fresh buffer of `count` (the checked `m * n`) values.
fn matmul_kernel<T: CpuSlice>(a: &Tensor, ta: bool, b: &Tensor, tb: bool, count: usize) -> Result<Tensor> {
    let (va, vb) = (view::<T>(a, ta), view::<T>(b, tb));
    let mut out = alloc::filled("matmul", count, T::zero())?;
    gemm_into(&mut out, va, vb, false);
    Ok(Tensor::from_typed(out, Shape::new([va.rows, vb.cols])))
}

impl Tensor {
    /// The matrix product `self * rhs` of `[m, k]` and `[k, n]`.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_t(false, rhs, false)
    }

    /// `op(self) * op(rhs)` where `op` transposes when its flag is set; the
    /// transpose is read through strides, not copied. This is the form the
    /// backward rule of matmul uses.
    pub fn matmul_t(&self, transpose_self: bool, rhs: &Tensor, transpose_rhs: bool) -> Result<Tensor> {
        self.check_same_kind(rhs, "matmul")?;
        if self.rank() != 2 || rhs.rank() != 2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
                hint: "both operands must be 2-D matrices",
            });
        }
        let inner_a = if transpose_self { self.dims()[0] } else { self.dims()[1] };
        let inner_b = if transpose_rhs { rhs.dims()[1] } else { rhs.dims()[0] };
        if inner_a != inner_b {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
                hint: "the inner dimensions (columns of the left, rows of the right, after transposes) must be equal",
            });
        }
        let m = if transpose_self { self.dims()[1] } else { self.dims()[0] };
        let n = if transpose_rhs { rhs.dims()[0] } else { rhs.dims()[1] };
        let count = crate::checked_numel("matmul", &[m, n])?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::matmul_t(self, transpose_self, rhs, transpose_rhs);
        }
        crate::with_dtype!(self.dtype(), T => matmul_kernel::<T>(self, transpose_self, rhs, transpose_rhs, count))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Rng, Tensor};

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_with_every_transpose() {
        let mut rng = Rng::new(5);
        let (m, k, n) = (7, 5, 3);
        let a = Tensor::rand_normal([m, k], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let b = Tensor::rand_normal([k, n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let want = naive(&a.to_vec::<f64>(), &b.to_vec::<f64>(), m, k, n);
        let close = |t: Tensor| t.to_vec::<f64>().iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(a.matmul(&b).unwrap()));
        assert!(close(a.t().unwrap().matmul_t(true, &b, false).unwrap()));
        assert!(close(a.matmul_t(false, &b.t().unwrap(), true).unwrap()));
        assert!(close(a.t().unwrap().matmul_t(true, &b.t().unwrap(), true).unwrap()));
        assert!(a.matmul(&a).is_err());
        let af = a.to_dtype(DType::F32);
        let bf = b.to_dtype(DType::F32);
        let cf = af.matmul(&bf).unwrap().to_vec::<f64>();
        assert!(cf.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
    }
}
