//! [`DataLoader`]: a data set held as two tensors (features and targets, one
//! row per sample) cut into mini-batches, reshuffled every epoch from a
//! seed, as PyTorch's `DataLoader(TensorDataset(x, y), shuffle=True)`.
//!
//! ```
//! use ferrograd::data::DataLoader;
//! use ferrograd::engine::{DType, Tensor};
//!
//! let x = Tensor::from_vec((0..10).map(f64::from).collect(), [5, 2])?;
//! let y = Tensor::from_vec(vec![0.0f64, 1.0, 0.0, 1.0, 1.0], [5])?;
//! let mut loader = DataLoader::new(x, y, 2)?.shuffle(7).drop_last(true);
//! let epoch = loader.epoch()?;
//! assert_eq!(epoch.len(), 2); // 5 samples: two batches of 2, the last one dropped
//! assert_eq!(epoch[0].features.dims(), &[2, 2]);
//! assert_eq!(epoch[0].classes()?.len(), 2);
//! # Ok::<(), ferrograd::Error>(())
//! ```

use crate::datasets::streams;
use crate::engine::{Rng, Tensor};
use crate::error::Result;

/// What can go wrong building a [`DataLoader`] or reading a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// Features and targets do not have one row per sample each.
    #[error("features have {features} rows but targets {targets}; give one target row per sample")]
    Ragged {
        /// Rows (first axis) of the features.
        features: usize,
        /// Rows of the targets.
        targets: usize,
    },
    /// A tensor without a sample axis.
    #[error("{which} is a scalar; give a tensor whose first axis counts the samples")]
    NoSampleAxis {
        /// `features` or `targets`.
        which: &'static str,
    },
    /// A batch size of zero.
    #[error("batch_size = 0; give at least 1")]
    ZeroBatchSize,
    /// A target read as a class index is not one.
    #[error("target {value} of sample {sample} of the batch is not a class index (a whole number >= 0)")]
    NotAClass {
        /// The sample's position in the batch.
        sample: usize,
        /// Its target.
        value: f64,
    },
}

/// One mini-batch: the selected rows of the features and of the targets.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The samples' features (`[batch, ...]`).
    pub features: Tensor,
    /// The samples' targets (`[batch, ...]`).
    pub targets: Tensor,
    /// Which rows of the data set they are, in batch order.
    pub indices: Vec<usize>,
}

impl Batch {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The targets read as class labels (for `nn::cross_entropy`): each
    /// must be a whole number `>= 0`.
    pub fn classes(&self) -> Result<Vec<usize>> {
        let values = self.targets.to_vec::<f64>()?;
        values
            .into_iter()
            .enumerate()
            .map(|(sample, value)| {
                if value >= 0.0 && value.fract() == 0.0 && value < usize::MAX as f64 {
                    Ok(value as usize)
                } else {
                    Err(LoaderError::NotAClass { sample, value }.into())
                }
            })
            .collect()
    }
}

/// Mini-batches over features and targets: in order, or reshuffled every
/// epoch from a seed ([`DataLoader::shuffle`]); the last, short batch kept
/// or dropped ([`DataLoader::drop_last`]). The same seed gives the same
/// batches, epoch after epoch.
#[derive(Debug, Clone)]
pub struct DataLoader {
    features: Tensor,
    targets: Tensor,
    batch_size: usize,
    drop_last: bool,
    rng: Option<Rng>,
}

impl DataLoader {
    /// Batches of `batch_size` rows of `features` and `targets`, in order,
    /// the last batch kept however short. Fails when the two do not have the
    /// same number of rows ([`LoaderError::Ragged`]) or `batch_size` is 0.
    pub fn new(features: Tensor, targets: Tensor, batch_size: usize) -> Result<DataLoader> {
        let rows = |t: &Tensor, which| t.dims().first().copied().ok_or(LoaderError::NoSampleAxis { which });
        let (n_features, n_targets) = (rows(&features, "features")?, rows(&targets, "targets")?);
        if n_features != n_targets {
            return Err(LoaderError::Ragged {
                features: n_features,
                targets: n_targets,
            }
            .into());
        }
        if batch_size == 0 {
            return Err(LoaderError::ZeroBatchSize.into());
        }
        Ok(DataLoader {
            features,
            targets,
            batch_size,
            drop_last: false,
            rng: None,
        })
    }

    /// Reshuffles the samples every epoch, from `seed` (through the task's
    /// epoch-shuffle stream: `Rng::derived(seed, streams::EPOCH_SHUFFLE)`,
    /// so a loader and the benchmark's trainer with one seed shuffle alike).
    pub fn shuffle(self, seed: u64) -> DataLoader {
        self.shuffle_with(Rng::derived(seed, streams::EPOCH_SHUFFLE))
    }

    /// Reshuffles the samples every epoch with `rng`.
    pub fn shuffle_with(mut self, rng: Rng) -> DataLoader {
        self.rng = Some(rng);
        self
    }

    /// Whether to drop the last batch when it is shorter than the batch
    /// size (BatchNorm needs 2 samples or more in training mode).
    pub fn drop_last(mut self, drop: bool) -> DataLoader {
        self.drop_last = drop;
        self
    }

    /// The number of samples.
    pub fn samples(&self) -> usize {
        self.features.dims()[0]
    }

