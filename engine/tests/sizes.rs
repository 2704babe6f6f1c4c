//! Size arithmetic: every element count the engine forms from dimensions is
//! checked (no silent `usize` overflow, nothing past `MAX_ELEMENTS`), and a
//! request within the limit that memory cannot hold is a typed error, never
//! an abort.
//!
//! Nothing here allocates more than a few megabytes: requests past the
//! limit fail before any memory is asked for, and the out-of-memory cases
//! run in a child process whose address space is capped (`ulimit -v`), so
//! the allocator refuses them whatever the kernel's overcommit policy.

use ferrograd_engine::{checked_numel, DType, Error, Rng, Shape, Tensor, MAX_ELEMENTS};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

const BIG: usize = 1 << 32;

/// Runs `f`, failing the test if it panics; returns its result.
fn no_panic<T>(what: &str, f: impl FnOnce() -> ferrograd_engine::Result<T>) -> ferrograd_engine::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what} panicked"))
}

/// Asserts that `f` returns [`Error::TooManyElements`] for `op`, without
/// panicking.
fn too_many<T: std::fmt::Debug>(what: &str, op: &str, f: impl FnOnce() -> ferrograd_engine::Result<T>) {
    match no_panic(what, f) {
        Err(Error::TooManyElements { op: got, limit, .. }) => {
            assert_eq!(got, op, "{what}: the error names the op");
            assert_eq!(limit, MAX_ELEMENTS, "{what}");
        }
        other => panic!("{what}: expected TooManyElements, got {other:?}"),
    }
}

#[test]
fn creation_ops_refuse_counts_that_overflow_or_pass_the_limit() {
    // 2^32 * 2^32 wraps to 0 in usize: before this check it made a tensor
    // that claimed 2^64 elements and held none.
    too_many("zeros [2^32, 2^32]", "zeros", || Tensor::zeros([BIG, BIG], DType::F32));
    too_many("ones [2^41]", "ones", || Tensor::ones([1 << 41], DType::F64));
    too_many("full [2^20, 2^20, 2]", "full", || {
        Tensor::full([1 << 20, 1 << 20, 2], 3.0, DType::F64)
    });
    too_many("eye 2^32", "eye", || Tensor::eye(BIG, DType::F64));
    too_many("eye 2^21", "eye", || Tensor::eye(1 << 21, DType::F32));
    too_many("arange(0, 1e13, 1)", "arange", || {
        Tensor::arange(0.0, 1e13, 1.0, DType::F64)
    });
    too_many("arange(-1e308, 1e308, 1)", "arange", || {
        Tensor::arange(-1e308, 1e308, 1.0, DType::F64)
    });
    let mut rng = Rng::new(0);
    too_many("rand_uniform [2^32, 2^32]", "rand_uniform", || {
        Tensor::rand_uniform([BIG, BIG], 0.0, 1.0, DType::F64, &mut rng)
    });
    too_many("rand_normal [2^41]", "rand_normal", || {
        Tensor::rand_normal([1 << 41], 0.0, 1.0, DType::F32, &mut rng)
    });
    // A refused request draws nothing: the generator is where it started.
    assert_eq!(rng, Rng::new(0));
}

#[test]
fn wrapping_counts_no_longer_pass_length_checks() {
    // [2^32, 2^32] "holds" 2^64 = 0 (mod 2^64) values: an empty buffer
    // used to be accepted for it.
    too_many("from_vec", "from_vec", || {
        Tensor::from_vec(Vec::<f64>::new(), [BIG, BIG])
    });
    too_many("from_storage", "from_storage", || {
        Tensor::from_storage(ferrograd_engine::Storage::CpuF32(vec![]), [BIG, BIG])
    });
    let empty = Tensor::zeros([0], DType::F64).unwrap();
    too_many("reshape [0] -> [2^32, 2^32]", "reshape", || empty.reshape([BIG, BIG]));
    // A zero dimension does not excuse the others (their strides overflow).
    too_many("from_vec [0, 2^41]", "from_vec", || {
        Tensor::from_vec(Vec::<f64>::new(), [0, 1 << 41])
    });
}

