//! Bad input never panics: every fallible op answers invalid arguments with
//! a typed `Err` whose message names the offending shapes or axis, and the
//! messages say what to do about it.
//!
//! The properties run from a fixed seed (ChaCha, `RngSeed::Fixed`), so CI
//! sees the same cases every run; no failure-persistence files are written.

use ferrograd_engine::ops::elementwise::BinaryOp;
use ferrograd_engine::{DType, Device, Error, Rng, Shape, Storage, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x00fe_4409_4ad0),
        max_shrink_iters: 1024,
        ..Config::default()
    }
}

const BINARY_OPS: [BinaryOp; 13] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
];

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F32), Just(DType::F64)]
}

/// A tensor of `shape` with some non-trivial values (so no op can succeed
/// by accident on all-zero data).
fn tensor(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    Tensor::from_f64_slice(&values, shape.to_vec(), dtype).unwrap()
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=4, 0..=4)
}

/// Two shapes that do not broadcast: aligned from the right, at least one
/// pair of dimensions differs with neither being 1.
fn non_broadcastable() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        prop::collection::vec(1usize..=4, 1..=4),
        prop::collection::vec(1usize..=4, 1..=4),
        any::<prop::sample::Index>(),
        2usize..=5,
        1usize..=3,
    )
        .prop_map(|(mut a, mut b, at, p, dq)| {
            let common = a.len().min(b.len());
            let k = at.index(common); // position counted from the right
            let (ia, ib) = (a.len() - 1 - k, b.len() - 1 - k);
            a[ia] = p;
            b[ib] = p + dq; // != p and >= 3
            (a, b)
        })
}

/// An axis outside `-rank..rank` (both signs, up to a few past each end).
fn bad_axis(rank: usize) -> impl Strategy<Value = isize> {
    let r = rank as isize;
    prop_oneof![
        (0isize..6).prop_map(move |k| r + k),
        (0isize..6).prop_map(move |k| -r - 1 - k),
        Just(isize::MIN),
        Just(isize::MAX),
    ]
}

fn shape_and_bad_axis() -> impl Strategy<Value = (Vec<usize>, isize)> {
    shape().prop_flat_map(|s| {
        let r = s.len();
        (Just(s), bad_axis(r))
    })
}

/// Asserts an `InvalidAxis` error for `axis` whose message names the axis.
fn assert_invalid_axis<T: std::fmt::Debug>(
    what: &str,
    result: ferrograd_engine::Result<T>,
    axis: isize,
    rank: usize,
) -> Result<(), TestCaseError> {
    match result {
        Err(e @ Error::InvalidAxis { .. }) => {
            let Error::InvalidAxis {
                axis: got,
                rank: got_rank,
                ..
            } = &e
            else {
                unreachable!()
            };
            prop_assert_eq!(*got, axis, "{}: wrong axis reported", what);
            prop_assert_eq!(*got_rank, rank, "{}: wrong rank reported", what);
            let msg = e.to_string();
            prop_assert!(
                msg.contains(&format!("axis {axis}")) && msg.contains("rank"),
                "{what}: message does not name the axis: {msg}"
            );
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "{what}: axis {axis} on rank {rank}: expected InvalidAxis, got {other:?}"
        ))),
    }
}

