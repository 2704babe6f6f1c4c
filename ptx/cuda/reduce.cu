// Reductions over one axis of a tensor viewed as [outer, len, inner], and
// softmax / log_softmax along such an axis. Deterministic: every output is
// folded by one block in a fixed order (per-thread strided partials, then a
// shuffle tree, then one warp over the per-warp values); no atomics. Long
// axes go through two passes: `reduce` with chunk < len writes per-chunk
// partials [outer, chunks, inner], and a second launch folds those.
#include "common.cuh"

// out[o, c, i] = fold over r in chunk c of x[o, r, i]; chunks = ceil(len / chunk).
// One block per output element (grid.x = outer * chunks * inner).
template <typename T>
__device__ void reduce(i64 outer, i64 len, i64 inner, i64 chunk, int op, const T *x, T *out) {
    __shared__ T scratch[32];
    i64 chunks = (len + chunk - 1) / chunk;
    if (chunks == 0) chunks = 1;
    for (i64 b = blockIdx.x; b < outer * chunks * inner; b += gridDim.x) {
        i64 i = b % inner, c = (b / inner) % chunks, o = b / (inner * chunks);
        i64 lo = c * chunk, hi = lo + chunk < len ? lo + chunk : len;
        T acc = red_init<T>(op);
        for (i64 r = lo + threadIdx.x; r < hi; r += blockDim.x) acc = red_fold(op, acc, x[(o * len + r) * inner + i]);
        acc = block_reduce(op, acc, scratch);
        if (threadIdx.x == 0) out[b] = acc;
    }
}

// Softmax (or log_softmax when `log` != 0) along the middle axis; one block
// per (o, i) row: max, then sum of exp(x - max), then the outputs.
template <typename T>
__device__ void softmax(i64 outer, i64 len, i64 inner, int log, const T *x, T *out) {
    __shared__ T scratch[32];
    for (i64 b = blockIdx.x; b < outer * inner; b += gridDim.x) {
        i64 i = b % inner, o = b / inner;
        const T *row = x + o * len * inner + i;
        T *orow = out + o * len * inner + i;
        T m = red_init<T>(REDUCE_MAX);
        for (i64 r = threadIdx.x; r < len; r += blockDim.x) m = red_fold(REDUCE_MAX, m, row[r * inner]);
        m = block_reduce(REDUCE_MAX, m, scratch);
        // An all -inf row would give NaN; shift by 0 there (as logsumexp).
        T inf = (T)1.0 / (T)0.0;
        if (m == -inf) m = (T)0;
        T s = (T)0;
        for (i64 r = threadIdx.x; r < len; r += blockDim.x) s += m_exp(row[r * inner] - m);
        s = block_reduce(REDUCE_SUM, s, scratch);
        if (log) {
            T lse = m_log(s);
            for (i64 r = threadIdx.x; r < len; r += blockDim.x) orow[r * inner] = row[r * inner] - m - lse;
        } else {
            T inv = (T)1 / s;
            for (i64 r = threadIdx.x; r < len; r += blockDim.x) orow[r * inner] = m_exp(row[r * inner] - m) * inv;
        }
    }
}

#define INSTANTIATE(T, S)                                                                                   \
    extern "C" __global__ void reduce_##S(i64 outer, i64 len, i64 inner, i64 chunk, int op, const T *x,     \
                                          T *out) {                                                         \
        reduce<T>(outer, len, inner, chunk, op, x, out);                                                    \
    }                                                                                                       \
    extern "C" __global__ void softmax_##S(i64 outer, i64 len, i64 inner, int log, const T *x, T *out) {     \
        softmax<T>(outer, len, inner, log, x, out);                                                         \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