#[test]
fn ops_whose_output_grows_check_its_count_first() {
    let one = Tensor::ones([1], DType::F64).unwrap();
    too_many("broadcast_to [2^32, 2^32]", "broadcast_to", || {
        one.broadcast_to([BIG, BIG])
    });
    too_many("broadcast_to [2^41]", "broadcast_to", || one.broadcast_to([1 << 41]));
    // [2^20, 1] + [1, 2^21] is 2^41 elements: only the output is too big.
    let col = Tensor::zeros([1 << 20, 1], DType::F32).unwrap();
    let row = Tensor::zeros([1, 1 << 21], DType::F32).unwrap();
    too_many("[2^20, 1] + [1, 2^21]", "add", || col.add(&row));
    too_many("where over [2^20, 2^21]", "where", || {
        Tensor::where_cond(&col, &row, &col)
    });
    let small = Tensor::ones([1, 4], DType::F64).unwrap();
    too_many("pad_zeros 2^40 rows", "pad_zeros", || {
        small.pad_zeros(0, MAX_ELEMENTS, 0)
    });
    too_many("pad_zeros past usize::MAX", "pad_zeros", || {
        small.pad_zeros(1, usize::MAX, 5)
    });
    // Empty tensors cost nothing, but their shapes still add up.
    let quarter = Tensor::zeros([1 << 39, 0], DType::F64).unwrap();
    let four = vec![quarter.clone(); 4];
    too_many("concat 4 x [2^39, 0]", "concat", || Tensor::concat(&four, 0));
    too_many("index_select 4 rows of [1, 2^39, 0]", "index_select", || {
        Tensor::zeros([1, 1 << 39, 0], DType::F64)
            .unwrap()
            .index_select(&[0, 0, 0, 0])
    });
    let (left, right) = (
        Tensor::zeros([1 << 21, 0], DType::F64).unwrap(),
        Tensor::zeros([0, 1 << 21], DType::F64).unwrap(),
    );
    too_many("matmul [2^21, 0] x [0, 2^21]", "matmul", || left.matmul(&right));
    too_many("matmul_t", "matmul", || left.matmul_t(false, &left, true));
}

#[test]
fn class_and_row_counts_of_scatter_and_index_add_are_checked() {
    let v = Tensor::from_vec(vec![1.0f64, 2.0], [2]).unwrap();
    // 2 * 2^63 wraps to 0: the scatter used to index an empty buffer.
    too_many("scatter 2^63 classes", "scatter", || v.scatter(&[0, 1], 1 << 63));
    let m = Tensor::ones([2, 3], DType::F32).unwrap();
    too_many("index_add 2^63 rows", "index_add", || m.index_add(&[0, 1], 1 << 63));
    too_many("index_add 2^40 rows", "index_add", || m.index_add(&[0, 1], 1 << 40));
    // Within the limit the ops still work, with the values of before.
    let s = v.scatter(&[1, 0], 3).unwrap();
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 0.0, 2.0, 0.0, 0.0]);
}

