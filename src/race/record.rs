//! `race.jsonl`: one JSON object per finished run, appended and flushed as
//! each run ends, so an interrupted race loses nothing that finished.
//!
//! Reading is forgiving only where a kill can leave damage: a last line
//! that is incomplete (no newline) or unparsable is ignored with a warning.
//! A bad line anywhere else is an error naming the line.

use super::grid::{canonical_number, Entrant, RunKey};
use super::RaceError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Early stopping or the epoch budget ended it.
    Finished,
    /// A loss became non-finite; the best model before that was scored.
    Diverged,
    /// The run could not start; its quality is the worst possible.
    Failed,
}

/// The worst quality the task can give (`clamp(.., -10, 10) * 1e6`), used
/// for runs that failed to start.
pub const WORST_QUALITY: i64 = -10_000_000;

/// The version of the `race.jsonl` line layout this build writes (a line
/// without `format_version` is version 1, the same layout; docs/formats.md).
pub const RACE_FORMAT_VERSION: u32 = 1;

/// The version of a line without a `format_version` field.
fn version_one() -> u32 {
    1
}

/// One line of `race.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The line's layout version ([`RACE_FORMAT_VERSION`] when written by
    /// this build; 1 when the line has no such field).
    #[serde(default = "version_one")]
    pub format_version: u32,
    /// The catalog name of the optimizer.
    pub optimizer: String,
    /// Hyperparameter overrides (the rest are catalog defaults).
    pub hp: BTreeMap<String, f64>,
    /// The entrant's label, e.g. `adam(lr=3e-4)`.
    pub entrant: String,
    /// The track (hidden layers).
    pub n_hidden: usize,
    /// The instance seed.
    pub seed: u64,
    /// The epoch budget.
    pub max_epochs: usize,
    /// How the run ended.
    pub status: RunStatus,
    /// The task's quality of the kept model.
    pub quality: i64,
    /// Its quality with the BatchNorm running statistics recomputed on the
    /// training set (`Summary::recalibrated_quality`); absent in files
    /// written before it existed and for runs that failed to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recalibrated_quality: Option<i64>,
    /// Its test MSE (`None` when the run failed to start).
    pub test_loss: Option<f64>,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// Training wall time, seconds.
    pub seconds: f64,
    /// Validation loss after each epoch.
    pub val_loss: Vec<f64>,
    /// What went wrong, for diverged and failed runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The ferrograd version that ran it.
    pub version: String,
}

impl RunRecord {
    /// The grid cell this record answers.
    pub fn key(&self) -> RunKey {
        RunKey {
            entrant: Entrant {
                optimizer: self.optimizer.clone(),
                hp: self.hp.iter().map(|(k, v)| (k.clone(), canonical_number(*v))).collect(),
            },
            n_hidden: self.n_hidden,
            seed: self.seed,
            max_epochs: self.max_epochs,
        }
    }

    /// An empty record for `key` (status `Failed`, worst quality) to be
    /// filled in by the runner.
    pub fn for_key(key: &RunKey) -> RunRecord {
        RunRecord {
            format_version: RACE_FORMAT_VERSION,
            optimizer: key.entrant.optimizer.clone(),
            hp: key.entrant.hp_values(),
            entrant: key.entrant.to_string(),
            n_hidden: key.n_hidden,
            seed: key.seed,
            max_epochs: key.max_epochs,
            status: RunStatus::Failed,
            quality: WORST_QUALITY,
            recalibrated_quality: None,
            test_loss: None,
            epochs: 0,
            best_epoch: 0,
            seconds: 0.0,
            val_loss: Vec::new(),
            error: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// What reading a results file found.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    /// The records, in file order.
    pub records: Vec<RunRecord>,
    /// Warnings to show (a torn last line).
    pub warnings: Vec<String>,
    /// The byte length of the file's valid part (everything before a torn
    /// last line); appending must start here.
    pub valid_len: u64,
}

/// Reads a results file. A missing file reads as empty.
pub fn read_records(path: &Path) -> Result<ReadOutcome, RaceError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadOutcome::default()),
        Err(e) => return Err(RaceError::io(path, "read", e)),
    };
    parse_records(path, &bytes)
}

