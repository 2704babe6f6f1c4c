//! Training runs started from the page, and runs of `ferrograd train --out
//! DIR` watched from their files: each epoch streams to the page as a
//! server-sent event, then the final scores.
//!
//! A run started here trains in its own thread and writes, under
//! `--dir`/`serve-runs/run-N`, exactly the files of `ferrograd train --out`
//! (metrics.jsonl after every epoch, the checkpoint and best model at the
//! end or on Ctrl-C, summary.json when finished), each replaced atomically,
//! so the directory is always consistent and an interrupted run can be
//! continued with `ferrograd train --resume`.

use super::http::{ApiError, EventStream};
use super::playground::parse_entrant;
use super::stopping;
use crate::cli::metrics::{read_every_epoch, to_json as epoch_json, write_history};
use crate::cli::train::{save_progress, summary_numbers};
use ferrograd::train::{save_model, EpochMetrics, TaskConfig, Trainer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The largest epoch budget a run started from the page may have (the
/// task's own).
const MAX_EPOCHS: u64 = 1000;
/// The largest network a run may have (the task's largest track is 18).
const MAX_HIDDEN: u64 = 32;
/// How long a stream waits for news before checking that its client is
/// still there.
const KEEP_ALIVE: Duration = Duration::from_millis(1000);
/// How often a watched directory is read.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Where runs started from the page write their files, under `--dir`.
pub const RUNS_FOLDER: &str = "serve-runs";

/// Where a run stands.
#[derive(Debug, Clone, Default)]
struct Progress {
    epochs: Vec<Value>,
    summary: Option<Value>,
    error: Option<String>,
    /// Over: finished, failed or interrupted.
    over: bool,
}

/// One training run started from the page.
pub struct Job {
    id: usize,
    settings: Value,
    dir: PathBuf,
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Job {
    fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut progress);
        self.changed.notify_all();
    }

    fn snapshot(&self) -> Progress {
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn listing(&self) -> Value {
        let p = self.snapshot();
        json!({
            "id": self.id,
            "settings": self.settings,
            "dir": self.dir,
            "epochs": p.epochs.len(),
            "over": p.over,
            "summary": p.summary,
            "error": p.error,
        })
    }
}

/// Every run started since the server started, and how many may train at
/// once.
pub struct Runs {
    dir: PathBuf,
    max_running: usize,
    jobs: Mutex<Vec<Arc<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The checked settings of a run to start.
struct RunRequest {
    config: TaskConfig,
    optimizer: Box<dyn ferrograd::optim::TaskOptimizer>,
    hyperparameters: std::collections::BTreeMap<String, f64>,
    settings: Value,
}

impl Runs {
    /// No runs yet; runs write under `dir`; at most `max_running` train at once.
    pub fn new(dir: &Path, max_running: usize) -> Runs {
        Runs {
            dir: dir.to_path_buf(),
            max_running,
            jobs: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// `GET /api/runs`: every run with its settings and where it stands.
    pub fn list(&self) -> Value {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(jobs.iter().map(|j| j.listing()).collect())
    }

    /// `POST /api/runs`: checks the settings and starts the run, or refuses
    /// it with 429 while `max_running` runs are training.
    pub fn start(&self, body: &Value) -> Result<Value, ApiError> {
        let request = parse_run(body)?;
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let running = jobs.iter().filter(|j| !j.snapshot().over).count();
        if running >= self.max_running {
            return Err(ApiError::busy(format!(
                "{running} training runs are already running, the most this server allows \
                 (--max-runs {}); wait for one to finish, then start this one again",
                self.max_running
            )));
        }
        let id = jobs.len() + 1;
        let job = Arc::new(Job {
            id,
            settings: request.settings.clone(),
            dir: claim_run_dir(&self.dir.join(RUNS_FOLDER))?,
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
        });
        jobs.push(job.clone());
        let listing = job.listing();
        let thread = std::thread::spawn(move || train(&job, request));
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
        Ok(listing)
    }

    /// The run numbered `id`.
    fn job(&self, id: usize) -> Result<Arc<Job>, ApiError> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter()
            .find(|j| j.id == id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("there is no run {id}; GET /api/runs lists them")))
    }

    /// Checks that run `id` exists (before its stream is opened).
    pub fn check(&self, id: usize) -> Result<(), ApiError> {
        self.job(id).map(|_| ())
    }

    /// `GET /api/runs/ID/events`: every epoch so far and each new one, then
    /// the summary (or the error); ends early when the client goes away.
    pub fn stream(&self, id: usize, mut events: EventStream) {
        let Ok(job) = self.job(id) else { return };
        let mut sent = 0;
        let _ = events.send("run", &job.listing());
        loop {
            let progress = {
                let guard = job.progress.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = job
                    .changed
                    .wait_timeout_while(guard, KEEP_ALIVE, |p| p.epochs.len() == sent && !p.over)
                    .unwrap_or_else(|p| p.into_inner());
                guard.clone()
            };
            if send_news(&mut events, &progress, &mut sent).is_err() || progress.over || stopping() {
                return;
            }
        }
    }

    /// Waits for every run's thread: each stops at its next epoch boundary
    /// once [`stopping`] is true, with its files written.
    pub fn join_all(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Creates and returns the first `run-K` under `folder` that does not exist
/// yet, so that a run never writes over the files of an earlier server's.
fn claim_run_dir(folder: &Path) -> Result<PathBuf, ApiError> {
    let cannot =
        |e: std::io::Error| ApiError::internal(format!("cannot create a run directory in {}: {e}", folder.display()));
    std::fs::create_dir_all(folder).map_err(cannot)?;
    for k in 1.. {
        let dir = folder.join(format!("run-{k}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(cannot(e)),
        }
    }
    unreachable!("some run-K is free")
}

/// Sends the epochs after the first `sent`, and the end when the run is over.
fn send_news(events: &mut EventStream, progress: &Progress, sent: &mut usize) -> std::io::Result<()> {
    if progress.epochs.len() == *sent && !progress.over {
        return events.keep_alive();
    }
    for epoch in &progress.epochs[*sent..] {
        events.send("epoch", epoch)?;
    }
    *sent = progress.epochs.len();
    if let Some(summary) = &progress.summary {
        events.send("summary", summary)?;
    }
    if let Some(error) = &progress.error {
        events.send("failed", &json!({ "error": error }))?;
    }
    Ok(())
}

/// Reads and checks a `POST /api/runs` body:
/// `{"n_hidden", "seed", "optimizer", "hp": {key: value}, "max_epochs"}`.
fn parse_run(body: &Value) -> Result<RunRequest, ApiError> {
    let defaults = TaskConfig::default();
    let whole = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, ApiError> {
        match &body[key] {
            Value::Null => Ok(default),
            v => v.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{key} must be a whole number from {} to {}, got {v}",
                    range.start(),
                    range.end()
                ))
            }),
        }
    };
    let n_hidden = whole("n_hidden", defaults.n_hidden as u64, 1..=MAX_HIDDEN)? as usize;
    let seed = whole("seed", defaults.seed, 0..=ferrograd::optim::MAX_STEPS)?;
    let max_epochs = whole("max_epochs", defaults.max_epochs as u64, 1..=MAX_EPOCHS)? as usize;
    let name = body["optimizer"].as_str().unwrap_or(ferrograd::optim::catalog::DEFAULT);
    let entrant = parse_entrant(&json!({ "name": name, "hp": body["hp"] }))?;
    let hyperparams = entrant
        .hyperparams()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let optimizer = entrant.build().map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(RunRequest {
        config: TaskConfig {
            n_hidden,
            seed,
            max_epochs,
            ..defaults
        },
        optimizer,
        hyperparameters: hyperparams.values().iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        settings: json!({
            "n_hidden": n_hidden,
            "seed": seed,
            "optimizer": name,
            "entrant": entrant.to_string(),
            "hp": hyperparams.values(),
            "max_epochs": max_epochs,
        }),
    })
}

/// One epoch as the page shows it: metrics.jsonl's fields and the epochs
/// left before early stopping.
fn epoch_event(m: &EpochMetrics, patience: usize) -> Value {
    let mut event = epoch_json(m);
    event["countdown"] = json!(patience.saturating_sub(m.epoch - m.best_epoch));
    event
}

/// The run's thread: trains epoch by epoch, writing the files and
/// publishing each epoch, until the run ends or the server stops.
fn train(job: &Job, request: RunRequest) {
    let outcome = train_and_write(job, request);
    job.update(|p| {
        p.over = true;
        match outcome {
            Ok(Some(summary)) => p.summary = Some(summary),
            Ok(None) => {
                p.error = Some(format!(
                    "the server stopped; continue with ferrograd train --resume {}",
                    job.dir.display()
                ))
            }
            Err(e) => p.error = Some(e),
        }
    });
}

/// Returns the summary, or `None` if the server stopped first.
fn train_and_write(job: &Job, request: RunRequest) -> Result<Option<Value>, String> {
    let patience = request.config.patience;
    let mut trainer = Trainer::new(request.config, request.optimizer).map_err(|e| e.to_string())?;
    trainer.set_hyperparameters(request.hyperparameters);
    let mut history = Vec::new();
    while !trainer.finished() {
        if stopping() {
            save_progress(&trainer, &history, &job.dir).map_err(|e| e.to_string())?;
            return Ok(None);
        }
        let metrics = trainer.run_epoch().map_err(|e| e.to_string())?;
        history.push(metrics.clone());
        write_history(&job.dir.join("metrics.jsonl"), &history).map_err(|e| e.to_string())?;
        job.update(|p| p.epochs.push(epoch_event(&metrics, patience)));
    }
    save_progress(&trainer, &history, &job.dir).map_err(|e| e.to_string())?;
    save_model(&trainer.best_model, &job.dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    let summary = summary_numbers(&trainer.summary().map_err(|e| e.to_string())?);
    ferrograd::datasets::atomic::write_atomic(&job.dir.join("summary.json"), summary.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(Some(summary))
}

/// `GET /api/watch?dir=REL`: streams a `ferrograd train --out` directory
/// as it grows: each new epoch of its metrics.jsonl, then its summary.json.
pub fn watch(dir: &Path, mut events: EventStream) {
    let patience = TaskConfig::default().patience;
    let mut sent = 0;
    let _ = events.send("run", &json!({ "dir": dir }));
    while !stopping() {
        let epochs = read_every_epoch(&dir.join("metrics.jsonl")).unwrap_or_default();
        let mut progress = Progress {
            epochs: epochs.iter().map(|m| epoch_event(m, patience)).collect(),
            ..Progress::default()
        };
        if let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) {
            progress.summary = serde_json::from_str(&text).ok();
            progress.over = true;
        }
        if send_news(&mut events, &progress, &mut sent).is_err() || progress.over {
            return;
        }
        std::thread::sleep(WATCH_EVERY);
    }
}
