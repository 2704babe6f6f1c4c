//! # ferrograd
//!
//! A small tensor and reverse-mode autodiff engine with an optimizer library,
//! built to train small networks without a big framework, to teach how
//! optimizers work inside, and to measure optimizers honestly on the MLP
//! benchmark task (see `docs/task.md`).
//!
//! This facade re-exports the layers:
//! [`engine`] (tensors and kernels), [`autograd`] (`Var`, backward,
//! gradcheck), [`optim`] (optimizers) and [`datasets`] (the benchmark's data
//! generator and loaders).
//!
//! ```
//! use ferrograd::autograd::{gradcheck, GradcheckOptions, Var};
//! use ferrograd::engine::Tensor;
//!
//! let w = Var::parameter(Tensor::from_vec(vec![0.5f64, -0.25, 1.0, 2.0], [2, 2])?);
//! let x = Var::constant(Tensor::from_vec(vec![1.0f64, 2.0], [1, 2])?);
//! let loss = x.matmul(&w)?.tanh()?.square()?.sum_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&w).unwrap().dims(), &[2, 2]);
//! let report = gradcheck(|v| v[0].matmul(&v[1])?.tanh()?.square()?.sum(None, false),
//!                        &[x.value().clone(), w.value().clone()], &GradcheckOptions::default())?;
//! assert!(report.passed, "{report}");
//! # Ok::<(), ferrograd::engine::Error>(())
//! ```
#![deny(missing_docs)]

pub use ferrograd_autograd as autograd;
pub use ferrograd_datasets as datasets;
pub use ferrograd_engine as engine;
pub use ferrograd_optim as optim;

pub mod data;
mod error;
mod guide_doctests;
pub mod io;
pub mod module;
pub mod nn;
#[cfg(feature = "cli")]
pub mod race;
#[cfg(feature = "cli")]
pub mod svg;
pub mod train;
#[cfg(feature = "cli")]
pub mod viz;

pub use error::{Error, Result};

/// The README's code examples, compiled and run as doctests so they never rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
