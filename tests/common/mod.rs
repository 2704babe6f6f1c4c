//! Helpers shared by the tests that keep the docs' race figures equal to
//! the committed results files (`docs_race_figures`,
//! `docs_champion_figures`, `docs_results_figures`): reading a page,
//! replacing a generated table or quoted report, running `ferrograd race
//! report`, and checking a page against its regenerated self (or rewriting
//! it when `FERROGRAD_UPDATE_DOCS` is set).
#![allow(dead_code)] // each test crate uses a different subset

use ferrograd::race::record::{read_records, RunRecord};
use ferrograd::race::report::{self, TrackTable};
use ferrograd::race::stats::{Bootstrap, PairedComparison};
use std::path::{Path, PathBuf};

/// Set to rewrite the pages instead of checking them.
pub const UPDATE_ENV: &str = "FERROGRAD_UPDATE_DOCS";

/// A path relative to the repository root.
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A page of the repository, as text.
pub fn read_page(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative)).expect("the page reads")
}

/// The runs of a committed results file.
pub fn records(relative: &str) -> Vec<RunRecord> {
    read_records(&repo_file(relative))
        .expect("the committed race reads")
        .records
}

/// The tables `ferrograd race report FILES --baseline BASELINE` prints,
/// built by the library from the merged files with the report's default
/// bootstrap and the seeds' zero-mean ceilings.
pub fn track_tables(files: &[&str], baseline: &str) -> Vec<TrackTable> {
    let (merged, _) = report::merge(files.iter().map(|f| records(f)).collect());
    let seeds = merged.iter().map(|r| r.seed).collect();
    let ceilings = report::zero_mean_ceilings(&seeds).expect("the ceilings compute");
    report::tables(&merged, Some(baseline), &Bootstrap::default(), &ceilings).expect("the tables build")
}

/// The table of track `n_hidden`.
pub fn track(tables: &[TrackTable], n_hidden: usize) -> &TrackTable {
    tables
        .iter()
        .find(|t| t.n_hidden == n_hidden)
        .unwrap_or_else(|| panic!("the race has no track {n_hidden}"))
}

/// A number as the report writes it, with a sign when positive:
/// `+4,743`, `0`, `-88`.
pub fn signed(value: f64) -> String {
    let text = report::thousands(value);
    if value.round() > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// `[+1,186, +24,587]`: an interval with signed ends.
pub fn signed_interval(lower: f64, upper: f64) -> String {
    format!("[{}, {}]", signed(lower), signed(upper))
}

/// `+8,118 [+1,186, +24,587]`: a paired comparison's median difference and
/// its interval, in bold when `bold_above_zero` and the interval's lower
/// end is above zero.
pub fn paired_cell(comparison: &PairedComparison, bold_above_zero: bool) -> String {
    let e = comparison.estimate.as_ref().expect("the comparison has pairs");
    let text = format!(
        "{} {}",
        signed(e.median),
        signed_interval(e.interval.lower, e.interval.upper)
    );
    if bold_above_zero && e.interval.lower > 0.0 {
        format!("**{text}**")
    } else {
        text
    }
}

/// `14-6`: wins and losses.
pub fn wins_losses(comparison: &PairedComparison) -> String {
    format!("{}-{}", comparison.wins, comparison.losses)
}

/// `0.57`: an epoch ratio to two decimals, or three where two would round
/// a ratio above 0.6 down to the bar (`0.604`); in bold when `bold_at_bar`
/// and it is at most 0.6 (the issue's bar).
pub fn ratio_cell(ratio: f64, bold_at_bar: bool) -> String {
    let mut text = format!("{ratio:.2}");
    if text == "0.60" && ratio > 0.6 {
        text = format!("{ratio:.3}");
    }
    if bold_at_bar && ratio <= 0.6 {
        format!("**{text}**")
    } else {
        text
    }
}

/// The cells of a Markdown table row, trimmed.
pub fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// `page` with the body rows of the table under `header` replaced by
/// `rows(old rows' cells)`. Panics when the header is missing.
pub fn replace_table(page: &str, header: &str, rows: impl FnOnce(Vec<Vec<String>>) -> Vec<String>) -> String {
    let lines: Vec<&str> = page.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == header)
        .unwrap_or_else(|| panic!("no table with the header\n{header}"));
    let body = start + 2; // header and rule
    let end = body + lines[body..].iter().take_while(|l| l.starts_with('|')).count();
    let old: Vec<Vec<String>> = lines[body..end].iter().map(|l| cells(l)).collect();
    let mut out: Vec<String> = lines[..body].iter().map(|l| l.to_string()).collect();
    out.extend(rows(old));
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

/// Where the `index`-th ```text block whose first line starts with
/// `first` lies: the line range of its body.
fn quoted_block(lines: &[&str], first: &str, index: usize) -> std::ops::Range<usize> {
    let starts: Vec<usize> = (0..lines.len().saturating_sub(1))
        .filter(|&i| lines[i] == "```text" && lines[i + 1].starts_with(first))
        .collect();
    let start = *starts
        .get(index)
        .unwrap_or_else(|| panic!("the page has no quoted block {index} starting with {first:?}"))
        + 1;
    let len = lines[start..].iter().position(|l| *l == "```").expect("the block ends");
    start..start + len
}

/// The number of ```text blocks whose first line starts with `first`.
pub fn quoted_blocks(page: &str, first: &str) -> usize {
    let lines: Vec<&str> = page.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "```text" && w[1].starts_with(first))
        .count()
}

