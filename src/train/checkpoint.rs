//! Saved models and resumable checkpoints.
//!
//! A model file (`model.safetensors`) holds the task's tensors under
//! PyTorch-style names (`linear.0.weight`, `bn.0.running_var`, ...) with the
//! model's shape in the metadata. A checkpoint directory holds
//! `checkpoint.safetensors` (current model, best model, optimizer tensors)
//! and `checkpoint.json` (epoch, step count, shuffle RNG state, early-stopping
//! counters, optimizer counters, last losses and, from format version 2,
//! the run's settings), both written atomically.
//!
//! Every file says which version of its format it is (`format_version`; a
//! file without the field is version 1); docs/formats.md states what each
//! version holds and what this build promises to read.

use super::{EarlyStopping, Trainer};
use crate::engine::{Rng, Tensor};
use crate::error::{Error, Result};
use crate::io::{load_safetensors, save_safetensors};
use crate::nn::{Mlp, Role};
use crate::optim::OptimizerState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The PyTorch-style name of a model tensor.
pub fn tensor_name(role: Role) -> String {
    match role {
        Role::Weight(i) => format!("linear.{i}.weight"),
        Role::Bias(i) => format!("linear.{i}.bias"),
        Role::BnScale(i) => format!("bn.{i}.weight"),
        Role::BnShift(i) => format!("bn.{i}.bias"),
        Role::RunningMean(i) => format!("bn.{i}.running_mean"),
        Role::RunningVar(i) => format!("bn.{i}.running_var"),
    }
}

fn named_tensors(model: &Mlp, prefix: &str) -> Vec<(String, Tensor)> {
    model
        .roles()
        .into_iter()
        .map(|r| (format!("{prefix}{}", tensor_name(r)), model.tensor(r).clone()))
        .collect()
}

/// Fills `model`'s tensors from `named` (names with `prefix`).
fn fill_model(model: &mut Mlp, named: &HashMap<String, Tensor>, prefix: &str, origin: &Path) -> Result<()> {
    for role in model.roles() {
        let name = format!("{prefix}{}", tensor_name(role));
        let t = named.get(&name).ok_or_else(|| {
            Error::format(
                origin,
                format!("missing tensor {name}; is this a model of the same n_hidden?"),
            )
        })?;
        let slot = model.tensor_mut(role);
        if slot.shape() != t.shape() {
            return Err(Error::format(
                origin,
                format!(
                    "tensor {name} has shape {}, the model needs {}; check --n-hidden",
                    t.shape(),
                    slot.shape()
                ),
            ));
        }
        *slot = t.to_dtype(slot.dtype())?;
    }
    Ok(())
}

