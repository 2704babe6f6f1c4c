//! Matrix multiplication on the CPU through the `matrixmultiply` crate's
//! packed, register-blocked GEMM. Transposed operands are passed as strides,
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

/// A GEMM kernel for one element type: `c = a * b` (c overwritten).
trait Gemm: crate::storage::CpuSlice {
    fn gemm(a: &Operand<'_, Self>, b: &Operand<'_, Self>, c: &mut [Self]);
}

macro_rules! impl_gemm {
    ($t:ty, $f:path) => {
        impl Gemm for $t {
            fn gemm(a: &Operand<'_, $t>, b: &Operand<'_, $t>, c: &mut [$t]) {
                let (m, k, n) = (a.rows, a.cols, b.cols);
                debug_assert_eq!(c.len(), m * n);
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: the operands' shapes and strides were checked against
                // their buffers' lengths by `Tensor::matmul_t`, and `c` holds
                // exactly m*n elements in row-major order.
                unsafe {
                    $f(
                        m,
                        k,
                        n,
                        1.0,
                        a.data.as_ptr(),
                        a.row_stride,
                        a.col_stride,
                        b.data.as_ptr(),
                        b.row_stride,
                        b.col_stride,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }
        }
    };
}

impl_gemm!(f32, matrixmultiply::sgemm);
impl_gemm!(f64, matrixmultiply::dgemm);

fn matmul_kernel<T: Gemm + Element>(a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Tensor {
    let (oa, ob) = (operand::<T>(a, ta), operand::<T>(b, tb));
    let mut out = vec![T::zero(); oa.rows * ob.cols];
    T::gemm(&oa, &ob, &mut out);
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
