//! Per-epoch shuffled mini-batches of sample indices.

use ferrograd_engine::{Draw, Rng};

use crate::{sizes, DataError};

/// Shuffles `0..n_samples` with `rng` and cuts it into batches of `batch_size`.
///
/// The last batch holds the remainder, so 1000 samples in batches of 128 give
/// seven batches of 128 and one of 104. `n_samples == 0` gives no batches;
/// `batch_size == 0` is an error, and so is an `n_samples` past the engine's
/// `MAX_ELEMENTS` (2^40) or one whose batches memory cannot hold
/// ([`DataError::OutOfMemory`]).
pub fn epoch_batches(
    n_samples: usize,
    batch_size: usize,
    rng: &mut (impl Draw + ?Sized),
) -> Result<Vec<Vec<usize>>, DataError> {
    check_batch_size("epoch_batches", batch_size)?;
    sizes::check_count("epoch_batches", "n_samples", n_samples)?;
    shuffled_batches("epoch_batches", n_samples, batch_size, rng)
}

/// `0..n_samples` shuffled by `rng` and cut into batches, every buffer
/// allocated fallibly (`function` names the caller in errors).
fn shuffled_batches(
    function: &'static str,
    n_samples: usize,
    batch_size: usize,
    rng: &mut (impl Draw + ?Sized),
) -> Result<Vec<Vec<usize>>, DataError> {
    let mut order = sizes::identity(function, n_samples)?;
    rng.shuffle(&mut order);
    let mut batches = sizes::with_capacity(function, n_samples.div_ceil(batch_size))?;
    for chunk in order.chunks(batch_size) {
        let mut batch = sizes::with_capacity(function, chunk.len())?;
        batch.extend_from_slice(chunk);
        batches.push(batch);
    }
    Ok(batches)
}

/// Fails unless `batch_size >= 1`.
fn check_batch_size(function: &'static str, batch_size: usize) -> Result<(), DataError> {
    if batch_size == 0 {
        return Err(DataError::InvalidArgument {
            function,
            argument: "batch_size",
            value: "0".to_string(),
            requirement: "at least 1",
        });
    }
    Ok(())
}

/// An endless source of epochs: each call to [`ShuffledBatches::next_epoch`]
/// reshuffles the samples with the owned generator.
///
/// Seed it with `Rng::derived(seed, streams::EPOCH_SHUFFLE)` so the shuffles
/// of a task instance are reproducible and independent of its other streams.
#[derive(Debug, Clone, PartialEq)]
pub struct ShuffledBatches {
    n_samples: usize,
    batch_size: usize,
    rng: Rng,
}

impl ShuffledBatches {
    /// A batcher over `n_samples` samples; fails if `batch_size == 0` or
    /// `n_samples` exceeds the engine's `MAX_ELEMENTS` (2^40).
    pub fn new(n_samples: usize, batch_size: usize, rng: Rng) -> Result<Self, DataError> {
        check_batch_size("ShuffledBatches::new", batch_size)?;
        sizes::check_count("ShuffledBatches::new", "n_samples", n_samples)?;
        Ok(ShuffledBatches {
            n_samples,
            batch_size,
            rng,
        })
    }

    /// The next epoch's batches (a fresh shuffle each call), or
    /// [`DataError::OutOfMemory`] if memory cannot hold them (the generator
    /// has then advanced by at most one shuffle).
    pub fn next_epoch(&mut self) -> Result<Vec<Vec<usize>>, DataError> {
        shuffled_batches(
            "ShuffledBatches::next_epoch",
            self.n_samples,
            self.batch_size,
            &mut self.rng,
        )
    }

    /// Number of batches per epoch (the last one may be short).
    pub fn batches_per_epoch(&self) -> usize {
        self.n_samples.div_ceil(self.batch_size)
    }

    /// The generator, e.g. to checkpoint its state with `Rng::state`.
    pub fn rng(&self) -> &Rng {
        &self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_batch_size_is_an_error() {
        let err = epoch_batches(10, 0, &mut Rng::new(0)).unwrap_err();
        assert!(err.to_string().contains("batch_size = 0"), "{err}");
        assert!(ShuffledBatches::new(10, 0, Rng::new(0)).is_err());
    }

    #[test]
    fn empty_and_small_inputs() {
        assert!(epoch_batches(0, 4, &mut Rng::new(0)).unwrap().is_empty());
        let b = epoch_batches(3, 8, &mut Rng::new(0)).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].len(), 3);
    }

    #[test]
    fn batcher_matches_function_and_reshuffles() {
        let mut batcher = ShuffledBatches::new(50, 16, Rng::new(3)).unwrap();
        assert_eq!(batcher.batches_per_epoch(), 4);
        let mut rng = Rng::new(3);
        let first = batcher.next_epoch().unwrap();
        assert_eq!(first, epoch_batches(50, 16, &mut rng).unwrap());
        assert_eq!(batcher.rng(), &rng);
        assert_ne!(first, batcher.next_epoch().unwrap());
    }
}