/// The version of the model file's layout this build writes (metadata key
/// `format_version`; a file without it is version 1, the same layout).
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The version of `checkpoint.json` this build writes. Version 1 (files
/// without `format_version`) has no [`Checkpoint::run`]; version 2 adds it.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 2;

/// The version of a file without a `format_version` field.
fn version_one() -> u32 {
    1
}

/// Refuses a file whose format is newer than this build reads.
fn check_version(path: &Path, what: &str, found: u32, newest: u32) -> Result<()> {
    if found == 0 || found > newest {
        return Err(Error::format(
            path,
            format!(
                "{what} format version {found}; this build of ferrograd ({}) reads versions 1 to {newest}: \
                 use a newer ferrograd",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    Ok(())
}

/// Saves `model` to `path` (safetensors, atomic).
pub fn save_model(model: &Mlp, path: &Path) -> Result<()> {
    let widths: Vec<String> = model.widths().iter().map(|w| w.to_string()).collect();
    let metadata = HashMap::from([
        ("format".to_string(), "ferrograd-mlp".to_string()),
        ("widths".to_string(), widths.join(",")),
        ("format_version".to_string(), MODEL_FORMAT_VERSION.to_string()),
    ]);
    save_safetensors(path, &named_tensors(model, ""), Some(metadata))
}

/// Loads the tensors of a saved model into `model` (which fixes the architecture).
pub fn load_model(model: &mut Mlp, path: &Path) -> Result<()> {
    let (tensors, metadata) = load_safetensors(path)?;
    let version = match metadata.get("format_version") {
        None => 1,
        Some(v) => v
            .parse()
            .map_err(|_| Error::format(path, format!("format_version {v:?} is not a whole number")))?,
    };
    check_version(path, "model", version, MODEL_FORMAT_VERSION)?;
    fill_model(model, &tensors.into_iter().collect(), "", path)
}

/// The scalar part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The layout's version ([`CHECKPOINT_FORMAT_VERSION`] when written by
    /// this build; 1 when the file has no such field).
    #[serde(default = "version_one")]
    pub format_version: u32,
    /// The optimizer's name (a resume must use the same one).
    pub optimizer: String,
    /// The instance seed.
    pub seed: u64,
    /// Hidden layers.
    pub n_hidden: usize,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// The shuffle generator's state.
    pub shuffle_state: [u64; 4],
    /// Early stopping: best validation loss (as bits, to be exact).
    pub best_val_bits: u64,
    /// Early stopping: epoch of the best.
    pub best_epoch: usize,
    /// Early stopping: epochs since the best.
    pub since_best: usize,
    /// Whether early stopping fired.
    pub stopped: bool,
    /// Previous epoch's train loss (as bits).
    pub last_train_bits: Option<u64>,
    /// Previous epoch's validation loss (as bits).
    pub last_val_bits: Option<u64>,
    /// Training seconds so far.
    pub seconds: f64,
    /// The optimizer's counters.
    pub optimizer_counters: BTreeMap<String, u64>,
    /// The settings that make the run (version 2 on; `None` in version 1
    /// files): with them `train --resume DIR` needs no other flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSettings>,
}

/// What a checkpoint records of its run beyond seed, track and optimizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The epoch budget.
    pub max_epochs: usize,
    /// The element type the run trained in (`f32` or `f64`).
    pub dtype: String,
    /// Every hyperparameter of the optimizer, readable (`null` when not
    /// finite); `None` when the trainer was not told them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<BTreeMap<String, Option<f64>>>,
    /// The same values as `f64` bits: what a resume uses, so they survive
    /// exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameter_bits: Option<BTreeMap<String, u64>>,
}

impl RunSettings {
    /// The hyperparameters by name, exactly as saved (`None` if not saved).
    pub fn hyperparameter_values(&self) -> Option<BTreeMap<String, f64>> {
        let bits = self.hyperparameter_bits.as_ref()?;
        Some(bits.iter().map(|(k, b)| (k.clone(), f64::from_bits(*b))).collect())
    }
}

/// Reads `checkpoint.json` in `dir`, refusing a format newer than this
/// build reads.
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let json_path = dir.join("checkpoint.json");
    let text = std::fs::read(&json_path).map_err(|e| Error::io(&json_path, "read", e))?;
    let meta: Checkpoint = serde_json::from_slice(&text)
        .map_err(|e| Error::format(&json_path, format!("not a ferrograd checkpoint: {e}")))?;
    check_version(&json_path, "checkpoint", meta.format_version, CHECKPOINT_FORMAT_VERSION)?;
    Ok(with_current_optimizer_name(meta))
}

/// The checkpoint with its optimizer under today's catalog name. The
/// catalog's `adam` was the task's clipped Adam until it was renamed
/// `clipped_adam` (`adam` is now `torch.optim.Adam`): every version-1
/// checkpoint predates the rename, and a later one that names `adam` with a
/// `clip` hyperparameter was written before it too.
fn with_current_optimizer_name(mut meta: Checkpoint) -> Checkpoint {
    let hps = match &meta.run {
        Some(run) => run.hyperparameter_values().unwrap_or_default(),
        None if meta.format_version == version_one() => BTreeMap::from([("clip".to_string(), 1.0)]),
        None => BTreeMap::new(),
    };
    meta.optimizer = crate::io::current_name(std::mem::take(&mut meta.optimizer), &hps);
    meta
}

impl Trainer {
    /// Writes a checkpoint into `dir` (created if missing).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
        let opt_state = self.optimizer.state();
        let mut tensors = named_tensors(&self.model, "model.");
        tensors.extend(named_tensors(&self.best_model, "best."));
        tensors.extend(
            opt_state
                .tensors
                .iter()
                .map(|(k, v)| (format!("optimizer.{k}"), v.clone())),
        );
        let metadata = HashMap::from([
            ("format".to_string(), "ferrograd-checkpoint".to_string()),
            ("format_version".to_string(), CHECKPOINT_FORMAT_VERSION.to_string()),
        ]);
        save_safetensors(&dir.join("checkpoint.safetensors"), &tensors, Some(metadata))?;
        let hps = self.hyperparameters.as_ref();
        let meta = Checkpoint {
            format_version: CHECKPOINT_FORMAT_VERSION,
            optimizer: self.optimizer.name().to_string(),
            seed: self.config.seed,
            n_hidden: self.config.n_hidden,
            epoch: self.epoch,
            steps: self.steps,
            shuffle_state: self.shuffle.state(),
            best_val_bits: self.stopping.best().to_bits(),
            best_epoch: self.stopping.best_epoch(),
            since_best: self.stopping.since_best(),
            stopped: self.stopped,
            last_train_bits: self.last_losses.0.map(f64::to_bits),
            last_val_bits: self.last_losses.1.map(f64::to_bits),
            seconds: self.seconds,
            optimizer_counters: opt_state.counters,
            run: Some(RunSettings {
                max_epochs: self.config.max_epochs,
                dtype: self.config.dtype.to_string(),
                hyperparameters: hps.map(|h| {
                    h.iter()
                        .map(|(k, v)| (k.clone(), v.is_finite().then_some(*v)))
                        .collect()
                }),
                hyperparameter_bits: hps.map(|h| h.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()),
            }),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("checkpoint serialises");
        let path = dir.join("checkpoint.json");
        crate::datasets::atomic::write_atomic(&path, &json)?;
        Ok(())
    }

    /// Restores this trainer (built with the same config and optimizer) from
    /// a checkpoint in `dir`.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let json_path = dir.join("checkpoint.json");
        let meta = read_checkpoint(dir)?;
        if meta.seed != self.config.seed
            || meta.n_hidden != self.config.n_hidden
            || meta.optimizer != self.optimizer.name()
        {
            return Err(Error::format(
                &json_path,
                format!(
                    "checkpoint is for seed {}, n_hidden {}, optimizer {}; this run is seed {}, n_hidden {}, optimizer {}",
                    meta.seed, meta.n_hidden, meta.optimizer, self.config.seed, self.config.n_hidden, self.optimizer.name()
                ),
            ));
        }
        let tensor_path = dir.join("checkpoint.safetensors");
        let (tensors, _) = load_safetensors(&tensor_path)?;
        let named: HashMap<String, Tensor> = tensors.into_iter().collect();
        fill_model(&mut self.model, &named, "model.", &tensor_path)?;
        fill_model(&mut self.best_model, &named, "best.", &tensor_path)?;
        // In this run's dtype, as the model's tensors are (fill_model): a
        // checkpoint resumed with another --dtype continues from the same
        // state, widened exactly or rounded once.
        let dtype = self.config.dtype;
        let opt_tensors = named
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("optimizer.")
                    .map(|k| Ok((k.to_string(), v.to_dtype(dtype)?)))
            })
            .collect::<Result<_>>()?;
        self.optimizer.load_state(&OptimizerState {
            tensors: opt_tensors,
            counters: meta.optimizer_counters.clone(),
        })?;
        self.epoch = meta.epoch;
        self.steps = meta.steps;
        self.shuffle = Rng::from_state(meta.shuffle_state);
        self.stopping = EarlyStopping::restore(
            self.config.patience,
            self.config.min_delta,
            f64::from_bits(meta.best_val_bits),
            meta.best_epoch,
            meta.since_best,
        );
        self.stopped = meta.stopped;
        self.last_losses = (
            meta.last_train_bits.map(f64::from_bits),
            meta.last_val_bits.map(f64::from_bits),
        );
        self.seconds = meta.seconds;
        if self.hyperparameters.is_none() {
            // Later checkpoints of this trainer keep recording them.
            self.hyperparameters = meta.run.as_ref().and_then(RunSettings::hyperparameter_values);
        }
        Ok(())
    }
}
