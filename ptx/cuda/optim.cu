// Fused multi-tensor optimizer updates: one launch updates every parameter
// tensor. The engine passes a device array of `Slot`s (one per tensor, with
// its pointers, length and first block) and the hyperparameters by value;
// block b finds its tensor by binary search over `first_block` and updates
// CHUNK consecutive elements of it. The formulas are those of the CPU
// optimizers in ferrograd-optim (written out above each kernel), so the
// tests compare the two step by step.
#include "common.cuh"

#define CHUNK 2048

// Mirrors `Slot` in engine/src/cuda/optim.rs.
struct Slot {
    u64 param;   // T*: the parameter (read; += update when APPLY)
    u64 grad;    // const T*
    u64 state0;  // T*: m (Adam, Lion, Adan) or momentum buffer b (SGD)
    u64 state1;  // T*: v (Adam, Adan)
    u64 state2;  // T*: n (Adan)
    u64 state3;  // T*: previous gradient (Adan)
    u64 update;  // T*: where to write the update, or 0
    i64 len;
    i64 first_block;
    i64 pad_;
};

// Mirrors `Hyper` in engine/src/cuda/optim.rs.
struct Hyper {
    double lr, beta1, beta2, beta3, eps, weight_decay;
    double c1, c2, c3;  // bias corrections 1 - beta^t
    double momentum, dampening;
    int flags;
    int pad_;
};

#define FLAG_DECOUPLED 1  // Adam: AdamW decay; Adan: no_prox
#define FLAG_NESTEROV 2
#define FLAG_APPLY 4      // param += update
#define FLAG_FIRST 8      // first step (SGD: b = g; Adan: prev = g)

__device__ inline int find_slot(const Slot *slots, int nslots, i64 block) {
    int lo = 0, hi = nslots - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (slots[mid].first_block <= block) lo = mid; else hi = mid - 1;
    }
    return lo;
}

template <typename T> __device__ inline void emit(const Slot &s, const Hyper &h, i64 i, T u) {
    if (s.update) ((T *)s.update)[i] = u;
    if (h.flags & FLAG_APPLY) ((T *)s.param)[i] += u;
}

#define FOR_MY_ELEMENTS(s)                                                          \
    int slot_ = find_slot(slots, nslots, (i64)blockIdx.x);                          \
    const Slot s = slots[slot_];                                                    \
    i64 base_ = ((i64)blockIdx.x - s.first_block) * CHUNK;                          \
    i64 end_ = base_ + CHUNK < s.len ? base_ + CHUNK : s.len;                       \
    for (i64 i = base_ + threadIdx.x; i < end_; i += blockDim.x)

// SGD with momentum (torch.optim.SGD), g = grad + weight_decay * p:
// b = g (first step) or momentum b + (1 - dampening) g;
// update = -lr (g + momentum b) if nesterov else -lr b.
template <typename T> __device__ void sgdm(const Slot *slots, int nslots, Hyper h) {
    FOR_MY_ELEMENTS(s) {
        T p = ((T *)s.param)[i];
        T g = ((const T *)s.grad)[i] + (T)h.weight_decay * p;
        T *b = (T *)s.state0;
        T bn = (h.flags & FLAG_FIRST) ? g : (T)h.momentum * b[i] + ((T)1 - (T)h.dampening) * g;
        b[i] = bn;
        T dir = (h.flags & FLAG_NESTEROV) ? g + (T)h.momentum * bn : bn;
        emit<T>(s, h, i, -(T)h.lr * dir);
    }
}

// Adam / AdamW: g = grad (+ weight_decay * p unless decoupled);
// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// dir = (m / c1) / (sqrt(v / c2) + eps);
// update = -lr dir, or -lr (dir + weight_decay * p) when decoupled.
template <typename T> __device__ void adam(const Slot *slots, int nslots, Hyper h) {
    const bool decoupled = h.flags & FLAG_DECOUPLED;
    FOR_MY_ELEMENTS(s) {
        T p = ((T *)s.param)[i];
        T g = ((const T *)s.grad)[i];
        if (!decoupled) g += (T)h.weight_decay * p;
        T *m = (T *)s.state0, *v = (T *)s.state1;
        T mn = m[i] * (T)h.beta1 + g * (T)(1.0 - h.beta1);
        T vn = v[i] * (T)h.beta2 + g * g * (T)(1.0 - h.beta2);
        m[i] = mn;
        v[i] = vn;
        T dir = (mn / (T)h.c1) / (m_sqrt(vn / (T)h.c2) + (T)h.eps);
        if (decoupled) dir += (T)h.weight_decay * p;
        emit<T>(s, h, i, -(T)h.lr * dir);
    }
}

// Lion: c = b1 m + (1 - b1) g; update = -lr (sign(c) + weight_decay * p);
// m = b2 m + (1 - b2) g.
template <typename T> __device__ void lion(const Slot *slots, int nslots, Hyper h) {
    FOR_MY_ELEMENTS(s) {
        T p = ((T *)s.param)[i];
        T g = ((const T *)s.grad)[i];
        T *m = (T *)s.state0;
        T c = m[i] * (T)h.beta1 + g * (T)(1.0 - h.beta1);
        T sg = c > (T)0 ? (T)1 : (c < (T)0 ? (T)-1 : c);
        m[i] = m[i] * (T)h.beta2 + g * (T)(1.0 - h.beta2);
        emit<T>(s, h, i, -(T)h.lr * (sg + (T)h.weight_decay * p));
    }
}

