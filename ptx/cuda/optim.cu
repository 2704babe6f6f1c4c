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
// operation, its constants precomputed on the host in f64 and rounded to T
// here as the CPU rounds them: g = min(max(grad, lo), hi),
// m = m b1 + g nb1, v = v b2 + (g g) nb2,
// update = ((m inv_c1) / (sqrt(v inv_c2) + eps)) neg_lr.
// Mirrors `ClippedAdamConstants` in engine/src/cuda/optim.rs.
struct ClippedAdamConstants {
    double lo, hi, b1, nb1, b2, nb2, inv_c1, inv_c2, eps, neg_lr;
    int flags; // FLAG_APPLY
    int pad_;
};

template <typename T> __device__ void clipped_adam(const Slot *slots, int nslots, ClippedAdamConstants k) {
    Hyper h;
    h.flags = k.flags;
    FOR_MY_ELEMENTS(s) {
        T g = m_fmin(m_fmax(((const T *)s.grad)[i], (T)k.lo), (T)k.hi);
        T *m = (T *)s.state0, *v = (T *)s.state1;
        T mn = m[i] * (T)k.b1 + g * (T)k.nb1;
        T vn = v[i] * (T)k.b2 + (g * g) * (T)k.nb2;
        m[i] = mn;
        v[i] = vn;
        T direction = (mn * (T)k.inv_c1) / (m_sqrt(vn * (T)k.inv_c2) + (T)k.eps);
        emit<T>(s, h, i, direction * (T)k.neg_lr);
    }
}

#define INSTANTIATE(T, S)                                                                                   \
    extern "C" __global__ void sgdm_multi_##S(const Slot *slots, int nslots, Hyper h) { sgdm<T>(slots, nslots, h); } \
    extern "C" __global__ void adam_multi_##S(const Slot *slots, int nslots, Hyper h) { adam<T>(slots, nslots, h); } \
    extern "C" __global__ void lion_multi_##S(const Slot *slots, int nslots, Hyper h) { lion<T>(slots, nslots, h); } \
    extern "C" __global__ void adan_multi_##S(const Slot *slots, int nslots, Hyper h) { adan<T>(slots, nslots, h); } \
    extern "C" __global__ void clipped_adam_multi_##S(const Slot *slots, int nslots, ClippedAdamConstants k) {      \
        clipped_adam<T>(slots, nslots, k);                                                                          \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
