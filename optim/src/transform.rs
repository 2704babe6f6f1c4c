//! Optimizers as chains of small transformations (the design of optax).
//!
//! A [`Transform`] takes the updates produced so far (the gradients, at the
//! start of the chain) and returns new updates. AdamW, for example, is
//! `chain![scale_by_adam, add_decayed_weights, scale_by_lr]`; clipping,
//! weight decay, schedules and parameter groups are transformations too, so
//! every algorithm is a short list of familiar pieces. [`ChainOptimizer`]
//! turns a chain into a [`TaskOptimizer`] for `ferrograd train`.

use crate::layout::ModelLayout;
use crate::state::refused;
use crate::{check_step, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Error, Result, Shape, Tensor};

/// What a transformation may look at besides the incoming updates.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo<'a> {
    /// This step's number, counting from 1.
    pub count: u64,
    /// The current parameters (for weight decay, trust ratios, ...).
    pub params: &'a [Tensor],
    /// The training loop's context (epoch, previous losses).
    pub ctx: &'a StepContext,
}

/// One stage of an optimizer: maps updates to updates, keeping its own state.
pub trait Transform: Send {
    /// Prepares state for parameters of these shapes.
    fn init(&mut self, _layout: &ModelLayout) -> Result<()> {
        Ok(())
    }

    /// Transforms `updates` (one per parameter).
    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>>;

    /// Writes this stage's state under names starting with `prefix`.
    fn save(&self, _prefix: &str, _state: &mut OptimizerState) {}

    /// Reads back what [`Transform::save`] wrote.
    fn load(&mut self, _prefix: &str, _state: &OptimizerState) -> Result<()> {
        Ok(())
    }

    /// Whether the tensors this stage saves are numbered by parameter (a
    /// slot `m.3` belongs to parameter 3 and has its shape), so that a
    /// loaded state can be checked against the model's shapes. Stages that
    /// number them otherwise (per group) say no.
    fn indexes_by_parameter(&self) -> bool {
        true
    }
}

/// Transformations applied in order.
pub struct Chain {
    stages: Vec<Box<dyn Transform>>,
}

impl Chain {
    /// A chain of the given stages.
    pub fn new(stages: Vec<Box<dyn Transform>>) -> Chain {
        Chain { stages }
    }
}

/// Builds a [`Chain`] from transformation values: `chain![a, b, c]`.
#[macro_export]
macro_rules! chain {
    ($($stage:expr),* $(,)?) => {
        $crate::transform::Chain::new(vec![$(Box::new($stage) as Box<dyn $crate::transform::Transform>),*])
    };
}

impl Transform for Chain {
    fn init(&mut self, layout: &ModelLayout) -> Result<()> {
        self.stages.iter_mut().try_for_each(|s| s.init(layout))
    }

    fn update(&mut self, mut updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        for stage in &mut self.stages {
            updates = stage.update(updates, info)?;
        }
        Ok(updates)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        for (i, stage) in self.stages.iter().enumerate() {
            stage.save(&format!("{prefix}{i}."), state);
        }
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        for (i, stage) in self.stages.iter_mut().enumerate() {
            stage.load(&format!("{prefix}{i}."), state)?;
        }
        Ok(())
    }

    fn indexes_by_parameter(&self) -> bool {
        self.stages.iter().all(|s| s.indexes_by_parameter())
    }
}

/// Per-parameter state tensors (a moment, an accumulator), created as zeros
/// shaped like the first updates they see.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    tensors: Vec<Tensor>,
}

impl Slots {
    /// The slot of parameter `i`, zero-initialised like `like` on first use
    /// (an error only if the zeros cannot be allocated).
    pub fn get(&mut self, i: usize, like: &Tensor) -> Result<&Tensor> {
        self.ensure(i, like)?;
        Ok(&self.tensors[i])
    }

    /// The slot of parameter `i` for updating in place (zero-initialised
    /// like `like` on first use).
    pub fn get_mut(&mut self, i: usize, like: &Tensor) -> Result<&mut Tensor> {
        self.ensure(i, like)?;
        Ok(&mut self.tensors[i])
    }

    /// Replaces the slot of parameter `i` (creating the slots up to `i`
    /// if they do not exist yet).
    pub fn set(&mut self, i: usize, value: Tensor) {
        self.grow_to(i, value.dtype());
        self.tensors[i] = value;
    }

    /// Makes slots `0..=i` exist (empty placeholders of `dtype` where new).
    fn grow_to(&mut self, i: usize, dtype: ferrograd_engine::DType) {
        if self.tensors.len() <= i {
            let empty = || Tensor::zeros([0], dtype).expect("an empty tensor allocates nothing");
            self.tensors.resize_with(i + 1, empty);
        }
    }

