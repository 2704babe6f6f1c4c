//! Matrix multiplication on the CPU through the `gemm` crate's packed,
//! register-blocked GEMM (chosen over `matrixmultiply` by the figures in
//! `bench/RESULTS.md`), with the kernels of the instruction set that
//! [`crate::isa`] chose. The fused training step calls it on one thread per
//! half-layer; [`Tensor::matmul_t`] shares large products among the pool's
//! threads (the same bits). Transposed operands are passed as strides, never
//! copied.

use crate::isa::Isa;
use crate::storage::CpuSlice;
use crate::{alloc, Error, Result, Shape, Tensor};
use gemm_common::Parallelism;
pub(crate) use kernels::GemmKernels;

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
/// row-major `[a.rows, b.cols]` matrix `c`, on the calling thread, with the
/// active instruction set ([`crate::isa::active`]). The views say which
/// operand is read transposed.
///
/// Panics if the inner dimensions differ or `c` is not `a.rows * b.cols` long:
/// this is the kernel under [`Tensor::matmul_t`] and the fused training step,
/// whose callers size every buffer once.
pub fn gemm_into<T: CpuSlice>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool) {
    gemm_into_with(c, a, b, accumulate, crate::isa::active(), 1);
}

/// [`gemm_into`] on a chosen instruction set and up to `threads` threads of
/// the current rayon pool (`0` or `1`: the calling thread only).
///
/// The threads share out tiles of `c`, each computed whole: the `gemm`
/// crate never splits the inner (summed) dimension between threads, so the
/// result is the same bit for bit for every `threads`. It differs between
/// instruction sets (see [`crate::isa`]).
///
/// Panics as [`gemm_into`] does, and if this CPU cannot run `isa`.
pub fn gemm_into_with<T: CpuSlice>(
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    isa: Isa,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm_into: inner dimensions {k} and {} differ", b.rows);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_into: output holds {} elements, not {m}x{n}",
        c.len()
    );
    assert!(isa.is_available(), "gemm_into: this CPU cannot run {isa}");
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
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every index gemm derives from the shapes
    // and strides inside `a.data`, `b.data` and `c` (row-major m x n), and the
    // CPU runs `isa`.
    unsafe { T::gemm(isa, kernels::Product { c, a, b, accumulate }, parallelism) }
}

/// The per-type kernels, sealed: [`crate::storage::CpuSlice`] requires
/// [`GemmKernels`], which only f32 and f64 implement.
mod kernels {
    use super::MatRef;
    use crate::isa::Isa;
    use gemm_common::Parallelism;

    /// One product's operands, as [`GemmKernels::gemm`] takes them.
    pub struct Product<'a, 'b, T> {
        pub(super) c: &'a mut [T],
        pub(super) a: MatRef<'b, T>,
        pub(super) b: MatRef<'b, T>,
        pub(super) accumulate: bool,
    }

    /// The `gemm` crate's kernels for one element type, one per instruction set.
    pub trait GemmKernels: Sized {
        /// `c (+)= a b` with the kernels of `isa`.
        ///
        /// # Safety
        /// Every index the shapes and strides give lies inside its slice, and
        /// the CPU runs `isa`.
        unsafe fn gemm(isa: Isa, p: Product<'_, '_, Self>, parallelism: Parallelism);
    }

    /// Calls gemm-common's generic driver with one micro-kernel module's tables,
    /// exactly as the `gemm` crate's own per-ISA entry points do (same driver,
    /// same tables, same `N`), so that the AVX2 path computes what `gemm::gemm`
    /// computes on an AVX2 host. `dst = alpha dst + beta lhs rhs`, where
    /// `read_dst` false means dst is not read; strides are column stride first.
    macro_rules! call_gemm {
        ($simd:ty, $ukr:path, $lanes:expr, $t:ty, $p:expr, $par:expr) => {{
            use $ukr as ukr;
            let p = $p;
            gemm_common::gemm::gemm_basic_generic::<
                _,
                $t,
                { $lanes },
                { ukr::MR_DIV_N * $lanes },
                { ukr::NR },
                { ukr::MR_DIV_N },
                { ukr::H_M },
                { ukr::H_N },
            >(
                <$simd as gemm_common::simd::MixedSimd<$t, $t, $t, $t>>::try_new()
                    .expect("the CPU runs this instruction set"),
                p.a.rows,
                p.b.cols,
                p.a.cols,
                p.c.as_mut_ptr(),
                1,
                p.b.cols as isize,
                p.accumulate,
                p.a.data.as_ptr(),
                p.a.col_stride as isize,
                p.a.row_stride as isize,
                p.b.data.as_ptr(),
                p.b.col_stride as isize,
                p.b.row_stride as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                |a, b, c| a * b + c,
                &ukr::UKR,
                &ukr::H_UKR,
                false,
                $par,
            )
        }};
    }

