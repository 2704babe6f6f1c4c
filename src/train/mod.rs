//! The benchmark task's training protocol (`docs/task.md` section 3), exactly:
//! batches of 128 over a fresh shuffle each epoch, at most 1000 epochs, early
//! stopping with patience 50 and min delta 1e-7 on the validation loss, the
//! best-validation model kept, `query_at_params` honoured, additive updates
//! applied to trainable tensors only, and the task's score.

mod checkpoint;
mod curvature;
mod early_stopping;
mod fused;
#[cfg(feature = "cuda")]
mod gpu;
mod score;

pub use checkpoint::{
    load_model, read_checkpoint, save_model, Checkpoint, RunSettings, CHECKPOINT_FORMAT_VERSION, MODEL_FORMAT_VERSION,
};
pub use curvature::BatchCurvature;
pub use early_stopping::{EarlyStopping, Verdict};
pub use score::{score, zero_mean_ceiling, Score};

use crate::autograd::Var;
use crate::datasets::{generate, streams, RffConfig, RffData, Split};
use crate::engine::{DType, Device, Error, Result, Rng, Tensor};
use crate::nn::{self, Mlp};
use crate::optim::{StepContext, TaskOptimizer};
use fused::FusedWorkspace;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Everything that defines one run of the task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// Hidden layers of width 256 (the task's tracks: 4, 7, 10, 14, 18).
    pub n_hidden: usize,
    /// The instance seed: data, init and shuffles all derive from it.
    pub seed: u64,
    /// The data generator's settings.
    pub data: RffConfig,
    /// Samples per step.
    pub batch_size: usize,
    /// The epoch budget.
    pub max_epochs: usize,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// An epoch improves if `val < best - min_delta`.
    pub min_delta: f64,
    /// The element type of the model and data.
    pub dtype: DType,
    /// Where the model and data live and every step runs. Data and model
    /// are made on the CPU (so a seed gives the same instance everywhere)
    /// and then moved; off the CPU the step goes through autograd, whose
    /// ops each run on the device.
    pub device: Device,
    /// On a GPU, replay each full-batch training step as one CUDA graph
    /// (recorded at the second step of a kind; the same numbers as running
    /// its launches one by one).
    pub cuda_graph: bool,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            n_hidden: 4,
            seed: 0,
            data: RffConfig::default(),
            batch_size: 128,
            max_epochs: 1000,
            patience: 50,
            min_delta: 1e-7,
            dtype: DType::F32,
            device: Device::Cpu,
            cuda_graph: true,
        }
    }
}

/// One data split as tensors.
#[derive(Debug, Clone)]
pub struct SplitTensors {
    /// `[n, input_dims]`
    pub inputs: Tensor,
    /// Noisy targets `[n, output_dims]`.
    pub targets: Tensor,
    /// Noise-free function values `[n, output_dims]`.
    pub clean: Tensor,
}

impl SplitTensors {
    fn from_split(split: &Split, dtype: DType) -> Result<SplitTensors> {
        let convert = |m: &crate::datasets::Matrix| Tensor::from_f64_slice(m.data(), [m.rows(), m.cols()], dtype);
        Ok(SplitTensors {
            inputs: convert(&split.inputs)?,
            targets: convert(&split.targets)?,
            clean: convert(&split.clean)?,
        })
    }

