//! Absurd sample counts are typed errors, never allocation aborts: counts
//! past the engine's `MAX_ELEMENTS` are refused up front, and counts within
//! it that memory cannot hold are `DataError::OutOfMemory`. The
//! out-of-memory cases run in a child process whose address space is capped
//! (`ulimit -v`), so nothing here allocates more than a few megabytes.

use ferrograd_datasets::{epoch_batches, train_val_split, DataError, Matrix, ShuffledBatches};
use ferrograd_engine::{Rng, MAX_ELEMENTS};

/// Asserts `r` is an `InvalidArgument` of `function` that states the limit.
fn past_the_limit<T: std::fmt::Debug>(function: &str, r: Result<T, DataError>) {
    match r {
        Err(e @ DataError::InvalidArgument { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with(function) && text.contains("MAX_ELEMENTS"), "{text}");
        }
        other => panic!("{function}: expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn counts_past_max_elements_are_refused_before_allocating() {
    let n = MAX_ELEMENTS + 1;
    past_the_limit("ShuffledBatches::new", ShuffledBatches::new(n, 32, Rng::new(0)));
    past_the_limit("ShuffledBatches::new", ShuffledBatches::new(usize::MAX, 1, Rng::new(0)));
    past_the_limit("epoch_batches", epoch_batches(n, 32, &mut Rng::new(0)));
    past_the_limit("train_val_split", train_val_split(usize::MAX, 0.5, &mut Rng::new(0)));
    // 2^32 x 2^32 overflows usize; 2^21 x 2^20 does not but is past the limit.
    past_the_limit("Matrix::zeros", Matrix::zeros(1 << 32, 1 << 32));
    past_the_limit("Matrix::zeros", Matrix::zeros(1 << 21, 1 << 20));
}

#[test]
fn a_refused_split_leaves_the_generator_untouched() {
    let mut rng = Rng::new(3);
    assert!(train_val_split(MAX_ELEMENTS + 1, 0.2, &mut rng).is_err());
    assert_eq!(rng, Rng::new(3));
}

/// Set in the child process that runs [`out_of_memory_cases`].
const CHILD: &str = "FERROGRAD_DATASETS_SIZES_CHILD";

#[cfg(unix)]
#[test]
fn counts_within_the_limit_that_memory_cannot_hold_are_out_of_memory() {
    let name = "counts_within_the_limit_that_memory_cannot_hold_are_out_of_memory";
    if std::env::var_os(CHILD).is_some() {
        return out_of_memory_cases();
    }
    // A 4 GiB address space: ample for the test binary, far below the
    // terabytes asked for, whatever the kernel's overcommit policy.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" --exact \"$1\" --test-threads=1")
        .arg(std::env::current_exe().unwrap())
        .arg(name)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the capped child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts `r` is `OutOfMemory` for `function`.
fn out_of_memory<T: std::fmt::Debug>(function: &str, r: Result<T, DataError>) {
    match r {
        Err(DataError::OutOfMemory { function: f, bytes }) => {
            assert_eq!(f, function);
            assert!(bytes >= 8 << 30, "{function}: {bytes} bytes");
        }
        other => panic!("{function}: expected OutOfMemory, got {other:?}"),
    }
}

/// n = 2^40 samples, within the limit: 8 TiB of indices (run capped only).
fn out_of_memory_cases() {
    let n = MAX_ELEMENTS;
    let mut batches = ShuffledBatches::new(n, 32, Rng::new(0)).unwrap();
    out_of_memory("ShuffledBatches::next_epoch", batches.next_epoch());
    out_of_memory("epoch_batches", epoch_batches(n, 32, &mut Rng::new(0)));
    out_of_memory("train_val_split", train_val_split(n, 0.2, &mut Rng::new(0)));
    out_of_memory("Matrix::zeros", Matrix::zeros(1 << 20, 1 << 20));
}