    /// Creates zero slots shaped like `updates` if none exist yet.
    fn ensure(&mut self, i: usize, like: &Tensor) -> Result<()> {
        self.grow_to(i, like.dtype());
        if self.tensors[i].shape() != like.shape() || self.tensors[i].dtype() != like.dtype() {
            self.tensors[i] = like.zeros_like()?;
        }
        Ok(())
    }

    /// Every slot, by parameter index.
    pub fn all(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Every slot for updating in place, one per tensor of `like` (created
    /// or re-created as zeros shaped like it where missing or mismatched),
    /// so that a fused kernel can borrow all of them at once.
    pub fn all_mut(&mut self, like: &[Tensor]) -> Result<&mut [Tensor]> {
        for (i, t) in like.iter().enumerate() {
            self.ensure(i, t)?;
        }
        Ok(&mut self.tensors[..like.len()])
    }

    /// Saves the slots as `{prefix}{name}.{i}`.
    pub fn save(&self, prefix: &str, name: &str, state: &mut OptimizerState) {
        for (i, t) in self.tensors.iter().enumerate() {
            state.tensors.insert(format!("{prefix}{name}.{i}"), t.clone());
        }
    }

    /// Loads slots saved by [`Slots::save`] (none saved means fresh).
    pub fn load(&mut self, prefix: &str, name: &str, state: &OptimizerState) {
        self.tensors = (0..)
            .map_while(|i| state.tensors.get(&format!("{prefix}{name}.{i}")).cloned())
            .collect();
    }
}

/// A [`Chain`] driven as a [`TaskOptimizer`]: counts steps, checks shapes,
/// and saves the whole chain's state.
pub struct ChainOptimizer {
    name: String,
    chain: Chain,
    count: u64,
    shapes: Vec<Shape>,
    /// The last step's updates, whose buffers the next step's gradients are
    /// copied into: once the caller has dropped the updates it was given,
    /// stages that work in place (clipping, Adam, the learning rate) then
    /// allocate nothing.
    buffers: Vec<Tensor>,
}

impl ChainOptimizer {
    /// An optimizer named `name` that runs `chain`.
    pub fn new(name: impl Into<String>, chain: Chain) -> ChainOptimizer {
        ChainOptimizer {
            name: name.into(),
            chain,
            count: 0,
            shapes: Vec::new(),
            buffers: Vec::new(),
        }
    }
}

impl ChainOptimizer {
    /// The gradients, as tensors the chain may change in place: copied into
    /// last step's update buffers where their shape and dtype fit (no
    /// allocation when nobody else holds those), shared otherwise (a stage
    /// writing in place then copies first: copy-on-write).
    fn take_gradient_copies(&mut self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut buffers = std::mem::take(&mut self.buffers);
        buffers.truncate(grads.len());
        for (i, g) in grads.iter().enumerate() {
            match buffers.get_mut(i) {
                Some(b) if b.shape() == g.shape() && b.dtype() == g.dtype() => b.copy_from(g)?,
                Some(b) => *b = g.clone(),
                None => buffers.push(g.clone()),
            }
        }
        Ok(buffers)
    }
}

impl TaskOptimizer for ChainOptimizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn init_state(&mut self, _seed: u64, layout: &ModelLayout) -> Result<()> {
        self.shapes = layout.shapes().to_vec();
        self.count = 0;
        self.chain.init(layout)
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_step("optimizer step", &self.shapes, params, grads)?;
        self.count += 1;
        let info = StepInfo {
            count: self.count,
            params,
            ctx,
        };
        let gradients = self.take_gradient_copies(grads)?;
        let updates = self.chain.update(gradients, &info)?;
        if updates.len() != grads.len() {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "{} produced {} updates for {} parameters",
                    self.name,
                    updates.len(),
                    grads.len()
                ),
            ));
        }
        self.buffers.clone_from(&updates);
        Ok(updates)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        state.counters.insert("count".into(), self.count);
        self.chain.save("", &mut state);
        state
    }

    /// Loads a saved state, refusing (and changing nothing) one that does
    /// not fit: besides the shape and counter checks of every load, every
    /// saved tensor must be taken by a stage. Stages save under their
    /// position (`1.m.0`), so a state saved by the same stages in another
    /// order would otherwise load as fresh moments, silently.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let shapes = self.chain.indexes_by_parameter().then_some(self.shapes.as_slice());
        let before = self.state();
        state.check_fits(&self.name, shapes, &before)?;
        self.chain.load("", state)?;
        let loaded = self.state();
        if let Some(name) = state.tensors.keys().find(|k| !loaded.tensors.contains_key(*k)) {
            self.chain.load("", &before)?;
            return Err(refused(
                &self.name,
                format!(
                    "no stage of this chain keeps its tensor {name:?} (stages save under their \
                     position: was it saved by a chain with other stages or another order?)"
                ),
            ));
        }
        self.count = state.counter("count")?;
        Ok(())
    }
}
