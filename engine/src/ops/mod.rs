//! Every forward kernel of the engine, one file per family. Each public op is
//! a method on [`crate::Tensor`] that checks its inputs, then dispatches on
//! the storage (CPU f32/f64, or a CUDA buffer with the `cuda` feature) to a
//! generic kernel.

pub mod conv;
pub mod elementwise;
pub mod fused;
pub mod index;
pub(crate) mod math_f32;
pub mod matmul;
pub mod multi_tensor;
mod pair;
pub mod reduce;
pub mod shape_ops;
pub mod softmax;

/// Element counts at or above this are split across threads (rayon); below
/// it, the op runs on the calling thread so small tensors pay no sync cost.
pub const PARALLEL_THRESHOLD: usize = 1 << 18;

/// Element counts at or above this are cut in two for a second thread that
/// is already awake ([`pair_is_awake`]), where a hand-off costs well under a
/// microsecond; without one, [`PARALLEL_THRESHOLD`] applies.
pub(crate) const PAIR_SPLIT: usize = 1 << 15;

/// Whether a [`join`] from this thread reaches the spinning pair helper (the
/// thread owns an [`in_pool`] region), so that even a pass of a few tens of
/// microseconds pays to split.
pub(crate) fn pair_is_awake() -> bool {
    pair::role() == pair::Role::Owner
}

/// Whether this thread is outside every owned region (neither the pair
/// helper's owner nor the helper itself).
pub(crate) fn pair_role_is_outside() -> bool {
    pair::role() == pair::Role::Outside
}

use crate::Shape;
use std::cell::Cell;

/// Runs `a` and `b` in parallel when a second thread is free, else one after
/// the other on this thread. Inside an [`in_pool`] region that owns two
/// threads, `b` goes to the engine's spinning pair helper (it starts within
/// a microsecond); elsewhere it goes to the rayon pool. Use it to split work
/// into a *fixed* pair of independent halves: the halves, and so the
/// results, are the same whatever the number of threads.
pub fn join<RA: Send, RB: Send>(a: impl FnOnce() -> RA + Send, b: impl FnOnce() -> RB + Send) -> (RA, RB) {
    match pair::role() {
        pair::Role::Owner => pair::join(a, b),
        pair::Role::Helper => (a(), b()),
        pair::Role::Outside => rayon::join(a, b),
    }
}

/// Runs `f` as a region of many small [`join`]s (a training step, an
/// epoch) with a second thread kept awake for their halves. A rayon worker
/// that sleeps between joins costs a futex wake-up per join (tens of
/// microseconds on a virtual machine, as much as a half-layer product), so:
///
/// * when the caller owns the parallelism (the main thread with a global
///   pool of two threads or more, or a [`with_threads`] closure with two or
///   more) and no other region holds it, `f` runs here and every `join`'s
///   second half goes to the engine's pair helper thread, which spins while
///   the region lasts and sleeps after it;
/// * otherwise (one thread, the helper taken, or a worker of someone else's
///   pool such as the race's) `f` runs on a worker of the current rayon pool,
///   where a `join` offers its second half to the other workers.
///
/// The results are the same either way.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if pair::role() != pair::Role::Outside {
        return f(); // already inside a region
    }
    let owns_the_threads = rayon::current_thread_index().is_none() || OWNS_POOL.with(Cell::get);
    if owns_the_threads && rayon::current_num_threads() >= 2 && pair::pays() {
        if let Some(_owned) = pair::claim() {
            return f();
        }
    }
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

thread_local! {
    /// Set on the worker that runs a [`with_threads`] closure: the pool's
    /// threads are that closure's alone, so it may use the pair helper.
    static OWNS_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the engine's parallel work (elementwise ops, [`join`]) on a
/// fresh pool of `threads` threads instead of the global one; the pool ends
/// with the call. Results do not depend on `threads` (see [`join`]); the
/// count only changes how the work is scheduled.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("a thread pool can be started")
        .install(|| {
            let outer = OWNS_POOL.with(|o| o.replace(true));
            let result = f();
            OWNS_POOL.with(|o| o.set(outer));
            result
        })
}

/// How an operand's elements line up with a broadcast output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Same shape as the output.
    Full,
    /// One element, used everywhere.
    Scalar,
    /// The whole operand repeats every `len` output elements (`[n]` under `[b, n]`).
    Tail(usize),
    /// Each element repeats `inner` times in a row (`[b, 1]` under `[b, n]`).
    Spread(usize),
    /// Anything else: read through broadcast strides.
    Strided,
}

pub(crate) fn layout(shape: &Shape, out: &Shape) -> Layout {
    if shape == out {
        return Layout::Full;
    }
    if out.numel() == 0 {
        return Layout::Strided; // nothing to compute; avoids zero-length chunks
    }
    if shape.numel() == 1 {
        return Layout::Scalar;
    }
    let pad = out.rank() - shape.rank();
    let padded: Vec<usize> = std::iter::repeat_n(1, pad)
        .chain(shape.dims().iter().copied())
        .collect();
    let dims = out.dims();
    // Tail: leading ones, then exactly the output's trailing dims.
    let lead = padded.iter().take_while(|&&d| d == 1).count();
    if padded[lead..] == dims[lead..] {
        return Layout::Tail(shape.numel());
    }
    // Spread: exactly the output's leading dims, then trailing ones.
    let trail = padded.iter().rev().take_while(|&&d| d == 1).count();
    let k = padded.len() - trail;
    if padded[..k] == dims[..k] {
        return Layout::Spread(dims[k..].iter().product());
    }
    Layout::Strided
}

/// Walks a row-major index over `dims`, calling `f(out_index, offsets)` where
/// `offsets[j]` is the flat offset into operand `j` whose strides are
/// `strides[j]`. The innermost dimension is a tight loop.
pub(crate) fn for_each_strided<const N: usize>(
    dims: &[usize],
    strides: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let numel: usize = dims.iter().product();
    if numel == 0 {
        return;
    }
    if dims.is_empty() {
        f(0, [0; N]);
        return;
    }
    let rank = dims.len();
    let inner = dims[rank - 1];
    let inner_strides: [usize; N] = std::array::from_fn(|j| strides[j][rank - 1]);
    let mut index = vec![0usize; rank];
    let mut base = [0usize; N];
    let mut out = 0;
    loop {
        let mut offs = base;
        for _ in 0..inner {
            f(out, offs);
            out += 1;
            for j in 0..N {
                offs[j] += inner_strides[j];
            }
        }
        // advance the outer odometer
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for j in 0..N {
                base[j] += strides[j][d];
            }
            if index[d] < dims[d] {
                break;
            }
            for j in 0..N {
                base[j] -= strides[j][d] * dims[d];
            }
            index[d] = 0;
        }
    }
}
