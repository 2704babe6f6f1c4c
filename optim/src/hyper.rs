//! Hyperparameters: each optimizer declares its names, defaults and meaning;
//! users override them by name (`--hp lr=3e-4`).

use crate::catalog::OptimizerInfo;
use ferrograd_engine::{Error, Result};
use std::collections::BTreeMap;

/// One declared hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpSpec {
    /// Its name, as typed after `--hp`.
    pub name: &'static str,
    /// Its default value.
    pub default: f64,
    /// What it controls.
    pub about: &'static str,
}

/// Values for an optimizer's hyperparameters, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperParams {
    optimizer: &'static str,
    values: BTreeMap<&'static str, f64>,
}

impl HyperParams {
    /// The declared defaults of `info`.
    pub fn defaults(info: &OptimizerInfo) -> HyperParams {
        HyperParams {
            optimizer: info.name,
            values: info.hyperparams.iter().map(|h| (h.name, h.default)).collect(),
        }
    }

    /// Sets `name` to `value`; fails for an unknown name or a non-finite value.
    pub fn with(mut self, name: &str, value: f64) -> Result<HyperParams> {
        self.set(name, value)?;
        Ok(self)
    }

    /// Sets `name` to `value` in place.
    pub fn set(&mut self, name: &str, value: f64) -> Result<()> {
        let known: Vec<&str> = self.values.keys().copied().collect();
        let Some(slot) = self.values.get_mut(name) else {
            return Err(Error::invalid(
                "hyperparameter",
                format!(
                    "{} has no hyperparameter {name:?}; it has: {}",
                    self.optimizer,
                    known.join(", ")
                ),
            ));
        };
        if !value.is_finite() {
            return Err(Error::invalid(
                "hyperparameter",
                format!("{name} must be a finite number, got {value}"),
            ));
        }
        *slot = value;
        Ok(())
    }

    /// Parses `key=value` and sets it.
    pub fn set_from_str(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| Error::invalid("hyperparameter", format!("expected key=value, got {assignment:?}")))?;
        let parsed: f64 = value
            .trim()
            .parse()
            .map_err(|_| Error::invalid("hyperparameter", format!("{key}: {value:?} is not a number")))?;
        self.set(key.trim(), parsed)
    }

    /// The value of a declared hyperparameter.
    pub fn get(&self, name: &str) -> f64 {
        *self
            .values
            .get(name)
            .unwrap_or_else(|| panic!("{} declares no hyperparameter {name}", self.optimizer))
    }

    /// All values, by name.
    pub fn values(&self) -> &BTreeMap<&'static str, f64> {
        &self.values
    }
}
