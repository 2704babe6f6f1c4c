//! `matrixmultiply` built with its `threading` feature, on the same shapes as
//! `bench/benches/matmul.rs` (see there for the id scheme and for why the
//! throughput "elements" are FLOPs: `Throughput::Elements(2*m*n*k)`).
//!
//! matrixmultiply reads `MATMUL_NUM_THREADS` once, on its first call, and keeps
//! that thread count for the life of the process (default: the number of
//! physical cores). This bench sets it to 2 when it is unset, before the first
//! call, and names its ids after the count in force: `matrixmultiply_f32_mt2`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::Duration;

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

    /// (row, column) strides of op(A) and op(B) over row-major storage.
    fn strides(&self) -> [isize; 4] {
        let (m, k, n) = (self.m as isize, self.k as isize, self.n as isize);
        let (ars, acs) = if self.ta { (1, m) } else { (k, 1) };
        let (brs, bcs) = if self.tb { (1, k) } else { (n, 1) };
        [ars, acs, brs, bcs]
    }
}

const CASES: [Case; 5] = [
    Case {
        m: 128,
        k: 256,
        n: 256,
        ta: false,
        tb: false,
    },
    Case {
        m: 256,
        k: 128,
        n: 256,
        ta: true,
        tb: false,
    },
    Case {
        m: 128,
        k: 256,
        n: 256,
        ta: false,
        tb: true,
    },
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

trait Kernel: Copy + 'static {
    const NAME: &'static str;
    const TOL: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn mm(case: &Case, a: &[Self], b: &[Self], c: &mut [Self]);
}

macro_rules! kernel {
    ($t:ty, $name:literal, $tol:expr, $mm:path) => {
        impl Kernel for $t {
            const NAME: &'static str = $name;
            const TOL: f64 = $tol;
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn mm(case: &Case, a: &[$t], b: &[$t], c: &mut [$t]) {
                let Case { m, k, n, .. } = *case;
                let [ars, acs, brs, bcs] = case.strides();
                assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
                // SAFETY: lengths checked above; the strides describe
                // row-major buffers of exactly those lengths.
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
        }
    };
}

kernel!(f32, "f32", 1e-3, matrixmultiply::sgemm);
kernel!(f64, "f64", 1e-9, matrixmultiply::dgemm);

/// Deterministic values in [-1, 1) (a 64-bit LCG's top bits).
fn fill<T: Kernel>(len: usize, seed: u64) -> Vec<T> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            T::from_f64((s >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        })
        .collect()
}

/// Checks every 61st entry of `c` against a plain dot product.
fn check<T: Kernel>(case: &Case, a: &[T], b: &[T], c: &[T]) {
    let [ars, acs, brs, bcs] = case.strides();
    for idx in (0..case.m * case.n).step_by(61) {
        let (i, j) = ((idx / case.n) as isize, (idx % case.n) as isize);
        let want: f64 = (0..case.k as isize)
            .map(|p| a[(i * ars + p * acs) as usize].to_f64() * b[(p * brs + j * bcs) as usize].to_f64())
            .sum();
        let got = c[idx].to_f64();
        assert!(
            (got - want).abs() <= T::TOL * (1.0 + want.abs()),
            "{} at {idx}: {got} vs {want}",
            case.id()
        );
    }
}

fn bench_dtype<T: Kernel>(c: &mut Criterion, threads: &str) {
    let mut group = c.benchmark_group("matmul");
    group.warm_up_time(Duration::from_secs(1));
    for (seed, case) in CASES.iter().enumerate() {
        if case.flops() > 1_000_000_000 {
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
        let a = fill::<T>(case.m * case.k, 2 * seed as u64 + 1);
        let b = fill::<T>(case.k * case.n, 2 * seed as u64 + 2);
        let mut out = vec![T::from_f64(0.0); case.m * case.n];
        T::mm(case, &a, &b, &mut out);
        check(case, &a, &b, &out);
        group.bench_function(
            BenchmarkId::new(format!("matrixmultiply_{}_mt{threads}", T::NAME), case.id()),
            |bench| bench.iter(|| T::mm(case, black_box(&a), black_box(&b), black_box(&mut out))),
        );
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // Before matrixmultiply's first call, which reads it once.
        std::env::set_var("MATMUL_NUM_THREADS", "2");
    }
    let threads = std::env::var("MATMUL_NUM_THREADS").unwrap();
    bench_dtype::<f32>(c, &threads);
    bench_dtype::<f64>(c, &threads);
}

criterion_group!(benches, matmul);
criterion_main!(benches);
