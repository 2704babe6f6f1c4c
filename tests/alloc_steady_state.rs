//! Allocation counts of the training loop in steady state: after warm-up,
//! every epoch of the task protocol (8 Adam steps and a validation pass)
//! makes the same, small number of heap allocations, and the live heap does
//! not grow.
//!
//! What remains per step, in steady state: one vector (the updates the
//! `TaskOptimizer::step` interface returns) and the `gemm` crate's own
//! scratch, which it allocates inside every call (packing buffers and a few
//! bytes of dispatch; 3 to 4 allocations per GEMM, 13 GEMMs per step on this
//! model). No tensor, activation, gradient or optimizer buffer is allocated.
//!
//! A counting global allocator wraps the system one. It counts every thread
//! (rayon's workers included), so this file holds a single test: no other
//! test runs beside it in this binary.

use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{TaskConfig, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        LIVE.fetch_add(layout.size(), Relaxed);
        LARGEST.fetch_max(layout.size(), Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size, Relaxed);
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        LARGEST.fetch_max(new_size, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What one epoch allocated.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EpochAllocs {
    allocations: usize,
    bytes: usize,
    largest: usize,
    live_after: usize,
}

fn measured_epoch(trainer: &mut Trainer) -> EpochAllocs {
    let (a0, b0) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    LARGEST.store(0, Relaxed);
    trainer.run_epoch().expect("the epoch runs");
    EpochAllocs {
        allocations: ALLOCATIONS.load(Relaxed) - a0,
        bytes: BYTES.load(Relaxed) - b0,
        largest: LARGEST.load(Relaxed),
        live_after: LIVE.load(Relaxed),
    }
}

/// Allocations a steady-state step may make: 13 GEMMs x 4 (the `gemm`
/// crate's scratch) + 2 (Adam's list of the step's tensor stretches and the
/// returned updates vector) = 54, rounded up; the validation pass's 4 GEMMs
/// fit in the slack.
const PER_STEP_BUDGET: usize = 60;

/// Trains 3 warm-up and 4 measured epochs of track 3 with `threads`
/// threads; returns the measured epochs (and the first warm-up one).
fn epochs_with(threads: usize) -> (EpochAllocs, Vec<EpochAllocs>, usize) {
    ferrograd::engine::ops::with_threads(threads, || {
        let config = TaskConfig {
            n_hidden: 3,
            max_epochs: 20,
            patience: 1000,
            ..TaskConfig::default()
        };
        let steps = config.data.n_train.div_ceil(config.batch_size);
        let info = catalog::lookup("clipped_adam").unwrap();
        let optimizer = (info.build)(&HyperParams::defaults(info)).unwrap();
        let mut trainer = Trainer::new(config, optimizer).unwrap();
        // Warm-up: buffers are sized, shared tensors are unshared by their
        // first in-place write.
        let first = measured_epoch(&mut trainer);
        measured_epoch(&mut trainer);
        measured_epoch(&mut trainer);
        let steady = (0..4).map(|_| measured_epoch(&mut trainer)).collect();
        (first, steady, steps)
    })
}

#[test]
fn training_epochs_allocate_the_same_small_amount_after_warm_up() {
    // One thread: the count is exact, epoch after epoch.
    let (first, steady, steps) = epochs_with(1);
    let shown = format!("1 thread: first {first:?}\nsteady {steady:?}");
    for e in &steady {
        assert_eq!(
            (e.allocations, e.bytes),
            (steady[0].allocations, steady[0].bytes),
            "{shown}"
        );
        // The budget above: gemm's scratch and one vector per step. A path
        // that allocated a tensor per parameter (20 here) or per op (hundreds)
        // would exceed it.
        assert!(e.allocations <= steps * PER_STEP_BUDGET, "{shown}");
        // Everything allocated in the epoch was freed again.
        assert_eq!(e.live_after, steady[0].live_after, "{shown}");
    }
    // The warm-up really did allocate the buffers: the counter sees them.
    assert!(first.allocations > 2 * steady[0].allocations, "{shown}");

    // Two threads: the same, except that rayon's work stealing itself
    // (crossbeam's deferred-free bags) now and then allocates a few bytes.
    let (_, two, _) = epochs_with(2);
    let shown = format!("2 threads: steady {two:?}");
    for e in &two {
        assert!(e.allocations.abs_diff(steady[0].allocations) <= 4, "{shown}");
        assert!(e.bytes.abs_diff(steady[0].bytes) <= 16 << 10, "{shown}");
    }
}