/// `page` with the body of its `index`-th quoted report (a ```text block
/// starting with `track n_hidden=`) replaced by `text`.
pub fn replace_quoted_report(page: &str, index: usize, text: &str) -> String {
    let lines: Vec<&str> = page.lines().collect();
    let range = quoted_block(&lines, "track n_hidden=", index);
    let mut out: Vec<&str> = lines[..range.start].to_vec();
    out.extend(text.lines());
    out.extend(&lines[range.end..]);
    out.join("\n") + "\n"
}

/// The lines of the `index`-th quoted report of `page`.
pub fn quoted_report(page: &str, index: usize) -> Vec<&str> {
    let lines: Vec<&str> = page.lines().collect();
    lines[quoted_block(&lines, "track n_hidden=", index)].to_vec()
}

/// What `ferrograd race report ARGS` prints (plots and report.txt go to a
/// scratch directory, never into the repository).
pub fn race_report_output(args: &[&str]) -> String {
    let out = std::env::temp_dir().join(format!("ferrograd-docs-report-{}", std::process::id()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .current_dir(repo_file(""))
        .args(["race", "report"])
        .args(args)
        .args(["--no-plots", "--out"])
        .arg(&out)
        .output()
        .expect("ferrograd runs");
    let _ = std::fs::remove_dir_all(&out);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("the report is UTF-8")
}

/// The lines of `page` that `expected` lacks, and those of `expected` that
/// `page` lacks.
pub fn stale_and_fresh<'a>(page: &'a str, expected: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let stale = page.lines().filter(|l| !expected.lines().any(|e| e == *l)).collect();
    let fresh = expected.lines().filter(|l| !page.lines().any(|p| p == *l)).collect();
    (stale, fresh)
}

/// Checks that the page at `relative` equals `expected` (its regenerated
/// self), listing the stale and fresh lines when not; with
/// [`UPDATE_ENV`] set, writes `expected` instead.
pub fn check_or_update(relative: &str, sources: &str, expected: &str) {
    let path = repo_file(relative);
    if std::env::var_os(UPDATE_ENV).is_some() {
        std::fs::write(&path, expected).expect("the page writes");
        return;
    }
    let page = std::fs::read_to_string(&path).expect("the page reads");
    let (stale, fresh) = stale_and_fresh(&page, expected);
    assert!(
        page == expected,
        "{relative} disagrees with {sources} (run `bash scripts/docs-race-figures.sh`):\n\
         on the page:\n  {}\nfrom the results:\n  {}",
        stale.join("\n  "),
        fresh.join("\n  ")
    );
}

/// `text` with every run of whitespace (line breaks included) made one
/// space, so that prose can be matched across its line breaks.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that `page` quotes each of `figures` verbatim, up to line breaks:
/// `(where, text)`, `where` naming what the text is computed from. All
/// missing ones are listed at once.
pub fn check_quoted_figures(relative: &str, page: &str, figures: &[(&str, String)]) {
    let flat = one_line(page);
    let missing: Vec<String> = figures
        .iter()
        .filter(|(_, text)| !flat.contains(&one_line(text)))
        .map(|(source, text)| format!("{text:?}  (from {source})"))
        .collect();
    assert!(
        missing.is_empty(),
        "{relative} no longer quotes these figures as the results give them (fix the prose):\n  {}",
        missing.join("\n  ")
    );
}
