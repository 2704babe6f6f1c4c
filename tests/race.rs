//! `ferrograd race` end to end through the real binary: a race killed
//! midway resumes without redoing finished runs; a torn last line is
//! dropped and its run redone; an existing race is never silently mixed
//! with a new one; shards merge into the same results as one race; usage
//! errors are one line. Runs are kept short with the hidden `--max-epochs`.
#![cfg(feature = "cli")]

use ferrograd::race::record::{parse_records, RunRecord, RunStatus};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ferrograd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .output()
        .expect("the ferrograd binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> Output {
    let o = ferrograd(args);
    assert_eq!(o.status.code(), Some(0), "{args:?} failed:\n{}", text(&o.stderr));
    o
}

fn records(path: &Path) -> Vec<RunRecord> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let outcome = parse_records(path, &bytes).expect("the results file parses");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    outcome.records
}

fn complete_lines(path: &Path) -> Vec<String> {
    let content = std::fs::read_to_string(path).unwrap_or_default();
    content
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(String::from)
        .collect()
}

/// The cell of a record as text: entrant, track, seed.
fn cell(r: &RunRecord) -> String {
    format!("{} {} {}", r.entrant, r.n_hidden, r.seed)
}

#[test]
fn a_killed_race_resumes_without_redoing_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "race",
        "--optimizers",
        "sgd,clipped_adam",
        "--tracks",
        "2",
        "--seeds",
        "0..2",
        "--max-epochs",
        "12",
        "--jobs",
        "1",
        "--quiet",
        "--no-plots",
        "--out",
        out,
    ];
    let results = dir.path().join("race.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the ferrograd binary starts");
    let started = Instant::now();
    while complete_lines(&results).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(300), "no run finished in 300 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the race ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = complete_lines(&results);
    assert!(
        before.len() < 6,
        "all 6 runs finished before the kill; the test needs longer runs"
    );

    // Resume without --quiet, to read what it says it skips.
    let mut resume_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--quiet").collect();
    resume_args.push("--resume");
    let o = ok(&resume_args);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains(&format!("6 runs in this grid, {} already done", before.len())),
        "{stderr}"
    );
    let after = complete_lines(&results);
    assert_eq!(after.len(), 6, "one line per grid cell:\n{}", after.concat());
    // The finished runs were not redone: their lines (with their wall
    // times) are still the first lines, byte for byte.
    assert_eq!(&after[..before.len()], &before[..]);
    let cells: BTreeSet<String> = records(&results).iter().map(cell).collect();
    assert_eq!(cells.len(), 6, "{cells:?}");
    let table = text(&o.stdout);
    assert!(table.contains("track n_hidden=2"), "{table}");
    assert!(table.contains("paired by seed against clipped_adam"), "{table}");
    assert!(table.lines().any(|l| l.trim_start().starts_with("sgd ")), "{table}");
    // Every run also carries the diagnostic score, and so the report pairs it.
    assert!(records(&results).iter().all(|r| r.recalibrated_quality.is_some()));
    assert!(
        table.contains("paired by seed against clipped_adam, recalibrated quality"),
        "{table}"
    );
    // And sets every run against its seed's zero-mean ceiling.
    assert!(table.contains("against the zero-mean ceiling"), "{table}");
    assert!(
        table.contains("the best median paired difference against clipped_adam of any model without an offset"),
        "{table}"
    );
}

/// A complete tiny race in `out`: sgd on track 2, seeds 0 and 1, 2 epochs.
fn tiny_race(out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "race",
        "--optimizers",
        "sgd",
        "--tracks",
        "2",
        "--seeds",
        "0..1",
        "--max-epochs",
        "2",
        "--quiet",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    ferrograd(&args)
}

#[test]
fn a_torn_last_line_is_dropped_with_a_warning_and_its_run_redone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    assert_eq!(tiny_race(out, &[]).status.code(), Some(0));
    let results = dir.path().join("race.jsonl");
    let lines = complete_lines(&results);
    assert_eq!(lines.len(), 2);
    // Simulate a kill in the middle of writing the second line.
    let torn = format!("{}{}", lines[0], &lines[1][..lines[1].len() / 2]);
    std::fs::write(&results, torn).unwrap();

    let o = tiny_race(out, &["--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("redone"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let after = records(&results);
    assert_eq!(after.len(), 2);
    assert_eq!(complete_lines(&results)[0], lines[0]);
    let seeds: BTreeSet<u64> = after.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, BTreeSet::from([0, 1]));
    // Same seed, same numbers: the redone run scores as the first did.
    let first: RunRecord = serde_json::from_str(lines[1].trim()).unwrap();
    assert_eq!(after[1].quality, first.quality);
    assert_eq!(after[1].val_loss, first.val_loss);
}

