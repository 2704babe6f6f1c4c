//! The race figures of `bench/RESULTS.md` are computed from the committed
//! results files, by the library's own statistics, so they cannot drift
//! from them: the second-order table from
//! `bench/races/second-order/race.jsonl` (under the names the catalog had
//! then: `adam` is today's `clipped_adam`), the quoted report of the
//! all-defaults race from `ferrograd race report` on
//! `bench/races/all-defaults/race.jsonl`, and the champion's held-out table
//! from `bench/races/champion/eval/race.jsonl`. Its speed figures are
//! measurements, not race figures, and are not checked here. The tests
//! fail when the page and the files disagree; `bash
//! scripts/docs-race-figures.sh` rewrites the tables and the quoted report.
#![cfg(feature = "cli")]

mod common;

use common::{
    check_or_update, check_quoted_figures, paired_cell, race_report_output, read_page, replace_quoted_report,
    replace_table, track, track_tables, wins_losses,
};
use ferrograd::race::report::{thousands, EntrantRow, TrackTable};

/// The page whose figures are generated.
const PAGE: &str = "bench/RESULTS.md";
/// The second-order race.
const SECOND_ORDER: &str = "bench/races/second-order/race.jsonl";
/// The race of every optimizer at its defaults, quoted in full.
const ALL_DEFAULTS: &str = "bench/races/all-defaults/race.jsonl";
/// The champion's held-out evaluation.
const EVAL: &str = "bench/races/champion/eval/race.jsonl";

/// The second-order table's header.
const SECOND_ORDER_HEADER: &str = "| track | optimizer | median quality [95% interval] | paired diff vs adam [95% interval] | wins-losses | median epochs | s/run |";
/// The champion table's header.
const CHAMPION_HEADER: &str =
    "| track | anneal median | adam_tuned median | paired diff [95 %], wins-losses | epochs anneal / adam_tuned |";

/// The label a race record has today for a name the page uses (the page
/// quotes the names of its time; see its "Names" paragraph).
fn todays_label(page_name: &str) -> &str {
    match page_name {
        "adam" => "clipped_adam",
        other => other,
    }
}

fn row<'a>(table: &'a TrackTable, entrant: &str) -> &'a EntrantRow {
    table
        .rows
        .iter()
        .find(|r| r.entrant == entrant)
        .unwrap_or_else(|| panic!("track {} has no entrant {entrant}", table.n_hidden))
}

/// A second-order row: the page's track and name kept, the figures made
/// afresh (the baseline's paired cells empty).
fn second_order_rows(old: Vec<Vec<String>>) -> Vec<String> {
    let tables = track_tables(&[SECOND_ORDER], "clipped_adam");
    old.iter()
        .map(|cells| {
            let n_hidden: usize = cells[0].parse().expect("a track");
            let table = track(&tables, n_hidden);
            let label = todays_label(&cells[1]);
            let r = row(table, label);
            let q = &r.quality;
            let median = format!(
                "{} [{}, {}]",
                thousands(q.median),
                thousands(q.interval.lower),
                thousands(q.interval.upper)
            );
            let (diff, record) = match table.paired.iter().find(|(l, _)| l == label) {
                Some((_, c)) => (paired_cell(c, false), wins_losses(c)),
                None => (String::new(), String::new()),
            };
            let row = format!(
                "| {n_hidden} | {} | {median} | {diff} | {record} | {} | {:.1} |",
                cells[1], r.epochs, r.seconds
            );
            // The baseline's empty cells are written `| |`.
            row.replace("|  |  |", "| | |")
        })
        .collect()
}

/// A row of the champion's held-out table.
fn champion_rows(old: Vec<Vec<String>>) -> Vec<String> {
    let tables = track_tables(&[EVAL], "adam_tuned");
    old.iter()
        .map(|cells| {
            let n_hidden: usize = cells[0].parse().expect("a track");
            let table = track(&tables, n_hidden);
            let (anneal, tuned) = (row(table, "anneal"), row(table, "adam_tuned"));
            let (_, c) = table
                .paired
                .iter()
                .find(|(l, _)| l == "anneal")
                .expect("anneal is paired");
            format!(
                "| {n_hidden} | {} | {} | {}, {} | {} / {} |",
                thousands(anneal.quality.median),
                thousands(tuned.quality.median),
                paired_cell(c, false),
                wins_losses(c),
                anneal.epochs,
                tuned.epochs
            )
        })
        .collect()
}

/// The page with its generated tables and quoted report made afresh.
fn regenerated(page: &str) -> String {
    let page = replace_table(page, SECOND_ORDER_HEADER, second_order_rows);
    let page = replace_table(&page, CHAMPION_HEADER, champion_rows);
    replace_quoted_report(&page, 0, &race_report_output(&[ALL_DEFAULTS]))
}