    /// The split on `device`.
    pub fn to_device(&self, device: Device) -> Result<SplitTensors> {
        Ok(SplitTensors {
            inputs: self.inputs.to_device(device)?,
            targets: self.targets.to_device(device)?,
            clean: self.clean.to_device(device)?,
        })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.inputs.dims()[0]
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// BatchNorm normalises by the batch's variance, so a batch needs two rows.
const MIN_BATCH_ROWS: usize = 2;

fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size < MIN_BATCH_ROWS {
        return Err(Error::invalid(
            "train",
            format!(
                "batch_size must be at least {MIN_BATCH_ROWS} (BatchNorm needs a batch variance), got {batch_size}"
            ),
        ));
    }
    Ok(())
}

/// Checks that `batch` names at least two rows, each one of `n_rows`.
fn check_rows(batch: &[usize], n_rows: usize) -> Result<()> {
    if batch.len() < MIN_BATCH_ROWS {
        return Err(Error::invalid(
            "train step",
            format!(
                "a batch of {} row(s): BatchNorm needs at least {MIN_BATCH_ROWS} to take a variance",
                batch.len()
            ),
        ));
    }
    if let Some(&row) = batch.iter().find(|&&row| row >= n_rows) {
        return Err(Error::invalid(
            "train step",
            format!("row {row} is past the training split's {n_rows} rows"),
        ));
    }
    Ok(())
}

impl SplitTensors {
    /// Checks that the split is a non-empty table: 2-D inputs and targets
    /// (and noise-free values) with one row per sample each.
    fn check(&self, name: &str) -> Result<()> {
        let parts = [
            ("inputs", &self.inputs),
            ("targets", &self.targets),
            ("clean", &self.clean),
        ];
        for (part, t) in parts {
            if t.rank() != 2 {
                return Err(Error::invalid(
                    "task data",
                    format!(
                        "the {name} split's {part} must be a [rows, columns] table, got shape {}",
                        t.shape()
                    ),
                ));
            }
            if t.dims()[0] != self.len() {
                return Err(Error::invalid(
                    "task data",
                    format!(
                        "the {name} split has {} input rows but {} rows of {part}",
                        self.len(),
                        t.dims()[0]
                    ),
                ));
            }
        }
        if self.is_empty() {
            return Err(Error::invalid("task data", format!("the {name} split is empty")));
        }
        if self.targets.dims() != self.clean.dims() {
            return Err(Error::invalid(
                "task data",
                format!(
                    "the {name} split's targets {} and noise-free values {} differ in shape",
                    self.targets.shape(),
                    self.clean.shape()
                ),
            ));
        }
        Ok(())
    }
}

/// The instance's data as tensors.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// Training split.
    pub train: SplitTensors,
    /// Validation split.
    pub val: SplitTensors,
    /// Test split.
    pub test: SplitTensors,
}

impl TaskData {
    /// Generates the instance `config.seed` and converts it.
    pub fn generate(config: &TaskConfig) -> Result<TaskData> {
        let data = generate(&config.data, config.seed).map_err(|e| Error::invalid("generate", e.to_string()))?;
        TaskData::from_rff(&data, config.dtype)
    }

    /// Checks what training relies on: three non-empty tables whose
    /// columns agree from split to split, and training batches of
    /// `batch_size` rows whose last one is not a single row (BatchNorm
    /// cannot take its variance).
    pub fn check(&self, batch_size: usize) -> Result<()> {
        for (name, split) in [("train", &self.train), ("validation", &self.val), ("test", &self.test)] {
            split.check(name)?;
        }
        let columns = |s: &SplitTensors| (s.inputs.dims()[1], s.targets.dims()[1]);
        for (name, split) in [("validation", &self.val), ("test", &self.test)] {
            if columns(split) != columns(&self.train) {
                return Err(Error::invalid(
                    "task data",
                    format!(
                        "the {name} split has (input, target) columns {:?}, the train split {:?}",
                        columns(split),
                        columns(&self.train)
                    ),
                ));
            }
        }
        let last = self.train.len() % batch_size.max(1);
        if last == 1 {
            return Err(Error::invalid(
                "task data",
                format!(
                    "{} training rows in batches of {batch_size} leave a last batch of one row, and BatchNorm \
                     needs two: change the batch size or drop a row",
                    self.train.len()
                ),
            ));
        }
        Ok(())
    }

    /// Every split on `device`.
    pub fn to_device(&self, device: Device) -> Result<TaskData> {
        Ok(TaskData {
            train: self.train.to_device(device)?,
            val: self.val.to_device(device)?,
            test: self.test.to_device(device)?,
        })
    }

    /// Converts generated data.
    pub fn from_rff(data: &RffData, dtype: DType) -> Result<TaskData> {
        Ok(TaskData {
            train: SplitTensors::from_split(&data.train, dtype)?,
            val: SplitTensors::from_split(&data.val, dtype)?,
            test: SplitTensors::from_split(&data.test, dtype)?,
        })
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Mean squared error over the epoch's training batches (sample-weighted).
    pub train_loss: f64,
    /// Validation MSE in inference mode after the epoch.
    pub val_loss: f64,
    /// The best validation loss so far.
    pub best_val_loss: f64,
    /// The epoch of the best validation loss.
    pub best_epoch: usize,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
}

/// The result of a whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The task's quality score.
    pub quality: i64,
    /// The quality of the kept model with its BatchNorm running statistics
    /// recomputed on the whole training set ([`Mlp::recalibrated`]): the
    /// score without the luck of the running averages. A diagnostic, never
    /// used to choose the model.
    pub recalibrated_quality: i64,
    /// Test MSE of the kept (best-validation) model.
    pub test_loss: f64,
    /// The task's threshold `4/N_test * sum((y - f)^2)`.
    pub eps2: f64,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// Its validation loss.
    pub best_val_loss: f64,
    /// Training wall time, seconds.
    pub seconds: f64,
    /// Mean seconds per epoch.
    pub seconds_per_epoch: f64,
}

