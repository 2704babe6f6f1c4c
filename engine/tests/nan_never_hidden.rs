//! NaN is never hidden: every op built on a min or a max (clamp, the
//! scalar and elementwise maximum and minimum, the max and min reductions)
//! keeps a NaN input as NaN, so a diverged value reaches the loss check
//! instead of being clipped into an ordinary one. Elsewhere each op is its
//! plain definition. Fixed seed, no persistence files.

use ferrograd_engine::{DType, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x0000_0a0a_0a0a),
        ..Config::default()
    }
}

/// Values with NaN at some positions.
fn values_with_nan() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![4 => -10.0f64..10.0, 1 => Just(f64::NAN)], 1..40)
}

/// `(x, what the op should give)` elementwise: NaN where x is NaN.
fn agrees(got: &[f64], x: &[f64], want: impl Fn(f64) -> f64, what: &str) {
    for (i, (&g, &x)) in got.iter().zip(x).enumerate() {
        if x.is_nan() {
            assert!(g.is_nan(), "{what}: element {i} was NaN and became {g}");
        } else {
            assert_eq!(g, want(x), "{what}: element {i} ({x})");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn clamp_and_scalar_bounds_keep_nan(x in values_with_nan(), a in -5.0f64..5.0, width in 0.0f64..5.0) {
        let (lo, hi) = (a, a + width);
        for dtype in [DType::F64, DType::F32] {
            let t = Tensor::from_f64_slice(&x, [x.len()], dtype).unwrap();
            let round = |v: f64| Tensor::from_f64_slice(&[v], [1], dtype).unwrap().to_vec_f64().unwrap()[0];
            let xr: Vec<f64> = t.to_vec_f64().unwrap();
            let (lo_r, hi_r) = (round(lo), round(hi));
            agrees(&t.clamp(lo, hi).unwrap().to_vec_f64().unwrap(), &xr, |v| v.max(lo_r).min(hi_r), "clamp");
            agrees(&t.maximum_scalar(lo)?.to_vec_f64().unwrap(), &xr, |v| v.max(lo_r), "maximum_scalar");
            agrees(&t.minimum_scalar(hi)?.to_vec_f64().unwrap(), &xr, |v| v.min(hi_r), "minimum_scalar");
        }
    }

    #[test]
    fn elementwise_maximum_and_minimum_keep_nan_from_either_side(x in values_with_nan(), y in values_with_nan()) {
        let n = x.len().min(y.len());
        let (a, b) = (Tensor::from_vec(x[..n].to_vec(), [n]).unwrap(), Tensor::from_vec(y[..n].to_vec(), [n]).unwrap());
        for (name, got) in [("maximum", a.maximum(&b).unwrap()), ("minimum", a.minimum(&b).unwrap())] {
            for (i, g) in got.to_vec::<f64>().unwrap().into_iter().enumerate() {
                let nan_in = x[i].is_nan() || y[i].is_nan();
                prop_assert_eq!(g.is_nan(), nan_in, "{} element {}: {} vs {}", name, i, x[i], y[i]);
            }
        }
    }

    #[test]
    fn max_and_min_reductions_are_nan_when_a_row_holds_one(x in values_with_nan()) {
        let t = Tensor::from_vec(x.clone(), [x.len()]).unwrap();
        let has_nan = x.iter().any(|v| v.is_nan());
        for reduced in [t.max(None, false).unwrap(), t.min(None, false).unwrap()] {
            prop_assert_eq!(reduced.to_vec::<f64>().unwrap()[0].is_nan(), has_nan);
        }
    }
}
