//! Turning records into the race's tables: per track, one row per entrant
//! (median quality with its bootstrap interval, the fraction of seeds above
//! zero, median best epoch, epochs and seconds, median recalibrated quality)
//! and paired comparisons of every entrant with the baseline, on the quality
//! and, where every run has it, on the recalibrated quality; and each
//! entrant against the seeds' zero-mean ceilings, with the bound that the
//! ceiling puts on any model without an offset.

use super::record::{RunRecord, RunStatus};
use super::stats::{self, Bootstrap, MedianEstimate, PairedComparison};
use super::RaceError;
use crate::datasets::rff::generate;
use crate::train::{zero_mean_ceiling, TaskConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Merges record lists, keeping the first record of each grid cell.
/// Returns the merged records and how many duplicates were dropped.
pub fn merge(lists: Vec<Vec<RunRecord>>) -> (Vec<RunRecord>, usize) {
    let mut seen = BTreeSet::new();
    let mut merged = Vec::new();
    let mut duplicates = 0;
    for record in lists.into_iter().flatten() {
        if seen.insert(record.key()) {
            merged.push(record);
        } else {
            duplicates += 1;
        }
    }
    (merged, duplicates)
}

/// One entrant's results on one track.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrantRow {
    /// The entrant's label.
    pub entrant: String,
    /// `(seed, record)` in seed order.
    pub runs: Vec<(u64, RunRecord)>,
    /// Median quality and its bootstrap interval.
    pub quality: MedianEstimate,
    /// The fraction of seeds with quality > 0.
    pub above_zero: f64,
    /// Median of the kept epochs.
    pub best_epoch: f64,
    /// Median of the epochs run.
    pub epochs: f64,
    /// Median training seconds.
    pub seconds: f64,
    /// Runs that diverged or failed.
    pub failures: usize,
    /// Median recalibrated quality (`RunRecord::recalibrated_quality`), when
    /// every run has one.
    pub recalibrated: Option<f64>,
}

impl EntrantRow {
    /// `(seed, quality)` pairs.
    pub fn qualities(&self) -> Vec<(u64, f64)> {
        self.runs.iter().map(|(s, r)| (*s, r.quality as f64)).collect()
    }

    /// `(seed, recalibrated quality)` pairs, when every run has one.
    pub fn recalibrated_qualities(&self) -> Option<SeedScores> {
        self.runs
            .iter()
            .map(|(s, r)| r.recalibrated_quality.map(|q| (*s, q as f64)))
            .collect()
    }
}

/// All entrants on one track, best median first, with the paired
/// comparisons against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackTable {
    /// Hidden layers.
    pub n_hidden: usize,
    /// The epoch budget of the runs.
    pub max_epochs: usize,
    /// One row per entrant, by median quality, best first.
    pub rows: Vec<EntrantRow>,
    /// The baseline's label, if it ran on this track.
    pub baseline: Option<String>,
    /// `(entrant, comparison)` for every other entrant.
    pub paired: Vec<(String, PairedComparison)>,
    /// The same comparisons on the recalibrated quality, for the entrants
    /// whose runs (and the baseline's) all have one.
    pub paired_recalibrated: Vec<(String, PairedComparison)>,
    /// The runs against the zero-mean ceilings, when every seed has one.
    pub ceiling: Option<CeilingTable>,
}

/// A track's runs against each seed's zero-mean ceiling
/// ([`zero_mean_ceiling`]): the best score of a model without an offset,
/// which the task's model is. Scores above it come from BatchNorm running
/// statistics that lag the weights (luck, not a better model).
#[derive(Debug, Clone, PartialEq)]
pub struct CeilingTable {
    /// The median of the seeds' ceilings.
    pub median: f64,
    /// One row per entrant, in the order of [`TrackTable::rows`].
    pub rows: Vec<CeilingRow>,
    /// The ceiling paired with the baseline as if it were an entrant: no
    /// model without an offset can have a larger median paired difference
    /// against the baseline than this one's.
    pub bound: Option<PairedComparison>,
}

/// One entrant against the zero-mean ceilings of its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct CeilingRow {
    /// The entrant's label.
    pub entrant: String,
    /// Runs whose quality is above their seed's ceiling.
    pub above: usize,
    /// Runs.
    pub runs: usize,
    /// Median of `quality - ceiling`.
    pub over: f64,
    /// Median of `ceiling - recalibrated quality`, what a better model could
    /// still win, when every run has a recalibrated quality.
    pub headroom: Option<f64>,
}