/// A run of the task protocol, one epoch at a time (so callers can show
/// progress, checkpoint, or stop).
pub struct Trainer {
    /// The run's settings.
    pub config: TaskConfig,
    /// The data.
    pub data: TaskData,
    /// The model being trained.
    pub model: Mlp,
    /// The best-validation model so far.
    pub best_model: Mlp,
    optimizer: Box<dyn TaskOptimizer>,
    shuffle: Rng,
    stopping: EarlyStopping,
    epoch: usize,
    steps: usize,
    last_losses: (Option<f64>, Option<f64>),
    seconds: f64,
    stopped: bool,
    /// The optimizer's hyperparameters, when the caller said what they are
    /// ([`Trainer::set_hyperparameters`]): recorded in checkpoints so that
    /// a resume can rebuild the same optimizer from the directory alone.
    hyperparameters: Option<BTreeMap<String, f64>>,
    /// Buffers of the fused training step (behind a mutex so that
    /// `validation_loss(&self)` can use them too).
    workspace: Mutex<FusedWorkspace>,
    /// The gradients handed to the optimizer, rewritten in place every step.
    grads: Vec<Tensor>,
    /// The parameters handed to the optimizer: clones of the model's tensors
    /// during a step, emptied after it so the update can be applied in place.
    current: Vec<Tensor>,
    /// The epoch's shuffled sample order (kept to reuse its memory).
    order: Vec<usize>,
    /// On a GPU, during an epoch: the training inputs and targets in the
    /// epoch's order, gathered once, so that each step's batch is a
    /// contiguous slice and no step uploads its indices.
    epoch_rows: Option<(Tensor, Tensor)>,
    /// Buffers of the GPU's fused step (made on its first step).
    #[cfg(feature = "cuda")]
    gpu: Mutex<Option<gpu::GpuWorkspace>>,
}

impl Trainer {
    /// Generates the data, builds the model and initialises the optimizer.
    pub fn new(config: TaskConfig, optimizer: Box<dyn TaskOptimizer>) -> Result<Trainer> {
        let data = TaskData::generate(&config)?;
        Trainer::with_data(config, data, optimizer)
    }

    /// Like [`Trainer::new`] with data supplied.
    pub fn with_data(config: TaskConfig, data: TaskData, mut optimizer: Box<dyn TaskOptimizer>) -> Result<Trainer> {
        check_batch_size(config.batch_size)?;
        data.check(config.batch_size)?;
        let mut init = Rng::derived(config.seed, streams::MODEL_INIT);
        let (input, output) = (data.train.inputs.dims()[1], data.train.targets.dims()[1]);
        let model = Mlp::task(input, output, config.n_hidden, config.dtype, &mut init)?;
        optimizer.init_state(config.seed, &model.layout())?;
        let grads = model
            .tensors()
            .iter()
            .map(Tensor::zeros_like)
            .collect::<Result<Vec<_>>>()?;
        let device = config.device;
        let mut trainer = Trainer {
            workspace: Mutex::new(FusedWorkspace::default()),
            grads,
            current: Vec::new(),
            order: Vec::new(),
            epoch_rows: None,
            #[cfg(feature = "cuda")]
            gpu: Mutex::new(None),
            shuffle: Rng::derived(config.seed, streams::EPOCH_SHUFFLE),
            stopping: EarlyStopping::new(config.patience, config.min_delta),
            best_model: model.clone(),
            model,
            data,
            config,
            optimizer,
            epoch: 0,
            steps: 0,
            last_losses: (None, None),
            seconds: 0.0,
            stopped: false,
            hyperparameters: None,
        };
        if device != Device::Cpu {
            trainer.to_device(device)?;
        }
        Ok(trainer)
    }

    /// Records the optimizer's hyperparameters (every one, by name) so that
    /// checkpoints carry them ([`Checkpoint::run`]); a trainer whose
    /// caller never says writes checkpoints that need them repeated on
    /// resume.
    pub fn set_hyperparameters(&mut self, values: BTreeMap<String, f64>) {
        self.hyperparameters = Some(values);
    }

