// The task model's training step on the GPU, one launch per layer and pass:
// `[Linear -> ReLU -> BatchNorm1d] x H, Linear`, the arithmetic of the CPU's
// fused step (src/train/fused.rs, engine/src/ops/fused.rs) operation for
// operation, so that in f64 the two agree to rounding.
//
// Layout: a hidden layer's activations are feature-major, `[features, n]`
// (row f holds feature f for the batch's n samples), so that a block owns
// whole features and every per-feature statistic is a block reduction. A
// layer's input is read through strides (`xs_r` between samples, `xs_k`
// between features): the first layer reads the sample-major data rows
// (`xs_r = inputs, xs_k = 1`), the others the feature-major activations
// below (`xs_r = 1, xs_k = n`).
//
// One block per output feature (grid-stride over features), any multiple of
// 32 threads; every sum is a fixed-order loop or a `block_reduce`, so the
// results do not depend on timing. No atomics, no allocation: the engine
// passes every buffer.
#include "common.cuh"

// `relu(z)` with the CPU's NaN rule: a NaN passes through.
template <typename T> __device__ inline T relu_keep_nan(T z) { return (z > (T)0 || m_isnan(z)) ? z : (T)0; }

// Row r's pre-activation of feature j: `b[j] + sum_kk x[r, kk] w[j, kk]`.
template <typename T>
__device__ inline T linear_at(i64 r, i64 j, i64 k, const T *x, i64 xs_r, i64 xs_k, const T *w, const T *b) {
    T acc = (T)0;
    const T *wj = w + j * k;
    const T *xr = x + r * xs_r;
    for (i64 kk = 0; kk < k; ++kk) acc += xr[kk * xs_k] * wj[kk];
    return acc + b[j];
}

// A hidden layer forward, `y = BatchNorm(relu(x W^T + b))`, for n samples
// and c features from k inputs.
// Training (`training != 0`): batch statistics; writes `act = relu(z)`,
// `out`, `mean`, `var` (biased) and `inv_std = 1 / sqrt(var + eps)` for the
// backward pass (the running statistics are blended after the optimizer's
// step, by `mlp_running_stats`, as on the CPU).
// Inference: normalises with the running statistics `run_mean`, `run_var`;
// only `out` is written.
template <typename T>
__device__ void mlp_hidden_fwd(i64 n, i64 k, i64 c, const T *x, i64 xs_r, i64 xs_k, const T *w, const T *b,
                               const T *scale, const T *shift, T *act, T *out, T *mean, T *var, T *inv_std,
                               const T *run_mean, const T *run_var, double eps, int training) {
    __shared__ T scratch[32];
    for (i64 j = blockIdx.x; j < c; j += gridDim.x) {
        T *yj = out + j * n;
        if (!training) {
            T is = (T)1 / m_sqrt(run_var[j] + (T)eps);
            T mu = run_mean[j], s = is * scale[j], h = shift[j];
            for (i64 r = threadIdx.x; r < n; r += blockDim.x)
                yj[r] = (relu_keep_nan(linear_at(r, j, k, x, xs_r, xs_k, w, b)) - mu) * s + h;
            continue;
        }
        T *aj = act + j * n;
        T sum = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            T a = relu_keep_nan(linear_at(r, j, k, x, xs_r, xs_k, w, b));
            aj[r] = a; // read back below by this same thread only
            sum += a;
        }
        T inv_n = (T)1 / (T)n;
        T mu = block_reduce(REDUCE_SUM, sum, scratch) * inv_n;
        T sq = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) sq += (aj[r] - mu) * (aj[r] - mu);
        T vr = block_reduce(REDUCE_SUM, sq, scratch) * inv_n;
        T is = (T)1 / m_sqrt(vr + (T)eps);
        T s = is * scale[j], h = shift[j];
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) yj[r] = (aj[r] - mu) * s + h;
        if (threadIdx.x == 0) {
            mean[j] = mu;
            var[j] = vr;
            inv_std[j] = is;
        }
    }
}

// `r = r (1 - momentum) + batch momentum` for c features, the batch
// variance unbiased by n / (n - 1), in the CPU's `store_running_stats`
// order of operations.
template <typename T>
__device__ void mlp_running_stats(i64 c, i64 n, double momentum, const T *mean, const T *var, T *run_mean,
                                  T *run_var) {
    T keep = (T)(1.0 - momentum), take = (T)momentum;
    T unbias = (T)((double)n / (double)(n - 1));
    GRID_STRIDE(j, c) {
        run_mean[j] = run_mean[j] * keep + mean[j] * take;
        run_var[j] = run_var[j] * keep + (var[j] * unbias) * take;
    }
}