/// Parses the bytes of a results file (see [`read_records`]).
pub fn parse_records(path: &Path, bytes: &[u8]) -> Result<ReadOutcome, RaceError> {
    let mut outcome = ReadOutcome::default();
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let mut offset = 0u64;
    for (index, line) in lines.iter().enumerate() {
        let is_last = index + 1 == lines.len();
        let complete = line.ends_with(b"\n");
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            offset += line.len() as u64;
            if complete {
                outcome.valid_len = offset;
            }
            continue;
        }
        match serde_json::from_str::<RunRecord>(text.trim()) {
            Ok(record) if record.format_version > RACE_FORMAT_VERSION => {
                return Err(RaceError::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {} has format version {}; this build reads versions 1 to {RACE_FORMAT_VERSION}: \
                         use a newer ferrograd",
                        index + 1,
                        record.format_version
                    ),
                })
            }
            Ok(record) if complete => {
                outcome.records.push(record);
                offset += line.len() as u64;
                outcome.valid_len = offset;
            }
            parsed if is_last => {
                let why = if parsed.is_ok() {
                    "has no newline"
                } else {
                    "is not a complete record"
                };
                outcome.warnings.push(format!(
                    "{}: ignoring the last line ({} bytes), which {why} (the race was probably killed while \
                     writing it); that run will be redone",
                    path.display(),
                    line.len()
                ));
            }
            Ok(_) => unreachable!("only the last line can lack a newline"),
            Err(e) => {
                return Err(RaceError::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {} is not a race record ({e}); remove or fix that line, then run again",
                        index + 1
                    ),
                })
            }
        }
    }
    Ok(outcome)
}

/// Appends records to a results file, one flushed line each.
#[derive(Debug)]
pub struct ResultsWriter {
    path: PathBuf,
    file: File,
}

impl ResultsWriter {
    /// Opens `path` for appending after its first `valid_len` bytes (a torn
    /// last line beyond them is cut off first). Creates the file if missing.
    pub fn open(path: &Path, valid_len: u64) -> Result<ResultsWriter, RaceError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RaceError::io(dir, "create", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RaceError::io(path, "open", e))?;
        let length = file.metadata().map_err(|e| RaceError::io(path, "inspect", e))?.len();
        if length > valid_len {
            file.set_len(valid_len)
                .map_err(|e| RaceError::io(path, "truncate", e))?;
        }
        Ok(ResultsWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes `record` as one line with a single write, then syncs it to disk.
    pub fn append(&mut self, record: &RunRecord) -> Result<(), RaceError> {
        let mut line = serde_json::to_string(record).expect("a record always serializes");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| RaceError::io(&self.path, "append to", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::race::grid::Entrant;

    fn record(seed: u64) -> RunRecord {
        let key = RunKey {
            entrant: Entrant::plain("sgd"),
            n_hidden: 4,
            seed,
            max_epochs: 10,
        };
        RunRecord {
            status: RunStatus::Finished,
            quality: 1234,
            val_loss: vec![0.5, 0.25],
            ..RunRecord::for_key(&key)
        }
    }

    fn line(r: &RunRecord) -> String {
        serde_json::to_string(r).unwrap() + "\n"
    }

    #[test]
    fn records_round_trip_and_keys_match() {
        let r = record(3);
        let back: RunRecord = serde_json::from_str(line(&r).trim()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.key().seed, 3);
        assert_eq!(back.key().entrant, Entrant::plain("sgd"));
    }

    #[test]
    fn files_from_before_the_recalibrated_quality_still_read() {
        let mut r = record(5);
        r.recalibrated_quality = Some(1000);
        let new_line = line(&r);
        assert!(new_line.contains("\"recalibrated_quality\":1000"), "{new_line}");
        let old_line = new_line.replace(",\"recalibrated_quality\":1000", "");
        assert!(!old_line.contains("recalibrated"), "{old_line}");
        let back: RunRecord = serde_json::from_str(old_line.trim()).unwrap();
        assert_eq!(back.recalibrated_quality, None);
        assert_eq!(back.quality, 1234);
    }

    #[test]
    fn a_torn_last_line_is_ignored_with_a_warning() {
        let good = line(&record(0));
        let torn = &line(&record(1))[..20];
        let text = format!("{good}{torn}");
        let out = parse_records(Path::new("r.jsonl"), text.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.valid_len, good.len() as u64);
        assert_eq!(out.warnings.len(), 1);
        // A complete record without its newline is treated as torn too.
        let unterminated = format!("{good}{}", line(&record(1)).trim_end());
        let out = parse_records(Path::new("r.jsonl"), unterminated.as_bytes()).unwrap();
        assert_eq!((out.records.len(), out.warnings.len()), (1, 1));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let text = format!("{}garbage\n{}", line(&record(0)), line(&record(1)));
        let err = parse_records(Path::new("r.jsonl"), text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