/// The zero-mean ceiling's quality of each seed, on the task's data (the
/// data every race runs on).
pub fn zero_mean_ceilings(seeds: &BTreeSet<u64>) -> Result<BTreeMap<u64, i64>, RaceError> {
    let data_config = TaskConfig::default().data;
    seeds
        .iter()
        .map(|&seed| {
            let data = generate(&data_config, seed)
                .map_err(|e| RaceError::Usage(format!("cannot generate the data of seed {seed}: {e}")))?;
            Ok((seed, zero_mean_ceiling(&data.train, &data.test).quality))
        })
        .collect()
}

/// Builds one table per track (tracks ascending). `baseline` names an
/// entrant label (or an optimizer with a single entrant); without one,
/// the task's default (`clipped_adam`) is used if present, else the first
/// entrant. `ceilings` holds the zero-mean ceiling of each seed
/// ([`zero_mean_ceilings`]); a track with a seed missing from it gets no
/// [`CeilingTable`].
pub fn tables(
    records: &[RunRecord],
    baseline: Option<&str>,
    bootstrap: &Bootstrap,
    ceilings: &BTreeMap<u64, i64>,
) -> Result<Vec<TrackTable>, RaceError> {
    let mut by_track: BTreeMap<usize, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        by_track.entry(r.n_hidden).or_default().push(r);
    }
    let labels: Vec<String> = records.iter().map(|r| r.entrant.clone()).collect();
    let baseline = resolve_baseline(&labels, baseline)?;
    by_track
        .into_iter()
        .map(|(n_hidden, records)| track_table(n_hidden, &records, baseline.as_deref(), bootstrap, ceilings))
        .collect()
}

