// Elementwise kernels: unary ops, broadcasting binary ops, select, casts,
// fills and strided copies (permute, broadcast_to, narrow, concat, pad).
#include "common.cuh"

// `op` is a UnaryCode (op_codes.h, the table engine/src/cuda/ops.rs reads too).
template <typename T> __device__ inline T unary_apply(int op, T x, T p0, T p1) {
    const T zero = (T)0, one = (T)1;
    switch (op) {
    case UNARY_NEG: return -x;
    case UNARY_ABS: return m_abs(x);
    case UNARY_EXP: return m_exp(x);
    case UNARY_LOG: return m_log(x);
    case UNARY_SQRT: return m_sqrt(x);
    case UNARY_RSQRT: return one / m_sqrt(x);
    case UNARY_SQUARE: return x * x;
    case UNARY_RECIP: return one / x;
    case UNARY_RELU: return (x > zero || m_isnan(x)) ? x : zero;
    case UNARY_LEAKY_RELU: return (x > zero || m_isnan(x)) ? x : x * p0;
    case UNARY_SIGMOID: return one / (one + m_exp(-x));
    case UNARY_TANH: return m_tanh(x);
    case UNARY_GELU: {
        const T c = (T)0.7978845608028654, a = (T)0.044715;
        T inner = c * (x + a * x * x * x);
        return (T)0.5 * x * (one + m_tanh(inner));
    }
    case UNARY_SILU: return x / (one + m_exp(-x));
    case UNARY_SIN: return m_sin(x);
    case UNARY_COS: return m_cos(x);
    case UNARY_SIGN: return x > zero ? one : (x < zero ? -one : x);
    case UNARY_CLAMP: return m_isnan(x) ? x : m_fmin(m_fmax(x, p0), p1); // NaN stays NaN
    case UNARY_ADD_SCALAR: return x + p0;
    case UNARY_MUL_SCALAR: return x * p0;
    case UNARY_POW_SCALAR: return m_pow(x, p0);
    case UNARY_GT_SCALAR: return x > p0 ? one : zero;
    case UNARY_LT_SCALAR: return x < p0 ? one : zero;
    default: return x;
    }
}

// `op` is a BinaryCode (op_codes.h).
template <typename T> __device__ inline T binary_apply(int op, T a, T b) {
    const T zero = (T)0, one = (T)1;
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_POW: return m_pow(a, b);
    case BINARY_MAXIMUM: return (a >= b || m_isnan(a)) ? a : b;
    case BINARY_MINIMUM: return (a <= b || m_isnan(a)) ? a : b;
    case BINARY_EQ: return a == b ? one : zero;
    case BINARY_NE: return a != b ? one : zero;
    case BINARY_LT: return a < b ? one : zero;
    case BINARY_LE: return a <= b ? one : zero;
    case BINARY_GT: return a > b ? one : zero;
    case BINARY_GE: return a >= b ? one : zero;
    default: return a;
    }
}

// y[i] = op(x[i]) over contiguous buffers (x == y is allowed: in place).
template <typename T> __device__ void unary(i64 n, int op, double p0, double p1, const T *x, T *y) {
    GRID_STRIDE(i, n) { y[i] = unary_apply<T>(op, x[i], (T)p0, (T)p1); }
}

// out[i] = op(a[..], b[..]) with a and b read through broadcast strides
// (s0 for a, s1 for b; a stride of 0 repeats a value).
template <typename T> __device__ void binary(i64 n, int op, Strided s, const T *a, const T *b, T *out) {
    GRID_STRIDE(i, n) {
        i64 oa, ob, unused;
        strided_offsets(s, i, oa, ob, unused);
        out[i] = binary_apply<T>(op, a[oa], b[ob]);
    }
}

// Contiguous same-shape fast path of `binary`.
template <typename T> __device__ void binary_contig(i64 n, int op, const T *a, const T *b, T *out) {
    GRID_STRIDE(i, n) { out[i] = binary_apply<T>(op, a[i], b[i]); }
}

// out[i] = cond != 0 ? a : b, all three read through broadcast strides.
template <typename T> __device__ void select(i64 n, Strided s, const T *cond, const T *a, const T *b, T *out) {
    GRID_STRIDE(i, n) {
        i64 oc, oa, ob;
        strided_offsets(s, i, oc, oa, ob);
        out[i] = cond[oc] != (T)0 ? a[oa] : b[ob];
    }
}

// dst[off1 + idx . s1] = src[off0 + idx . s0] for every index of `dims`.
template <typename T> __device__ void strided_copy(i64 n, Strided s, const T *src, T *dst) {
    GRID_STRIDE(i, n) {
        i64 os, od, unused;
        strided_offsets(s, i, os, od, unused);
        dst[od] = src[os];
    }
}

template <typename T> __device__ void fill(i64 n, double value, T *out) {
    GRID_STRIDE(i, n) { out[i] = (T)value; }
}

// y += x (the trainer's `param += update`).
template <typename T> __device__ void add_assign(i64 n, const T *x, T *y) {
    GRID_STRIDE(i, n) { y[i] += x[i]; }
}

#define INSTANTIATE(T, S)                                                                                    \
    extern "C" __global__ void unary_##S(i64 n, int op, double p0, double p1, const T *x, T *y) {             \
        unary<T>(n, op, p0, p1, x, y);                                                                       \
    }                                                                                                        \
    extern "C" __global__ void binary_##S(i64 n, int op, Strided s, const T *a, const T *b, T *out) {         \
        binary<T>(n, op, s, a, b, out);                                                                      \
    }                                                                                                        \
    extern "C" __global__ void binary_contig_##S(i64 n, int op, const T *a, const T *b, T *out) {             \
        binary_contig<T>(n, op, a, b, out);                                                                  \
    }                                                                                                        \
    extern "C" __global__ void select_##S(i64 n, Strided s, const T *c, const T *a, const T *b, T *out) {     \
        select<T>(n, s, c, a, b, out);                                                                       \
    }                                                                                                        \
    extern "C" __global__ void strided_copy_##S(i64 n, Strided s, const T *src, T *dst) {                     \
        strided_copy<T>(n, s, src, dst);                                                                     \
    }                                                                                                        \
    extern "C" __global__ void fill_##S(i64 n, double value, T *out) { fill<T>(n, value, out); }              \
    extern "C" __global__ void add_assign_##S(i64 n, const T *x, T *y) { add_assign<T>(n, x, y); }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)

extern "C" __global__ void cast_f32_f64(i64 n, const float *x, double *y) {
    GRID_STRIDE(i, n) { y[i] = (double)x[i]; }
}
extern "C" __global__ void cast_f64_f32(i64 n, const double *x, float *y) {
    GRID_STRIDE(i, n) { y[i] = (float)x[i]; }
}
