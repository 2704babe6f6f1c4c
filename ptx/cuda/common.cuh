// Shared helpers for ferrograd's kernels. Compiled with NVRTC (no host
// headers): every kernel is `extern "C"` so its PTX name is its C name, and
// every dtype-generic kernel is a template instantiated for float (`_f32`)
// and double (`_f64`) by the INSTANTIATE macros at the end of each file.
#pragma once

#include "op_codes.h"

typedef long long i64;
typedef unsigned long long u64;

// The largest rank the strided kernels accept (the engine checks it).
#define MAX_RANK 8

// Dims and up to three operands' strides (in elements) for broadcasting and
// strided copies, passed by value. Mirrors `StridedArgs` in
// engine/src/cuda/ops.rs field for field.
struct Strided {
    i64 dims[MAX_RANK];
    i64 s0[MAX_RANK];
    i64 s1[MAX_RANK];
    i64 s2[MAX_RANK];
    i64 off0, off1, off2;
    int rank;
    int pad_;
};

// Flat offsets of row-major output element `i` into up to three operands.
__device__ inline void strided_offsets(const Strided &s, i64 i, i64 &o0, i64 &o1, i64 &o2) {
    o0 = s.off0;
    o1 = s.off1;
    o2 = s.off2;
    for (int d = s.rank - 1; d >= 0; --d) {
        i64 k = i % s.dims[d];
        i /= s.dims[d];
        o0 += k * s.s0[d];
        o1 += k * s.s1[d];
        o2 += k * s.s2[d];
    }
}

#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// Overloads so templates read like the CPU kernels.
__device__ inline float m_exp(float x) { return expf(x); }
__device__ inline double m_exp(double x) { return exp(x); }
__device__ inline float m_log(float x) { return logf(x); }
__device__ inline double m_log(double x) { return log(x); }
__device__ inline float m_sqrt(float x) { return sqrtf(x); }
__device__ inline double m_sqrt(double x) { return sqrt(x); }
__device__ inline float m_tanh(float x) { return tanhf(x); }
__device__ inline double m_tanh(double x) { return tanh(x); }
__device__ inline float m_sin(float x) { return sinf(x); }
__device__ inline double m_sin(double x) { return sin(x); }
__device__ inline float m_cos(float x) { return cosf(x); }
__device__ inline double m_cos(double x) { return cos(x); }
__device__ inline float m_pow(float x, float y) { return powf(x, y); }
__device__ inline double m_pow(double x, double y) { return pow(x, y); }
__device__ inline float m_abs(float x) { return fabsf(x); }
__device__ inline double m_abs(double x) { return fabs(x); }
// fmax/fmin ignore a NaN operand, like Rust's f64::max/min.
__device__ inline float m_fmax(float x, float y) { return fmaxf(x, y); }
__device__ inline double m_fmax(double x, double y) { return fmax(x, y); }
__device__ inline float m_fmin(float x, float y) { return fminf(x, y); }
__device__ inline double m_fmin(double x, double y) { return fmin(x, y); }
template <typename T> __device__ inline bool m_isnan(T x) { return x != x; }

// Reductions: `op` is a ReduceCode (op_codes.h), folded with the CPU fold's
// NaN rule (a NaN wins max and min).
template <typename T> __device__ inline T red_init(int op) {
    if (op == REDUCE_SUM) return (T)0;
    T inf = (T)1.0 / (T)0.0;
    return op == REDUCE_MAX ? -inf : inf; // REDUCE_MIN: +inf
}
template <typename T> __device__ inline T red_fold(int op, T acc, T x) {
    if (op == REDUCE_SUM) return acc + x;
    if (m_isnan(acc)) return acc;
    if (op == REDUCE_MAX) return (x > acc || m_isnan(x)) ? x : acc;
    return (x < acc || m_isnan(x)) ? x : acc; // REDUCE_MIN
}

__device__ inline float shfl_down(float v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
__device__ inline double shfl_down(double v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }

// Deterministic block reduction: each warp folds with shuffles in a fixed
// tree, then warp 0 folds the per-warp results. The result is valid in
// thread 0 and broadcast to every thread through `scratch[0]`. blockDim.x
// must be a multiple of 32 and at most 1024; `scratch` holds 32 values.
template <typename T> __device__ inline T block_reduce(int op, T v, T *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int d = 16; d > 0; d >>= 1) v = red_fold(op, v, shfl_down(v, d));
    __syncthreads(); // scratch may still be read from a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    if (warp == 0) {
        v = lane < warps ? scratch[lane] : red_init<T>(op);
        for (int d = 16; d > 0; d >>= 1) v = red_fold(op, v, shfl_down(v, d));
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}