// The output layer (a plain Linear, c features from k feature-major inputs)
// and the loss against sample-major `target[n, c]`: `pred = x W^T + b`
// (feature-major, when not null), `dz = 2 (pred - target)` (feature-major,
// when not null) and the sum of squared errors into `sse[0]`. One block
// (the output is narrow: the task has 2 features).
template <typename T>
__device__ void mlp_output_fwd(i64 n, i64 k, i64 c, const T *x, const T *w, const T *b, const T *target, T *pred,
                               T *dz, T *sse) {
    __shared__ T scratch[32];
    T local = (T)0;
    for (i64 i = threadIdx.x; i < n * c; i += blockDim.x) {
        i64 j = i / n, r = i % n;
        T p = linear_at(r, j, k, x, (i64)1, n, w, b);
        T d = p - target[r * c + j];
        if (pred) pred[i] = p;
        if (dz) dz[i] = d * (T)2;
        local += d * d;
    }
    T total = block_reduce(REDUCE_SUM, local, scratch);
    if (threadIdx.x == 0) sse[0] = total;
}

// The weight and bias gradients of a Linear from its output gradient `dz`
// (feature-major `[c, n]`, final when this block reads it): `g_bias[j] =
// sum_r dz[j, r]` (when not null) and `g_w[j, kk] = sum_r dz[j, r] x[r, kk]`.
template <typename T>
__device__ void linear_grads_of(i64 j, i64 n, i64 k, const T *dzj, const T *x, i64 xs_r, i64 xs_k, T *g_w) {
    for (i64 kk = threadIdx.x; kk < k; kk += blockDim.x) {
        T acc = (T)0;
        for (i64 r = 0; r < n; ++r) acc += dzj[r] * x[r * xs_r + kk * xs_k];
        g_w[j * k + kk] = acc;
    }
}

// A hidden layer backward, from the gradient `dz_up` (`[c_up, n]`) of the
// layer above and its weight `w_up` (`[c_up, c]`): the BatchNorm and ReLU
// backward of the CPU's `bias_relu_batchnorm_backward`, writing this
// layer's `dz` (`[c, n]`, for the layer below) and, when not null (a
// trained layer), the gradients of its bias, BatchNorm scale and shift, and
// weight `g_w = dz x^T` (`[c, k]`).
template <typename T>
__device__ void mlp_hidden_bwd(i64 n, i64 c, i64 c_up, const T *w_up, const T *dz_up, const T *act, const T *mean,
                               const T *inv_std, const T *scale, i64 k, const T *x, i64 xs_r, i64 xs_k, T *dz,
                               T *g_bias, T *g_scale, T *g_shift, T *g_w) {
    __shared__ T scratch[32];
    for (i64 j = blockIdx.x; j < c; j += gridDim.x) {
        const T *aj = act + j * n;
        T *dzj = dz + j * n;
        T mu = mean[j], is = inv_std[j];
        T s_dy = (T)0, s_dya = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            // d loss / d y of this feature: column j of W_up^T dz_up.
            T dy = (T)0;
            for (i64 u = 0; u < c_up; ++u) dy += w_up[u * c + j] * dz_up[u * n + r];
            dzj[r] = dy; // read back below by this same thread only
            s_dy += dy;
            s_dya += dy * (aj[r] - mu);
        }
        T inv_n = (T)1 / (T)n;
        T dshift = block_reduce(REDUCE_SUM, s_dy, scratch);
        T dscale = block_reduce(REDUCE_SUM, s_dya, scratch) * is;
        T kj = scale[j] * is, mean_dy = dshift * inv_n, mean_dxhat = dscale * inv_n;
        T s_dz = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) {
            T a = aj[r];
            T xhat = (a - mu) * is;
            T da = kj * (dzj[r] - mean_dy - xhat * mean_dxhat);
            T d = a > (T)0 ? da : (T)0; // ReLU passed z where a > 0
            dzj[r] = d;
            s_dz += d;
        }
        T dbias = block_reduce(REDUCE_SUM, s_dz, scratch); // its barriers also publish dzj
        if (threadIdx.x == 0 && g_bias) {
            g_bias[j] = dbias;
            g_scale[j] = dscale;
            g_shift[j] = dshift;
        }
        if (g_w) linear_grads_of(j, n, k, dzj, x, xs_r, xs_k, g_w);
        __syncthreads(); // scratch and dzj are reused by the next feature
    }
}

// The output layer's own gradients (when it is trained): `g_bias` and
// `g_w` from its `dz` (`[c, n]`) and its feature-major input `x` (`[k, n]`).
template <typename T>
__device__ void mlp_linear_grads(i64 n, i64 c, i64 k, const T *dz, const T *x, T *g_bias, T *g_w) {
    __shared__ T scratch[32];
    for (i64 j = blockIdx.x; j < c; j += gridDim.x) {
        const T *dzj = dz + j * n;
        T s = (T)0;
        for (i64 r = threadIdx.x; r < n; r += blockDim.x) s += dzj[r];
        T total = block_reduce(REDUCE_SUM, s, scratch);
        if (threadIdx.x == 0) g_bias[j] = total;
        linear_grads_of(j, n, k, dzj, x, (i64)1, n, g_w);
        __syncthreads();
    }
}

