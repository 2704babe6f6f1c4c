//! The race figures of `docs/champion.md` are computed from the committed
//! results under `bench/races/champion/`, by the library's own statistics
//! (`ferrograd::race::report::tables`: medians, percentile-bootstrap
//! intervals with the report's seed, paired differences, recalibrated
//! qualities, zero-mean ceilings), so they cannot drift from them:
//!
//! | table or block | results |
//! |---|---|
//! | ablations, and the quoted report | `ablations/*/race.jsonl` |
//! | the tuned baselines, every configuration tried, shorter horizons, the grid of peak rate and horizon | `search.csv` |
//! | the held-out evaluation, and the quoted report | `eval/race.jsonl` |
//! | the second held-out set | `fresh-200/race.jsonl` |
//! | settling at epoch 40 | `settle40/race-300.jsonl`; `settle40/race-100.jsonl` with `recalibrated/race.jsonl` |
//! | the recalibrated quality, and the zero-mean ceiling | `recalibrated/race.jsonl` |
//! | shorter runs on the tuning seeds | `recalibrated-tuning/race.jsonl` |
//! | the bound of a perfect model | `eval`, `fresh-200`, `settle40/race-300`, `ceiling-tuning` |
//!
//! Figures quoted in the prose are checked against the same computations.
//! The tests fail when the page and the files disagree; `bash
//! scripts/docs-race-figures.sh` rewrites the tables and quoted reports.
#![cfg(feature = "cli")]

mod common;

use common::{
    check_or_update, check_quoted_figures, paired_cell, race_report_output, ratio_cell, read_page,
    replace_quoted_report, replace_table, signed, signed_interval, track, track_tables, wins_losses,
};
use ferrograd::race::report::{self, thousands, EntrantRow, TrackTable};
use ferrograd::race::stats::{self, Bootstrap, PairedComparison};
use std::sync::OnceLock;

/// The page whose figures are generated.
const PAGE: &str = "docs/champion.md";
/// The results it is generated from.
const SOURCES: &str = "bench/races/champion/";
/// The directory of the results.
const DIR: &str = "bench/races/champion";
/// The five tracks of the task.
const TRACKS: [usize; 5] = [4, 7, 10, 14, 18];
/// The tuned baseline's label in the races.
const TUNED: &str = "adam_tuned";

/// A results file under [`DIR`].
fn file(relative: &str) -> String {
    format!("{DIR}/{relative}")
}

/// The ablation races, in the order the ablation script's glob lists them.
fn ablation_files() -> Vec<String> {
    [
        "adam_direction",
        "full",
        "no_decay",
        "no_settle",
        "no_spread",
        "no_warmup",
    ]
    .iter()
    .map(|name| file(&format!("ablations/{name}/race.jsonl")))
    .collect()
}

/// `track_tables` of files under [`DIR`], computed once per set of files.
fn tables(files: &[String], baseline: &str) -> Vec<TrackTable> {
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    track_tables(&files, baseline)
}

/// The tables of each race the page uses, computed once.
struct Races {
    ablations: Vec<TrackTable>,
    eval: Vec<TrackTable>,
    fresh: Vec<TrackTable>,
    settle_300: Vec<TrackTable>,
    settle_100: Vec<TrackTable>,
    recalibrated: Vec<TrackTable>,
    recalibrated_tuning: Vec<TrackTable>,
    ceiling_tuning: Vec<TrackTable>,
}

fn races() -> &'static Races {
    static RACES: OnceLock<Races> = OnceLock::new();
    RACES.get_or_init(|| Races {
        ablations: tables(&ablation_files(), "anneal"),
        eval: tables(&[file("eval/race.jsonl")], TUNED),
        fresh: tables(&[file("fresh-200/race.jsonl")], TUNED),
        settle_300: tables(&[file("settle40/race-300.jsonl")], TUNED),
        settle_100: tables(
            &[file("settle40/race-100.jsonl"), file("recalibrated/race.jsonl")],
            TUNED,
        ),
        recalibrated: tables(&[file("recalibrated/race.jsonl")], TUNED),
        recalibrated_tuning: tables(&[file("recalibrated-tuning/race.jsonl")], TUNED),
        ceiling_tuning: tables(&[file("ceiling-tuning/race.jsonl")], TUNED),
    })
}

/// An entrant's row of a track.
fn row<'a>(table: &'a TrackTable, entrant: &str) -> &'a EntrantRow {
    table
        .rows
        .iter()
        .find(|r| r.entrant == entrant)
        .unwrap_or_else(|| panic!("track {} has no entrant {entrant}", table.n_hidden))
}

/// An entrant's comparison with the baseline, on the task's quality.
fn paired<'a>(table: &'a TrackTable, entrant: &str) -> &'a PairedComparison {
    find_paired(&table.paired, entrant, table.n_hidden)
}

/// An entrant's comparison with the baseline, on the recalibrated quality.
fn paired_recalibrated<'a>(table: &'a TrackTable, entrant: &str) -> &'a PairedComparison {
    find_paired(&table.paired_recalibrated, entrant, table.n_hidden)
}

fn find_paired<'a>(list: &'a [(String, PairedComparison)], entrant: &str, n_hidden: usize) -> &'a PairedComparison {
    list.iter()
        .find(|(label, _)| label == entrant)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("track {n_hidden} pairs no {entrant} with the baseline"))
}

/// `79 / 123`: two medians of epochs (or best epochs).
fn pair_of(a: f64, b: f64) -> String {
    format!("{a} / {b}")
}

/// `79 / 123 (0.64)`: the entrant's and the baseline's median epochs and
/// their ratio.
fn epochs_cell(table: &TrackTable, entrant: &str, bold_at_bar: bool) -> String {
    let (own, base) = (row(table, entrant).epochs, row(table, TUNED).epochs);
    format!("{} ({})", pair_of(own, base), ratio_cell(own / base, bold_at_bar))
}

/// `528,093 [472,464, 637,833]`: a median quality and its interval.
fn median_cell(row: &EntrantRow) -> String {
    let q = &row.quality;
    format!(
        "{} [{}, {}]",
        thousands(q.median),
        thousands(q.interval.lower),
        thousands(q.interval.upper)
    )
}

// ----- search.csv -----

