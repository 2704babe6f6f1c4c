//! Every forward kernel of the engine, one file per family. Each public op is
//! a method on [`crate::Tensor`] that checks its inputs, then dispatches on
//! the storage (today: CPU f32/f64) to a generic kernel.

pub mod elementwise;
pub mod fused;
pub mod index;
pub mod matmul;
pub mod reduce;
pub mod shape_ops;
pub mod softmax;

/// Element counts at or above this are split across threads (rayon); below
/// it, the op runs on the calling thread so small tensors pay no sync cost.
pub const PARALLEL_THRESHOLD: usize = 1 << 18;

use crate::Shape;

/// Runs `a` and `b`, in parallel on the engine's thread pool (rayon) when it
/// has a free thread, else one after the other on this thread. Use it to
/// split work into a *fixed* pair of independent halves: the halves, and so
/// the results, are the same whatever the number of threads.
pub fn join<RA: Send, RB: Send>(a: impl FnOnce() -> RA + Send, b: impl FnOnce() -> RB + Send) -> (RA, RB) {
    rayon::join(a, b)
}

/// Runs `f` on a worker thread of the engine's thread pool, or directly when
/// the caller already is one. Wrap a stretch of code that calls [`join`]
/// many times (a training step): a `join` from outside the pool hands its
/// work to the pool and sleeps until it is done, once per call; from inside,
/// the second half is offered to the other workers and the first runs at
/// once. One hand-off for the stretch instead of one per `join`; the results
/// are the same.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
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
        .install(f)
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
