//! `ferrograd race`: a fair, reproducible comparison of optimizers on the
//! benchmark task.
//!
//! A race is a grid of runs, entrants (an optimizer with hyperparameter
//! overrides) x tracks x seeds, each trained under the task's protocol by
//! the same [`Trainer`](crate::train::Trainer) as `ferrograd train`. Runs
//! execute as tasks on a rayon pool of `--jobs` threads; every finished run
//! is appended to `race.jsonl` at once, so an interrupted race resumes where
//! it stopped. The report gives, per track, median quality with a bootstrap
//! interval and a paired comparison with a baseline ([`stats`] says exactly
//! how), the runs against each seed's zero-mean ceiling (the best score of a
//! model without an offset), and SVG figures ([`plots`]).
//!
//! Modules: [`grid`] (what runs), [`run`] (running it), [`record`] (the
//! results file), [`stats`] (the numbers), [`report`] (the tables),
//! [`plots`] (the figures).

pub mod grid;
pub mod plots;
pub mod record;
pub mod report;
pub mod run;
pub mod stats;

use std::path::{Path, PathBuf};

/// What can go wrong in a race; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaceError {
    /// Bad options or an inconsistent request.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("cannot {action} {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The system's message.
        message: String,
    },
    /// A results file holds something that is not a race record.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

impl RaceError {
    /// A [`RaceError::Io`] from a `std::io::Error`.
    pub fn io(path: &Path, action: &'static str, e: std::io::Error) -> RaceError {
        RaceError::Io {
            path: path.to_path_buf(),
            action,
            message: e.to_string(),
        }
    }
}

/// The file names a race writes in its output directory.
pub mod files {
    /// The results, one JSON record per line.
    pub const RESULTS: &str = "race.jsonl";
    /// The tables as text.
    pub const REPORT: &str = "report.txt";

    /// The quality strip plot of track `n_hidden`.
    pub fn quality_plot(n_hidden: usize) -> String {
        format!("quality-n{n_hidden}.svg")
    }

    /// The validation-curve plot of track `n_hidden`.
    pub fn curves_plot(n_hidden: usize) -> String {
        format!("val-loss-n{n_hidden}.svg")
    }
}

/// Builds the tables of `records`, writes `report.txt` and (unless
/// `plots` is false) the SVG figures into `out_dir`, and returns the
/// report's text and the paths written. Whole files are written atomically.
pub fn write_report(
    records: &[record::RunRecord],
    baseline: Option<&str>,
    bootstrap: &stats::Bootstrap,
    out_dir: &Path,
    plots: bool,
) -> Result<(String, Vec<PathBuf>), RaceError> {
    let seeds = records.iter().map(|r| r.seed).collect();
    let ceilings = report::zero_mean_ceilings(&seeds)?;
    let tables = report::tables(records, baseline, bootstrap, &ceilings)?;
    let text = report::render(&tables, bootstrap);
    std::fs::create_dir_all(out_dir).map_err(|e| RaceError::io(out_dir, "create", e))?;
    let mut written = vec![write_file(&out_dir.join(files::REPORT), &text)?];
    if plots {
        for table in &tables {
            written.push(write_file(
                &out_dir.join(files::quality_plot(table.n_hidden)),
                &plots::quality_plot(table),
            )?);
            written.push(write_file(
                &out_dir.join(files::curves_plot(table.n_hidden)),
                &plots::curves_plot(table),
            )?);
        }
    }
    Ok((text, written))
}

fn write_file(path: &Path, text: &str) -> Result<PathBuf, RaceError> {
    crate::datasets::atomic::write_atomic(path, text.as_bytes()).map_err(|e| RaceError::Io {
        path: path.to_path_buf(),
        action: "write",
        message: e.to_string(),
    })?;
    Ok(path.to_path_buf())
}
