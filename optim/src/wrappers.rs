//! Wrappers around any optimizer: Lookahead, SAM, cautious masking, EMA of weights.

use crate::OptimizerInfo;

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[];