    /// The number of batches in an epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.samples() / self.batch_size
        } else {
            self.samples().div_ceil(self.batch_size)
        }
    }

    /// The next epoch's batches (shuffled afresh when shuffling).
    pub fn epoch(&mut self) -> Result<Vec<Batch>> {
        let order = self.epoch_order()?;
        let mut batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        if self.drop_last && batches.last().is_some_and(|b| b.len() < self.batch_size) {
            batches.pop();
        }
        batches.into_iter().map(|indices| self.batch(indices)).collect()
    }

    /// The sample order of the next epoch.
    fn epoch_order(&mut self) -> Result<Vec<usize>> {
        let n = self.samples();
        let Some(rng) = &mut self.rng else {
            return Ok((0..n).collect());
        };
        let batches = crate::datasets::batches::epoch_batches(n, self.batch_size, rng)?;
        Ok(batches.concat())
    }

    /// The batch of rows `indices`.
    fn batch(&self, indices: &[usize]) -> Result<Batch> {
        Ok(Batch {
            features: self.features.index_select(indices)?,
            targets: self.targets.index_select(indices)?,
            indices: indices.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DType;
    use proptest::prelude::*;

    /// A loader over `n` samples whose feature is the sample's index.
    fn numbered(n: usize, batch_size: usize) -> DataLoader {
        let x = Tensor::from_vec((0..n).map(|i| i as f64).collect(), [n, 1]).unwrap();
        let y = Tensor::from_vec((0..n).map(|i| (i % 3) as f64).collect(), [n]).unwrap();
        DataLoader::new(x, y, batch_size).unwrap()
    }

    #[test]
    fn ragged_inputs_and_a_zero_batch_size_are_typed_errors() {
        let x = Tensor::zeros([4, 2], DType::F64).unwrap();
        let err = DataLoader::new(x.clone(), Tensor::zeros([3], DType::F64).unwrap(), 2).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::Loader(LoaderError::Ragged {
                features: 4,
                targets: 3
            })
        ));
        let err = DataLoader::new(x.clone(), Tensor::zeros([4], DType::F64).unwrap(), 0).unwrap_err();
        assert!(err.to_string().contains("batch_size = 0"), "{err}");
        let err = DataLoader::new(Tensor::scalar(1.0, DType::F64), x, 1).unwrap_err();
        assert!(err.to_string().contains("features is a scalar"), "{err}");
    }

    #[test]
    fn unshuffled_batches_keep_the_order_and_the_rows_pair_up() {
        let batches = numbered(5, 2).epoch().unwrap();
        let indices: Vec<Vec<usize>> = batches.iter().map(|b| b.indices.clone()).collect();
        assert_eq!(indices, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(batches[1].features.to_vec::<f64>().unwrap(), vec![2.0, 3.0]);
        assert_eq!(batches[1].classes().unwrap(), vec![2, 0]);
    }

    #[test]
    fn a_target_that_is_not_a_class_index_is_refused() {
        let y = Tensor::from_vec(vec![1.0f64, 0.5], [2]).unwrap();
        let mut loader = DataLoader::new(Tensor::zeros([2, 1], DType::F64).unwrap(), y, 2).unwrap();
        let err = loader.epoch().unwrap()[0].classes().unwrap_err();
        assert!(err.to_string().contains("target 0.5 of sample 1"), "{err}");
    }

    proptest! {
        /// Every epoch is a permutation of the samples cut in order, with
        /// the short batch dropped when asked; one seed gives one sequence
        /// of epochs.
        #[test]
        fn shuffled_epochs_are_seeded_permutations(n in 1usize..60, batch in 1usize..9, seed in 0u64..1000, drop in any::<bool>()) {
            let mut a = numbered(n, batch).shuffle(seed).drop_last(drop);
            let mut b = numbered(n, batch).shuffle(seed).drop_last(drop);
            let expected_batches = if drop { n / batch } else { n.div_ceil(batch) };
            for _ in 0..3 {
                let (ea, eb) = (a.epoch().unwrap(), b.epoch().unwrap());
                prop_assert_eq!(ea.len(), expected_batches);
                prop_assert_eq!(a.batches_per_epoch(), expected_batches);
                let mut seen: Vec<usize> = Vec::new();
                for (x, y) in ea.iter().zip(&eb) {
                    prop_assert_eq!(&x.indices, &y.indices);
                    prop_assert!(x.len() == batch || (!drop && x.len() < batch));
                    let features: Vec<usize> = x.features.to_vec::<f64>().unwrap().iter().map(|&v| v as usize).collect();
                    prop_assert_eq!(&features, &x.indices);
                    seen.extend(&x.indices);
                }
                let kept = seen.len();
                seen.sort_unstable();
                seen.dedup();
                prop_assert_eq!(seen.len(), kept);
                prop_assert_eq!(kept, if drop { expected_batches * batch } else { n });
            }
        }
    }

    #[test]
    fn the_shuffle_is_the_task_trainers() {
        let mut loader = numbered(10, 3).shuffle(4);
        let mut reference =
            crate::datasets::ShuffledBatches::new(10, 3, crate::engine::Rng::derived(4, streams::EPOCH_SHUFFLE))
                .unwrap();
        for _ in 0..2 {
            let ours: Vec<Vec<usize>> = loader.epoch().unwrap().into_iter().map(|b| b.indices).collect();
            assert_eq!(ours, reference.next_epoch().unwrap());
        }
    }
}
