//! What the page may read under `--dir`: race results (`*.jsonl` written by
//! `ferrograd race`) and training directories (`ferrograd train --out`),
//! never anything outside it, and the race viewer's tables, computed by
//! the race report's own functions.

use super::http::ApiError;
use ferrograd::race::record::read_records;
use ferrograd::race::report::{self, EntrantRow, TrackTable};
use ferrograd::race::stats::{Bootstrap, MedianEstimate, PairedComparison};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// How deep below `--dir` the listing looks.
const MAX_DEPTH: usize = 4;
/// The most entries the listing returns.
const MAX_ENTRIES: usize = 500;

/// `rel` as a path under `root`, which must exist: refused (400) unless it
/// is relative and made only of plain names (no `..`, no `/` at the
/// start), and refused if it leads outside `root` through a link.
pub fn resolve_under(root: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    let refused = || {
        ApiError::bad_request(format!(
            "the path {rel:?} is not allowed: give a path relative to --dir made of plain names (no '..', no leading '/')"
        ))
    };
    let relative = Path::new(rel);
    if rel.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(refused());
    }
    let joined = root.join(relative);
    let real = joined
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("{rel:?}: no such file or directory under --dir")))?;
    let real_root = root
        .canonicalize()
        .map_err(|e| ApiError::internal(format!("--dir {}: {e}", root.display())))?;
    if real.starts_with(&real_root) {
        Ok(real)
    } else {
        Err(refused())
    }
}

/// `GET /api/files`: the race results files and training directories
/// under `root`, as paths relative to it.
pub fn list(root: &Path) -> Value {
    let mut races = Vec::new();
    let mut runs = Vec::new();
    walk(root, root, 0, &mut races, &mut runs);
    races.sort();
    runs.sort();
    json!({ "races": races, "runs": runs })
}

fn walk(root: &Path, dir: &Path, depth: usize, races: &mut Vec<String>, runs: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if races.len() + runs.len() >= MAX_ENTRIES {
            return;
        }
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if path.join("metrics.jsonl").is_file() {
                runs.push(relative);
            }
            if depth + 1 < MAX_DEPTH {
                walk(root, &path, depth + 1, races, runs);
            }
        } else if kind.is_file() && relative.ends_with(".jsonl") && !relative.ends_with("metrics.jsonl") {
            races.push(relative);
        }
    }
}

/// `GET /api/race?file=REL[&baseline=LABEL]`: per track, each entrant's
/// per-seed qualities with their median and bootstrap interval, and the
/// paired differences against the baseline, from [`report::tables`] (the
/// numbers of `ferrograd race report`; the zero-mean ceilings are left out).
pub fn race(root: &Path, query: &BTreeMap<String, String>) -> Result<Value, ApiError> {
    let rel = query
        .get("file")
        .ok_or_else(|| ApiError::bad_request("give ?file=PATH, a race results file under --dir (see /api/files)"))?;
    let path = resolve_under(root, rel)?;
    let found = read_records(&path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (records, _) = report::merge(vec![found.records]);
    if records.is_empty() {
        return Err(ApiError::bad_request(format!("{rel}: the file holds no runs")));
    }
    let bootstrap = Bootstrap::default();
    let tables = report::tables(
        &records,
        query.get("baseline").map(String::as_str),
        &bootstrap,
        &BTreeMap::new(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(json!({
        "file": rel,
        "warnings": found.warnings,
        "level": bootstrap.level,
        "tracks": tables.iter().map(track_json).collect::<Vec<_>>(),
    }))
}

fn track_json(table: &TrackTable) -> Value {
    json!({
        "n_hidden": table.n_hidden,
        "max_epochs": table.max_epochs,
        "baseline": table.baseline,
        "rows": table.rows.iter().map(row_json).collect::<Vec<_>>(),
        "paired": table.paired.iter().map(|(label, p)| paired_json(label, p)).collect::<Vec<_>>(),
    })
}

fn row_json(row: &EntrantRow) -> Value {
    json!({
        "entrant": row.entrant,
        "qualities": row.qualities(),
        "quality": estimate_json(Some(&row.quality)),
        "above_zero": row.above_zero,
        "best_epoch": row.best_epoch,
        "failures": row.failures,
        "recalibrated": row.recalibrated,
    })
}

fn paired_json(label: &str, p: &PairedComparison) -> Value {
    json!({
        "entrant": label,
        "differences": p.differences,
        "estimate": estimate_json(p.estimate.as_ref()),
        "wins": p.wins,
        "losses": p.losses,
        "ties": p.ties,
    })
}

fn estimate_json(e: Option<&MedianEstimate>) -> Value {
    match e {
        Some(e) => json!({ "n": e.n, "median": e.median, "lower": e.interval.lower, "upper": e.interval.upper }),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_directory_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("race.jsonl"), "").unwrap();
        assert!(resolve_under(root.path(), "race.jsonl").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", "", "./race.jsonl"] {
            assert_eq!(resolve_under(root.path(), bad).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(resolve_under(root.path(), "missing.jsonl").unwrap_err().status, 404);
    }
}
