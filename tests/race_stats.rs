//! The race's statistics on inputs whose answers are known independently:
//! bootstrap distributions small enough to enumerate by hand, constant data,
//! a paired set worked out on paper; and invariants by property tests.
#![cfg(feature = "cli")]

use ferrograd::race::stats::{self, paired, Bootstrap};
use proptest::prelude::*;

fn bootstrap(level: f64) -> Bootstrap {
    Bootstrap {
        level,
        ..Bootstrap::default()
    }
}

fn frequency(values: &[f64], of: f64) -> f64 {
    values.iter().filter(|v| **v == of).count() as f64 / values.len() as f64
}

/// With 10,000 resamples, a frequency has standard deviation at most 0.005;
/// allow five of them.
const TOLERANCE: f64 = 0.025;

#[test]
fn bootstrap_of_three_values_matches_the_enumerated_distribution() {
    // Resampling {1, 2, 3} with replacement gives 27 equally likely ordered
    // samples; their median is 1 when at least two draws are 1: 3*2 + 1 = 7
    // of 27; likewise 3 in 7 of 27; so 2 in 13 of 27.
    let medians = Bootstrap::default().medians(&[3.0, 1.0, 2.0]);
    assert_eq!(medians.len(), 10_000);
    for (value, expected) in [(1.0, 7.0 / 27.0), (2.0, 13.0 / 27.0), (3.0, 7.0 / 27.0)] {
        let f = frequency(&medians, value);
        assert!(
            (f - expected).abs() < TOLERANCE,
            "P(median = {value}) = {f}, expected {expected}"
        );
    }
    // The CDF is 7/27 = 0.26 at 1 and 20/27 = 0.74 at 2, so the 2.5% and
    // 97.5% quantiles are 1 and 3, and the 30% and 70% quantiles are both 2.
    let i95 = bootstrap(0.95).median_interval(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!((i95.lower, i95.upper), (1.0, 3.0));
    let i40 = bootstrap(0.40).median_interval(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!((i40.lower, i40.upper), (2.0, 2.0));
}

#[test]
fn bootstrap_of_two_values_averages_the_middle_pair() {
    // Two draws from {10, 20}: medians 10 (1/4), 15 (1/2), 20 (1/4).
    let medians = Bootstrap::default().medians(&[20.0, 10.0]);
    for (value, expected) in [(10.0, 0.25), (15.0, 0.5), (20.0, 0.25)] {
        let f = frequency(&medians, value);
        assert!((f - expected).abs() < TOLERANCE, "P(median = {value}) = {f}");
    }
    let i40 = bootstrap(0.40).median_interval(&[20.0, 10.0]).unwrap();
    assert_eq!((i40.lower, i40.upper), (15.0, 15.0));
}

#[test]
fn constant_data_has_a_point_interval() {
    let e = stats::estimate_median(&[5.0; 7], &Bootstrap::default()).unwrap();
    assert_eq!((e.n, e.median, e.interval.lower, e.interval.upper), (7, 5.0, 5.0, 5.0));
    assert!(stats::estimate_median(&[], &Bootstrap::default()).is_none());
}

#[test]
fn the_same_seed_gives_the_same_interval_and_another_seed_may_not() {
    let data = [3.0, 9.0, 1.0, 7.0, 4.0, 8.0, 2.0];
    let a = Bootstrap::default().medians(&data);
    let b = Bootstrap::default().medians(&data);
    assert_eq!(a, b);
    let other = Bootstrap {
        seed: 7,
        ..Bootstrap::default()
    }
    .medians(&data);
    assert_ne!(a, other);
}

#[test]
fn paired_differences_of_a_known_set() {
    // Seeds 0..4; the contender's seeds are listed in another order and it
    // has an extra seed 9 that the baseline lacks (not paired).
    let baseline = [(0, 10.0), (1, 20.0), (2, 30.0), (3, 40.0), (4, 50.0)];
    let contender = [(4, 60.0), (9, 1e9), (0, 12.0), (1, 18.0), (2, 35.0), (3, 40.0)];
    let c = paired(&contender, &baseline, &bootstrap(0.80));
    // Differences in the contender's order: 10, 2, -2, 5, 0.
    assert_eq!(c.differences, vec![10.0, 2.0, -2.0, 5.0, 0.0]);
    assert_eq!((c.wins, c.losses, c.ties), (3, 1, 1));
    let e = c.estimate.unwrap();
    assert_eq!((e.n, e.median), (5, 2.0));
    // Resample medians of {-2, 0, 2, 5, 10}: P(<= -2) = P(Bin(5, 1/5) >= 3)
    // = 0.058, P(<= 0) = P(Bin(5, 2/5) >= 3) = 0.317, P(<= 2) = 0.683,
    // P(<= 5) = 0.942. So the 10% quantile is 0 and the 90% quantile is 5.
    assert_eq!((e.interval.lower, e.interval.upper), (0.0, 5.0));
    // At 95% the 2.5% quantile falls on -2 (0.058 > 0.025), the 97.5% on 10.
    let wide = paired(&contender, &baseline, &bootstrap(0.95)).estimate.unwrap();
    assert_eq!((wide.interval.lower, wide.interval.upper), (-2.0, 10.0));
}

#[test]
fn no_common_seeds_means_no_estimate() {
    let c = paired(&[(1, 5.0)], &[(2, 5.0)], &Bootstrap::default());
    assert!(c.differences.is_empty() && c.estimate.is_none());
    assert_eq!((c.wins, c.losses, c.ties), (0, 0, 0));
}

fn quick() -> Bootstrap {
    Bootstrap {
        resamples: 400,
        ..Bootstrap::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn interval_is_ordered_inside_the_range_and_holds_the_median(
        values in prop::collection::vec(-1_000_000i64..1_000_000, 1..15)
    ) {
        let values: Vec<f64> = values.into_iter().map(|v| v as f64).collect();
        let e = stats::estimate_median(&values, &quick()).unwrap();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(min <= e.interval.lower);
        prop_assert!(e.interval.lower <= e.median && e.median <= e.interval.upper);
        prop_assert!(e.interval.upper <= max);
    }

    #[test]
    fn interval_does_not_depend_on_the_order_of_the_data(
        values in prop::collection::vec(-1_000_000i64..1_000_000, 1..15),
        rotate in 0usize..15,
    ) {
        let values: Vec<f64> = values.into_iter().map(|v| v as f64).collect();
        let mut permuted = values.clone();
        permuted.reverse();
        let k = rotate % permuted.len();
        permuted.rotate_left(k);
        prop_assert_eq!(quick().median_interval(&values), quick().median_interval(&permuted));
        prop_assert_eq!(stats::median(&values), stats::median(&permuted));
    }

    #[test]
    fn swapping_sides_negates_differences_and_swaps_wins(
        pairs in prop::collection::vec((-50i64..50, -50i64..50), 1..12)
    ) {
        let a: Vec<(u64, f64)> = pairs.iter().enumerate().map(|(s, p)| (s as u64, p.0 as f64)).collect();
        let b: Vec<(u64, f64)> = pairs.iter().enumerate().map(|(s, p)| (s as u64, p.1 as f64)).collect();
        let ab = paired(&a, &b, &quick());
        let ba = paired(&b, &a, &quick());
        prop_assert_eq!(ab.wins + ab.losses + ab.ties, pairs.len());
        prop_assert_eq!((ab.wins, ab.losses, ab.ties), (ba.losses, ba.wins, ba.ties));
        let negated: Vec<f64> = ba.differences.iter().map(|d| -d).collect();
        prop_assert_eq!(&ab.differences, &negated);
        let (m_ab, m_ba) = (ab.estimate.unwrap().median, ba.estimate.unwrap().median);
        prop_assert_eq!(m_ab, -m_ba);
    }
}
