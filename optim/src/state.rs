//! [`OptimizerState`]: everything an optimizer needs to resume bit-identically.

use ferrograd_engine::{DType, Error, Result, Shape, Tensor};
use std::collections::BTreeMap;

/// An optimizer's complete state: named tensors (moments) and named integer
/// counters (step counts, schedule positions).
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    /// Named tensors, such as `m.3` for the first moment of parameter 3.
    pub tensors: BTreeMap<String, Tensor>,
    /// Named counters.
    pub counters: BTreeMap<String, u64>,
}

impl OptimizerState {
    /// The tensor `name`, or an error saying the state is incomplete.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::invalid(
                "load_state",
                format!("the saved state has no tensor {name:?}; was it saved by another optimizer?"),
            )
        })
    }

    /// The counter `name`, or an error.
    pub fn counter(&self, name: &str) -> Result<u64> {
        self.counters
            .get(name)
            .copied()
            .ok_or_else(|| Error::invalid("load_state", format!("the saved state has no counter {name:?}")))
    }
}

/// The largest step counter a saved state may hold: 2^53, the last count an
/// `f64` (in which bias corrections and schedules are computed) still tells
/// apart from its neighbours. A larger one is corruption, not training.
pub const MAX_STEPS: u64 = 1 << 53;

/// The last name segments of counters that count steps or epochs (as
/// opposed to generator words and `f64` bit patterns, which may be anything).
const STEP_COUNTERS: &[&str] = &["count", "k", "epoch", "first_step"];

/// A `load_state` error: what was wrong, and that nothing was changed.
pub(crate) fn refused(optimizer: &str, what: String) -> Error {
    Error::invalid(
        "load_state",
        format!("{optimizer} refuses the saved state: {what}; nothing was changed. Load a state that {optimizer} saved for this model"),
    )
}

/// Splits a tensor name `stem.i` into its stem and parameter index.
fn parameter_of(name: &str) -> Option<(&str, usize)> {
    let (stem, index) = name.rsplit_once('.')?;
    Some((stem, index.parse().ok()?))
}

impl OptimizerState {
    /// Checks that `self`, a saved state, fits an optimizer named `optimizer`
    /// that was set up for `shapes` and whose own
    /// state is now `current`, before anything is assigned (`shapes` is
    /// `None` for an optimizer whose tensors are not numbered by parameter,
    /// and empty before `init_state`):
    ///
    /// * the same counters, step counters at most [`MAX_STEPS`], and each
    ///   nested step counter (`inner.count`, a stage's `k`) at most the
    ///   optimizer's own (`count` or `k`);
    /// * every tensor named `stem.i`, with the very shape and dtype of the
    ///   tensor of the same name in `current` where there is one; and, when
    ///   `shapes` is given (the optimizer numbers its tensors by parameter),
    ///   for a parameter `i` of the model, with parameter `i`'s shape (or
    ///   the empty placeholder `[0]` of a slot the optimizer does not use)
    ///   and the dtype of parameter `i`'s other state;
    /// * each stem's tensors numbered `0..n` without a gap, and no shorter
    ///   than the same stem in `current`.
    ///
    /// The error names the offending counter or tensor.
    pub(crate) fn check_fits(&self, optimizer: &str, shapes: Option<&[Shape]>, current: &OptimizerState) -> Result<()> {
        self.check_counters(optimizer, current)?;
        self.check_tensors(optimizer, shapes, current)?;
        self.check_stems(optimizer, current)
    }

