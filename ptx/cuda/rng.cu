// Counter-based random fills: element i of a fill with seed s depends only
// on (s, i), so results do not depend on the launch shape. The generator is
// SplitMix64's finaliser over (seed, counter); it is not the CPU `Rng`'s
// stream (GPU and CPU fills differ), only the same distributions.
#include "common.cuh"

__device__ inline u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A double uniform in [0, 1) from 53 random bits of draw `k` of element `i`.
__device__ inline double uniform01(u64 seed, u64 i, u64 k) {
    u64 bits = mix64(seed ^ mix64(2 * i + k + 0x9e3779b97f4a7c15ull));
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

template <typename T> __device__ void rng_uniform(i64 n, u64 seed, double low, double high, T *out) {
    GRID_STRIDE(i, n) {
        T v = (T)(low + (high - low) * uniform01(seed, (u64)i, 0));
        // Rounding to f32 can reach `high`; keep the interval half-open.
        out[i] = v < (T)high ? v : (T)low;
    }
}

// Box-Muller on two independent uniforms per element.
template <typename T> __device__ void rng_normal(i64 n, u64 seed, double mean, double std, T *out) {
    GRID_STRIDE(i, n) {
        double u1 = 1.0 - uniform01(seed, (u64)i, 0); // (0, 1]: log is finite
        double u2 = uniform01(seed, (u64)i, 1);
        double z = sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
        out[i] = (T)(mean + std * z);
    }
}

#define INSTANTIATE(T, S)                                                                               \
    extern "C" __global__ void rng_uniform_##S(i64 n, u64 seed, double low, double high, T *out) {     \
        rng_uniform<T>(n, seed, low, high, out);                                                        \
    }                                                                                                   \
    extern "C" __global__ void rng_normal_##S(i64 n, u64 seed, double mean, double std, T *out) {      \
        rng_normal<T>(n, seed, mean, std, out);                                                         \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
