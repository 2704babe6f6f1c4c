//! CPU GEMM comparison: the engine's `Tensor::matmul_t` (which calls the
//! `gemm` crate, `engine/src/ops/matmul.rs`) against `matrixmultiply` and
//! sarah-ek's `gemm` crate called directly, single-threaded and on 2 rayon threads, for f32
//! and f64, on the shapes an MLP hidden layer of width 256 produces.
//!
//! Run with `cargo bench -p ferrograd-bench -- matmul`.
//!
//! Benchmark ids are `matmul/<impl>_<dtype>/<m>x<k>x<n>[_<ops>]`, where
//! `C[m,n] = op(A)[m,k] * op(B)[k,n]` and `<ops>` says which operand is read
//! transposed (`tn`: A^T*B, `nt`: A*B^T; no suffix: A*B).
//!
//! Throughput is reported as `Throughput::Elements(2*m*n*k)`: one "element"
//! here is one floating-point operation (a multiply or an add), so criterion's
//! `Gelem/s` reads as GFLOP/s.
//!
//! `engine_*` includes what the engine pays per call (shape checks and the
//! allocation of a zeroed output tensor); the direct-crate entries write into a
//! preallocated buffer. `matrixmultiply_*` here is built without its
//! `threading` feature (single thread); its 2-thread numbers come from the
//! standalone crate `bench/mm-threaded` (see `bench/RESULTS.md`).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use ferrograd::engine::{DType, Rng, Tensor};
use gemm::Parallelism;
use std::time::Duration;

/// One benchmarked product: `C[m,n] = op(A) * op(B)`, with A stored row-major
/// as `[m,k]` (or `[k,m]` when `ta`) and B as `[k,n]` (or `[n,k]` when `tb`).
#[derive(Clone, Copy)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
}

impl Case {
    fn id(&self) -> String {
        let ops = match (self.ta, self.tb) {
            (false, false) => "",
            (true, false) => "_tn",
            (false, true) => "_nt",
            (true, true) => "_tt",
        };
        format!("{}x{}x{}{}", self.m, self.k, self.n, ops)
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.n * self.k) as u64
    }

    /// Stored shape of A and its (row, column) strides as an operand of `op(A)`.
    fn a_layout(&self) -> ([usize; 2], isize, isize) {
        if self.ta {
            // A stored [k, m]; op(A)[i, p] = A[p, i].
            ([self.k, self.m], 1, self.m as isize)
        } else {
            ([self.m, self.k], self.k as isize, 1)
        }
    }

    fn b_layout(&self) -> ([usize; 2], isize, isize) {
        if self.tb {
            // B stored [n, k]; op(B)[p, j] = B[j, p].
            ([self.n, self.k], 1, self.k as isize)
        } else {
            ([self.k, self.n], self.n as isize, 1)
        }
    }
}

/// The task's shapes: forward of a 256-wide hidden layer on a 128 batch,
/// both backward products, a ragged last batch of 104, and a large square.
const CASES: [Case; 5] = [
    // Y = X W: X [128,256], W [256,256].
    Case {
        m: 128,
        k: 256,
        n: 256,
        ta: false,
        tb: false,
    },
    // dW = X^T dY: X [128,256] read transposed, dY [128,256].
    Case {
        m: 256,
        k: 128,
        n: 256,
        ta: true,
        tb: false,
    },
    // dX = dY W^T: dY [128,256], W [256,256] read transposed.
    Case {
        m: 128,
        k: 256,
        n: 256,
        ta: false,
        tb: true,
    },
    // Y = X W on the ragged last batch of 104 rows.
    Case {
        m: 104,
        k: 256,
        n: 256,
        ta: false,
        tb: false,
    },
    Case {
        m: 1024,
        k: 1024,
        n: 1024,
        ta: false,
        tb: false,
    },
];

/// The direct-crate kernels for one element type.
trait Kernels: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    const DTYPE: DType;
    const TOL: f64;
    const ZERO: Self;
    fn from_tensor(t: &Tensor) -> Vec<Self>;
    fn to_f64(self) -> f64;
    /// `c = op(a) * op(b)` through `matrixmultiply::{s,d}gemm`.
    fn mm(case: &Case, a: &[Self], b: &[Self], c: &mut [Self]);
    /// `c = op(a) * op(b)` through `gemm::gemm`.
    fn gemm(case: &Case, a: &[Self], b: &[Self], c: &mut [Self], par: Parallelism);
}

