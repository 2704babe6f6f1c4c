//! Epoch batching: sizes, permutation and determinism.

use ferrograd_datasets::{epoch_batches, streams, ShuffledBatches};
use ferrograd_engine::Rng;

#[test]
fn thousand_samples_in_batches_of_128() {
    let batches = epoch_batches(1000, 128, &mut Rng::derived(1, streams::EPOCH_SHUFFLE)).unwrap();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [128, 128, 128, 128, 128, 128, 128, 104]);
}

#[test]
fn an_epoch_is_a_permutation_and_is_shuffled() {
    let batches = epoch_batches(1000, 128, &mut Rng::new(9)).unwrap();
    let flat: Vec<usize> = batches.concat();
    let mut sorted = flat.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_ne!(flat, sorted, "indices were not shuffled");
}

#[test]
fn deterministic_per_seed() {
    let run = |seed| epoch_batches(1000, 128, &mut Rng::new(seed)).unwrap();
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn epochs_differ_but_replay_from_a_saved_state() {
    let mut batcher = ShuffledBatches::new(1000, 128, Rng::new(2)).unwrap();
    let first = batcher.next_epoch().unwrap();
    let state = batcher.rng().state();
    let second = batcher.next_epoch().unwrap();
    assert_ne!(first, second);
    let mut replay = ShuffledBatches::new(1000, 128, Rng::from_state(state)).unwrap();
    assert_eq!(replay.next_epoch().unwrap(), second);
}

#[test]
fn zero_batch_size_is_rejected() {
    let err = epoch_batches(1000, 0, &mut Rng::new(0)).unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
}