// Adan (EMA convention, the authors' code): d = g - g_prev (0 on the first
// step), m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) d,
// n = b3 n + (1 - b3) (g + b2 d)^2,
// u = (m / c1 + b2 v / c2) / (sqrt(n) / sqrt(c3) + eps);
// update = -lr (u + wd p) / (1 + lr wd), or -lr (u + wd p) when no_prox.
template <typename T> __device__ void adan(const Slot *slots, int nslots, Hyper h) {
    FOR_MY_ELEMENTS(s) {
        T p = ((T *)s.param)[i];
        T g = ((const T *)s.grad)[i];
        T *m = (T *)s.state0, *v = (T *)s.state1, *n = (T *)s.state2, *prev = (T *)s.state3;
        T d = (h.flags & FLAG_FIRST) ? (T)0 : g - prev[i];
        T mn = m[i] * (T)h.beta1 + g * (T)(1.0 - h.beta1);
        T vn = v[i] * (T)h.beta2 + d * (T)(1.0 - h.beta2);
        T corr = g + d * (T)h.beta2;
        T nn = n[i] * (T)h.beta3 + corr * corr * (T)(1.0 - h.beta3);
        m[i] = mn;
        v[i] = vn;
        n[i] = nn;
        prev[i] = g;
        T denom = m_sqrt(nn) / (T)sqrt(h.c3) + (T)h.eps;
        T u = (mn / (T)h.c1 + vn * (T)(h.beta2 / h.c2)) / denom;
        T scale = (h.flags & FLAG_DECOUPLED) ? -(T)h.lr : (T)(-h.lr / (1.0 + h.lr * h.weight_decay));
        emit<T>(s, h, i, (u + p * (T)h.weight_decay) * scale);
    }
}

// The catalog's `adam` (ClippedAdam in optim/src/adam.rs) operation for
// operation: g = min(max(grad, -clip), clip), m = m b1 + g (1 - b1),
// v = v b2 + (g g) (1 - b2),
// update = ((m / c1) / (sqrt(v / c2) + eps)) (-lr), with the divisions by
// the bias corrections c = 1 - beta^t written as products with 1 / c.
// The step t is read from device memory (`*step + 1`, the counter being
// advanced by `counter_increment` after the launch), so a captured launch
// serves every step of a CUDA graph. The constants are computed in f64 as
// the CPU computes them (ClippedAdamConstants): beta^t by the same
// repeated squaring as Rust's `powi`, every product rounded on its own
// (__dmul_rn: no fused multiply-add), then rounded to T.
// Mirrors `ClippedAdamHyper` in engine/src/cuda/optim.rs.
struct ClippedAdamHyper {
    double lr, beta1, beta2, eps, clip;
};

// a^t for t >= 0, as compiler-builtins' __powidf2 (Rust's f64::powi).
__device__ inline double powi_like_cpu(double a, long long t) {
    unsigned long long p = (unsigned long long)t;
    double mul = 1.0;
    while (true) {
        if (p & 1) mul = __dmul_rn(mul, a);
        p >>= 1;
        if (p == 0) break;
        a = __dmul_rn(a, a);
    }
    return mul;
}

template <typename T>
__device__ void clipped_adam(const Slot *slots, int nslots, ClippedAdamHyper k, const i64 *step) {
    i64 t = step[0] + 1;
    if (t > 2147483647LL) t = 2147483647LL; // the CPU's powi takes an i32
    const T lo = (T)(-k.clip), hi = (T)k.clip;
    const T b1 = (T)k.beta1, nb1 = (T)(1.0 - k.beta1), b2 = (T)k.beta2, nb2 = (T)(1.0 - k.beta2);
    const T inv_c1 = (T)(1.0 / (1.0 - powi_like_cpu(k.beta1, t)));
    const T inv_c2 = (T)(1.0 / (1.0 - powi_like_cpu(k.beta2, t)));
    const T eps = (T)k.eps, neg_lr = (T)(-k.lr);
    Hyper h;
    h.flags = FLAG_APPLY;
    FOR_MY_ELEMENTS(s) {
        T g = ((const T *)s.grad)[i];
        g = m_isnan(g) ? g : m_fmin(m_fmax(g, lo), hi); // the engine's Clamp: NaN stays NaN
        T *m = (T *)s.state0, *v = (T *)s.state1;
        T mn = m[i] * b1 + g * nb1;
        T vn = v[i] * b2 + (g * g) * nb2;
        m[i] = mn;
        v[i] = vn;
        T direction = (mn * inv_c1) / (m_sqrt(vn * inv_c2) + eps);
        emit<T>(s, h, i, direction * neg_lr);
    }
}

// `*counter += 1`, on the device (one thread), in stream order.
extern "C" __global__ void counter_increment(i64 *counter) {
    if (blockIdx.x == 0 && threadIdx.x == 0) counter[0] += 1;
}

#define INSTANTIATE(T, S)                                                                                   \
    extern "C" __global__ void sgdm_multi_##S(const Slot *slots, int nslots, Hyper h) { sgdm<T>(slots, nslots, h); } \
    extern "C" __global__ void adam_multi_##S(const Slot *slots, int nslots, Hyper h) { adam<T>(slots, nslots, h); } \
    extern "C" __global__ void lion_multi_##S(const Slot *slots, int nslots, Hyper h) { lion<T>(slots, nslots, h); } \
    extern "C" __global__ void adan_multi_##S(const Slot *slots, int nslots, Hyper h) { adan<T>(slots, nslots, h); } \
    extern "C" __global__ void clipped_adam_multi_##S(const Slot *slots, int nslots, ClippedAdamHyper k,            \
                                                      const i64 *step) {                                           \
        clipped_adam<T>(slots, nslots, k, step);                                                                    \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
