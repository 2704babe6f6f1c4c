//! Data for ferrograd: the reference task's generator and the loaders around it.
//!
//! - [`rff`]: the seeded random-Fourier-feature regression task of the TIG
//!   "neuralnet_optimizer" challenge (1000 / 200 / 250 samples with noisy and
//!   noise-free targets).
//! - [`batches`] and [`splits`]: shuffled mini-batches per epoch and random
//!   train/validation splits, all driven by the engine's seeded [`Rng`].
//! - [`streams`]: the named random streams derived from one instance seed.
//! - [`csv`] and [`npy`]: load and save user data (numeric CSV with a header,
//!   NumPy `.npy` float arrays), with atomic writes and errors that name the
//!   file and the line or byte offset.
//!
//! Data is returned as plain row-major [`Matrix`] values, independent of the
//! engine's `Tensor`; the `ferrograd` facade converts.
//!
//! # Example
//!
//! ```
//! use ferrograd_datasets::{epoch_batches, generate, streams, RffConfig};
//! use ferrograd_engine::Rng;
//!
//! let seed = 7;
//! let data = generate(&RffConfig::default(), seed)?;
//! assert_eq!(data.train.inputs.shape(), (1000, 1));
//! assert_eq!(data.test.targets.shape(), (250, 2));
//!
//! let mut shuffle = Rng::derived(seed, streams::EPOCH_SHUFFLE);
//! let batches = epoch_batches(data.train.len(), 128, &mut shuffle)?;
//! assert_eq!(batches.len(), 8);
//! let first = data.train.select(&batches[0]);
//! assert_eq!(first.inputs.rows(), 128);
//! # Ok::<(), ferrograd_datasets::DataError>(())
//! ```

#![deny(missing_docs)]

pub mod atomic;
pub mod batches;
pub mod csv;
mod error;
mod matrix;
pub mod npy;
pub mod rff;
mod sizes;
pub mod splits;
pub mod streams;

pub use batches::{epoch_batches, ShuffledBatches};
pub use csv::{load_csv, parse_csv, write_csv, Table, TargetColumn};
pub use error::{CsvProblem, DataError, NpyProblem};
pub use ferrograd_engine::Rng;
pub use matrix::Matrix;
pub use npy::{read_npy, write_npy, NpyArray, NpyData};
pub use rff::{generate, RffConfig, RffData, RffFunction, Split};
pub use splits::{train_val_split, IndexSplit};