macro_rules! kernels {
    ($t:ty, $name:literal, $dtype:expr, $tol:expr, $mm:path) => {
        impl Kernels for $t {
            const NAME: &'static str = $name;
            const DTYPE: DType = $dtype;
            const TOL: f64 = $tol;
            const ZERO: $t = 0.0;

            fn from_tensor(t: &Tensor) -> Vec<$t> {
                t.to_vec::<$t>().unwrap()
            }

            fn to_f64(self) -> f64 {
                self as f64
            }

            fn mm(case: &Case, a: &[$t], b: &[$t], c: &mut [$t]) {
                let Case { m, k, n, .. } = *case;
                let (_, ars, acs) = case.a_layout();
                let (_, brs, bcs) = case.b_layout();
                assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
                // SAFETY: the lengths were checked above and the strides
                // describe row-major buffers of exactly those lengths.
                unsafe {
                    $mm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        ars,
                        acs,
                        b.as_ptr(),
                        brs,
                        bcs,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }

            fn gemm(case: &Case, a: &[$t], b: &[$t], c: &mut [$t], par: Parallelism) {
                let Case { m, k, n, .. } = *case;
                let (_, ars, acs) = case.a_layout();
                let (_, brs, bcs) = case.b_layout();
                assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
                // SAFETY: as above. Note gemm's argument order: column stride
                // before row stride, and `dst = alpha*dst + beta*lhs*rhs`
                // (alpha is ignored when read_dst is false).
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        acs,
                        ars,
                        b.as_ptr(),
                        bcs,
                        brs,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        par,
                    );
                }
            }
        }
    };
}

kernels!(f32, "f32", DType::F32, 1e-3, matrixmultiply::sgemm);
kernels!(f64, "f64", DType::F64, 1e-9, matrixmultiply::dgemm);

fn assert_close<T: Kernels>(what: &str, case: &Case, got: &[T], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what} {}: length", case.id());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g = g.to_f64();
        assert!(
            approx::abs_diff_eq!(g, *w, epsilon = T::TOL * (1.0 + w.abs())),
            "{what} {} disagrees with the engine at {i}: {g} vs {w}",
            case.id()
        );
    }
}

fn bench_dtype<T: Kernels>(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    let mut rng = Rng::new(0x6e6d);
    for case in CASES {
        let large = case.flops() > 1_000_000_000;
        if large {
            // ~40-200 ms an iteration: ten flat samples keep this to seconds.
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(3));
        } else {
            group
                .sample_size(20)
                .sampling_mode(SamplingMode::Auto)
                .measurement_time(Duration::from_secs(2));
        }
        group.throughput(Throughput::Elements(case.flops()));
        let (a_shape, _, _) = case.a_layout();
        let (b_shape, _, _) = case.b_layout();
        let at = Tensor::rand_normal(a_shape, 0.0, 1.0, T::DTYPE, &mut rng).unwrap();
        let bt = Tensor::rand_normal(b_shape, 0.0, 1.0, T::DTYPE, &mut rng).unwrap();
        let (a, b) = (T::from_tensor(&at), T::from_tensor(&bt));
        let mut out = vec![T::ZERO; case.m * case.n];

        // Every implementation must agree with the engine before it is timed.
        let want = at.matmul_t(case.ta, &bt, case.tb).unwrap();
        assert_eq!(want.dims(), &[case.m, case.n]);
        let want = want.to_vec_f64().unwrap();
        T::mm(&case, &a, &b, &mut out);
        assert_close::<T>("matrixmultiply", &case, &out, &want);
        for par in [Parallelism::None, Parallelism::Rayon(2)] {
            out.iter_mut().for_each(|x| *x = T::ZERO);
            T::gemm(&case, &a, &b, &mut out, par);
            assert_close::<T>("gemm", &case, &out, &want);
        }

        let id = case.id();
        group.bench_function(BenchmarkId::new(format!("engine_{}", T::NAME), &id), |bench| {
            bench.iter(|| black_box(at.matmul_t(case.ta, black_box(&bt), case.tb).unwrap()))
        });
        group.bench_function(BenchmarkId::new(format!("matrixmultiply_{}", T::NAME), &id), |bench| {
            bench.iter(|| T::mm(&case, black_box(&a), black_box(&b), black_box(&mut out)))
        });
        group.bench_function(BenchmarkId::new(format!("gemm_{}", T::NAME), &id), |bench| {
            bench.iter(|| {
                T::gemm(
                    &case,
                    black_box(&a),
                    black_box(&b),
                    black_box(&mut out),
                    Parallelism::None,
                )
            })
        });
        group.bench_function(BenchmarkId::new(format!("gemm_{}_rayon2", T::NAME), &id), |bench| {
            bench.iter(|| {
                T::gemm(
                    &case,
                    black_box(&a),
                    black_box(&b),
                    black_box(&mut out),
                    Parallelism::Rayon(2),
                )
            })
        });
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    bench_dtype::<f32>(c);
    bench_dtype::<f64>(c);
}

criterion_group!(benches, matmul);
criterion_main!(benches);
