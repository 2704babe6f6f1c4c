// Row gathers and their adjoints. Indices arrive as i64 device arrays the
// engine has bounds-checked on the host. `index_add` is deterministic
// without atomics: the host groups source rows by destination (CSR:
// `starts[r]..starts[r + 1]` lists, in order, the source rows adding into
// row r) and each destination element sums its list in that order.
#include "common.cuh"

// out[r, :] = x[idx[r], :]
template <typename T> __device__ void index_select(i64 rows, i64 row_len, const i64 *idx, const T *x, T *out) {
    GRID_STRIDE(i, rows * row_len) {
        i64 r = i / row_len, j = i % row_len;
        out[i] = x[idx[r] * row_len + j];
    }
}

// out[r, :] = sum over k in starts[r]..starts[r+1] of x[src[k], :]
template <typename T>
__device__ void index_add(i64 rows, i64 row_len, const i64 *starts, const i64 *src, const T *x, T *out) {
    GRID_STRIDE(i, rows * row_len) {
        i64 r = i / row_len, j = i % row_len;
        T acc = (T)0;
        for (i64 k = starts[r]; k < starts[r + 1]; ++k) acc += x[src[k] * row_len + j];
        out[i] = acc;
    }
}

// out[i] = x[i, labels[i]] for x[n, classes]
template <typename T> __device__ void gather(i64 n, i64 classes, const i64 *labels, const T *x, T *out) {
    GRID_STRIDE(i, n) { out[i] = x[i * classes + labels[i]]; }
}

// out[i, j] = v[i] if j == labels[i] else 0
template <typename T> __device__ void scatter(i64 n, i64 classes, const i64 *labels, const T *v, T *out) {
    GRID_STRIDE(e, n * classes) {
        i64 i = e / classes, j = e % classes;
        out[e] = j == labels[i] ? v[i] : (T)0;
    }
}

#define INSTANTIATE(T, S)                                                                                   \
    extern "C" __global__ void index_select_##S(i64 rows, i64 row_len, const i64 *idx, const T *x, T *out) { \
        index_select<T>(rows, row_len, idx, x, out);                                                        \
    }                                                                                                       \
    extern "C" __global__ void index_add_##S(i64 rows, i64 row_len, const i64 *starts, const i64 *src,      \
                                             const T *x, T *out) {                                          \
        index_add<T>(rows, row_len, starts, src, x, out);                                                   \
    }                                                                                                       \
    extern "C" __global__ void gather_##S(i64 n, i64 classes, const i64 *labels, const T *x, T *out) {       \
        gather<T>(n, classes, labels, x, out);                                                              \
    }                                                                                                       \
    extern "C" __global__ void scatter_##S(i64 n, i64 classes, const i64 *labels, const T *v, T *out) {      \
        scatter<T>(n, classes, labels, v, out);                                                             \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