/// One run of the search log.
struct SearchRun {
    who: String,
    configuration: String,
    n_hidden: usize,
    seed: u64,
    quality: i64,
    epochs: usize,
}

/// The fields of a CSV line (quoted fields may hold commas; `""` is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn search() -> &'static [SearchRun] {
    static SEARCH: OnceLock<Vec<SearchRun>> = OnceLock::new();
    SEARCH.get_or_init(|| {
        let text = read_page(&file("search.csv"));
        let mut lines = text.lines();
        let header = lines.next().expect("a header");
        assert!(
            header.starts_with("who,configuration,n_hidden,seed,quality,epochs"),
            "{header}"
        );
        lines
            .map(|line| {
                let f = csv_fields(line);
                let number = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("bad field {i}: {line}"));
                SearchRun {
                    who: f[0].clone(),
                    configuration: f[1].clone(),
                    n_hidden: number(2) as usize,
                    seed: number(3) as u64,
                    quality: number(4),
                    epochs: number(5) as usize,
                }
            })
            .collect()
    })
}

/// The runs of one configuration on one track.
fn search_runs(configuration: &str, n_hidden: usize) -> Vec<&'static SearchRun> {
    let runs: Vec<&SearchRun> = search()
        .iter()
        .filter(|r| r.configuration == configuration && r.n_hidden == n_hidden)
        .collect();
    assert!(
        !runs.is_empty(),
        "search.csv has no runs of {configuration:?} on track {n_hidden}"
    );
    runs
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    stats::median(&values.collect::<Vec<f64>>()).expect("at least one run")
}

/// The tuned baseline's configuration in the search log.
fn tuned_configuration(n_hidden: usize) -> &'static str {
    if n_hidden == 4 {
        "Adam, cosine to 0 over 100 epochs, lr 0.0005, beta1 0.95"
    } else {
        "Adam, cosine to 0 over 100 epochs, lr 0.0005"
    }
}

/// `728,946 / 133.5`: median quality and epochs of a configuration.
fn quality_and_epochs(configuration: &str, n_hidden: usize) -> String {
    let runs = search_runs(configuration, n_hidden);
    let quality = median_of(runs.iter().map(|r| r.quality as f64));
    let epochs = median_of(runs.iter().map(|r| r.epochs as f64));
    format!("{} / {epochs}", thousands(quality))
}

/// A configuration against another on the seeds both ran, and its median
/// epochs as a fraction of the other's on those seeds.
fn search_paired(configuration: &str, baseline: &str, n_hidden: usize) -> (PairedComparison, f64) {
    let own = search_runs(configuration, n_hidden);
    let base: Vec<&SearchRun> = search_runs(baseline, n_hidden)
        .into_iter()
        .filter(|b| own.iter().any(|o| o.seed == b.seed))
        .collect();
    let scores = |runs: &[&SearchRun]| -> Vec<(u64, f64)> { runs.iter().map(|r| (r.seed, r.quality as f64)).collect() };
    let comparison = stats::paired(&scores(&own), &scores(&base), &Bootstrap::default());
    let epochs = |runs: &[&SearchRun]| median_of(runs.iter().map(|r| r.epochs as f64));
    (comparison, epochs(&own) / epochs(&base))
}

/// `+11,308 [+1,538, +37,248], 0.60`: a search configuration against tuned
/// Adam.
fn against_tuned_cell(configuration: &str, n_hidden: usize) -> String {
    let (comparison, ratio) = search_paired(configuration, tuned_configuration(n_hidden), n_hidden);
    format!("{}, {ratio:.2}", paired_cell(&comparison, false))
}

/// `0..19`: the seeds of a group of runs, which must be a range.
fn seed_range(runs: &[&SearchRun]) -> String {
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    let (first, last) = (seeds[0], seeds[seeds.len() - 1]);
    assert_eq!(seeds, (first..=last).collect::<Vec<_>>(), "the seeds are a range");
    format!("{first}..{last}")
}

