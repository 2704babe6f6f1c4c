//! The race figures in `docs/optimizers.md` are computed from the committed
//! results files, so they cannot drift from them: the all-defaults table and
//! each optimizer's "Race:" line from `bench/races/all-defaults/race.jsonl`,
//! the second-order table from `bench/races/second-order/race.jsonl`, and
//! the quoted `ferrograd race report` output must be lines of that command's
//! output on `docs/img/race-sgd-adam/race.jsonl`. The tests fail when the
//! page and the files disagree; `bash scripts/docs-race-figures.sh`
//! rewrites the generated parts.
#![cfg(feature = "cli")]

mod common;

use common::{check_or_update, quoted_report, race_report_output, read_page, records};
use ferrograd::race::record::RunRecord;
use std::collections::BTreeMap;

/// The page whose figures are generated.
const PAGE: &str = "docs/optimizers.md";
/// The race they come from.
const RACE: &str = "bench/races/all-defaults/race.jsonl";
/// The second-order race (with the baseline in the same race).
const SECOND_ORDER_RACE: &str = "bench/races/second-order/race.jsonl";
/// The header line of the second-order table.
const SECOND_ORDER_HEADER: &str = "| optimizer | track 4: median quality (median epochs, s/run) | paired vs clipped_adam: median diff, wins-losses | track 10: median quality (epochs, s/run) | paired vs clipped_adam |";
/// The baseline of the second-order table.
const BASELINE: &str = "clipped_adam";
/// The race whose report the page quotes.
const QUOTED_RACE: &str = "docs/img/race-sgd-adam/race.jsonl";
/// The tracks the page quotes.
const TRACKS: [usize; 2] = [4, 10];
/// The header line of the generated table.
const TABLE_HEADER: &str = "| optimizer | track 4 median (epochs) | track 10 median (epochs) |";
/// The median of an odd number of values, or the mean of the middle two.
fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

/// `1234567` as `1,234,567` (and negatives likewise).
fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Median quality and median epoch count of one entrant on one track.
#[derive(Clone, Copy)]
struct Figure {
    quality: i64,
    epochs: i64,
}

impl Figure {
    fn of(runs: &[&RunRecord]) -> Figure {
        Figure {
            quality: median(runs.iter().map(|r| r.quality).collect()),
            epochs: median(runs.iter().map(|r| r.epochs as i64).collect()),
        }
    }

    /// `807,691 (173)`.
    fn cell(self) -> String {
        format!("{} ({})", thousands(self.quality), self.epochs)
    }
}

/// The runs of each (entrant, track).
fn runs_by_entrant(records: &[RunRecord]) -> BTreeMap<(String, usize), Vec<&RunRecord>> {
    let mut runs: BTreeMap<(String, usize), Vec<&RunRecord>> = BTreeMap::new();
    for record in records {
        runs.entry((record.entrant.clone(), record.n_hidden))
            .or_default()
            .push(record);
    }
    runs
}

/// Figures by entrant, then track, of the all-defaults race.
fn figures() -> BTreeMap<String, BTreeMap<usize, Figure>> {
    let records = records(RACE);
    let mut out: BTreeMap<String, BTreeMap<usize, Figure>> = BTreeMap::new();
    for ((entrant, track), runs) in runs_by_entrant(&records) {
        out.entry(entrant).or_default().insert(track, Figure::of(&runs));
    }
    out
}

/// The median seconds per run, to one decimal.
fn median_seconds(runs: &[&RunRecord]) -> String {
    let mut seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    format!("{:.1} s", seconds[seconds.len() / 2])
}

/// The median of the per-seed differences from the baseline, with wins and
/// losses: `+41,049, 4-1`.
fn paired(runs: &[&RunRecord], baseline: &[&RunRecord]) -> String {
    let base: BTreeMap<u64, i64> = baseline.iter().map(|r| (r.seed, r.quality)).collect();
    let diffs: Vec<i64> = runs.iter().map(|r| r.quality - base[&r.seed]).collect();
    let wins = diffs.iter().filter(|d| **d > 0).count();
    let losses = diffs.iter().filter(|d| **d < 0).count();
    let m = median(diffs);
    let sign = if m > 0 { "+" } else { "" };
    format!("{sign}{}, {wins}-{losses}", thousands(m))
}

/// One track's two cells of the second-order table.
fn second_order_cells(own: &[&RunRecord], baseline: Option<&[&RunRecord]>) -> [String; 2] {
    let figure = Figure::of(own);
    let value = format!(
        "{} ({}, {})",
        thousands(figure.quality),
        figure.epochs,
        median_seconds(own)
    );
    [value, baseline.map_or(String::new(), |b| paired(own, b))]
}

