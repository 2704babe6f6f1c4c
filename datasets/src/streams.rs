//! Named random-number streams derived from one instance seed.
//!
//! Everything in a reference-task instance (the random function, the samples,
//! the model's initial weights, the per-epoch shuffles) derives from a single
//! `seed`. Each use draws from its own stream, `Rng::derived(seed, STREAM)`,
//! so that changing how many numbers one use consumes never shifts another's.
//! The constants are ASCII tags, unique by construction; a new use must add a
//! new constant here rather than reuse one.

/// The random function of the RFF task: frequencies, amplitudes and phases.
pub const RFF_FUNCTION: u64 = u64::from_be_bytes(*b"RFF_FUNC");

/// The RFF task's samples: input coordinates and target noise.
pub const RFF_SAMPLES: u64 = u64::from_be_bytes(*b"RFF_SAMP");

/// The model's initial parameters (used by the model-building crates).
pub const MODEL_INIT: u64 = u64::from_be_bytes(*b"MDL_INIT");

/// The per-epoch shuffles of the training set (used by the training loop).
pub const EPOCH_SHUFFLE: u64 = u64::from_be_bytes(*b"EP_SHUFL");

/// Train/validation splits of user data ([`crate::splits::train_val_split`]).
pub const VAL_SPLIT: u64 = u64::from_be_bytes(*b"VAL_SPLT");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_distinct_and_give_different_numbers() {
        let all = [RFF_FUNCTION, RFF_SAMPLES, MODEL_INIT, EPOCH_SHUFFLE, VAL_SPLIT];
        let firsts: Vec<u64> = all
            .iter()
            .map(|&s| ferrograd_engine::Rng::derived(42, s).next_u64())
            .collect();
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
                assert_ne!(firsts[i], firsts[j]);
            }
        }
    }
}