/// The rows of "Every configuration tried": one per (who, configuration,
/// track), in the order of the log.
fn search_rows() -> Vec<String> {
    let mut keys: Vec<(&str, &str, usize)> = Vec::new();
    for r in search() {
        let key = (r.who.as_str(), r.configuration.as_str(), r.n_hidden);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.iter()
        .map(|&(who, configuration, n_hidden)| {
            let runs: Vec<&SearchRun> = search_runs(configuration, n_hidden)
                .into_iter()
                .filter(|r| r.who == who)
                .collect();
            let quality = median_of(runs.iter().map(|r| r.quality as f64));
            let epochs = median_of(runs.iter().map(|r| r.epochs as f64));
            format!(
                "| {who} | {configuration} | {n_hidden} | {} | {} | {} | {epochs} |",
                seed_range(&runs),
                runs.len(),
                thousands(quality)
            )
        })
        .collect()
}

/// "horizon 50 (chosen)": the champion rerun on the tuning seeds.
const CHAMPION_RERUN: &str = "anneal v1, horizon 50 (chosen), rerun after the held-out evaluation";

/// A configuration of the diagnostic grid.
fn grid_configuration(lr: &str, horizon: u32) -> String {
    format!(
        "anneal v1, horizon {horizon}, lr {lr}, after the held-out evaluation \
         (diagnostic build stopped at the horizon; epochs = best + 51 as settled)"
    )
}

// ----- the tables -----

/// A table of the page: its header and how its rows are made from the old
/// rows' cells.
type Generator = fn(Vec<Vec<String>>) -> Vec<String>;

/// Rows whose first cell names a track: the cell kept, the rest from `f`.
fn by_track(old: Vec<Vec<String>>, f: impl Fn(usize) -> Vec<String>) -> Vec<String> {
    old.iter()
        .map(|cells| {
            let n_hidden = cells[0].parse().unwrap_or_else(|_| panic!("not a track: {}", cells[0]));
            format!("| {n_hidden} | {} |", f(n_hidden).join(" | "))
        })
        .collect()
}

/// Rows whose first cell is one of `labels`, in that order, the rest from
/// `f` of the label's key.
fn by_label(labels: &[(&str, &str)], f: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    labels
        .iter()
        .map(|(label, key)| format!("| {label} | {} |", f(key).join(" | ")))
        .collect()
}

const ABLATIONS: &str = "| part removed | track 4: paired diff [95 %], wins-losses; median epochs | track 10: paired diff [95 %], wins-losses; median epochs |";

fn ablation_rows(_: Vec<Vec<String>>) -> Vec<String> {
    let labels = [
        ("none (anneal)", "anneal"),
        ("spread (`spread=0`)", "anneal(spread=0)"),
        ("Adan (clipped Adam instead, `adam=1`)", "anneal(adam=1)"),
        ("decay (constant rate to the horizon, `final=1`)", "anneal(final=1)"),
        ("warmup (`warmup=0`)", "anneal(warmup=0)"),
        ("settle (`settle=0`)", "anneal(settle=0)"),
    ];
    by_label(&labels, |entrant| {
        [4, 10]
            .iter()
            .map(|&n| {
                let table = track(&races().ablations, n);
                let epochs = row(table, entrant).epochs;
                if entrant == "anneal" {
                    let median = row(table, entrant).quality.median;
                    return format!("median {}; {epochs} epochs", thousands(median));
                }
                let c = paired(table, entrant);
                let e = c.estimate.as_ref().expect("pairs");
                if e.median == 0.0 && c.ties > 0 {
                    format!("0 ({} ties, {}); {epochs}", c.ties, wins_losses(c))
                } else {
                    format!("{}, {}; {epochs}", paired_cell(c, false), wins_losses(c))
                }
            })
            .collect()
    })
}

const TUNED_BASELINES: &str = "| track | adam_tuned | its median quality / epochs on the tuning seeds |";

fn tuned_baseline_rows(old: Vec<Vec<String>>) -> Vec<String> {
    old.iter()
        .map(|cells| {
            let figures: Vec<String> = cells[0]
                .split(", ")
                .map(|t| {
                    let n: usize = t.parse().expect("a track");
                    quality_and_epochs(tuned_configuration(n), n)
                })
                .collect();
            format!("| {} | {} | {} |", cells[0], cells[1], figures.join("; "))
        })
        .collect()
}

const SEARCH: &str = "| who | configuration | track | seeds | runs | median quality | median epochs |";

const SHORTER: &str = "| track | horizon 50 (chosen) | horizon 28, decay | horizon 24, decay | horizon 28, no decay |";

fn shorter_rows(old: Vec<Vec<String>>) -> Vec<String> {
    let after = "after the held-out evaluation";
    let configurations = [
        CHAMPION_RERUN.to_string(),
        format!("anneal v1, horizon 28, linear decay, {after}"),
        format!("anneal v1, horizon 24, linear decay, {after}"),
        format!("anneal v1, horizon 28, no decay (final 1), {after}"),
    ];
    by_track(old, |n| {
        configurations.iter().map(|c| against_tuned_cell(c, n)).collect()
    })
}

const GRID: &str = "| peak, horizon | track 4 | track 7 | track 10 | track 14 | track 18 |";

fn grid_rows(_: Vec<Vec<String>>) -> Vec<String> {
    let configurations = [
        ("1e-3, horizon 50 (the champion)", CHAMPION_RERUN.to_string()),
        ("1e-3, horizon 30", grid_configuration("0.001", 30)),
        ("2e-3, horizon 24", grid_configuration("0.002", 24)),
        ("2e-3, horizon 30", grid_configuration("0.002", 30)),
        ("2e-3, horizon 40", grid_configuration("0.002", 40)),
        ("3e-3, horizon 30", grid_configuration("0.003", 30)),
    ];
    let labels: Vec<(&str, &str)> = configurations.iter().map(|(l, c)| (*l, c.as_str())).collect();
    by_label(&labels, |c| TRACKS.iter().map(|&n| against_tuned_cell(c, n)).collect())
}

const EVAL: &str = "| track | anneal: median quality [95 %] | adam_tuned | paired diff vs adam_tuned [95 %], wins-losses | median epochs anneal / adam_tuned (ratio) | median best epoch anneal / adam_tuned |";

fn eval_rows(old: Vec<Vec<String>>) -> Vec<String> {
    by_track(old, |n| {
        let t = track(&races().eval, n);
        let (anneal, tuned) = (row(t, "anneal"), row(t, TUNED));
        vec![
            median_cell(anneal),
            thousands(tuned.quality.median),
            format!(
                "{}, {}",
                paired_cell(paired(t, "anneal"), true),
                wins_losses(paired(t, "anneal"))
            ),
            epochs_cell(t, "anneal", false),
            pair_of(anneal.best_epoch, tuned.best_epoch),
        ]
    })
}

const FRESH: &str = "| track | anneal: median quality [95 %] | adam_tuned | paired diff vs adam_tuned [95 %], wins-losses | median epochs anneal / adam_tuned (ratio) | recalibrated paired diff [95 %] | median seconds anneal / adam_tuned |";

fn fresh_rows(old: Vec<Vec<String>>) -> Vec<String> {
    by_track(old, |n| {
        let t = track(&races().fresh, n);
        let (anneal, tuned) = (row(t, "anneal"), row(t, TUNED));
        vec![
            median_cell(anneal),
            thousands(tuned.quality.median),
            format!(
                "{}, {}",
                paired_cell(paired(t, "anneal"), true),
                wins_losses(paired(t, "anneal"))
            ),
            epochs_cell(t, "anneal", true),
            paired_cell(paired_recalibrated(t, "anneal"), false),
            format!("{:.1} / {:.1}", anneal.seconds, tuned.seconds),
        ]
    })
}

const SETTLE: &str = "| track | seeds 300..319: paired diff [95 %], wins-losses | epochs / tuned Adam's | seeds 100..119: paired diff [95 %] | epochs / tuned Adam's |";

fn settle_rows(old: Vec<Vec<String>>) -> Vec<String> {
    let entrant = "anneal(settle_at=40)";
    by_track(old, |n| {
        let (fresh, held) = (track(&races().settle_300, n), track(&races().settle_100, n));
        vec![
            format!(
                "{}, {}",
                paired_cell(paired(fresh, entrant), true),
                wins_losses(paired(fresh, entrant))
            ),
            epochs_cell(fresh, entrant, true),
            paired_cell(paired(held, entrant), true),
            epochs_cell(held, entrant, false),
        ]
    })
}

/// The median of `quality - recalibrated quality` over an entrant's runs.
fn luck(row: &EntrantRow) -> f64 {
    median_of(
        row.runs
            .iter()
            .map(|(_, r)| (r.quality - r.recalibrated_quality.expect("recalibrated")) as f64),
    )
}

const RECALIBRATED: &str = "| track | quality − recalibrated, median: anneal / adam_tuned | paired diff vs adam_tuned, task quality | paired diff vs adam_tuned, recalibrated quality | epochs, anneal / adam_tuned |";

fn recalibrated_rows(old: Vec<Vec<String>>) -> Vec<String> {
    by_track(old, |n| {
        let t = track(&races().recalibrated, n);
        let (anneal, tuned) = (row(t, "anneal"), row(t, TUNED));
        let (task, recal) = (paired(t, "anneal"), paired_recalibrated(t, "anneal"));
        vec![
            format!("{} / {}", signed(luck(anneal)), signed(luck(tuned))),
            format!("{}, {}", paired_cell(task, false), wins_losses(task)),
            format!("{}, {}", paired_cell(recal, true), wins_losses(recal)),
            pair_of(anneal.epochs, tuned.epochs),
        ]
    })
}

const CEILING: &str = "| track | anneal: runs above the ceiling; median quality − ceiling; median ceiling − recalibrated | adam_tuned: the same |";

fn ceiling_rows(old: Vec<Vec<String>>) -> Vec<String> {
    by_track(old, |n| {
        let ceiling = track(&races().recalibrated, n)
            .ceiling
            .as_ref()
            .expect("every seed has a ceiling");
        ["anneal", TUNED]
            .iter()
            .map(|entrant| {
                let r = ceiling
                    .rows
                    .iter()
                    .find(|r| r.entrant == *entrant)
                    .expect("a ceiling row");
                let headroom = r.headroom.expect("recalibrated");
                format!("{}/{}; {}; {}", r.above, r.runs, signed(r.over), thousands(headroom))
            })
            .collect()
    })
}

const TUNING_RUNS: &str = "| entrant | track 10: task quality, paired | track 10: recalibrated, paired | track 18: task quality, paired | track 18: recalibrated, paired | epochs / tuned Adam's |";

fn tuning_run_rows(_: Vec<Vec<String>>) -> Vec<String> {
    let labels = [
        ("horizon 50, lr 1e-3 (the champion)", "anneal(horizon=50,lr=1e-3)"),
        ("horizon 50, lr 2e-3", "anneal(horizon=50,lr=2e-3)"),
        ("horizon 24, lr 1e-3", "anneal(horizon=24,lr=1e-3)"),
        ("horizon 24, lr 5e-4", "anneal(horizon=24,lr=5e-4)"),
    ];
    by_label(&labels, |entrant| {
        let tables = &races().recalibrated_tuning;
        let mut cells: Vec<String> = [10, 18]
            .iter()
            .flat_map(|&n| {
                let t = track(tables, n);
                [
                    paired_cell(paired(t, entrant), false),
                    paired_cell(paired_recalibrated(t, entrant), false),
                ]
            })
            .collect();
        let ratios: Vec<String> = [10, 18]
            .iter()
            .map(|&n| {
                let t = track(tables, n);
                ratio_cell(row(t, entrant).epochs / row(t, TUNED).epochs, false)
            })
            .collect();
        cells.push(if ratios[0] == ratios[1] {
            ratios[0].clone()
        } else {
            let (lo, hi) = (ratios.iter().min().unwrap(), ratios.iter().max().unwrap());
            format!("{lo}-{hi}")
        });
        cells
    })
}

const BOUND: &str = "| track | seeds 100..119 (the issue's) | seeds 200..219 | seeds 300..319 | tuning seeds 0..9 |";

fn bound_rows(old: Vec<Vec<String>>) -> Vec<String> {
    let r = races();
    let sources = [&r.eval, &r.fresh, &r.settle_300, &r.ceiling_tuning];
    by_track(old, |n| {
        sources
            .iter()
            .map(|tables| {
                let ceiling = track(tables, n).ceiling.as_ref().expect("every seed has a ceiling");
                let bound = ceiling.bound.as_ref().expect("the baseline ran");
                let e = bound.estimate.as_ref().expect("pairs");
                let median = signed(e.median);
                let median = if e.median.round() < 0.0 {
                    format!("**{median}**")
                } else {
                    median
                };
                let interval = signed_interval(e.interval.lower, e.interval.upper);
                format!("{median} {interval}, {}/{}", bound.losses, bound.differences.len())
            })
            .collect()
    })
}

/// Every generated table of the page.
fn generated_tables() -> Vec<(&'static str, Generator)> {
    vec![
        (ABLATIONS, ablation_rows),
        (TUNED_BASELINES, tuned_baseline_rows),
        (SEARCH, |_| search_rows()),
        (SHORTER, shorter_rows),
        (GRID, grid_rows),
        (EVAL, eval_rows),
        (FRESH, fresh_rows),
        (SETTLE, settle_rows),
        (RECALIBRATED, recalibrated_rows),
        (CEILING, ceiling_rows),
        (TUNING_RUNS, tuning_run_rows),
        (BOUND, bound_rows),
    ]
}

/// The arguments of `ferrograd race report` for each quoted report of the
/// page, in page order.
fn quoted_report_args() -> Vec<Vec<String>> {
    let mut ablations = ablation_files();
    ablations.extend(["--baseline".to_string(), "anneal".to_string()]);
    let eval = vec![file("eval/race.jsonl"), "--baseline".to_string(), TUNED.to_string()];
    vec![ablations, eval]
}

/// The page with every generated table and quoted report made afresh.
fn regenerated(page: &str) -> String {
    let mut out = page.to_string();
    for (header, rows) in generated_tables() {
        out = replace_table(&out, header, rows);
    }
    for (index, args) in quoted_report_args().iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        out = replace_quoted_report(&out, index, &race_report_output(&args));
    }
    out
}

