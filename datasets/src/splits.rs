//! Random train/validation splits of user data.

use ferrograd_engine::Draw;

use crate::{sizes, DataError};

/// Sample indices of a train/validation split, each side in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSplit {
    /// Indices of the training samples.
    pub train: Vec<usize>,
    /// Indices of the validation samples.
    pub val: Vec<usize>,
}

/// Randomly assigns `round(n * val_fraction)` of the samples `0..n` to
/// validation and the rest to training.
///
/// `val_fraction` must be in `[0, 1]` and `n` at most the engine's
/// `MAX_ELEMENTS` (2^40); an `n` memory cannot hold is
/// [`DataError::OutOfMemory`]. Use
/// `Rng::derived(seed, streams::VAL_SPLIT)` for a reproducible split; apply
/// it with [`crate::Matrix::select_rows`].
pub fn train_val_split(n: usize, val_fraction: f64, rng: &mut (impl Draw + ?Sized)) -> Result<IndexSplit, DataError> {
    if !(0.0..=1.0).contains(&val_fraction) {
        return Err(DataError::InvalidArgument {
            function: "train_val_split",
            argument: "val_fraction",
            value: val_fraction.to_string(),
            requirement: "between 0 and 1 inclusive",
        });
    }
    sizes::check_count("train_val_split", "n", n)?;
    let n_val = ((n as f64) * val_fraction).round() as usize;
    let mut order = sizes::identity("train_val_split", n)?;
    rng.shuffle(&mut order);
    let n_train = n - n_val.min(n);
    let mut val = sizes::with_capacity("train_val_split", n - n_train)?;
    val.extend_from_slice(&order[n_train..]);
    order.truncate(n_train);
    order.sort_unstable();
    val.sort_unstable();
    Ok(IndexSplit { train: order, val })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_engine::Rng;

    #[test]
    fn split_sizes_and_partition() {
        let s = train_val_split(1000, 0.2, &mut Rng::new(1)).unwrap();
        assert_eq!((s.train.len(), s.val.len()), (800, 200));
        let mut all = [s.train.clone(), s.val.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // A random split is not simply the last 200 samples.
        assert_ne!(s.val, (800..1000).collect::<Vec<_>>());
    }

    #[test]
    fn edge_fractions() {
        let none = train_val_split(7, 0.0, &mut Rng::new(1)).unwrap();
        assert_eq!((none.train.len(), none.val.len()), (7, 0));
        let all = train_val_split(7, 1.0, &mut Rng::new(1)).unwrap();
        assert_eq!((all.train.len(), all.val.len()), (0, 7));
        assert_eq!(train_val_split(0, 0.5, &mut Rng::new(1)).unwrap().val.len(), 0);
    }

    #[test]
    fn bad_fractions_are_errors() {
        for f in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = train_val_split(10, f, &mut Rng::new(1)).unwrap_err();
            assert!(err.to_string().contains("val_fraction"), "{err}");
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let a = train_val_split(100, 0.3, &mut Rng::new(4)).unwrap();
        let b = train_val_split(100, 0.3, &mut Rng::new(4)).unwrap();
        let c = train_val_split(100, 0.3, &mut Rng::new(5)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