/// Asserts a `ShapeMismatch` naming both shapes, in both the error and its message.
fn assert_shape_mismatch<T: std::fmt::Debug>(
    what: &str,
    result: ferrograd_engine::Result<T>,
    a: &[usize],
    b: &[usize],
) -> Result<(), TestCaseError> {
    match result {
        Err(e @ Error::ShapeMismatch { .. }) => {
            let Error::ShapeMismatch { lhs, rhs, .. } = &e else {
                unreachable!()
            };
            prop_assert_eq!(lhs.dims(), a, "{}: wrong lhs shape reported", what);
            prop_assert_eq!(rhs.dims(), b, "{}: wrong rhs shape reported", what);
            let msg = e.to_string();
            let (sa, sb) = (Shape::new(a.to_vec()).to_string(), Shape::new(b.to_vec()).to_string());
            prop_assert!(
                msg.contains(&sa) && msg.contains(&sb),
                "{what}: message does not name {sa} and {sb}: {msg}"
            );
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "{what}: {a:?} vs {b:?}: expected ShapeMismatch, got {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn binary_ops_reject_shapes_that_do_not_broadcast((a, b) in non_broadcastable(), dt in dtype()) {
        let (x, y) = (tensor(&a, dt), tensor(&b, dt));
        for op in BINARY_OPS {
            assert_shape_mismatch(op.name(), x.binary(&y, op), &a, &b)?;
            assert_shape_mismatch(op.name(), y.binary(&x, op), &b, &a)?;
        }
        prop_assert!(Tensor::where_cond(&x, &x, &y).is_err());
        prop_assert!(Tensor::where_cond(&y, &x, &x).is_err());
        assert_shape_mismatch("broadcast_to", x.broadcast_to(b.clone()), &a, &b)?;
        prop_assert!(matches!(x.sum_to(b.clone()), Err(Error::ShapeMismatch { .. })), "sum_to {:?} -> {:?}", a, b);
    }

    #[test]
    fn matmul_rejects_mismatched_inner_dims(m in 1usize..=5, k1 in 1usize..=5, dk in 1usize..=4, n in 1usize..=5, ta: bool, tb: bool, dt in dtype()) {
        let k2 = k1 + dk;
        let a = if ta { vec![k1, m] } else { vec![m, k1] };
        let b = if tb { vec![n, k2] } else { vec![k2, n] };
        let (x, y) = (tensor(&a, dt), tensor(&b, dt));
        assert_shape_mismatch("matmul_t", x.matmul_t(ta, &y, tb), &a, &b)?;
        assert_shape_mismatch("matmul_t", y.matmul_t(!tb, &x, !ta), &b, &a)?;
    }

    #[test]
    fn matmul_rejects_operands_that_are_not_matrices(a in shape(), b in shape(), dt in dtype()) {
        prop_assume!(a.len() != 2 || b.len() != 2);
        let (x, y) = (tensor(&a, dt), tensor(&b, dt));
        assert_shape_mismatch("matmul", x.matmul(&y), &a, &b)?;
    }

    #[test]
    fn concat_rejects_mismatched_shapes(a in prop::collection::vec(1usize..=4, 1..=4), axis_pick: prop::sample::Index, other_pick: prop::sample::Index, d in 1usize..=3, extra_rank: bool, dt in dtype()) {
        let axis = axis_pick.index(a.len());
        let mut b = a.clone();
        if extra_rank || a.len() == 1 {
            b.push(2); // a different rank never concatenates
        } else {
            // change a dimension other than the concat axis
            let mut j = other_pick.index(a.len() - 1);
            if j >= axis {
                j += 1;
            }
            b[j] += d;
        }
        let (x, y) = (tensor(&a, dt), tensor(&b, dt));
        assert_shape_mismatch("concat", Tensor::concat(&[x.clone(), y], axis as isize), &a, &b)?;
        // ...while the axis itself may differ freely.
        let mut c = a.clone();
        c[axis] += d;
        prop_assert!(Tensor::concat(&[x, tensor(&c, dt)], axis as isize).is_ok());
    }

    #[test]
    fn axis_ops_reject_out_of_range_axes((s, axis) in shape_and_bad_axis(), dt in dtype()) {
        let x = tensor(&s, dt);
        let r = s.len();
        assert_invalid_axis("sum", x.sum(Some(&[axis]), false), axis, r)?;
        assert_invalid_axis("sum(keepdim)", x.sum(Some(&[0, axis]), true), axis, r).or_else(|e| if r == 0 { Ok(()) } else { Err(e) })?;
        assert_invalid_axis("mean", x.mean(Some(&[axis]), true), axis, r)?;
        assert_invalid_axis("max", x.max(Some(&[axis]), false), axis, r)?;
        assert_invalid_axis("min", x.min(Some(&[axis]), true), axis, r)?;
        assert_invalid_axis("var", x.var(Some(&[axis]), false, true), axis, r)?;
        assert_invalid_axis("logsumexp", x.logsumexp(Some(&[axis]), false), axis, r)?;
        assert_invalid_axis("softmax", x.softmax(axis), axis, r)?;
        assert_invalid_axis("log_softmax", x.log_softmax(axis), axis, r)?;
        assert_invalid_axis("argmax", x.argmax(axis), axis, r)?;
        assert_invalid_axis("narrow", x.narrow(axis, 0, 1), axis, r)?;
        assert_invalid_axis("pad_zeros", x.pad_zeros(axis, 1, 1), axis, r)?;
        assert_invalid_axis("squeeze", x.squeeze(axis), axis, r)?;
        assert_invalid_axis("transpose(bad, 0)", x.transpose(axis, 0), axis, r)?;
        assert_invalid_axis("transpose(-1, bad)", x.transpose(-1, axis), axis, r).or_else(|e| if r == 0 { Ok(()) } else { Err(e) })?;
        assert_invalid_axis("concat", Tensor::concat(&[x.clone(), x.clone()], axis), axis, r)?;
        assert_invalid_axis("reduced_count", x.reduced_count("count", Some(&[axis])), axis, r)?;
    }

    #[test]
    fn unsqueeze_rejects_axes_outside_its_wider_range(s in shape(), k in 1isize..6, negative: bool) {
        // unsqueeze accepts -(rank+1)..=rank; it reports the output's rank.
        let r = s.len() as isize;
        let axis = if negative { -(r + 1) - k } else { r + k };
        assert_invalid_axis("unsqueeze", tensor(&s, DType::F64).unsqueeze(axis), axis, s.len() + 1)?;
    }

    #[test]
    fn from_vec_rejects_wrong_lengths(s in shape(), delta in 1usize..=5, longer: bool, dt in dtype()) {
        let n: usize = s.iter().product();
        prop_assume!(longer || delta <= n);
        let got = if longer { n + delta } else { n - delta };
        let checks: Vec<(&str, ferrograd_engine::Result<Tensor>)> = match dt {
            DType::F32 => vec![("from_vec", Tensor::from_vec(vec![0.5f32; got], s.clone())),
                               ("from_storage", Tensor::from_storage(Storage::CpuF32(vec![0.5; got]), s.clone()))],
            DType::F64 => vec![("from_vec", Tensor::from_vec(vec![0.5f64; got], s.clone())),
                               ("from_storage", Tensor::from_storage(Storage::CpuF64(vec![0.5; got]), s.clone()))],
        };
        let checks = checks.into_iter().chain([("from_f64_slice", Tensor::from_f64_slice(&vec![0.5; got], s.clone(), dt))]);
        for (what, result) in checks {
            match result {
                Err(e @ Error::LengthMismatch { .. }) => {
                    let Error::LengthMismatch { expected, got: g, .. } = &e else { unreachable!() };
                    prop_assert_eq!((*expected, *g), (n, got), "{}", what);
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&Shape::new(s.clone()).to_string()) && msg.contains(&got.to_string()), "{what}: {msg}");
                }
                other => prop_assert!(false, "{what}: {got} values for {s:?}: expected LengthMismatch, got {other:?}"),
            }
        }
        // reshape to a shape of another size
        let t = tensor(&s, dt);
        let mut other = s.clone();
        other.push(2);
        assert_shape_mismatch("reshape", t.reshape(other.clone()), &s, &other)?;
    }

    #[test]
    fn index_ops_reject_out_of_range_indices(rows in 1usize..=5, cols in 1usize..=4, over in 0usize..4, at: prop::sample::Index, len in 1usize..=6, dt in dtype()) {
        let x = tensor(&[rows, cols], dt);
        let expect_oor = |what: &str, result: ferrograd_engine::Result<Tensor>, index: usize, size: usize| -> Result<(), TestCaseError> {
            match result {
                Err(e @ Error::IndexOutOfRange { .. }) => {
                    let Error::IndexOutOfRange { index: i, size: s, .. } = &e else { unreachable!() };
                    prop_assert_eq!((*i, *s), (index, size), "{}", what);
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&format!("index {index}")) && msg.contains(&format!("size {size}")), "{what}: {msg}");
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!("{what}: index {index} of {size}: expected IndexOutOfRange, got {other:?}"))),
            }
        };
        // index_select: one index past the rows among valid ones
        let mut indices: Vec<usize> = (0..len).map(|i| i % rows).collect();
        let bad_row = rows + over;
        indices[at.index(len)] = bad_row;
        expect_oor("index_select", x.index_select(&indices), bad_row, rows)?;
        // index_add: one index per row of x, one of them past `rows`
        let mut targets: Vec<usize> = (0..rows).map(|i| i % 2).collect();
        targets[at.index(rows)] = 2 + over;
        expect_oor("index_add", x.index_add(&targets, 2), 2 + over, 2)?;
        // gather / scatter: one label past the columns
        let mut labels: Vec<usize> = (0..rows).map(|i| i % cols).collect();
        let bad_label = cols + over;
        labels[at.index(rows)] = bad_label;
        expect_oor("gather", x.gather(&labels), bad_label, cols)?;
        let v = tensor(&[rows], dt);
        expect_oor("scatter", v.scatter(&labels, cols), bad_label, cols)?;
        // get
        prop_assert!(matches!(x.get(&[rows + over, 0]), Err(Error::IndexOutOfRange { .. })), "get past the rows");
        prop_assert!(matches!(x.get(&[0]), Err(Error::InvalidArgument { .. })), "get with too few indices");
        // gather with the wrong number of labels, or on a non-matrix
        let wrong_count: Vec<usize> = vec![0; rows + 1 + over];
        prop_assert!(matches!(x.gather(&wrong_count), Err(Error::InvalidArgument { .. })), "gather with the wrong label count");
        let cube = tensor(&[rows, cols, 2], dt);
        match cube.gather(&labels) {
            Err(e @ Error::InvalidArgument { .. }) => prop_assert!(e.to_string().contains(&cube.shape().to_string()), "{}", e),
            other => prop_assert!(false, "gather on a 3-D tensor: {other:?}"),
        }
    }

    #[test]
    fn mixing_f32_and_f64_is_a_dtype_error(s in prop::collection::vec(1usize..=4, 2..=2), f32_first: bool) {
        let (a, b) = (tensor(&s, DType::F32), tensor(&s, DType::F64));
        let (x, y) = if f32_first { (&a, &b) } else { (&b, &a) };
        let expect = |what: &str, result: ferrograd_engine::Result<Tensor>| -> Result<(), TestCaseError> {
            match result {
                Err(e @ Error::DTypeMismatch { .. }) => {
                    let Error::DTypeMismatch { lhs, rhs, .. } = &e else { unreachable!() };
                    prop_assert_eq!((*lhs, *rhs), (x.dtype(), y.dtype()), "{}", what);
                    let msg = e.to_string();
                    prop_assert!(msg.contains("f32") && msg.contains("f64") && msg.contains("to_dtype"), "{what}: {msg}");
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!("{what}: expected DTypeMismatch, got {other:?}"))),
            }
        };
        for op in BINARY_OPS {
            expect(op.name(), x.binary(y, op))?;
        }
        expect("matmul", x.matmul(&y.t().unwrap()))?;
        expect("concat", Tensor::concat(&[x.clone(), y.clone()], 0))?;
        expect("where", Tensor::where_cond(x, x, y))?;
        prop_assert!(matches!(a.as_slice::<f64>(), Err(Error::DTypeMismatch { .. })), "as_slice of the wrong type");
        prop_assert!(matches!(b.clone().update_in_place::<f32>(|_| ()), Err(Error::DTypeMismatch { .. })), "update_in_place of the wrong type");
    }
}

