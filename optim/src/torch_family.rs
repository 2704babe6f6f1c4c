//! The algorithms that PyTorch's `torch.optim` also has (SGD with momentum and
//! Nesterov, Adagrad, RMSprop, Adadelta, Adam, AdamW, AMSGrad, NAdam, RAdam,
//! Adamax), matched against PyTorch trajectories in the conformance tests.

use crate::OptimizerInfo;

/// This family's catalog entries.
pub const CATALOG: &[OptimizerInfo] = &[];