fn resolve_baseline(labels: &[String], wanted: Option<&str>) -> Result<Option<String>, RaceError> {
    let distinct: BTreeSet<&String> = labels.iter().collect();
    let Some(wanted) = wanted else {
        let default = distinct.iter().find(|l| l.as_str() == crate::optim::catalog::DEFAULT);
        return Ok(default.or(labels.first().as_ref()).map(|l| l.to_string()));
    };
    if distinct.contains(&wanted.to_string()) {
        return Ok(Some(wanted.to_string()));
    }
    let prefix = format!("{wanted}(");
    let matches: Vec<&&String> = distinct.iter().filter(|l| l.starts_with(&prefix)).collect();
    match matches.as_slice() {
        [one] => Ok(Some(one.to_string())),
        [] => Err(RaceError::Usage(format!(
            "--baseline {wanted}: no such entrant in the results; they are: {}",
            distinct.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))),
        many => Err(RaceError::Usage(format!(
            "--baseline {wanted} is ambiguous; name one of: {}",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn track_table(
    n_hidden: usize,
    records: &[&RunRecord],
    baseline: Option<&str>,
    bootstrap: &Bootstrap,
    ceilings: &BTreeMap<u64, i64>,
) -> Result<TrackTable, RaceError> {
    let budgets: BTreeSet<usize> = records.iter().map(|r| r.max_epochs).collect();
    if budgets.len() > 1 {
        return Err(RaceError::Usage(format!(
            "track n_hidden={n_hidden} mixes runs with different epoch budgets ({budgets:?}); \
             report races run under different --max-epochs separately"
        )));
    }
    let mut by_entrant: BTreeMap<&str, Vec<(u64, RunRecord)>> = BTreeMap::new();
    for r in records {
        by_entrant.entry(&r.entrant).or_default().push((r.seed, (*r).clone()));
    }
    let mut rows: Vec<EntrantRow> = by_entrant
        .into_iter()
        .map(|(label, mut runs)| {
            runs.sort_by_key(|(seed, _)| *seed);
            entrant_row(label, runs, bootstrap)
        })
        .collect();
    rows.sort_by(|a, b| {
        b.quality
            .median
            .total_cmp(&a.quality.median)
            .then(a.entrant.cmp(&b.entrant))
    });
    let base_row = baseline.and_then(|b| rows.iter().find(|r| r.entrant == b));
    let paired = paired_with(&rows, base_row, |r| Some(r.qualities()), bootstrap);
    let paired_recalibrated = paired_with(&rows, base_row, EntrantRow::recalibrated_qualities, bootstrap);
    let ceiling = ceiling_table(&rows, base_row, ceilings, bootstrap);
    Ok(TrackTable {
        n_hidden,
        max_epochs: budgets.into_iter().next().unwrap_or(1000),
        baseline: base_row.map(|r| r.entrant.clone()),
        rows,
        paired,
        paired_recalibrated,
        ceiling,
    })
}

/// The rows against the ceilings, or `None` if a seed has no ceiling.
fn ceiling_table(
    rows: &[EntrantRow],
    base: Option<&EntrantRow>,
    ceilings: &BTreeMap<u64, i64>,
    bootstrap: &Bootstrap,
) -> Option<CeilingTable> {
    let ceiling_of = |row: &EntrantRow| -> Option<SeedScores> {
        row.runs
            .iter()
            .map(|(seed, _)| ceilings.get(seed).map(|c| (*seed, *c as f64)))
            .collect()
    };
    let seeds_ceilings: BTreeMap<u64, f64> = rows
        .iter()
        .map(ceiling_of)
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let ceiling_rows = rows
        .iter()
        .map(|row| {
            let over: Vec<f64> = row
                .runs
                .iter()
                .map(|(s, r)| r.quality as f64 - seeds_ceilings[s])
                .collect();
            let headroom: Option<Vec<f64>> = row
                .runs
                .iter()
                .map(|(s, r)| r.recalibrated_quality.map(|q| seeds_ceilings[s] - q as f64))
                .collect();
            CeilingRow {
                entrant: row.entrant.clone(),
                above: over.iter().filter(|d| **d > 0.0).count(),
                runs: over.len(),
                over: median_or_nan(over),
                headroom: headroom.map(median_or_nan),
            }
        })
        .collect();
    let bound = base.and_then(|b| Some(stats::paired(&ceiling_of(b)?, &b.qualities(), bootstrap)));
    Some(CeilingTable {
        median: median_or_nan(seeds_ceilings.into_values().collect()),
        rows: ceiling_rows,
        bound,
    })
}

/// `(seed, score)` pairs of one entrant.
type SeedScores = Vec<(u64, f64)>;

/// Every row but the baseline's paired with it on `score`; rows (or a
/// baseline) without that score are left out.
fn paired_with(
    rows: &[EntrantRow],
    base: Option<&EntrantRow>,
    score: impl Fn(&EntrantRow) -> Option<SeedScores>,
    bootstrap: &Bootstrap,
) -> Vec<(String, PairedComparison)> {
    let Some((base, base_scores)) = base.and_then(|b| Some((b, score(b)?))) else {
        return Vec::new();
    };
    rows.iter()
        .filter(|r| r.entrant != base.entrant)
        .filter_map(|r| Some((r.entrant.clone(), stats::paired(&score(r)?, &base_scores, bootstrap))))
        .collect()
}

fn entrant_row(label: &str, runs: Vec<(u64, RunRecord)>, bootstrap: &Bootstrap) -> EntrantRow {
    let column = |f: &dyn Fn(&RunRecord) -> f64| -> Vec<f64> { runs.iter().map(|(_, r)| f(r)).collect() };
    let qualities = column(&|r| r.quality as f64);
    EntrantRow {
        entrant: label.to_string(),
        quality: stats::estimate_median(&qualities, bootstrap).expect("a row has at least one run"),
        above_zero: qualities.iter().filter(|q| **q > 0.0).count() as f64 / qualities.len() as f64,
        best_epoch: median_or_nan(column(&|r| r.best_epoch as f64)),
        epochs: median_or_nan(column(&|r| r.epochs as f64)),
        seconds: median_or_nan(column(&|r| r.seconds)),
        failures: runs.iter().filter(|(_, r)| r.status != RunStatus::Finished).count(),
        recalibrated: runs
            .iter()
            .map(|(_, r)| r.recalibrated_quality.map(|q| q as f64))
            .collect::<Option<Vec<f64>>>()
            .and_then(|q| stats::median(&q)),
        runs,
    }
}

/// The median of `values`, NaN when there are none.
fn median_or_nan(values: Vec<f64>) -> f64 {
    stats::median(&values).unwrap_or(f64::NAN)
}

/// `1234567` as `1,234,567` (rounded to an integer).
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

fn signed(value: f64) -> String {
    let text = thousands(value);
    if value.round() > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// The tables as plain text (what `ferrograd race` prints).
pub fn render(tables: &[TrackTable], bootstrap: &Bootstrap) -> String {
    let mut out = String::new();
    let level = (bootstrap.level * 100.0).round();
    for table in tables {
        let budget = if table.max_epochs == 1000 {
            String::new()
        } else {
            format!(", at most {} epochs (the task allows 1000)", table.max_epochs)
        };
        let _ = writeln!(out, "track n_hidden={}{budget}", table.n_hidden);
        render_rows(&mut out, table, level);
        if let Some(baseline) = &table.baseline {
            let title = format!("paired by seed against {baseline} (quality difference = entrant - baseline)");
            render_paired(&mut out, &title, &table.paired, level);
            let title = format!(
                "paired by seed against {baseline}, recalibrated quality \
                 (BatchNorm statistics recomputed on the training set)"
            );
            render_paired(&mut out, &title, &table.paired_recalibrated, level);
        }
        if let Some(ceiling) = &table.ceiling {
            render_ceiling(&mut out, ceiling, table.baseline.as_deref(), level);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "intervals: percentile bootstrap of the median, {} resamples, seed {}",
        bootstrap.resamples, bootstrap.seed
    );
    out
}

fn render_rows(out: &mut String, table: &TrackTable, level: f64) {
    let width = label_width(table.rows.iter().map(|r| r.entrant.as_str()));
    let _ = writeln!(
        out,
        "  {:<width$}  {:>5}  {:>14}  {:>25}  {:>5}  {:>10}  {:>7}  {:>8}  {:>5}  {:>12}",
        "optimizer",
        "seeds",
        "median quality",
        format!("{level}% interval"),
        "q>0",
        "best epoch",
        "epochs",
        "seconds",
        "fails",
        "recalibrated"
    );
    for row in &table.rows {
        let interval = format!(
            "[{}, {}]",
            thousands(row.quality.interval.lower),
            thousands(row.quality.interval.upper)
        );
        let _ = writeln!(
            out,
            "  {:<width$}  {:>5}  {:>14}  {:>25}  {:>4.0}%  {:>10}  {:>7}  {:>8.1}  {:>5}  {:>12}",
            row.entrant,
            row.quality.n,
            thousands(row.quality.median),
            interval,
            100.0 * row.above_zero,
            row.best_epoch,
            row.epochs,
            row.seconds,
            row.failures,
            row.recalibrated.map_or_else(|| "-".to_string(), thousands)
        );
    }
}

fn render_paired(out: &mut String, title: &str, paired: &[(String, PairedComparison)], level: f64) {
    if paired.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}");
    let width = label_width(paired.iter().map(|(l, _)| l.as_str()));
    let _ = writeln!(
        out,
        "  {:<width$}  {:>5}  {:>11}  {:>25}  {:>4}  {:>6}  {:>4}",
        "optimizer",
        "pairs",
        "median diff",
        format!("{level}% interval"),
        "wins",
        "losses",
        "ties"
    );
    for (label, comparison) in paired {
        let (median, interval) = match &comparison.estimate {
            Some(e) => (
                signed(e.median),
                format!("[{}, {}]", signed(e.interval.lower), signed(e.interval.upper)),
            ),
            None => ("-".into(), "no common seeds".into()),
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {:>5}  {:>11}  {:>25}  {:>4}  {:>6}  {:>4}",
            label,
            comparison.differences.len(),
            median,
            interval,
            comparison.wins,
            comparison.losses,
            comparison.ties
        );
    }
}

fn render_ceiling(out: &mut String, ceiling: &CeilingTable, baseline: Option<&str>, level: f64) {
    let _ = writeln!(
        out,
        "  against the zero-mean ceiling (the score of f - mean(f), the best a model without an offset \
         can reach; median {})",
        thousands(ceiling.median)
    );
    let width = label_width(ceiling.rows.iter().map(|r| r.entrant.as_str()));
    let _ = writeln!(
        out,
        "  {:<width$}  {:>8}  {:>24}  {:>29}",
        "optimizer", "above it", "median quality - ceiling", "median ceiling - recalibrated"
    );
    for row in &ceiling.rows {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>8}  {:>24}  {:>29}",
            row.entrant,
            format!("{}/{}", row.above, row.runs),
            signed(row.over),
            row.headroom.map_or_else(|| "-".to_string(), thousands)
        );
    }
    let (Some(baseline), Some(bound)) = (baseline, &ceiling.bound) else {
        return;
    };
    let Some(estimate) = &bound.estimate else {
        return;
    };
    let _ = writeln!(
        out,
        "  the best median paired difference against {baseline} of any model without an offset: {} \
         ({level}% interval [{}, {}]; the ceiling beats {baseline} on {} of {} seeds)",
        signed(estimate.median),
        signed(estimate.interval.lower),
        signed(estimate.interval.upper),
        bound.wins,
        bound.differences.len()
    );
}

fn label_width<'a>(labels: impl Iterator<Item = &'a str>) -> usize {
    labels.map(str::len).max().unwrap_or(0).max("optimizer".len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::grid::{Entrant, RunKey};

    fn run(optimizer: &str, seed: u64, quality: i64, recalibrated: Option<i64>) -> RunRecord {
        let key = RunKey {
            entrant: Entrant::plain(optimizer),
            n_hidden: 4,
            seed,
            max_epochs: 1000,
        };
        RunRecord {
            status: RunStatus::Finished,
            quality,
            recalibrated_quality: recalibrated,
            ..RunRecord::for_key(&key)
        }
    }

    #[test]
    fn the_recalibrated_quality_is_paired_only_where_every_run_has_one() {
        let bootstrap = Bootstrap {
            resamples: 200,
            ..Bootstrap::default()
        };
        let mut records = Vec::new();
        for seed in 0..3 {
            records.push(run("adam", seed, 100, Some(50)));
            records.push(run("sgd", seed, 90 + seed as i64, Some(70 + seed as i64)));
            // Written before the diagnostic existed.
            records.push(run("lion", seed, 80, None));
        }
        let tables = tables(&records, Some("adam"), &bootstrap, &BTreeMap::new()).unwrap();
        let table = &tables[0];
        let row = |name: &str| table.rows.iter().find(|r| r.entrant == name).unwrap();
        assert_eq!(row("sgd").recalibrated, Some(71.0));
        assert_eq!(row("lion").recalibrated, None);
        assert_eq!(table.paired.len(), 2);
        let names: Vec<&str> = table.paired_recalibrated.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(names, ["sgd"]);
        let sgd = &table.paired_recalibrated[0].1;
        assert_eq!((sgd.wins, sgd.losses), (3, 0));
        assert_eq!(sgd.estimate.as_ref().unwrap().median, 21.0);
        let text = render(&tables, &bootstrap);
        assert!(text.contains("recalibrated quality (BatchNorm statistics"), "{text}");
    }

    #[test]
    fn runs_are_set_against_the_ceilings_and_the_baseline_bounds_any_zero_mean_model() {
        let bootstrap = Bootstrap {
            resamples: 200,
            ..Bootstrap::default()
        };
        let ceilings = BTreeMap::from([(0, 100), (1, 200), (2, 300)]);
        let mut records = Vec::new();
        for (seed, ceiling) in &ceilings {
            // adam: 10 above the ceiling on seeds 0 and 1, 30 below on seed 2.
            let adam = if *seed < 2 { ceiling + 10 } else { ceiling - 30 };
            records.push(run("adam", *seed, adam, Some(ceiling - 40)));
            // sgd: always 5 above, without a recalibrated quality.
            records.push(run("sgd", *seed, ceiling + 5, None));
        }
        let tables = tables(&records, Some("adam"), &bootstrap, &ceilings).unwrap();
        let ceiling = tables[0].ceiling.as_ref().expect("every seed has a ceiling");
        assert_eq!(ceiling.median, 200.0);
        let row = |name: &str| ceiling.rows.iter().find(|r| r.entrant == name).unwrap();
        assert_eq!((row("adam").above, row("adam").runs), (2, 3));
        assert_eq!(row("adam").over, 10.0);
        assert_eq!(row("adam").headroom, Some(40.0));
        assert_eq!((row("sgd").above, row("sgd").over, row("sgd").headroom), (3, 5.0, None));
        // The ceiling minus adam's quality: -10, -10, +30.
        let bound = ceiling.bound.as_ref().expect("the baseline ran");
        assert_eq!(bound.estimate.as_ref().unwrap().median, -10.0);
        assert_eq!((bound.wins, bound.losses), (1, 2));
        let text = render(&tables, &bootstrap);
        assert!(
            text.contains("against adam of any model without an offset: -10"),
            "{text}"
        );

        // A seed without a ceiling: no ceiling table for its track.
        let partial = BTreeMap::from([(0, 100), (1, 200)]);
        let tables = super::tables(&records, Some("adam"), &bootstrap, &partial).unwrap();
        assert!(tables[0].ceiling.is_none());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(738_291.0), "738,291");
        assert_eq!(thousands(-10_000_000.0), "-10,000,000");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(signed(4743.0), "+4,743");
        assert_eq!(signed(0.0), "0");
    }
}