// ----- messages say what to do ------------------------------------------------

#[test]
fn dtype_mismatch_says_to_convert_with_to_dtype() {
    let e = Tensor::zeros([2], DType::F32)
        .unwrap()
        .add(&Tensor::zeros([2], DType::F64).unwrap())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "add: dtype mismatch (f32 vs f64); convert one side with `.to_dtype(..)` first"
    );
}

#[test]
fn length_mismatch_says_how_many_values_to_pass() {
    let e = Tensor::from_vec(vec![1.0f64; 5], [2, 3]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("[2, 3]") && msg.contains("pass exactly 6 values"), "{msg}");
}

#[test]
fn broadcast_mismatch_states_the_rule() {
    let msg = Tensor::zeros([2, 3], DType::F64)
        .unwrap()
        .mul(&Tensor::zeros([4], DType::F64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("[4]") && msg.contains("equal or 1"),
        "{msg}"
    );
}

#[test]
fn matmul_mismatch_names_the_inner_dimensions() {
    let msg = Tensor::zeros([2, 3], DType::F64)
        .unwrap()
        .matmul(&Tensor::zeros([4, 5], DType::F64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("[4, 5]") && msg.contains("inner dimensions"),
        "{msg}"
    );
    let msg = Tensor::zeros([3], DType::F64)
        .unwrap()
        .matmul(&Tensor::zeros([3], DType::F64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2-D"), "{msg}");
}

#[test]
fn invalid_axis_lists_the_valid_range() {
    let msg = Tensor::zeros([2, 3, 4], DType::F64)
        .unwrap()
        .sum(Some(&[-4]), false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("axis -4") && msg.contains("valid: -3..3"), "{msg}");
}

#[test]
fn reshape_and_squeeze_say_what_must_hold() {
    let x = Tensor::zeros([2, 3], DType::F64).unwrap();
    let msg = x.reshape([4, 2]).unwrap_err().to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("[4, 2]") && msg.contains("keep the number of elements"),
        "{msg}"
    );
    let msg = x.squeeze(1).unwrap_err().to_string();
    assert!(msg.contains("[2, 3]") && msg.contains("not 1"), "{msg}");
}

#[test]
fn to_scalar_suggests_reducing_first() {
    let msg = Tensor::zeros([2, 2], DType::F64)
        .unwrap()
        .to_scalar()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("[2, 2]") && msg.contains("sum_all"), "{msg}");
}

#[test]
fn unavailable_device_says_to_use_the_cpu() {
    // No machine has a thousand GPUs, so this is unavailable everywhere:
    // without the cuda feature, without a driver, and with a GPU (or the
    // emulated device) present.
    let e = Tensor::zeros([2], DType::F32)
        .unwrap()
        .to_device(Device::Cuda(999))
        .unwrap_err();
    assert!(matches!(e, Error::DeviceUnavailable { .. }));
    assert!(e.to_string().contains("--device cpu"), "{e}");
}

#[test]
fn invalid_numeric_arguments_are_errors() {
    let mut rng = Rng::new(1);
    assert!(Tensor::zeros([2], DType::F64).unwrap().clamp(1.0, 0.0).is_err());
    assert!(Tensor::zeros([2], DType::F64).unwrap().clamp(f64::NAN, 0.0).is_err());
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F64).is_err());
    assert!(Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F64).is_err());
    assert!(Tensor::rand_uniform([2], 1.0, 0.0, DType::F64, &mut rng).is_err());
    assert!(Tensor::rand_normal([2], 0.0, -1.0, DType::F64, &mut rng).is_err());
    assert!(Tensor::zeros([2, 3], DType::F64)
        .unwrap()
        .permute(&[0, 0])
        .unwrap_err()
        .to_string()
        .contains("[0, 0]"));
    assert!(Tensor::zeros([2, 3], DType::F64).unwrap().narrow(1, 2, 2).is_err());
    assert!(Tensor::zeros([2, 3], DType::F64)
        .unwrap()
        .narrow(1, usize::MAX, 2)
        .is_err());
    assert!(Tensor::zeros([3], DType::F64).unwrap().t().is_err());
    assert!(Tensor::concat(&[], 0).is_err());
    assert!(Tensor::zeros([1], DType::F64).unwrap().var(None, false, true).is_err());
}

