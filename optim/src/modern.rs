//! Newer algorithms: AdaBelief, Lion, Adan, LAMB, LARS, Schedule-Free SGD and
//! AdamW, Muon, Prodigy.

use crate::OptimizerInfo;

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[];