    /// [`GemmKernels`] for a type from its `gemm-*` crate: the f32 kernels are
    /// 8 lanes wide on AVX2 and 16 on AVX-512, the f64 ones half that.
    macro_rules! gemm_kernels {
        ($t:ident, $krate:ident, $avx2_lanes:expr) => {
            impl GemmKernels for $t {
                unsafe fn gemm(isa: Isa, p: Product<'_, '_, $t>, par: Parallelism) {
                    match isa {
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx512 => call_gemm!(
                            gemm_common::simd::V4,
                            $krate::microkernel::avx512f::$t,
                            2 * $avx2_lanes,
                            $t,
                            p,
                            par
                        ),
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 => call_gemm!(
                            gemm_common::simd::V3,
                            $krate::microkernel::fma::$t,
                            $avx2_lanes,
                            $t,
                            p,
                            par
                        ),
                        _ => call_gemm!(
                            gemm_common::simd::Scalar,
                            $krate::microkernel::scalar::$t,
                            1,
                            $t,
                            p,
                            par
                        ),
                    }
                }
            }
        };
    }

    gemm_kernels!(f32, gemm_f32, 8);
    gemm_kernels!(f64, gemm_f64, 4);
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

/// Products of at least this many multiply-adds (`m * k * n`) on the general
/// path ([`Tensor::matmul_t`]) share their tiles among the rayon pool's
/// threads; smaller ones, where waking a worker costs more than it saves, run
/// on the calling thread (`bench/RESULTS.md`, issue 26). The bits are the same.
pub const GENERAL_PARALLEL_MIN: usize = 1 << 22;

/// How many threads a general-path product of `work` multiply-adds uses:
/// the pool's, when the product is large enough and the caller is not inside
/// an owned region (whose joins already keep both cores busy).
fn general_threads(work: usize) -> usize {
    if work >= GENERAL_PARALLEL_MIN && crate::ops::pair_role_is_outside() {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// `op(a) * op(b)` into a fresh buffer of `count` (the checked `m * n`) values.
fn matmul_kernel<T: CpuSlice>(a: &Tensor, ta: bool, b: &Tensor, tb: bool, count: usize) -> Result<Tensor> {
    let (va, vb) = (view::<T>(a, ta), view::<T>(b, tb));
    let mut out = alloc::filled("matmul", count, T::zero())?;
    let threads = general_threads(va.rows * va.cols * vb.cols);
    gemm_into_with(&mut out, va, vb, false, crate::isa::active(), threads);
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
    use super::*;
    use crate::{DType, Rng};

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
        let want = naive(&a.to_vec::<f64>().unwrap(), &b.to_vec::<f64>().unwrap(), m, k, n);
        let close = |t: Tensor| {
            t.to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(&want)
                .all(|(x, y)| (x - y).abs() < 1e-12)
        };
        assert!(close(a.matmul(&b).unwrap()));
        assert!(close(a.t().unwrap().matmul_t(true, &b, false).unwrap()));
        assert!(close(a.matmul_t(false, &b.t().unwrap(), true).unwrap()));
        assert!(close(a.t().unwrap().matmul_t(true, &b.t().unwrap(), true).unwrap()));
        assert!(a.matmul(&a).is_err());
        let af = a.to_dtype(DType::F32).unwrap();
        let bf = b.to_dtype(DType::F32).unwrap();
        let cf = af.matmul(&bf).unwrap().to_vec::<f64>().unwrap();
        assert!(cf.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
    }

    /// Random `[rows, cols]` f32 values in [-1, 1).
    fn random(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..rows * cols).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect()
    }

    /// `op(a) op(b)` on `isa` and `threads` threads of a fresh pool.
    fn product(isa: Isa, threads: usize, a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Vec<f32> {
        let mut c = vec![0.0f32; a.n_rows() * b.n_cols()];
        crate::ops::with_threads(threads, || gemm_into_with(&mut c, a, b, false, isa, threads));
        c
    }

    /// The shapes the checks below run: the task's (forward, weight
    /// gradient read transposed, input gradient read transposed, the ragged
    /// last batch), odd sizes that leave every kernel a remainder, and an
    /// inner dimension past 512, which the `gemm` crate cuts into blocks.
    const SHAPES: [(usize, usize, usize, bool, bool); 7] = [
        (128, 256, 256, false, false),
        (256, 128, 256, true, false),
        (128, 256, 256, false, true),
        (104, 256, 256, false, false),
        (7, 5, 3, false, false),
        (33, 17, 65, true, true),
        (150, 1100, 130, false, false),
    ];

    /// Row-major data for `op(X)` of `[rows, cols]`, and its view.
    fn operand(rows: usize, cols: usize, transposed: bool, seed: u64) -> (Vec<f32>, bool, usize, usize) {
        let (r, c) = if transposed { (cols, rows) } else { (rows, cols) };
        (random(r, c, seed), transposed, r, c)
    }

    fn view_of(data: &(Vec<f32>, bool, usize, usize)) -> MatRef<'_, f32> {
        let v = MatRef::row_major(&data.0, data.2, data.3);
        if data.1 {
            v.t()
        } else {
            v
        }
    }

    /// Every available instruction set against an f64 reference, within
    /// the bound every summation order obeys: `|c - exact| <= (k + 2) u
    /// sum |a| |b|` with `u = 2^-24`. That is the tolerance the
    /// determinism policy states between instruction sets.
    #[test]
    fn every_isa_agrees_with_the_exact_product_within_the_stated_bound() {
        for (m, k, n, ta, tb) in SHAPES {
            let (da, db) = (operand(m, k, ta, 1), operand(k, n, tb, 2));
            let (a, b) = (view_of(&da), view_of(&db));
            for isa in Isa::available() {
                let c = product(isa, 1, a, b);
                for i in 0..m {
                    for j in 0..n {
                        let at = |p: usize| {
                            (
                                a.data[i * a.row_stride + p * a.col_stride] as f64,
                                b.data[p * b.row_stride + j * b.col_stride] as f64,
                            )
                        };
                        let exact: f64 = (0..k).map(|p| at(p).0 * at(p).1).sum();
                        let scale: f64 = (0..k).map(|p| (at(p).0 * at(p).1).abs()).sum();
                        let bound = (k as f64 + 2.0) * f64::powi(2.0, -24) * scale;
                        let err = (c[i * n + j] as f64 - exact).abs();
                        assert!(err <= bound, "{isa} {m}x{k}x{n}: c[{i},{j}] off by {err:e} > {bound:e}");
                    }
                }
            }
        }
    }

    /// The dispatch runs the path it names: `gemm_into` under each
    /// [`crate::isa::set`] gives that path's bits, and AVX-512 and AVX2 do
    /// give different bits somewhere, so a dispatch that ignored the choice
    /// would fail here. (They differ only where the `gemm` crate vectorises
    /// along the summed dimension: products with at most 256 outputs, such as
    /// the task's output layer, and matrix-vector products. Its main kernel
    /// keeps one output per lane and adds the terms of each in order, so
    /// larger products agree bit for bit.)
    #[test]
    fn the_dispatch_runs_each_available_path() {
        let before = crate::isa::active();
        let mut seen: Vec<(Isa, Vec<Vec<u32>>)> = Vec::new();
        for isa in Isa::available() {
            crate::isa::set(isa).unwrap();
            assert_eq!(crate::isa::active(), isa);
            let mut all = Vec::new();
            for (m, k, n, ta, tb) in SHAPES
                .into_iter()
                .chain([(2, 256, 128, false, true), (256, 128, 1, false, true)])
            {
                let (da, db) = (operand(m, k, ta, 3), operand(k, n, tb, 4));
                let (a, b) = (view_of(&da), view_of(&db));
                let mut c = vec![0.0f32; m * n];
                gemm_into(&mut c, a, b, false);
                let bits: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                let want: Vec<u32> = product(isa, 1, a, b).iter().map(|v| v.to_bits()).collect();
                assert_eq!(bits, want, "{isa} {m}x{k}x{n}");
                all.push(bits);
            }
            seen.push((isa, all));
        }
        crate::isa::set(before).unwrap();
        for (i, (x, bx)) in seen.iter().enumerate() {
            for (y, by) in &seen[i + 1..] {
                let differ: Vec<usize> = (0..bx.len()).filter(|&s| bx[s] != by[s]).collect();
                eprintln!("{x} vs {y}: shapes that differ {differ:?}");
                assert!(
                    !differ.is_empty(),
                    "{x} and {y} gave the same bits everywhere: one path did not run"
                );
            }
        }
    }

    /// Two threads give the bits of one on every path and shape (the
    /// crate shares out tiles of C, never the summed dimension), also when
    /// accumulating into C.
    #[test]
    fn the_thread_count_does_not_change_the_bits() {
        for (m, k, n, ta, tb) in SHAPES {
            let (da, db) = (operand(m, k, ta, 5), operand(k, n, tb, 6));
            let (a, b) = (view_of(&da), view_of(&db));
            for isa in Isa::available() {
                let one = product(isa, 1, a, b);
                assert_eq!(one, product(isa, 2, a, b), "{isa} {m}x{k}x{n}");
                let start = random(m, n, 7);
                let mut acc = [start.clone(), start];
                for (c, threads) in acc.iter_mut().zip([1, 2]) {
                    crate::ops::with_threads(threads, || gemm_into_with(c, a, b, true, isa, threads));
                }
                assert_eq!(acc[0], acc[1], "{isa} {m}x{k}x{n} accumulating");
            }
        }
    }
}
