//! f32 forward vs f64 forward for every registry entry.
//!
//! Each case's f64 inputs are rounded to f32 (`to_dtype(DType::F32)`), the
//! entry's function runs on `Var::constant`s of those f32 inputs, and again on
//! the same rounded values held in f64 (exact: every f32 is an f64). Using the
//! rounded values on both sides means the comparison measures only the
//! op's own f32 arithmetic, not how strongly it amplifies the input rounding.
//!
//! Tolerance: `|f32 - f64| <= 1e-4 * max(1, |f64|)`. An f32 has a 24-bit
//! mantissa, so one rounding costs at most 2^-24 ~ 6e-8 relative; these ops
//! compose a handful of roundings (a sum of <= 64 terms, exp/log/tanh
//! libm calls accurate to about an ulp, softmax's max-shift, exp, sum, divide),
//! so their error stays within ~1e-6 relative. 1e-4 leaves two orders of
//! magnitude of headroom while still catching any kernel that computes in
//! the wrong precision, reads the wrong element, or mishandles f32 dispatch.
//! The `max(1, .)` floor turns the bound absolute near zero, where sums with
//! cancellation (var, sum of mixed signs) lose relative accuracy legitimately.
//! No entry currently needs a looser bound; loosen per op only with a reason.

use ferrograd::autograd::registry::{self, OpEntry};
use ferrograd::autograd::Var;
use ferrograd::engine::{DType, Error, Rng, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const CASES: u32 = 64;

/// The bound on `|f32 - f64|` relative to `max(1, |f64|)` (see the module docs).
fn tolerance(_entry: &OpEntry) -> f64 {
    1e-4
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Compares one drawn case of `entry` in f32 and f64; `Err` describes a mismatch.
fn compare(entry: &OpEntry, dims: &[usize], seed: u64) -> Result<(), TestCaseError> {
    let name = entry.name;
    let case = (entry.build)(dims, &mut Rng::new(seed));
    let inputs32: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| t.to_dtype(DType::F32))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // The same values as inputs32, exactly, in f64.
    let inputs64: Vec<Tensor> = inputs32
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let run = |inputs: &[Tensor]| {
        let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
        (case.apply)(&vars)
    };
    let out64 = run(&inputs64).map_err(|e| TestCaseError::fail(format!("{name}: f64 forward failed: {e}")))?;
    let out32 = match run(&inputs32) {
        Ok(out) => out,
        // The registry's `where` case captures its mask as an f64 constant,
        // and `where_cond` requires the mask's dtype to match the values', so
        // that case cannot run in f32. `where_mask_f32_matches_f64` below
        // covers `where` in f32 with an f32 mask instead.
        Err(Error::DTypeMismatch { .. }) if name == "where" => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("{name}: f32 forward failed: {e}"))),
    };
    prop_assert!(!out32.requires_grad(), "{name}: an op on constants requires grad");
    prop_assert_eq!(out32.dims(), out64.dims(), "{}: f32 and f64 shapes differ", name);

    let (a, b) = (out32.value().to_vec_f64().unwrap(), out64.value().to_vec_f64().unwrap());
    if name == "cast" {
        // The entry is `x.to_dtype(F32).to_dtype(F64)`: both paths end in f64,
        // and since the inputs are already f32-representable the round trip
        // is exact, so the two results must be bit-identical.
        prop_assert_eq!(out32.dtype(), DType::F64, "cast: the entry should end in f64");
        prop_assert_eq!(out64.dtype(), DType::F64, "cast: the entry should end in f64");
        prop_assert_eq!(&a, &b, "cast: round trip of f32-representable values is not exact");
        return Ok(());
    }
    prop_assert_eq!(out32.dtype(), DType::F32, "{}: f32 inputs gave a non-f32 output", name);
    prop_assert_eq!(out64.dtype(), DType::F64, "{}: f64 inputs gave a non-f64 output", name);

    let tol = tolerance(entry);
    let worst = a
        .iter()
        .zip(&b)
        .enumerate()
        .map(|(i, (x32, x64))| (i, (x32 - x64).abs() / x64.abs().max(1.0)))
        .fold(
            (0, 0.0f64),
            |best, cur| if cur.1 > best.1 || cur.1.is_nan() { cur } else { best },
        );
    prop_assert!(
        worst.1 <= tol,
        "{name} (dims {dims:?}, seed {seed}): element {} differs: f32 {} vs f64 {} (scaled error {:.3e} > {tol:e})",
        worst.0,
        a[worst.0],
        b[worst.0],
        worst.1
    );
    Ok(())
}

#[test]
fn f32_forward_matches_f64_for_every_entry() {
    let mut failures = Vec::new();
    let entries = registry::entries();
    for entry in &entries {
        let strategy = (prop::collection::vec(1usize..=4, 1..=3), any::<u64>());
        if let Err(e) = runner(CASES).run(&strategy, |(dims, seed)| compare(entry, &dims, seed)) {
            failures.push(format!("{}: {e}", entry.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} entries disagree between f32 and f64:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

/// `where` in f32 with an f32 mask (the registry's case holds an f64 mask).
#[test]
fn where_mask_f32_matches_f64() {
    let strategy = (prop::collection::vec(1usize..=4, 1..=3), any::<u64>());
    let result = runner(CASES).run(&strategy, |(dims, seed)| {
        let mut rng = Rng::new(seed);
        let a = registry::real(&dims, &mut rng).to_dtype(DType::F32)?;
        let b = registry::real(&dims[dims.len() - 1..], &mut rng).to_dtype(DType::F32)?;
        let mask = Tensor::rand_uniform(dims.clone(), 0.0, 1.0, DType::F32, &mut rng)
            .unwrap()
            .gt_scalar(0.5)?;
        let out32 = Var::where_mask(&mask, &Var::constant(a.clone()), &Var::constant(b.clone())).unwrap();
        let out64 = Var::where_mask(
            &mask.to_dtype(DType::F64)?,
            &Var::constant(a.to_dtype(DType::F64).unwrap()),
            &Var::constant(b.to_dtype(DType::F64).unwrap()),
        )
        .unwrap();
        prop_assert_eq!(out32.dtype(), DType::F32);
        prop_assert_eq!(out32.dims(), out64.dims());
        // A selection does no arithmetic: the results must be identical.
        prop_assert_eq!(out32.value().to_vec_f64().unwrap(), out64.value().to_vec_f64().unwrap());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
