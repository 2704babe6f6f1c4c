// BatchNorm1d over x[n, c] (row-major, a channel per column), training
// mode: batch statistics (biased variance) normalise, and the running
// statistics take the unbiased variance, as cuDNN and PyTorch do. One block
// per channel; sums are block reductions (deterministic, no atomics).
#include "common.cuh"

// y = (x - mean) * inv_std * scale + shift. Writes mean[c] and inv_std[c]
// for the backward pass; when `running_mean` is not null also updates
// running = (1 - momentum) running + momentum * batch (unbiased variance).
template <typename T>
__device__ void batchnorm_fwd(i64 n, i64 c, double eps, double momentum, const T *x, const T *scale, const T *shift,
                              T *y, T *mean_out, T *inv_std_out, T *running_mean, T *running_var) {
    __shared__ T scratch[32];
    for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        T s = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) s += x[r * c + ch];
        T mean = block_reduce(REDUCE_SUM, s, scratch) / (T)n;
        T q = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            T d = x[r * c + ch] - mean;
            q += d * d;
        }
        T var = block_reduce(REDUCE_SUM, q, scratch) / (T)n;
        T inv_std = (T)1 / m_sqrt(var + (T)eps);
        T g = scale[ch], b = shift[ch];
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) y[r * c + ch] = (x[r * c + ch] - mean) * inv_std * g + b;
        if (threadIdx.x == 0) {
            mean_out[ch] = mean;
            inv_std_out[ch] = inv_std;
            if (running_mean) {
                T unbiased = n > 1 ? var * (T)n / (T)(n - 1) : var;
                running_mean[ch] = ((T)1 - (T)momentum) * running_mean[ch] + (T)momentum * mean;
                running_var[ch] = ((T)1 - (T)momentum) * running_var[ch] + (T)momentum * unbiased;
            }
        }
    }
}

// Inference: y = (x - running_mean) / sqrt(running_var + eps) * scale + shift.
template <typename T>
__device__ void batchnorm_eval(i64 n, i64 c, double eps, const T *x, const T *scale, const T *shift,
                               const T *running_mean, const T *running_var, T *y) {
    GRID_STRIDE(i, n * c) {
        i64 ch = i % c;
        y[i] = (x[i] - running_mean[ch]) / m_sqrt(running_var[ch] + (T)eps) * scale[ch] + shift[ch];
    }
}

// d shift = sum dy, d scale = sum dy * xhat,
// dx = scale * inv_std * (dy - d shift / n - xhat * d scale / n).
template <typename T>
__device__ void batchnorm_bwd(i64 n, i64 c, const T *x, const T *dy, const T *mean, const T *inv_std, const T *scale,
                              T *dx, T *dscale, T *dshift) {
    __shared__ T scratch[32];
    for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        T mu = mean[ch], is = inv_std[ch];
        T s = (T)0, sx = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            T g = dy[r * c + ch];
            s += g;
            sx += g * (x[r * c + ch] - mu) * is;
        }
        T sum_dy = block_reduce(REDUCE_SUM, s, scratch);
        T sum_dy_xhat = block_reduce(REDUCE_SUM, sx, scratch);
        T k = scale[ch] * is, inv_n = (T)1 / (T)n;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            T xhat = (x[r * c + ch] - mu) * is;
            dx[r * c + ch] = k * (dy[r * c + ch] - sum_dy * inv_n - xhat * sum_dy_xhat * inv_n);
        }
        if (threadIdx.x == 0) {
            dscale[ch] = sum_dy_xhat;
            dshift[ch] = sum_dy;
        }
    }
}

#define INSTANTIATE(T, S)                                                                                    \
    extern "C" __global__ void batchnorm_fwd_##S(i64 n, i64 c, double eps, double momentum, const T *x,     \
                                                 const T *scale, const T *shift, T *y, T *mean, T *inv_std, \
                                                 T *running_mean, T *running_var) {                          \
        batchnorm_fwd<T>(n, c, eps, momentum, x, scale, shift, y, mean, inv_std, running_mean, running_var); \
    }                                                                                                        \
    extern "C" __global__ void batchnorm_eval_##S(i64 n, i64 c, double eps, const T *x, const T *scale,     \
                                                  const T *shift, const T *rm, const T *rv, T *y) {          \
        batchnorm_eval<T>(n, c, eps, x, scale, shift, rm, rv, y);                                            \
    }                                                                                                        \
    extern "C" __global__ void batchnorm_bwd_##S(i64 n, i64 c, const T *x, const T *dy, const T *mean,      \
                                                 const T *inv_std, const T *scale, T *dx, T *dscale,         \
                                                 T *dshift) {                                                \
        batchnorm_bwd<T>(n, c, x, dy, mean, inv_std, scale, dx, dscale, dshift);                             \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
