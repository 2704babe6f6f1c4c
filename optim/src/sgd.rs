//! Plain SGD with elementwise gradient clipping: the benchmark task's only
//! published baseline (lr 1e-3, gradients clipped to ±1).
//!
//! `update = -lr * clamp(g, -clip, clip)`

use crate::basic::{ClipByValue, ScaleByLr};
use crate::chain;
use crate::schedule::Constant;
use crate::transform::ChainOptimizer;

/// SGD with value clipping.
pub fn clipped_sgd(lr: f64, clip: f64) -> ChainOptimizer {
    ChainOptimizer::new("sgd", chain![ClipByValue { limit: clip }, ScaleByLr::new(Constant(lr))])
}