#[test]
fn the_error_names_the_shape_the_limit_and_what_to_do() {
    let err = Tensor::zeros([BIG, BIG], DType::F64).unwrap_err();
    let text = err.to_string();
    for part in [
        "zeros",
        "[4294967296, 4294967296]",
        "1099511627776",
        "smaller dimensions",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[test]
fn the_limit_itself_is_allowed_and_counts_below_it_are_exact() {
    assert_eq!(checked_numel("t", &[1 << 20, 1 << 20]).unwrap(), MAX_ELEMENTS);
    too_many("2^40 + 1", "t", || checked_numel("t", &[MAX_ELEMENTS + 1]));
    assert_eq!(checked_numel("t", &[]).unwrap(), 1);
    assert_eq!(checked_numel("t", &[3, 0, 5]).unwrap(), 0);
    assert_eq!(Shape::new([2, 3, 4]).checked_numel("t").unwrap(), 24);
    let t = Tensor::eye(3, DType::F32).unwrap();
    assert_eq!(
        t.to_vec::<f32>().unwrap(),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    let a = Tensor::arange(1.0, 2.0, 0.25, DType::F32).unwrap();
    assert_eq!(a.to_vec::<f32>().unwrap(), vec![1.0, 1.25, 1.5, 1.75]);
}

// ----- requests within the limit that memory cannot hold ---------------------

/// Set in the child process that runs [`out_of_memory_cases`].
const CHILD: &str = "FERROGRAD_SIZES_CHILD";

/// The address-space cap of the child, in KiB (4 GiB): far above what the
/// test binary needs, far below the terabytes the cases ask for.
const CAP_KIB: u64 = 4 << 20;

#[cfg(unix)]
#[test]
fn requests_within_the_limit_that_memory_cannot_hold_are_out_of_memory() {
    let name = "requests_within_the_limit_that_memory_cannot_hold_are_out_of_memory";
    if std::env::var_os(CHILD).is_some() {
        return out_of_memory_cases();
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CAP_KIB} && exec \"$0\" --exact \"$1\" --test-threads=1"
        ))
        .arg(std::env::current_exe().unwrap())
        .arg(name)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the capped child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that `f` returns [`Error::OutOfMemory`] for `op` asking for
/// `bytes`, without panicking.
fn out_of_memory<T: std::fmt::Debug>(
    what: &str,
    op: &str,
    bytes: usize,
    f: impl FnOnce() -> ferrograd_engine::Result<T>,
) {
    match no_panic(what, f) {
        Err(Error::OutOfMemory { op: got, bytes: asked }) => {
            assert_eq!((got, asked), (op, bytes), "{what}");
        }
        other => panic!("{what}: expected OutOfMemory, got {other:?}"),
    }
}

/// The cases, each a request of terabytes within `MAX_ELEMENTS` (run under
/// the address-space cap only).
fn out_of_memory_cases() {
    out_of_memory("arange(0, 1e12, 1)", "arange", 8_000_000_000_000, || {
        Tensor::arange(0.0, 1e12, 1.0, DType::F64)
    });
    out_of_memory("zeros [2^40] f32", "zeros", 4 << 40, || {
        Tensor::zeros([MAX_ELEMENTS], DType::F32)
    });
    out_of_memory("full [2^20, 2^20]", "full", 8 << 40, || {
        Tensor::full([1 << 20, 1 << 20], 1.0, DType::F64)
    });
    out_of_memory("eye 2^20", "eye", 8 << 40, || Tensor::eye(1 << 20, DType::F64));
    out_of_memory("rand_uniform [2^40]", "rand_uniform", 8 << 40, || {
        Tensor::rand_uniform([MAX_ELEMENTS], 0.0, 1.0, DType::F64, &mut Rng::new(1))
    });
    let one = Tensor::ones([1, 1], DType::F64).unwrap();
    out_of_memory("broadcast_to [2^40, 1]", "broadcast_to", 8 << 40, || {
        one.broadcast_to([MAX_ELEMENTS, 1])
    });
    out_of_memory("pad_zeros to [2^40, 1]", "pad_zeros", (MAX_ELEMENTS - 1) * 8, || {
        one.pad_zeros(0, MAX_ELEMENTS - 1, 0)
    });
    let v = Tensor::ones([1], DType::F32).unwrap();
    out_of_memory("scatter 2^40 classes", "scatter", 4 << 40, || {
        v.scatter(&[7], MAX_ELEMENTS)
    });
}

// ----- the count itself, against exact arithmetic ----------------------------

fn config() -> Config {
    Config {
        cases: 2000,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x5123_0027),
        ..Config::default()
    }
}

/// A dimension: mostly small, often a power of two near the limit's
/// factors, sometimes huge (so that products overflow u64).
fn dim(zero: bool) -> impl Strategy<Value = usize> {
    let min = usize::from(!zero);
    prop_oneof![
        4 => min..=9usize,
        3 => (0u32..=40).prop_map(|k| 1usize << k),
        2 => (0u32..=20).prop_map(|k| (1usize << k) + 1),
        1 => (41u32..64).prop_map(|k| 1usize << k),
        1 => Just(usize::MAX),
    ]
    .prop_filter("zero only when allowed", move |&d| zero || d != 0)
}

/// The product of `dims` in u128, or `None` past u128 (certainly past the
/// limit).
fn exact(dims: &[usize]) -> Option<u128> {
    dims.iter().try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
}

proptest! {
    #![proptest_config(config())]

    /// With no zero dimension, the count is the exact product, and an error
    /// exactly when that product exceeds MAX_ELEMENTS.
    #[test]
    fn the_count_is_the_exact_product_or_an_error_past_the_limit(dims in prop::collection::vec(dim(false), 0..=6)) {
        let product = exact(&dims);
        match checked_numel("p", &dims) {
            Ok(n) => prop_assert_eq!(Some(n as u128), product),
            Err(Error::TooManyElements { shape, limit, .. }) => {
                prop_assert!(product.is_none_or(|p| p > MAX_ELEMENTS as u128), "{:?} refused", dims);
                prop_assert_eq!(shape.dims(), &dims[..]);
                prop_assert_eq!(limit, MAX_ELEMENTS);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    /// With zero dimensions, the count is 0 and the rule applies to the
    /// product of the others.
    #[test]
    fn a_zero_dimension_gives_zero_when_the_others_fit(dims in prop::collection::vec(dim(true), 1..=6)) {
        let nonzero: Vec<usize> = dims.iter().copied().filter(|&d| d != 0).collect();
        let fits = exact(&nonzero).is_some_and(|p| p <= MAX_ELEMENTS as u128);
        let want = exact(&dims).map(|p| p as usize);
        match checked_numel("p", &dims) {
            Ok(n) => prop_assert!(fits && Some(n) == want, "{:?} gave {}", dims, n),
            Err(_) => prop_assert!(!fits, "{:?} refused", dims),
        }
    }

    /// Broadcasting [p, 1] against [1, q] fails exactly when p * q does.
    #[test]
    fn broadcast_shapes_are_checked_like_any_other(p in dim(false), q in dim(false)) {
        let got = Shape::new([p, 1]).broadcast(&Shape::new([1, q]), "b");
        let fits = (p as u128) * (q as u128) <= MAX_ELEMENTS as u128;
        prop_assert_eq!(got.is_ok(), fits, "[{}, 1] with [1, {}]", p, q);
    }
}