/// The second-order table's rows: the baseline first, then the others by
/// their track-4 median, best first.
fn second_order_rows() -> Vec<String> {
    let records = records(SECOND_ORDER_RACE);
    let runs = runs_by_entrant(&records);
    let mut entrants: Vec<String> = runs.keys().map(|(e, _)| e.clone()).collect();
    entrants.dedup();
    entrants.sort_by_key(|e| (e != BASELINE, -Figure::of(&runs[&(e.clone(), TRACKS[0])]).quality));
    entrants
        .iter()
        .map(|entrant| {
            let cells: Vec<String> = TRACKS
                .iter()
                .flat_map(|&t| {
                    let baseline = (entrant != BASELINE).then(|| runs[&(BASELINE.to_string(), t)].as_slice());
                    second_order_cells(&runs[&(entrant.clone(), t)], baseline)
                })
                .collect();
            format!("| {entrant} | {} |", cells.join(" | ")).replace("|  |", "| |")
        })
        .collect()
}

/// The table's rows, best track-4 median first.
fn table_rows(figures: &BTreeMap<String, BTreeMap<usize, Figure>>) -> Vec<String> {
    let mut entrants: Vec<(&String, &BTreeMap<usize, Figure>)> = figures.iter().collect();
    entrants.sort_by_key(|(name, by_track)| (-by_track[&TRACKS[0]].quality, name.to_string()));
    entrants
        .iter()
        .map(|(name, by_track)| {
            let cells: Vec<String> = TRACKS.iter().map(|t| by_track[t].cell()).collect();
            format!("| {name} | {} |", cells.join(" | "))
        })
        .collect()
}

/// The "Race:" line of a section about `names`.
fn race_line(names: &[&str], figures: &BTreeMap<String, BTreeMap<usize, Figure>>) -> String {
    let parts: Vec<String> = names
        .iter()
        .map(|name| {
            let by_track = &figures[*name];
            let tracks: Vec<String> = TRACKS
                .iter()
                .map(|t| format!("track {t} {}", by_track[t].cell()))
                .collect();
            let prefix = if names.len() > 1 {
                format!("{name}: ")
            } else {
                String::new()
            };
            format!("{prefix}{}", tracks.join(", "))
        })
        .collect();
    format!("- Race: {}.", parts.join("; "))
}

/// The optimizers a `### a` or `### a and b` heading is about, if all of
/// them ran in the race.
fn raced_names<'a>(heading: &'a str, figures: &BTreeMap<String, BTreeMap<usize, Figure>>) -> Option<Vec<&'a str>> {
    let names: Vec<&str> = heading.trim_start_matches("### ").split(" and ").collect();
    names.iter().all(|n| figures.contains_key(*n)).then_some(names)
}

/// The page with every generated figure computed afresh.
fn regenerated(page: &str, figures: &BTreeMap<String, BTreeMap<usize, Figure>>) -> String {
    let mut out = Vec::new();
    let mut lines = page.lines().peekable();
    let mut section: Option<Vec<&str>> = None;
    while let Some(line) = lines.next() {
        if line.starts_with("### ") {
            section = raced_names(line, figures);
        } else if line.starts_with("## ") {
            section = None;
        }
        if line == TABLE_HEADER || line == SECOND_ORDER_HEADER {
            out.push(line.to_string());
            out.push(lines.next().expect("the table's rule line").to_string());
            while lines
                .peek()
                .is_some_and(|l| l.starts_with("| ") && !l.contains("see ["))
            {
                lines.next();
            }
            if line == TABLE_HEADER {
                out.extend(table_rows(figures));
            } else {
                out.extend(second_order_rows());
            }
            continue;
        }
        if let (Some(names), true) = (&section, line.starts_with("- Race:")) {
            while lines.peek().is_some_and(|l| l.starts_with("  ")) {
                lines.next(); // the old line's continuation
            }
            out.push(race_line(names, figures));
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n") + "\n"
}

#[test]
fn the_optimizer_pages_race_figures_match_the_committed_race() {
    let page = read_page(PAGE);
    let sources = format!("{RACE} and {SECOND_ORDER_RACE}");
    check_or_update(PAGE, &sources, &regenerated(&page, &figures()));
}

#[test]
fn the_quoted_race_report_is_what_the_report_command_prints() {
    let page = read_page(PAGE);
    let printed = race_report_output(&[QUOTED_RACE]);
    let quoted = quoted_report(&page, 0);
    assert!(quoted.len() >= 5, "{quoted:?}");
    for line in quoted {
        assert!(
            printed.lines().any(|p| p == line),
            "{PAGE} quotes a line `ferrograd race report {QUOTED_RACE}` no longer prints:\n{line}\nit prints:\n{printed}"
        );
    }
}

#[test]
fn the_generated_table_covers_every_entrant_of_the_race() {
    let page = read_page(PAGE);
    for name in figures().keys() {
        assert!(
            page.contains(&format!("| {name} | ")),
            "{name} is missing from the table"
        );
    }
}

#[test]
fn figures_are_formatted_as_the_page_writes_them() {
    assert_eq!(thousands(807691), "807,691");
    assert_eq!(thousands(-10_000_000), "-10,000,000");
    assert_eq!(thousands(999), "999");
    assert_eq!(median(vec![5, 1, 3]), 3);
    assert_eq!(median(vec![4, 1, 3, 2]), 2);
}
