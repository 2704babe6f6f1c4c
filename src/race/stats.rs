//! The statistics of a race, each with the definition it uses.
//!
//! - **Quantiles** are linear interpolation between order statistics
//!   (Hyndman and Fan's type 7, NumPy's default `np.quantile`): for sorted
//!   values `v[0..n)` the `q`-quantile sits at position `h = (n - 1) q`,
//!   `v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h])`.
//!   The **median** is the 0.5-quantile (the middle value, or the mean of
//!   the two middle values).
//! - **Bootstrap interval of the median**: the percentile bootstrap. The
//!   data are sorted first (so the answer cannot depend on their order),
//!   then `resamples` times `n` values are drawn with replacement using
//!   ferrograd's seeded [`Rng`] and their median is
//!   taken; the interval is the `(1 - level)/2` and `(1 + level)/2`
//!   quantiles of those medians. Same data, seed and count: same interval,
//!   bit for bit.
//! - **Paired comparison** of a contender with a baseline on one track:
//!   only seeds both ran count; the per-seed differences
//!   `quality(contender) - quality(baseline)` get a median and a bootstrap
//!   interval as above (the median *of the differences*, not the
//!   difference of medians), and are counted as wins (> 0), losses (< 0)
//!   and ties (= 0).

use crate::engine::Rng;

/// The bootstrap's default number of resamples.
pub const DEFAULT_RESAMPLES: usize = 10_000;
/// The bootstrap's default seed (fixed, so reports are reproducible).
pub const DEFAULT_SEED: u64 = 0x5EED;
/// The default interval level.
pub const DEFAULT_LEVEL: f64 = 0.95;

/// The `q`-quantile of `values` (type 7, see the module docs); `None` when
/// `values` is empty. `q` is clamped to [0, 1].
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// [`quantile`] of values already sorted ascending.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = last as f64 * q.clamp(0.0, 1.0);
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    Some(sorted[below] + fraction * (sorted[above] - sorted[below]))
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// An interval estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The lower end.
    pub lower: f64,
    /// The upper end.
    pub upper: f64,
}

/// How the percentile bootstrap is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// The number of resamples.
    pub resamples: usize,
    /// The seed of the resampling generator.
    pub seed: u64,
    /// The coverage, e.g. 0.95.
    pub level: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            seed: DEFAULT_SEED,
            level: DEFAULT_LEVEL,
        }
    }
}

impl Bootstrap {
    /// The medians of `resamples` resamples of `values` (drawn from the
    /// sorted values, with replacement), in drawing order. Empty input gives
    /// no medians.
    pub fn medians(&self, values: &[f64]) -> Vec<f64> {
        if values.is_empty() {
            return Vec::new();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut rng = Rng::new(self.seed);
        let mut sample = vec![0.0; sorted.len()];
        (0..self.resamples)
            .map(|_| {
                for slot in sample.iter_mut() {
                    *slot = sorted[rng.below(sorted.len())];
                }
                sample.sort_by(f64::total_cmp);
                quantile_sorted(&sample, 0.5).expect("a resample is never empty")
            })
            .collect()
    }

    /// The percentile-bootstrap interval of the median of `values`
    /// (`None` when `values` is empty).
    pub fn median_interval(&self, values: &[f64]) -> Option<Interval> {
        let mut medians = self.medians(values);
        medians.sort_by(f64::total_cmp);
        let tail = (1.0 - self.level) / 2.0;
        Some(Interval {
            lower: quantile_sorted(&medians, tail)?,
            upper: quantile_sorted(&medians, 1.0 - tail)?,
        })
    }
}

/// A sample's summary: its size, median and bootstrap interval of the median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianEstimate {
    /// The number of values.
    pub n: usize,
    /// The sample median.
    pub median: f64,
    /// The bootstrap interval of the median.
    pub interval: Interval,
}

/// The median of `values` with its bootstrap interval (`None` when empty).
pub fn estimate_median(values: &[f64], bootstrap: &Bootstrap) -> Option<MedianEstimate> {
    Some(MedianEstimate {
        n: values.len(),
        median: median(values)?,
        interval: bootstrap.median_interval(values)?,
    })
}

/// A contender against a baseline, paired by seed.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedComparison {
    /// The per-seed differences `contender - baseline`, in the order of the
    /// seeds given.
    pub differences: Vec<f64>,
    /// Median and interval of the differences (`None` with no pairs).
    pub estimate: Option<MedianEstimate>,
    /// Seeds where the contender scored higher.
    pub wins: usize,
    /// Seeds where it scored lower.
    pub losses: usize,
    /// Seeds with equal scores.
    pub ties: usize,
}

/// Compares `contender` with `baseline`, each a list of `(seed, value)`;
/// only seeds present in both count (each seed at most once per side: the
/// first occurrence is used).
pub fn paired(contender: &[(u64, f64)], baseline: &[(u64, f64)], bootstrap: &Bootstrap) -> PairedComparison {
    let differences: Vec<f64> = contender
        .iter()
        .enumerate()
        .filter(|(i, (seed, _))| !contender[..*i].iter().any(|(s, _)| s == seed))
        .filter_map(|(_, (seed, value))| {
            let (_, base) = baseline.iter().find(|(s, _)| s == seed)?;
            Some(value - base)
        })
        .collect();
    PairedComparison {
        estimate: estimate_median(&differences, bootstrap),
        wins: differences.iter().filter(|d| **d > 0.0).count(),
        losses: differences.iter().filter(|d| **d < 0.0).count(),
        ties: differences.iter().filter(|d| **d == 0.0).count(),
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&v), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        // position (4 - 1) * 0.25 = 0.75: 1 + 0.75 * (2 - 1)
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn one_value_has_a_point_interval() {
        let i = Bootstrap::default().median_interval(&[5.0]).unwrap();
        assert_eq!((i.lower, i.upper), (5.0, 5.0));
    }
}