#[test]
fn the_champion_pages_tables_and_reports_match_the_committed_results() {
    let page = read_page(PAGE);
    assert_eq!(
        common::quoted_blocks(&page, "track n_hidden="),
        quoted_report_args().len(),
        "every quoted report of {PAGE} has its command in quoted_report_args"
    );
    check_or_update(PAGE, SOURCES, &regenerated(&page));
}

#[test]
fn csv_fields_keep_quoted_commas() {
    assert_eq!(csv_fields(r#"adam,"Adam, lr 1",4"#), ["adam", "Adam, lr 1", "4"]);
    assert_eq!(csv_fields(r#"a,"say ""hi""",b"#), ["a", r#"say "hi""#, "b"]);
}

// ----- figures quoted in the prose -----

/// The median quality of a search configuration on track 4 (seeds it ran).
fn search_median(configuration: &str) -> String {
    let runs = search_runs(configuration, 4);
    thousands(median_of(runs.iter().map(|r| r.quality as f64)))
}

/// The anneal v0 configuration named by its settings.
fn v0(settings: &str) -> String {
    format!("anneal v0 (exploration build): {settings}")
}

/// `value` rounded to a multiple of `step`, as the prose rounds.
fn rounded(value: f64, step: f64) -> f64 {
    (value / step).round() * step
}

/// `59-70`: the range of `ratios` as whole percentages.
fn percent_range(ratios: &[f64]) -> String {
    let (lo, hi) = min_max(ratios);
    let (lo, hi) = ((lo * 100.0).round(), (hi * 100.0).round());
    if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}-{hi}")
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// Each track's ratio of the entrant's median epochs to tuned Adam's.
fn epoch_ratios(tables: &[TrackTable], entrant: &str, tracks: &[usize]) -> Vec<f64> {
    tracks
        .iter()
        .map(|&n| row(track(tables, n), entrant).epochs / row(track(tables, n), TUNED).epochs)
        .collect()
}

/// The search's prose: what did not work, and how many runs were spent.
fn search_figures() -> Vec<(&'static str, String)> {
    let h45 = v0("base 1, beta1 0.98, beta2 0.92, horizon 45, lr 0.001, spread 1");
    let (wd, _) = search_paired(
        &v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 1, warmup 5, wd 0.1"),
        &v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 1, warmup 5"),
        4,
    );
    let chosen = "anneal v1, horizon 50 (chosen)";
    let (h65, _) = search_paired("anneal v1, horizon 65", chosen, 4);
    let tuned = |c: &str| {
        let (p, _) = search_paired(c, tuned_configuration(4), 4);
        signed(rounded(p.estimate.expect("pairs").median, 100.0))
    };
    let rescale = |h: u32| format!("anneal v1 + first-layer rescale (dropped), horizon {h}");
    let adam_defaults: Vec<f64> = search_runs("Adam, constant lr 0.001", 4)
        .iter()
        .filter(|r| r.seed < 10)
        .map(|r| r.quality as f64)
        .collect();
    let s = "search.csv";
    vec![
        (
            s,
            format!(
                "{} at lr 1e-3, {} at 3e-3, {} at 1e-2",
                search_median(&v0("lr 0.001")),
                search_median(&v0("lr 0.003")),
                search_median(&v0("lr 0.01"))
            ),
        ),
        (
            s,
            format!(
                "{} for plain Adam at its defaults",
                thousands(median_of(adam_defaults.into_iter()))
            ),
        ),
        (
            s,
            format!(
                "{} and\n  {}. **For",
                search_median(&v0("in_mult 3")),
                search_median(&v0("in_mult 10"))
            ),
        ),
        (
            s,
            format!(
                "(x3): {} and {}.",
                search_median(&v0("beta2 0.99, bn_mult 3")),
                search_median(&v0("beta2 0.999, bn_mult 3"))
            ),
        ),
        (
            s,
            format!(
                "{} and\n  {} against {} with clipping at 1",
                search_median(&v0("clip 1e+06, horizon 45, lr 0.001")),
                search_median(&v0("clip 10, horizon 45, lr 0.001")),
                search_median(&v0("horizon 45, lr 0.001"))
            ),
        ),
        (
            s,
            format!(
                "{}\n  against {}.",
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, cosine 1, horizon 45, spread 1")),
                search_median(&h45)
            ),
        ),
        (
            s,
            format!(
                "{} and\n  {} against {}.",
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 0.7")),
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 1.3")),
                search_median(&h45)
            ),
        ),
        (
            s,
            format!(
                "{} and {} against {};",
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 1, wd 0.1")),
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 45, spread 1, wd 1")),
                search_median(&h45)
            ),
        ),
        (
            s,
            format!(
                "0.1 gave {} paired ({} wins, {} losses)",
                signed(rounded(wd.estimate.as_ref().expect("pairs").median, 100.0)),
                wd.wins,
                wd.losses
            ),
        ),
        (
            s,
            format!(
                "(horizon 22: {}; 30: {})",
                search_median("anneal v1, horizon 22, warmup 3, lr 0.001"),
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 30, spread 1"))
            ),
        ),
        (
            s,
            format!(
                "horizon 65 scored {} (paired {} over horizon 50, {} wins, {} losses)",
                search_median("anneal v1, horizon 65"),
                signed(rounded(h65.estimate.as_ref().expect("pairs").median, 100.0)),
                h65.wins,
                h65.losses
            ),
        ),
        (
            s,
            format!(
                "**Adan at peak 3e-3**: {} against {} at 1e-3.",
                search_median(&v0("base 1, beta1 0.98, beta2 0.92, horizon 45, lr 0.003, spread 1")),
                search_median(&h45)
            ),
        ),
        (
            s,
            format!(
                "{} at horizon 50 (anneal without it: {}), {} at horizon 22",
                tuned(&rescale(50)),
                tuned(chosen),
                tuned(&rescale(22))
            ),
        ),
        (
            s,
            format!(
                "alike, {} at\n  horizon 30",
                tuned("anneal v1 + first-layer rescale with scaled updates (dropped), horizon 30")
            ),
        ),
    ]
}

/// How many runs of the search match `keep`.
fn search_count(keep: impl Fn(&SearchRun) -> bool) -> usize {
    search().iter().filter(|r| keep(r)).count()
}

/// The budgets quoted in "The rule".
fn budget_figures() -> Vec<(&'static str, String)> {
    let after = |r: &SearchRun| {
        r.configuration.contains("after the held-out evaluation") || r.configuration.contains("(dropped)")
    };
    let baseline = |r: &SearchRun| r.who != "anneal" && !after(r);
    let has = |text: &'static str| move |r: &SearchRun| r.configuration.contains(text);
    let shorter = |r: &SearchRun| {
        r.configuration.contains("decay") && r.configuration.contains("after the held-out")
            || r.configuration == CHAMPION_RERUN
    };
    let s = "search.csv";
    vec![
        (
            s,
            format!(
                "**{} runs** for the\nbaselines (Adam {}, AdamW {}) and {} for\n`anneal` up to its evaluation",
                search_count(baseline),
                search_count(|r| baseline(r) && r.who == "adam"),
                search_count(|r| baseline(r) && r.who == "adamw"),
                search_count(|r| r.who == "anneal" && !after(r))
            ),
        ),
        (
            s,
            format!(
                "plus {}\nspent afterwards on tuning seeds only: {} on an idea that was dropped, {}\non shorter horizons",
                search_count(after),
                search_count(has("(dropped)")),
                search_count(shorter)
            ),
        ),
        (
            s,
            format!(
                "{} for the recalibration diagnostic ({}\nof `anneal`, {} reruns of `adam_tuned`; see the last section) and {} on a\ngrid",
                search_count(has("recalibration diagnostic")),
                search_count(|r| r.who == "anneal" && r.configuration.contains("recalibration diagnostic")),
                search_count(|r| r.who == "adam" && r.configuration.contains("recalibration diagnostic")),
                search_count(has("diagnostic build"))
            ),
        ),
    ]
}

/// The tracks whose comparison's interval lies above zero, as the prose
/// lists them: `4, 10 and 14`.
fn tracks_above_zero(tables: &[TrackTable], entrant: &str) -> String {
    let tracks: Vec<String> = TRACKS
        .iter()
        .filter(|&&n| {
            paired(track(tables, n), entrant)
                .estimate
                .as_ref()
                .expect("pairs")
                .interval
                .lower
                > 0.0
        })
        .map(|n| n.to_string())
        .collect();
    match tracks.as_slice() {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The held-out races' prose: the summary, the evaluation, the second and
/// third sets.
fn held_out_figures() -> Vec<(&'static str, String)> {
    let r = races();
    let eval = epoch_ratios(&r.eval, "anneal", &TRACKS);
    let fresh = epoch_ratios(&r.fresh, "anneal", &TRACKS);
    let settle = epoch_ratios(&r.settle_300, "anneal(settle_at=40)", &TRACKS);
    let fewer = {
        let (lo, hi) = min_max(&eval);
        format!(
            "{}-{} % fewer epochs",
            ((1.0 - hi) * 100.0).round(),
            ((1.0 - lo) * 100.0).round()
        )
    };
    let adamw: Vec<String> = TRACKS
        .iter()
        .map(|&n| {
            signed(
                paired(track(&r.eval, n), "adamw_tuned")
                    .estimate
                    .as_ref()
                    .expect("pairs")
                    .median,
            )
        })
        .collect();
    let fresh_luck = |n: usize| {
        let t = track(&r.fresh, n);
        format!(
            "{} / {}",
            thousands(luck(row(t, "anneal"))),
            thousands(luck(row(t, TUNED)))
        )
    };
    let tuned_epochs: Vec<f64> = [&r.eval, &r.fresh, &r.settle_300]
        .iter()
        .flat_map(|tables| TRACKS.iter().map(|&n| row(track(tables, n), TUNED).epochs))
        .collect();
    let (tuned_lo, tuned_hi) = min_max(&tuned_epochs);
    let (e, f, s) = ("eval/race.jsonl", "fresh-200/race.jsonl", "settle40/race-300.jsonl");
    let eval_14 = paired(track(&r.eval, 14), "anneal")
        .estimate
        .as_ref()
        .expect("pairs")
        .median;
    let settle_14 = paired(track(&r.settle_100, 14), "anneal(settle_at=40)");
    let saved: Vec<f64> = TRACKS
        .iter()
        .map(|&n| {
            let t = track(&r.settle_100, n);
            row(t, "anneal").epochs - row(t, "anneal(settle_at=40)").epochs
        })
        .collect();
    let (saved_lo, saved_hi) = min_max(&saved);
    vec![
        (e, format!("with {fewer}")),
        (
            e,
            format!(
                "the paired interval is above zero on tracks {}",
                tracks_above_zero(&r.eval, "anneal")
            ),
        ),
        (
            e,
            format!("the epochs are {} % of tuned Adam's where", percent_range(&eval)),
        ),
        (
            f,
            format!(
                "the epochs are {} % of tuned Adam's (at most 60 %",
                percent_range(&fresh)
            ),
        ),
        (
            s,
            format!("interval above zero on all five, epochs {} %)", percent_range(&settle)),
        ),
        (e, format!("`adamw_tuned` against `adam_tuned`: {} (track 4", adamw[0])),
        (
            e,
            format!("{}, {}, {}, {} (the others", adamw[1], adamw[2], adamw[3], adamw[4]),
        ),
        (
            e,
            format!(
                "(lower end {})",
                signed(
                    paired(track(&r.eval, 7), "anneal")
                        .estimate
                        .as_ref()
                        .expect("pairs")
                        .interval
                        .lower
                )
            ),
        ),
        (
            e,
            format!("The median epochs are {} % of tuned Adam's", percent_range(&eval)),
        ),
        (f, format!("is {} (anneal / adam_tuned) on track 4", fresh_luck(4))),
        (f, format!("and {} on track 18 here", fresh_luck(18))),
        (
            s,
            format!("{tuned_lo}-{tuned_hi} median epochs across the three held-out sets"),
        ),
        (
            "settle40/race-100.jsonl, recalibrated/race.jsonl",
            format!("it saves {saved_lo}-{saved_hi} epochs per track"),
        ),
        (
            s,
            format!(
                "(the median diff falls from {} to {})",
                signed(eval_14),
                signed(settle_14.estimate.as_ref().expect("pairs").median)
            ),
        ),
    ]
}

/// The recalibration's prose: the luck, the ceiling, the shorter runs.
fn recalibration_figures() -> Vec<(&'static str, String)> {
    let r = races();
    let t = |n| track(&r.recalibrated, n);
    let lucks: Vec<f64> = TRACKS
        .iter()
        .flat_map(|&n| [luck(row(t(n), "anneal")), luck(row(t(n), TUNED))])
        .collect();
    let (luck_lo, luck_hi) = min_max(&lucks);
    let biggest = r
        .recalibrated
        .iter()
        .flat_map(|table| table.rows.iter().flat_map(|row| row.runs.iter()))
        .map(|(_, run)| (run.quality - run.recalibrated_quality.expect("recalibrated")) as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let ratios = epoch_ratios(&r.recalibrated, "anneal", &TRACKS);
    let ties: f64 = [10, 18]
        .iter()
        .flat_map(|&n| {
            let i = paired_recalibrated(t(n), "anneal")
                .estimate
                .as_ref()
                .expect("pairs")
                .interval;
            [i.lower.abs(), i.upper.abs()]
        })
        .fold(0.0, f64::max);
    let luck_paired: Vec<f64> = TRACKS
        .iter()
        .map(|&n| {
            let seeds = |row: &EntrantRow| -> Vec<(u64, f64)> {
                row.runs
                    .iter()
                    .map(|(s, run)| {
                        (
                            *s,
                            (run.quality - run.recalibrated_quality.expect("recalibrated")) as f64,
                        )
                    })
                    .collect()
            };
            let c = stats::paired(
                &seeds(row(t(n), "anneal")),
                &seeds(row(t(n), TUNED)),
                &Bootstrap::default(),
            );
            c.estimate.expect("pairs").median
        })
        .collect();
    let (lp_lo, lp_hi) = min_max(&luck_paired);
    let headrooms: Vec<f64> = TRACKS
        .iter()
        .flat_map(|&n| {
            t(n).ceiling
                .as_ref()
                .expect("ceilings")
                .rows
                .iter()
                .map(|c| c.headroom.expect("recalibrated"))
        })
        .collect();
    let (head_lo, head_hi) = min_max(&headrooms);
    let seeds = r.recalibrated[0].rows[0].runs.iter().map(|(seed, _)| *seed).collect();
    let ceilings = report::zero_mean_ceilings(&seeds).expect("the ceilings compute");
    let (lowest, highest) = (
        ceilings.iter().min_by_key(|(_, c)| **c).expect("seeds"),
        ceilings.iter().max_by_key(|(_, c)| **c).expect("seeds"),
    );
    let thousand = |v: f64| thousands(rounded(v, 1000.0));
    let hundred = |v: f64| thousands(rounded(v, 100.0));
    let c = "recalibrated/race.jsonl";
    vec![
        (
            c,
            format!("a median of {} to {} per run", thousand(luck_lo), thousand(luck_hi)),
        ),
        (c, format!("up to {}\non a single run", thousand(biggest))),
        (
            c,
            format!(
                "with\n  an interval above zero, in {} % of the epochs",
                percent_range(&ratios[..2])
            ),
        ),
        (c, format!("within ±{} on 10 and 18", hundred(ties))),
        (
            c,
            format!(
                "and `anneal` gets there in\n  {} % of the epochs",
                percent_range(&ratios[2..])
            ),
        ),
        (
            c,
            format!(
                "(paired medians {} to {})",
                signed(rounded(lp_lo, 100.0)),
                signed(rounded(lp_hi, 100.0))
            ),
        ),
        (
            c,
            format!(
                "ranges from about {} (seed {}) to {} (seed {})",
                thousand(*lowest.1 as f64),
                lowest.0,
                thousand(*highest.1 as f64),
                highest.0
            ),
        ),
        (
            c,
            format!(
                "median {}, and most kept models",
                thousands(t(4).ceiling.as_ref().expect("ceilings").median)
            ),
        ),
        (
            c,
            format!("a\nmedian of {}-{} per run", thousand(head_lo), thousand(head_hi)),
        ),
    ]
}

/// The shorter runs on the tuning seeds, and the bound's prose.
fn tuning_run_figures() -> Vec<(&'static str, String)> {
    let r = races();
    let h24 = ["anneal(horizon=24,lr=1e-3)", "anneal(horizon=24,lr=5e-4)"];
    let recal: Vec<f64> = h24
        .iter()
        .flat_map(|e| [10, 18].map(|n| paired_recalibrated(track(&r.recalibrated_tuning, n), e)))
        .map(|c| c.estimate.as_ref().expect("pairs").median.abs())
        .collect();
    let lowers: Vec<f64> = h24
        .iter()
        .flat_map(|e| [10, 18].map(|n| paired(track(&r.recalibrated_tuning, n), e)))
        .map(|c| -c.estimate.as_ref().expect("pairs").interval.lower)
        .collect();
    let (low_lo, low_hi) = min_max(&lowers);
    let above: Vec<f64> = TRACKS
        .iter()
        .map(|&n| {
            track(&r.ceiling_tuning, n)
                .ceiling
                .as_ref()
                .expect("ceilings")
                .bound
                .as_ref()
                .expect("bound")
                .losses as f64
        })
        .collect();
    let (above_lo, above_hi) = min_max(&above);
    let ratio = epoch_ratios(&r.recalibrated_tuning, h24[0], &[10, 18]);
    let t = "recalibrated-tuning/race.jsonl";
    vec![
        (
            t,
            format!("within {} of zero", thousands(rounded(min_max(&recal).1 + 50.0, 100.0))),
        ),
        (
            t,
            format!(
                "intervals reaching {}-{} below zero",
                thousands(rounded(low_lo, 100.0)),
                thousands(rounded(low_hi, 1000.0))
            ),
        ),
        (t, format!("in {} % of its epochs", percent_range(&ratio))),
        (
            "ceiling-tuning/race.jsonl",
            format!("on {above_lo}-{above_hi} of 10 seeds"),
        ),
    ]
}

/// The ablations' prose.
fn ablation_figures() -> Vec<(&'static str, String)> {
    let t = |n| track(&races().ablations, n);
    let more = |entrant: &str, n: usize| row(t(n), entrant).epochs - row(t(n), "anneal").epochs;
    let added = [
        more("anneal(spread=0)", 4),
        more("anneal(adam=1)", 4),
        more("anneal(adam=1)", 10),
    ];
    let (lo, hi) = min_max(&added);
    let a = "ablations/*/race.jsonl";
    vec![
        (
            a,
            format!(
                "{} and {} more median epochs without it",
                more("anneal(settle=0)", 4),
                more("anneal(settle=0)", 10)
            ),
        ),
        (
            a,
            format!(
                "but for the spread on track 10 ({} epochs fewer), add {lo}-{hi} epochs",
                -more("anneal(spread=0)", 10)
            ),
        ),
    ]
}

/// The cells of `configurations` against tuned Adam on every track with
/// an interval above zero, and each cell's epoch ratio.
fn above_zero_cells(configuration: &str) -> (usize, Vec<f64>) {
    let cells: Vec<(PairedComparison, f64)> = TRACKS
        .iter()
        .map(|&n| search_paired(configuration, tuned_configuration(n), n))
        .collect();
    let above = cells
        .iter()
        .filter(|(c, _)| c.estimate.as_ref().expect("pairs").interval.lower > 0.0)
        .count();
    (above, cells.into_iter().map(|(_, ratio)| ratio).collect())
}

/// The prose after the shorter horizons and the grid.
fn horizon_figures() -> Vec<(&'static str, String)> {
    let after = "after the held-out evaluation";
    let shorter = [
        format!("anneal v1, horizon 28, linear decay, {after}"),
        format!("anneal v1, horizon 24, linear decay, {after}"),
        format!("anneal v1, horizon 28, no decay (final 1), {after}"),
    ];
    let (champion, champion_ratios) = above_zero_cells(CHAMPION_RERUN);
    let mut most = 0;
    let mut points = Vec::new();
    for c in &shorter {
        let (above, ratios) = above_zero_cells(c);
        most = most.max(above);
        // Percentage points, between the ratios as the table rounds them.
        let cell = |r: f64| (r * 100.0).round();
        points.extend(champion_ratios.iter().zip(&ratios).map(|(a, b)| cell(*a) - cell(*b)));
    }
    let (lo, hi) = min_max(&points);
    let grid: Vec<String> = [
        ("0.001", 30),
        ("0.002", 24),
        ("0.002", 30),
        ("0.002", 40),
        ("0.003", 30),
    ]
    .iter()
    .map(|(lr, h)| grid_configuration(lr, *h))
    .collect();
    let grid_above: usize = grid.iter().map(|c| above_zero_cells(c).0).sum();
    let (worst, _) = search_paired(&grid[4], tuned_configuration(18), 18);
    let words = ["none", "one", "two", "three", "four", "five"];
    let s = "search.csv";
    vec![
        (
            s,
            format!(
                "keeps an interval above zero on at most {} tracks of five (the champion: {}), for {lo}-{hi} percentage points",
                words[most], words[champion]
            ),
        ),
        (
            s,
            format!("only {grid_above} of 25 cells have an interval above zero (the champion: {champion} of 5)"),
        ),
        (
            s,
            format!("(3e-3 on track 18: {})", signed(worst.estimate.as_ref().expect("pairs").median)),
        ),
    ]
}

/// Epoch counts the prose compares.
fn epoch_figures() -> Vec<(&'static str, String)> {
    let r = races();
    let eval_epochs =
        |entrant: &str| -> Vec<f64> { TRACKS.iter().map(|&n| row(track(&r.eval, n), entrant).epochs).collect() };
    let search_epochs = |configuration: &str, tracks: &[usize]| -> Vec<f64> {
        tracks
            .iter()
            .map(|&n| median_of(search_runs(configuration, n).iter().map(|r| r.epochs as f64)))
            .collect()
    };
    let tuned_search: Vec<f64> = TRACKS
        .iter()
        .flat_map(|&n| search_epochs(tuned_configuration(n), &[n]))
        .collect();
    let range = |v: &[f64]| {
        let (lo, hi) = min_max(v);
        format!("{lo}-{hi}")
    };
    let chosen = search_epochs("anneal v1, horizon 50 (chosen)", &[4]);
    let rerun = search_epochs(CHAMPION_RERUN, &TRACKS);
    let h65 = search_epochs("anneal v1, horizon 65", &[4]);
    let mut with_chosen = rerun.clone();
    with_chosen.extend(&chosen);
    let no_decay = row(track(&races().ablations, 4), "anneal(final=1)").epochs;
    let wd: Vec<f64> = ["0.01", "0.1", "1"]
        .iter()
        .map(|wd| {
            let c = format!("Adam, cosine to 0 over 100 epochs, lr 0.001, AdamW wd {wd}");
            median_of(search_runs(&c, 4).iter().map(|r| r.quality as f64))
        })
        .collect();
    let (wd_lo, wd_hi) = min_max(&wd);
    vec![
        (
            "eval/race.jsonl, search.csv",
            format!(
                "({} median epochs against {} on the tuning seeds)",
                range(&eval_epochs(TUNED)),
                range(&tuned_search)
            ),
        ),
        (
            "eval/race.jsonl, search.csv",
            format!(
                "({} against {} at the same settings: {} on seeds 0..19 of track 4, {} in the rerun",
                range(&eval_epochs("anneal")),
                range(&with_chosen),
                chosen[0],
                range(&rerun)
            ),
        ),
        (
            "search.csv, ablations/no_decay/race.jsonl",
            format!(
                "but used {} epochs instead of {}; no decay at all (`final=1`, the ablation above) used {no_decay}.",
                h65[0], chosen[0]
            ),
        ),
        (
            "search.csv",
            format!(
                "the three were within {} of",
                thousands(rounded(wd_hi - wd_lo + 50.0, 100.0))
            ),
        ),
    ]
}

#[test]
fn the_champion_pages_prose_quotes_the_results_figures() {
    let page = read_page(PAGE);
    let mut figures = search_figures();
    figures.extend(budget_figures());
    figures.extend(held_out_figures());
    figures.extend(recalibration_figures());
    figures.extend(tuning_run_figures());
    figures.extend(ablation_figures());
    figures.extend(horizon_figures());
    figures.extend(epoch_figures());
    check_quoted_figures(PAGE, &page, &figures);
}
