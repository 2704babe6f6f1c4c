//! Running the grid: each run is one task on a dedicated rayon thread pool
//! of `jobs` threads. The engine's own parallel kernels (rayon) called from
//! inside a run execute on that same pool, so a race never uses more than
//! `jobs` threads for training, however the work is split.

use super::grid::RunKey;
use super::record::{ResultsWriter, RunRecord, RunStatus};
use super::RaceError;
use crate::train::{TaskConfig, Trainer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Trains one grid cell under the task protocol and describes the result.
/// Never fails: a run that cannot start is a `Failed` record, a run whose
/// loss turns non-finite is `Diverged` and scores its best model so far.
pub fn run_one(key: &RunKey) -> RunRecord {
    let mut record = RunRecord::for_key(key);
    let optimizer = match key.entrant.build() {
        Ok(o) => o,
        Err(e) => return failed(record, e.to_string()),
    };
    let config = TaskConfig {
        n_hidden: key.n_hidden,
        seed: key.seed,
        max_epochs: key.max_epochs,
        ..TaskConfig::default()
    };
    let mut trainer = match Trainer::new(config, optimizer) {
        Ok(t) => t,
        Err(e) => return failed(record, e.to_string()),
    };
    record.status = RunStatus::Finished;
    while !trainer.finished() {
        match trainer.run_epoch() {
            Ok(metrics) => record.val_loss.push(metrics.val_loss),
            Err(e) => {
                record.status = RunStatus::Diverged;
                record.error = Some(e.to_string());
                break;
            }
        }
    }
    match trainer.summary() {
        Ok(summary) => {
            record.quality = summary.quality;
            record.recalibrated_quality = Some(summary.recalibrated_quality);
            record.test_loss = Some(summary.test_loss);
            record.epochs = summary.epochs;
            record.best_epoch = summary.best_epoch;
            record.seconds = summary.seconds;
            record
        }
        Err(e) => failed(record, format!("scoring failed: {e}")),
    }
}

fn failed(mut record: RunRecord, message: String) -> RunRecord {
    record.status = RunStatus::Failed;
    record.error = Some(message);
    record
}

/// Runs `pending` on a pool of `jobs` threads, appending each record to
/// `writer` as soon as its run ends and then telling `on_recorded` (a
/// progress bar, a log). Stops starting new runs after the first write
/// error, and returns it.
pub fn run_all(
    pending: Vec<RunKey>,
    jobs: usize,
    writer: ResultsWriter,
    on_recorded: &(dyn Fn(&RunKey, &RunRecord) + Sync),
) -> Result<Vec<RunRecord>, RaceError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .thread_name(|i| format!("race-{i}"))
        .build()
        .map_err(|e| RaceError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let writer = Mutex::new(writer);
    let finished = Mutex::new(Vec::with_capacity(pending.len()));
    let first_error: Mutex<Option<RaceError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    pool.scope_fifo(|scope| {
        for key in pending {
            let (writer, finished, first_error, stop) = (&writer, &finished, &first_error, &stop);
            scope.spawn_fifo(move |_| {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let record = run_one(&key);
                let written = writer.lock().expect("writer lock").append(&record);
                match written {
                    Ok(()) => {
                        on_recorded(&key, &record);
                        finished.lock().expect("results lock").push(record);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        first_error.lock().expect("error lock").get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("error lock") {
        Some(e) => Err(e),
        None => Ok(finished.into_inner().expect("results lock")),
    }
}