    /// Moves the data, both models, the gradient buffers and the
    /// optimizer's state to `device`, where every later step runs (for
    /// example after [`Trainer::load_checkpoint`], which loads onto the CPU).
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        self.data = self.data.to_device(device)?;
        self.model = self.model.to_device(device)?;
        self.best_model = self.best_model.to_device(device)?;
        self.grads = self.grads.iter().map(|g| g.to_device(device)).collect::<Result<_>>()?;
        let mut state = self.optimizer.state();
        for t in state.tensors.values_mut() {
            *t = t.to_device(device)?;
        }
        self.optimizer.load_state(&state)?;
        self.config.device = device;
        Ok(())
    }

    /// Whether training is over (early stop or epoch budget).
    pub fn finished(&self) -> bool {
        self.stopped || self.epoch >= self.config.max_epochs
    }

    /// Epochs run so far.
    pub fn epochs_run(&self) -> usize {
        self.epoch
    }

    /// The early-stopping state.
    pub fn stopping(&self) -> &EarlyStopping {
        &self.stopping
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn TaskOptimizer {
        self.optimizer.as_ref()
    }

    /// Runs one epoch: shuffled batches, one step each, then validation.
    ///
    /// The epoch runs on a worker of the engine's thread pool
    /// ([`ops::in_pool`](crate::engine::ops::in_pool)): the step's parallel
    /// halves are then handed to the other worker directly instead of the
    /// main thread waking the pool for every one. Same results.
    pub fn run_epoch(&mut self) -> Result<EpochMetrics> {
        crate::engine::ops::in_pool(|| self.run_epoch_here())
    }

    fn run_epoch_here(&mut self) -> Result<EpochMetrics> {
        let started = Instant::now();
        let n = self.data.train.len();
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(0..n);
        self.shuffle.shuffle(&mut order);
        let train = &self.data.train;
        self.epoch_rows = match train.inputs.device() {
            Device::Cpu => None,
            // The GPU's fused step gathers each batch itself, from the order
            // uploaded once here.
            _ if self.gpu_step_applies() => {
                self.start_gpu_order(&order)?;
                None
            }
            _ => Some((train.inputs.index_select(&order)?, train.targets.index_select(&order)?)),
        };
        let mut sse_total = 0.0;
        // Losses left on a GPU, read in one copy after the last step so that
        // no step waits for the device.
        let mut on_device = Vec::new();
        let mut in_slots = 0;
        for (step, batch) in order.chunks(self.config.batch_size).enumerate() {
            match self.train_step(batch, Some(step * self.config.batch_size))? {
                StepLoss::Read(sse) => sse_total += self.checked_step_loss(step, sse)?,
                StepLoss::OnDevice(sse) => on_device.push(sse.reshape([1])?),
                StepLoss::InSlot => in_slots += 1,
            }
        }
        if !on_device.is_empty() {
            // Through to_device, not to_vec: a failed copy is a typed error.
            let losses = Tensor::concat(&on_device, 0)?.to_device(Device::Cpu)?.to_vec_f64()?;
            for (step, sse) in losses.into_iter().enumerate() {
                sse_total += self.checked_step_loss(step, sse)?;
            }
        }
        if in_slots > 0 {
            for (step, sse) in self.read_loss_slots(in_slots)?.into_iter().enumerate() {
                sse_total += self.checked_step_loss(step, sse)?;
            }
        }
        self.order = order;
        self.epoch_rows = None;
        let train_loss = sse_total / (n * self.data.train.targets.dims()[1]) as f64;
        let val_loss = self.validation_loss()?;
        if !val_loss.is_finite() {
            return Err(Error::NonFinite {
                what: format!("validation loss at epoch {}", self.epoch),
                value: val_loss,
            });
        }
        let verdict = self.stopping.observe(self.epoch, val_loss);
        if verdict == Verdict::Improved {
            // A copy into the best model's own buffers, not a shared clone:
            // sharing would make the next in-place update copy the model.
            self.best_model.copy_from(&self.model)?;
        }
        self.stopped = verdict == Verdict::Stop;
        self.last_losses = (Some(train_loss), Some(val_loss));
        let seconds = started.elapsed().as_secs_f64();
        self.seconds += seconds;
        let metrics = EpochMetrics {
            epoch: self.epoch,
            train_loss,
            val_loss,
            best_val_loss: self.stopping.best(),
            best_epoch: self.stopping.best_epoch(),
            seconds,
        };
        self.epoch += 1;
        Ok(metrics)
    }

    /// Runs one training step (forward, backward, optimizer step, update)
    /// on the training rows `batch`, as [`Trainer::run_epoch`] does for each
    /// of its batches; returns the batch's sum of squared errors. For
    /// benchmarks and tools that drive the protocol step by step (on a GPU
    /// this reads the loss, so each call waits for the device).
    pub fn step_on(&mut self, batch: &[usize]) -> Result<f64> {
        check_rows(batch, self.data.train.len())?;
        match self.train_step(batch, None)? {
            StepLoss::Read(sse) => Ok(sse),
            StepLoss::OnDevice(sse) => sse.to_device(Device::Cpu)?.to_scalar(),
            StepLoss::InSlot => Ok(self.read_loss_slots(1)?[0]),
        }
    }

    /// The losses of the first `steps` steps of the epoch, written on the
    /// GPU by its fused step, in one copy.
    fn read_loss_slots(&self, steps: usize) -> Result<Vec<f64>> {
        #[cfg(feature = "cuda")]
        {
            let gpu = self.gpu.lock().unwrap_or_else(|e| e.into_inner());
            let workspace = gpu.as_ref().expect("a step wrote into the slots");
            workspace.read_losses(steps)
        }
        #[cfg(not(feature = "cuda"))]
        {
            unreachable!("only the GPU step ({steps} steps) writes loss slots")
        }
    }

    fn context(&self) -> StepContext {
        StepContext {
            epoch: self.epoch,
            step: self.steps,
            train_loss: self.last_losses.0,
            val_loss: self.last_losses.1,
            steps_per_epoch: Some(self.data.train.len().div_ceil(self.config.batch_size)),
        }
    }

    /// `sse`, the loss of training step `step`, or the error that reports
    /// it when it is not finite.
    fn checked_step_loss(&self, step: usize, sse: f64) -> Result<f64> {
        if sse.is_finite() {
            return Ok(sse);
        }
        Err(Error::NonFinite {
            what: format!("training loss at epoch {}, step {step}", self.epoch),
            value: sse,
        })
    }

    /// One optimizer step on the samples `batch`; returns the batch's sum of
    /// squared errors.
    ///
    /// The task model goes through the fused step (`fused.rs`), which
    /// allocates nothing in steady state; any other model through autograd.
    /// On a GPU the loss stays on the device ([`StepLoss::OnDevice`]): the
    /// epoch reads every step's loss in one copy at its end, so a
    /// non-finite loss is reported with the same epoch and step, after the
    /// epoch's remaining steps have run.
    /// `start` is where `batch` begins in the epoch's order (`None` outside
    /// an epoch), to slice it from the epoch's gathered rows on a GPU.
    fn train_step(&mut self, batch: &[usize], start: Option<usize>) -> Result<StepLoss> {
        let ctx = self.context();
        // Clones (reference counts) of the model's tensors, in a vector whose
        // memory is reused from step to step.
        let mut current = std::mem::take(&mut self.current);
        current.extend((0..self.model.tensor_count()).map(|i| self.model.tensor(self.model.role(i)).clone()));
        let query = self.optimizer.query_at_params(&current, &ctx)?;
        let fused = fused_applies(&self.model, &self.data.train);
        let on_gpu = self.gpu_step_applies();
        #[cfg(feature = "cuda")]
        if on_gpu && query.is_none() && start.is_some() {
            current.clear();
            if self.graph_step(batch.len(), &ctx)? {
                self.current = current;
                self.steps += 1;
                return Ok(StepLoss::InSlot);
            }
            current.extend((0..self.model.tensor_count()).map(|i| self.model.tensor(self.model.role(i)).clone()));
        }
        let sse = if fused {
            let params = query.as_deref().unwrap_or(&current);
            let workspace = self.workspace.get_mut().unwrap_or_else(|e| e.into_inner());
            let train = &self.data.train;
            StepLoss::Read(workspace.train_step(
                &self.model,
                params,
                &train.inputs,
                &train.targets,
                batch,
                &mut self.grads,
            )?)
        } else if on_gpu {
            self.gpu_step(batch, start, query.as_deref().unwrap_or(&current))?
        } else {
            self.autograd_step(batch, start, query.as_deref())?
        };
        let queried = query.is_some();
        if on_gpu && !self.optimizer.uses_curvature() {
            // The optimizer's own fused launch, applied in place, if it has
            // one: the model's tensors must then be unshared.
            drop(query);
            current.clear();
            let (indices, mut trained) = self.model.trainable_tensors_mut();
            if self
                .optimizer
                .step_in_place(&mut trained, &indices, &self.grads, &ctx)?
            {
                self.current = current;
                if !queried {
                    self.store_gpu_running_stats(batch.len())?;
                }
                self.steps += 1;
                return Ok(sse);
            }
            return self.step_with_updates(current, (None, queried), sse, batch, &ctx);
        }
        self.step_with_updates(current, (query, queried), sse, batch, &ctx)
    }

    /// The rest of a step for an optimizer that returns updates: its step
    /// (with curvature if it asks), then `param += update` for the trained
    /// tensors and the new running statistics (unless the optimizer
    /// `queried` other parameters; `query` holds them if still at hand).
    fn step_with_updates(
        &mut self,
        mut current: Vec<Tensor>,
        (query, queried): (Option<Vec<Tensor>>, bool),
        sse: StepLoss,
        batch: &[usize],
        ctx: &StepContext,
    ) -> Result<StepLoss> {
        if current.is_empty() {
            current.extend((0..self.model.tensor_count()).map(|i| self.model.tensor(self.model.role(i)).clone()));
        }
        let fused = fused_applies(&self.model, &self.data.train);
        let on_gpu = self.gpu_step_applies();
        let ctx = ctx.clone();
        let updates = if self.optimizer.uses_curvature() {
            // The hook differentiates this same loss (probe, batch) twice,
            // through autograd (it needs the recorded graph).
            let x = Var::constant(self.data.train.inputs.index_select(batch)?);
            let y = Var::constant(self.data.train.targets.index_select(batch)?);
            let mut probe = self.model.clone();
            if let Some(params) = &query {
                probe.set_tensors(params)?;
            }
            let mut curvature = BatchCurvature::new(&probe, &x, &y);
            self.optimizer
                .step_with_curvature(&current, &self.grads, &mut curvature, &ctx)?
        } else {
            self.optimizer.step(&current, &self.grads, &ctx)?
        };
        // Drop the clones (the query may hold some too) so the model holds
        // the only reference to each tensor again and the updates below
        // write in place.
        drop(query);
        current.clear();
        self.current = current;
        self.apply_updates(&updates)?;
        // With a query, the probe's running statistics are discarded: the
        // model keeps its own (the protocol's restore).
        if fused && !queried {
            let workspace = self.workspace.get_mut().unwrap_or_else(|e| e.into_inner());
            workspace.store_running_stats(&mut self.model)?;
        }
        if on_gpu && !queried {
            self.store_gpu_running_stats(batch.len())?;
        }
        self.steps += 1;
        Ok(sse)
    }

    /// Whether this step runs on the GPU's fused step (the step as kernels
    /// of `ptx/cuda/mlp.cu`).
    fn gpu_step_applies(&self) -> bool {
        #[cfg(feature = "cuda")]
        {
            gpu::GpuWorkspace::supports(&self.model, &self.data.train.inputs)
        }
        #[cfg(not(feature = "cuda"))]
        {
            false
        }
    }

    /// The GPU's fused forward and backward at `params` on the rows
    /// `batch` (the epoch's next batch when `start` is given, its order
    /// uploaded at the epoch's start): gradients into `self.grads`, the
    /// loss into the epoch's loss slots.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    fn gpu_step(&mut self, batch: &[usize], start: Option<usize>, params: &[Tensor]) -> Result<StepLoss> {
        #[cfg(feature = "cuda")]
        {
            self.ensure_gpu_workspace()?;
            let stride = match start {
                Some(_) => self.config.batch_size,
                None => {
                    // A step outside an epoch: its rows are the order.
                    self.start_gpu_order(batch)?;
                    batch.len()
                }
            };
            let workspace = self.gpu.get_mut().unwrap_or_else(|e| e.into_inner());
            let workspace = workspace.as_mut().expect("made above");
            let train = &self.data.train;
            workspace.train_step(
                &self.model,
                params,
                (&train.inputs, &train.targets),
                (batch.len(), stride),
                &mut self.grads,
            )?;
            Ok(StepLoss::InSlot)
        }
        #[cfg(not(feature = "cuda"))]
        {
            unreachable!("gpu_step_applies() is false without the cuda feature")
        }
    }

    /// Makes the GPU step's workspace, or remakes it if the model, data or
    /// batch size no longer fit it.
    #[cfg(feature = "cuda")]
    fn ensure_gpu_workspace(&mut self) -> Result<()> {
        let (rows, batch_size) = (self.data.train.len(), self.config.batch_size);
        let gpu = self.gpu.get_mut().unwrap_or_else(|e| e.into_inner());
        if !gpu.as_ref().is_some_and(|w| w.fits(&self.model, batch_size, rows)) {
            *gpu = Some(gpu::GpuWorkspace::new(&self.model, batch_size, rows)?);
        }
        Ok(())
    }

    /// Uploads the order of the GPU step's next rows (an epoch's, or one
    /// step's), its step cursor at 0.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    fn start_gpu_order(&mut self, order: &[usize]) -> Result<()> {
        #[cfg(feature = "cuda")]
        {
            self.ensure_gpu_workspace()?;
            let gpu = self.gpu.get_mut().unwrap_or_else(|e| e.into_inner());
            gpu.as_ref().expect("made above").start(order)?;
        }
        Ok(())
    }

    /// One training step of an epoch (of `n` rows) on the GPU as a CUDA graph,
    /// when it can be one: the optimizer's in-place step must be
    /// replayable, and every tensor the step touches unshared and where it
    /// was. Replays the step's graph if one fits; records one if this kind
    /// of step (the same buffers, the same batch size) ran before; otherwise
    /// returns `false` and the step runs launch by launch (which readies
    /// the optimizer's device state for a later recording).
    #[cfg(feature = "cuda")]
    fn graph_step(&mut self, n: usize, ctx: &StepContext) -> Result<bool> {
        if !self.config.cuda_graph || self.optimizer.uses_curvature() || !self.optimizer.replayable_in_place() {
            return Ok(false);
        }
        self.ensure_gpu_workspace()?;
        let Some(signature) = gpu::step_signature(&self.model, &self.grads, &self.data.train, n) else {
            return Ok(false);
        };
        let stride = self.config.batch_size;
        let Trainer {
            gpu,
            model,
            grads,
            optimizer,
            data,
            current,
            ..
        } = self;
        let workspace = gpu.get_mut().unwrap_or_else(|e| e.into_inner());
        let workspace = workspace.as_mut().expect("made above");
        if workspace.has_graph(&signature) {
            let (indices, mut trained) = model.trainable_tensors_mut();
            if optimizer.replayed_in_place(&mut trained, &indices, grads, ctx)? {
                return workspace.replay(&signature).map(|()| true);
            }
            workspace.forget_graphs();
        }
        if !workspace.saw(signature.clone()) {
            return Ok(false);
        }
        workspace.record(signature, |workspace| {
            // Exactly the launches of a step run one by one.
            current.extend((0..model.tensor_count()).map(|i| model.tensor(model.role(i)).clone()));
            let train = &data.train;
            workspace.train_step(model, current, (&train.inputs, &train.targets), (n, stride), grads)?;
            current.clear();
            let (indices, mut trained) = model.trainable_tensors_mut();
            if !optimizer.step_in_place(&mut trained, &indices, grads, ctx)? {
                return Err(Error::invalid(
                    "train",
                    "the optimizer said its in-place step was replayable but did not take it",
                ));
            }
            workspace.store_running_stats(model, n)
        })?;
        Ok(true)
    }

    /// Blends the GPU step's batch statistics (a batch of `n`) into the
    /// model's running statistics.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    fn store_gpu_running_stats(&mut self, n: usize) -> Result<()> {
        #[cfg(feature = "cuda")]
        {
            let gpu = self.gpu.get_mut().unwrap_or_else(|e| e.into_inner());
            let workspace = gpu.as_ref().expect("the step made the workspace");
            workspace.store_running_stats(&mut self.model, n)?;
        }
        Ok(())
    }

    /// Forward and backward through autograd at the model's parameters, or
    /// at `query` when the optimizer asked for others: fills `self.grads`,
    /// stores the new running statistics (without a query) and returns the
    /// batch's sum of squared errors (left on the device on a GPU).
    fn autograd_step(&mut self, batch: &[usize], start: Option<usize>, query: Option<&[Tensor]>) -> Result<StepLoss> {
        let (x, y) = match (&self.epoch_rows, start) {
            // The same rows as index_select(batch), sliced from the epoch's.
            (Some((inputs, targets)), Some(start)) => (
                inputs.narrow(0, start, batch.len())?,
                targets.narrow(0, start, batch.len())?,
            ),
            _ => (
                self.data.train.inputs.index_select(batch)?,
                self.data.train.targets.index_select(batch)?,
            ),
        };
        let (x, y) = (Var::constant(x), Var::constant(y));
        let mut probe = self.model.clone();
        if let Some(params) = query {
            probe.set_tensors(params)?;
        }
        let vars = probe.vars();
        let (prediction, running_stats) = probe.functional_forward(&x, &vars, true)?;
        let loss = nn::sse(&prediction, &y)?;
        let grads = loss.backward()?;
        self.grads = vars.iter().map(|v| grads.get_or_zeros(v)).collect::<Result<_>>()?;
        if query.is_none() {
            self.model.set_running_stats(running_stats)?;
        }
        let sse = loss.value();
        if sse.device() == Device::Cpu {
            Ok(StepLoss::Read(sse.to_scalar()?))
        } else {
            Ok(StepLoss::OnDevice(sse.clone()))
        }
    }

    /// `param += update` for every trainable tensor, in place; other updates
    /// are ignored.
    fn apply_updates(&mut self, updates: &[Tensor]) -> Result<()> {
        let count = self.model.tensor_count();
        if updates.len() != count {
            return Err(Error::invalid(
                "step",
                format!(
                    "the optimizer returned {} updates for {count} tensors; return one per tensor",
                    updates.len(),
                ),
            ));
        }
        for (i, update) in updates.iter().enumerate() {
            let role = self.model.role(i);
            if self.model.is_trainable(role) {
                self.model.tensor_mut(role).add_assign(update)?;
            }
        }
        Ok(())
    }

    /// Validation MSE of the current model in inference mode.
    pub fn validation_loss(&self) -> Result<f64> {
        #[cfg(feature = "cuda")]
        if gpu::GpuWorkspace::supports(&self.model, &self.data.val.inputs) {
            let mut gpu = self.gpu.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(workspace) = gpu.as_mut() {
                return workspace.eval_mse(&self.model, &self.data.val.inputs, &self.data.val.targets);
            }
        }
        if !fused_applies(&self.model, &self.data.val) {
            return mse_of(&self.model, &self.data.val);
        }
        // The same computation as `mse_of`, in buffers kept between epochs.
        let mut workspace = self.workspace.lock().unwrap_or_else(|e| e.into_inner());
        workspace.eval_mse(&self.model, &self.data.val.inputs, &self.data.val.targets)
    }

    /// Scores the best model on the test split.
    pub fn summary(&self) -> Result<Summary> {
        let test = &self.data.test;
        let s = score(&self.best_model.predict(&test.inputs)?, &test.targets, &test.clean)?;
        let recalibrated = self.best_model.recalibrated(&self.data.train.inputs)?;
        let r = score(&recalibrated.predict(&test.inputs)?, &test.targets, &test.clean)?;
        Ok(Summary {
            quality: s.quality,
            recalibrated_quality: r.quality,
            test_loss: s.test_loss,
            eps2: s.eps2,
            epochs: self.epoch,
            best_epoch: self.stopping.best_epoch(),
            best_val_loss: self.stopping.best(),
            seconds: self.seconds,
            seconds_per_epoch: if self.epoch == 0 {
                0.0
            } else {
                self.seconds / self.epoch as f64
            },
        })
    }

    /// Runs to the end, calling `on_epoch` after each epoch.
    pub fn run(&mut self, mut on_epoch: impl FnMut(&EpochMetrics)) -> Result<Summary> {
        while !self.finished() {
            let metrics = self.run_epoch()?;
            on_epoch(&metrics);
        }
        self.summary()
    }
}

/// Inference-mode MSE of `model` on `split`: through the fused forward for
/// the task's model (the same numbers the trainer's validation computes),
/// through autograd for any other.
pub fn mse_of(model: &Mlp, split: &SplitTensors) -> Result<f64> {
    if fused_applies(model, split) {
        return FusedWorkspace::default().eval_mse(model, &split.inputs, &split.targets);
    }
    let prediction = model.predict(&split.inputs)?;
    prediction.sub(&split.targets)?.square()?.mean(None, false)?.to_scalar()
}

/// A training step's sum of squared errors: read, or still on the GPU that
/// computed it (read with the epoch's other steps, in one copy).
enum StepLoss {
    Read(f64),
    OnDevice(Tensor),
    /// In the GPU step's loss slot for the step's index in the epoch.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    InSlot,
}

/// Whether the fused step (host slices, CPU kernels) can run: the task's
/// model, with it and the data in host memory. Tensors on a GPU go through
/// autograd instead.
fn fused_applies(model: &Mlp, split: &SplitTensors) -> bool {
    FusedWorkspace::supports(model) && split.inputs.device() == Device::Cpu && model.tensors_on(Device::Cpu)
}
