//! Matrix multiplication on the CPU through the `gemm` crate's packed,
//! register-blocked GEMM (chosen over `matrixmultiply` by the figures in
//! `bench/RESULTS.md`), single-threaded so the second core stays free. Transposed operands are passed as strides,
//! never copied.

use crate::{Element, Error, Result, Shape, Tensor};

/// A row-major matrix operand, possibly read transposed.
struct Operand<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

/// Describes `t` (shape `[r, c]`) as an operand of `op(t)`.
fn operand<T: crate::storage::CpuSlice>(t: &Tensor, transposed: bool) -> Operand<'_, T> {
    let (r, c) = (t.dims()[0], t.dims()[1]);
    if transposed {
        Operand {
            data: t.data::<T>(),
            rows: c,
            cols: r,
            row_stride: 1,
            col_stride: c as isize,
        }
    } else {
        Operand {
            data: t.data::<T>(),
            rows: r,
            cols: c,
            row_stride: c as isize,
            col_stride: 1,
        }
    }
}

/// `c = a * b` (c overwritten, row-major `[m, n]`).
fn gemm_into<T: crate::storage::CpuSlice + Element>(a: &Operand<'_, T>, b: &Operand<'_, T>, c: &mut [T]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert_eq!(c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.iter_mut().for_each(|x| *x = T::zero());
        return;
    }
    // SAFETY: the operands' shapes and strides describe their buffers (checked
    // by `Tensor::matmul_t`), and `c` holds exactly m*n elements, row-major.
    // gemm computes dst = alpha*dst + beta*lhs*rhs; with read_dst false, dst
    // is not read. Strides are given column stride first.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.col_stride,
            a.row_stride,
            b.data.as_ptr(),
            b.col_stride,
            b.row_stride,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn matmul_kernel<T: crate::storage::CpuSlice + Element + 'static>(
    a: &Tensor,
    ta: bool,
    b: &Tensor,
    tb: bool,
) -> Tensor {
    let (oa, ob) = (operand::<T>(a, ta), operand::<T>(b, tb));
    let mut out = vec![T::zero(); oa.rows * ob.cols];
    gemm_into(&oa, &ob, &mut out);
    Tensor::from_typed(out, Shape::new([oa.rows, ob.cols]))
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
        Ok(crate::with_dtype!(self.dtype(), T => matmul_kernel::<T>(self, transpose_self, rhs, transpose_rhs)))
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