#[test]
fn the_results_pages_race_figures_match_the_committed_races() {
    let page = read_page(PAGE);
    assert_eq!(
        common::quoted_blocks(&page, "track n_hidden="),
        1,
        "{PAGE} quotes one race report"
    );
    let sources = format!("{SECOND_ORDER}, {ALL_DEFAULTS} and {EVAL}");
    check_or_update(PAGE, &sources, &regenerated(&page));
}

#[test]
fn the_results_pages_prose_quotes_the_races_figures() {
    let page = read_page(PAGE);
    let defaults = track_tables(&[ALL_DEFAULTS], "clipped_adam");
    let diff = |n: usize, entrant: &str| {
        let (_, c) = track(&defaults, n)
            .paired
            .iter()
            .find(|(l, _)| l == entrant)
            .expect("paired");
        common::signed(c.estimate.as_ref().expect("pairs").median)
    };
    let eval = track_tables(&[EVAL], "adam_tuned");
    let ratios: Vec<f64> = [4, 7, 10, 14, 18]
        .iter()
        .map(|&n| row(track(&eval, n), "anneal").epochs / row(track(&eval, n), "adam_tuned").epochs)
        .collect();
    let fewer = |r: f64| ((1.0 - r) * 100.0).round();
    let most = ratios.iter().cloned().fold(f64::MIN, f64::max);
    let least = ratios.iter().cloned().fold(f64::MAX, f64::min);
    let words = ["no", "one", "two", "three", "four", "five"];
    let significant = [4, 7, 10, 14, 18]
        .iter()
        .filter(|&&n| {
            let (_, c) = track(&eval, n)
                .paired
                .iter()
                .find(|(l, _)| l == "anneal")
                .expect("paired");
            c.estimate.as_ref().expect("pairs").interval.lower > 0.0
        })
        .count();
    let comparison = |n: usize, entrant: &str| {
        let (_, c) = track(&defaults, n)
            .paired
            .iter()
            .find(|(l, _)| l == entrant)
            .expect("paired");
        c.clone()
    };
    let lion_below = row(track(&defaults, 10), "lion")
        .runs
        .iter()
        .filter(|(_, r)| r.quality < 0)
        .count();
    assert_eq!(
        comparison(10, "lion").losses,
        5,
        "{PAGE} says lion loses every seed on track 10"
    );
    let sgdm_wins = comparison(10, "sgdm").wins;
    for entrant in ["lion", "sgdm", "adabelief", "radam", "adan", "sf_adamw"] {
        assert_eq!(
            comparison(4, entrant).wins,
            5,
            "{PAGE} says {entrant} wins every seed on track 4"
        );
    }
    let after = read_page("bench/races/champion/search.csv")
        .lines()
        .filter(|l| l.contains("after the held-out evaluation") || l.contains("(dropped)"))
        .count();
    let second = track_tables(&[SECOND_ORDER], "clipped_adam");
    let time_ratios = |entrant: &str| -> (f64, f64) {
        let ratios: Vec<f64> = [4, 10]
            .iter()
            .map(|&n| row(track(&second, n), entrant).seconds / row(track(&second, n), "clipped_adam").seconds)
            .collect();
        (ratios[0].min(ratios[1]), ratios[0].max(ratios[1]))
    };
    let (sophia_lo, sophia_hi) = time_ratios("sophia");
    let (ada_lo, ada_hi) = time_ratios("adahessian");
    let figures = [
        (
            ALL_DEFAULTS,
            format!("adan ({} and {}, 5-0 on each)", diff(4, "adan"), diff(10, "adan")),
        ),
        (
            ALL_DEFAULTS,
            format!(
                "sf_adamw ({} and {}, 5-0 on each)",
                diff(4, "sf_adamw"),
                diff(10, "sf_adamw")
            ),
        ),
        (EVAL, format!("in {}-{} % fewer epochs", fewer(most), fewer(least))),
        (EVAL, format!("significant on {} of five tracks", words[significant])),
        (
            SECOND_ORDER,
            format!(
                "ran {sophia_lo:.1}-{sophia_hi:.1}x Adam's time per run below, AdaHessian (one hvp per step) {}-{}x",
                ada_lo.round(),
                ada_hi.round()
            ),
        ),
        (
            ALL_DEFAULTS,
            format!("lion loses every seed ({lion_below} of 5 score below zero) and sgdm wins {sgdm_wins} of 5"),
        ),
        (
            "bench/races/champion/search.csv",
            format!("{after} on tuning seeds after it that changed nothing"),
        ),
    ];
    check_quoted_figures(PAGE, &page, &figures);
}