// The step's batch, gathered on the device: `cursor[0]` is the step's
// index in the epoch and `cursor + 1` the epoch's order of the training
// rows, so step c takes rows `order[c * stride + r]` for `r < n` of the
// sample-major `x[rows, in]` and `y[rows, out]` into `batch_x[n, in]` and
// `batch_y[n, out]` (the order has `rows` entries, each a row of x and y;
// a step past them gathers nothing). Reading the step from device memory
// lets one captured launch serve every step of a CUDA graph.
template <typename T>
__device__ void mlp_batch_gather(i64 n, i64 stride, i64 rows, const i64 *cursor, const T *x, i64 in, const T *y,
                                 i64 out, T *batch_x, T *batch_y) {
    const i64 *order = cursor + 1;
    i64 first = cursor[0] * stride;
    GRID_STRIDE(i, n * (in + out)) {
        i64 r = i / (in + out), col = i % (in + out);
        if (first < 0 || first + r >= rows) continue;
        i64 row = order[first + r];
        if (col < in) batch_x[r * in + col] = x[row * in + col];
        else batch_y[r * out + (col - in)] = y[row * out + (col - in)];
    }
}

// The step's end: its loss into the epoch's slot `losses[cursor[0]]` (one
// of `slots`; a step past them writes no loss), and the cursor on to the
// next step (one thread).
template <typename T> __device__ void mlp_step_finish(i64 *cursor, const T *sse, T *losses, i64 slots) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        i64 c = cursor[0];
        if (c >= 0 && c < slots) losses[c] = sse[0];
        cursor[0] = c + 1;
    }
}

#define INSTANTIATE(T, S)                                                                                        \
    extern "C" __global__ void mlp_hidden_fwd_##S(i64 n, i64 k, i64 c, const T *x, i64 xs_r, i64 xs_k,          \
                                                  const T *w, const T *b, const T *scale, const T *shift, T *act, \
                                                  T *out, T *mean, T *var, T *inv_std, const T *run_mean,        \
                                                  const T *run_var, double eps, int training) {                  \
        mlp_hidden_fwd<T>(n, k, c, x, xs_r, xs_k, w, b, scale, shift, act, out, mean, var, inv_std, run_mean,    \
                          run_var, eps, training);                                                               \
    }                                                                                                            \
    extern "C" __global__ void mlp_running_stats_##S(i64 c, i64 n, double momentum, const T *mean,              \
                                                     const T *var, T *run_mean, T *run_var) {                    \
        mlp_running_stats<T>(c, n, momentum, mean, var, run_mean, run_var);                                      \
    }                                                                                                            \
    extern "C" __global__ void mlp_output_fwd_##S(i64 n, i64 k, i64 c, const T *x, const T *w, const T *b,      \
                                                  const T *target, T *pred, T *dz, T *sse) {                     \
        mlp_output_fwd<T>(n, k, c, x, w, b, target, pred, dz, sse);                                              \
    }                                                                                                            \
    extern "C" __global__ void mlp_hidden_bwd_##S(i64 n, i64 c, i64 c_up, const T *w_up, const T *dz_up,        \
                                                  const T *act, const T *mean, const T *inv_std, const T *scale, \
                                                  i64 k, const T *x, i64 xs_r, i64 xs_k, T *dz, T *g_bias,       \
                                                  T *g_scale, T *g_shift, T *g_w) {                              \
        mlp_hidden_bwd<T>(n, c, c_up, w_up, dz_up, act, mean, inv_std, scale, k, x, xs_r, xs_k, dz, g_bias,      \
                          g_scale, g_shift, g_w);                                                                \
    }                                                                                                            \
    extern "C" __global__ void mlp_batch_gather_##S(i64 n, i64 stride, i64 rows, const i64 *cursor, const T *x, \
                                                    i64 in, const T *y, i64 out, T *batch_x, T *batch_y) {       \
        mlp_batch_gather<T>(n, stride, rows, cursor, x, in, y, out, batch_x, batch_y);                           \
    }                                                                                                            \
    extern "C" __global__ void mlp_step_finish_##S(i64 *cursor, const T *sse, T *losses, i64 slots) {           \
        mlp_step_finish<T>(cursor, sse, losses, slots);                                                          \
    }                                                                                                            \
    extern "C" __global__ void mlp_linear_grads_##S(i64 n, i64 c, i64 k, const T *dz, const T *x, T *g_bias,    \
                                                    T *g_w) {                                                    \
        mlp_linear_grads<T>(n, c, k, dz, x, g_bias, g_w);                                                        \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