#[test]
fn an_existing_race_is_never_silently_mixed_with_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    assert_eq!(tiny_race(out, &[]).status.code(), Some(0));
    let o = tiny_race(out, &[]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error:") && stderr.contains("--resume") && stderr.contains("--force"));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(complete_lines(&dir.path().join("race.jsonl")).len(), 2);
    // --force starts over: exactly one line per cell again.
    assert_eq!(tiny_race(out, &["--force"]).status.code(), Some(0));
    assert_eq!(records(&dir.path().join("race.jsonl")).len(), 2);
}

#[test]
fn shards_merge_into_the_same_results_as_one_race() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let race = |out: &str, shard: Option<&str>| {
        let mut args = vec![
            "race",
            "--optimizers",
            "sgd,clipped_adam",
            "--tracks",
            "2",
            "--seeds",
            "0..1",
            "--max-epochs",
            "2",
            "--quiet",
            "--out",
            out,
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        ok(&args)
    };
    race(&path("full"), None);
    race(&path("s0"), Some("0/2"));
    race(&path("s1"), Some("1/2"));
    let s0 = records(&dir.path().join("s0/race.jsonl"));
    let s1 = records(&dir.path().join("s1/race.jsonl"));
    assert_eq!((s0.len(), s1.len()), (2, 2));

    let file = |d: &str| format!("{}/race.jsonl", path(d));
    let o = ok(&[
        "race",
        "report",
        &file("s0"),
        &file("s1"),
        &file("s0"),
        "--baseline",
        "sgd",
        "--out",
        &path("merged"),
    ]);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("merged 4 runs from 3 files (2 duplicates dropped)"),
        "{stderr}"
    );
    let table = text(&o.stdout);
    assert!(table.contains("paired by seed against sgd"), "{table}");

    // Each merged cell has exactly the full race's quality (determinism).
    let full = records(&dir.path().join("full/race.jsonl"));
    let mut merged: Vec<(String, i64)> = s0.iter().chain(&s1).map(|r| (cell(r), r.quality)).collect();
    let mut expected: Vec<(String, i64)> = full.iter().map(|r| (cell(r), r.quality)).collect();
    merged.sort();
    expected.sort();
    assert_eq!(merged, expected);
    assert!(full
        .iter()
        .all(|r| r.status == RunStatus::Finished && r.epochs == 2 && r.val_loss.len() == 2));

    let quality_svg = std::fs::read_to_string(dir.path().join("merged/quality-n2.svg")).unwrap();
    let curves_svg = std::fs::read_to_string(dir.path().join("merged/val-loss-n2.svg")).unwrap();
    for svg in [&quality_svg, &curves_svg] {
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">sgd</text>") && svg.contains(">clipped_adam</text>"));
    }
    // Two entrants: two median lines in the curves plot, four seed marks in
    // the quality plot (dots, or triangles with a title for clipped ones).
    assert_eq!(curves_svg.matches("<polyline").count(), 2);
    let marks = quality_svg.matches("<circle").count() + quality_svg.matches("<title>").count();
    assert_eq!(marks, 4);
    let report = std::fs::read_to_string(dir.path().join("merged/report.txt")).unwrap();
    assert_eq!(report, table);
}

#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    for args in [
        vec!["race"],
        vec!["race", "--optimizers", "adamm"],
        vec!["race", "--optimizers", "sgd", "--shard", "2/2"],
        vec!["race", "--optimizers", "sgd", "--hp", "beta1=0.9"],
        vec!["race", "--optimizers", "sgd", "--hp", "sgd.momentum=0.9"],
        vec!["race", "--optimizers", "sgd", "--seeds", "5..1"],
        vec!["race", "report", "/nonexistent/race.jsonl"],
    ] {
        let o = ferrograd(&args);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}