    /// The counters: the same names as `current`'s, steps within bounds and
    /// consistent.
    fn check_counters(&self, optimizer: &str, current: &OptimizerState) -> Result<()> {
        if let Some(name) = current.counters.keys().find(|k| !self.counters.contains_key(*k)) {
            return Err(refused(optimizer, format!("it has no counter {name:?}")));
        }
        if let Some(name) = self.counters.keys().find(|k| !current.counters.contains_key(*k)) {
            return Err(refused(
                optimizer,
                format!("it has a counter {name:?} that {optimizer} does not keep"),
            ));
        }
        let last = |name: &str| name.rsplit('.').next().unwrap_or(name).to_owned();
        for (name, &value) in &self.counters {
            if STEP_COUNTERS.contains(&last(name).as_str()) && value > MAX_STEPS {
                return Err(refused(
                    optimizer,
                    format!("its counter {name:?} = {value} exceeds 2^53 steps"),
                ));
            }
        }
        let own = self
            .counters
            .get_key_value("count")
            .or_else(|| self.counters.get_key_value("k"));
        let Some((own_name, &own_steps)) = own else {
            return Ok(());
        };
        for (name, &value) in &self.counters {
            let nested = name.contains('.') && matches!(last(name).as_str(), "count" | "k");
            if nested && value > own_steps {
                return Err(refused(
                    optimizer,
                    format!("its counter {name:?} = {value} counts more steps than {own_name:?} = {own_steps}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every saved tensor is one the optimizer keeps: its name
    /// is `stem.i` with `stem` among `kept` (names under `inner.` belong to
    /// a wrapped optimizer, which checks them itself). Without this, a
    /// state saved by another optimizer would load its matching counters
    /// and drop the rest without a word.
    pub(crate) fn check_kept(&self, optimizer: &str, kept: &[&str]) -> Result<()> {
        let foreign = self.tensors.keys().find(|name| {
            let stem = parameter_of(name).map_or(name.as_str(), |(stem, _)| stem);
            !name.starts_with("inner.") && !kept.contains(&stem)
        });
        match foreign {
            Some(name) => Err(refused(
                optimizer,
                format!("it has a tensor {name:?} that {optimizer} does not keep"),
            )),
            None => Ok(()),
        }
    }

    /// Each tensor: the shape and dtype of its namesake in `current`; with
    /// `shapes` (tensors numbered by parameter), a parameter's, with that
    /// parameter's shape and the dtype of its other state.
    fn check_tensors(&self, optimizer: &str, shapes: Option<&[Shape]>, current: &OptimizerState) -> Result<()> {
        let mut dtypes: BTreeMap<usize, DType> = BTreeMap::new();
        if shapes.is_some() {
            for (name, t) in &current.tensors {
                if let Some((_, i)) = parameter_of(name) {
                    dtypes.entry(i).or_insert(t.dtype());
                }
            }
        }
        for (name, t) in &self.tensors {
            let Some((_, i)) = parameter_of(name) else {
                return Err(refused(
                    optimizer,
                    format!("it has a tensor {name:?} that {optimizer} does not keep"),
                ));
            };
            if let Some(now) = current.tensors.get(name) {
                if now.shape() != t.shape() || now.dtype() != t.dtype() {
                    return Err(refused(
                        optimizer,
                        format!(
                            "its tensor {name:?} is {} of shape {} where {optimizer} keeps {} of shape {}",
                            t.dtype(),
                            t.shape(),
                            now.dtype(),
                            now.shape()
                        ),
                    ));
                }
            }
            let Some(shapes) = shapes.filter(|s| !s.is_empty()) else {
                continue;
            };
            let Some(expected) = shapes.get(i) else {
                return Err(refused(
                    optimizer,
                    format!(
                        "its tensor {name:?} is for parameter {i}, but the model has {} parameters",
                        shapes.len()
                    ),
                ));
            };
            let placeholder = t.shape().rank() == 1 && t.shape().numel() == 0;
            if !placeholder && expected != t.shape() {
                return Err(refused(
                    optimizer,
                    format!(
                        "its tensor {name:?} has shape {} where parameter {i} needs {expected}",
                        t.shape()
                    ),
                ));
            }
            let dtype = *dtypes.entry(i).or_insert(t.dtype());
            if dtype != t.dtype() {
                return Err(refused(
                    optimizer,
                    format!(
                        "its tensor {name:?} is {} where parameter {i}'s state is {dtype}",
                        t.dtype()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each stem numbered from 0 without a gap, no shorter than in `current`.
    fn check_stems(&self, optimizer: &str, current: &OptimizerState) -> Result<()> {
        let stems = |state: &OptimizerState| {
            let mut stems: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (stem, i) in state.tensors.keys().filter_map(|k| parameter_of(k)) {
                stems.entry(stem.to_owned()).or_default().push(i);
            }
            stems
        };
        let now = stems(current);
        for (stem, mut indices) in stems(self) {
            indices.sort_unstable();
            let saved = indices.last().map_or(0, |last| last + 1);
            let expected = now.get(&stem).map_or(0, Vec::len).max(saved);
            if let Some(missing) = (0..expected).find(|i| indices.binary_search(i).is_err()) {
                return Err(refused(optimizer, format!("it has no tensor \"{stem}.{missing}\"")));
            }
        }
        Ok(())
    }
}
