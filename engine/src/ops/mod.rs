//! Every forward kernel of the engine, one file per family. Each public op is
//! a method on [`crate::Tensor`] that checks its inputs, then dispatches on
//! the storage (today: CPU f32/f64) to a generic kernel.

pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod reduce;
pub mod shape_ops;
pub mod softmax;

/// Element counts at or above this are split across threads (rayon); below
/// it, the op runs on the calling thread so small tensors pay no sync cost.
pub const PARALLEL_THRESHOLD: usize = 1 << 16;

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
