//! [`OptimizerState`]: everything an optimizer needs to resume bit-identically.

use ferrograd_engine::{Error, Result, Tensor};
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