// ----- known engine bugs (see the reasons) -----------------------------------

/// Runs `f`, turning a panic into a failure message naming `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| format!("{what} panicked"))
}

#[test]
fn zero_size_dimensions_never_panic() {
    let z = |d: &[usize]| Tensor::zeros(d.to_vec(), DType::F64).unwrap();
    let mut failures = Vec::new();
    let mut check = |what: &str, f: &dyn Fn() -> bool| match no_panic(what, f) {
        Ok(true) => {}
        Ok(false) => failures.push(format!("{what}: wrong result")),
        Err(e) => failures.push(e),
    };
    // Broadcasting [2, 0] with [0] or [2, 1] is valid NumPy and gives [2, 0].
    check("[2, 0] + [0]", &|| {
        z(&[2, 0]).add(&z(&[0])).map(|t| t.dims() == [2, 0]).unwrap_or(false)
    });
    check("[0] + [2, 0]", &|| {
        z(&[0]).add(&z(&[2, 0])).map(|t| t.dims() == [2, 0]).unwrap_or(false)
    });
    check("[2, 0] * [2, 1]", &|| {
        z(&[2, 0]).mul(&z(&[2, 1])).map(|t| t.dims() == [2, 0]).unwrap_or(false)
    });
    check("[0] broadcast_to [2, 0]", &|| {
        z(&[0])
            .broadcast_to([2, 0])
            .map(|t| t.dims() == [2, 0])
            .unwrap_or(false)
    });
    // Summing away an axis of a [2, 0] tensor: [2] zeros, or [0].
    check("sum [2, 0] over axis 1", &|| {
        z(&[2, 0])
            .sum(Some(&[1]), false)
            .map(|t| t.to_vec::<f64>().unwrap() == [0.0, 0.0])
            .unwrap_or(false)
    });
    check("sum [2, 0] over axis 0", &|| {
        z(&[2, 0])
            .sum(Some(&[0]), false)
            .map(|t| t.dims() == [0])
            .unwrap_or(false)
    });
    check("max [2, 0] over axis 0", &|| {
        z(&[2, 0])
            .max(Some(&[0]), false)
            .map(|t| t.dims() == [0])
            .unwrap_or(false)
    });
    check("softmax [2, 0] along axis 0", &|| {
        z(&[2, 0]).softmax(0).map(|t| t.dims() == [2, 0]).unwrap_or(false)
    });
    check("sum_to [2, 0] -> [0]", &|| {
        z(&[2, 0]).sum_to([0]).map(|t| t.dims() == [0]).unwrap_or(false)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn arange_with_an_impossible_count_is_an_error() {
    let result = no_panic("arange(0, 1e30, 1)", || Tensor::arange(0.0, 1e30, 1.0, DType::F64));
    assert!(
        matches!(result, Ok(Err(_))),
        "{:?}",
        result.map(|r| r.map(|t| t.dims().to_vec()))
    );
}
