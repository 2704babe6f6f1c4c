// C[m, n] = op(A)[m, k] * op(B)[k, n], tiled and register-blocked. A's
// element (i, p) is read at a[i * a_row + p * a_col] and B's (p, j) at
// b[p * b_row + j * b_col], so a transpose is just swapped strides (the
// engine's matmul_t). Each 256-thread block computes a 64 x 64 tile of C
// from 64 x 16 and 16 x 64 tiles staged in shared memory; each thread
// accumulates a 4 x 4 register block (rows ty + 16 r, cols tx + 16 c, which
// keeps shared-memory reads free of bank conflicts). The sum over p runs in
// a fixed order, so results are deterministic.
#include "common.cuh"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16

template <typename T>
__device__ void gemm(i64 m, i64 n, i64 k, const T *a, i64 a_row, i64 a_col, const T *b, i64 b_row, i64 b_col, T *c) {
    __shared__ T as[TILE_K][TILE_M + 1];
    __shared__ T bs[TILE_K][TILE_N + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const i64 row0 = (i64)blockIdx.y * TILE_M, col0 = (i64)blockIdx.x * TILE_N;
    T acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) acc[r][q] = (T)0;
    for (i64 p0 = 0; p0 < k; p0 += TILE_K) {
        // 1024 elements per tile, 4 per thread; out-of-range reads give 0.
        for (int e = threadIdx.x; e < TILE_M * TILE_K; e += 256) {
            // A tile: consecutive threads walk p when A is row-major (a_col == 1)
            // and i when it is transposed, so global reads stay coalesced.
            int ip, pp;
            if (a_col == 1) { ip = e / TILE_K; pp = e % TILE_K; } else { ip = e % TILE_M; pp = e / TILE_M; }
            i64 gi = row0 + ip, gp = p0 + pp;
            as[pp][ip] = (gi < m && gp < k) ? a[gi * a_row + gp * a_col] : (T)0;
            int jq, pq;
            if (b_col == 1) { jq = e % TILE_N; pq = e / TILE_N; } else { jq = e / TILE_K; pq = e % TILE_K; }
            i64 gj = col0 + jq, gq = p0 + pq;
            bs[pq][jq] = (gj < n && gq < k) ? b[gq * b_row + gj * b_col] : (T)0;
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE_K; ++p) {
            T av[4], bv[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) av[r] = as[p][ty + 16 * r];
#pragma unroll
            for (int q = 0; q < 4; ++q) bv[q] = bs[p][tx + 16 * q];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[r][q] += av[r] * bv[q];
        }
        __syncthreads();
    }
    for (int r = 0; r < 4; ++r) {
        i64 i = row0 + ty + 16 * r;
        if (i >= m) continue;
        for (int q = 0; q < 4; ++q) {
            i64 j = col0 + tx + 16 * q;
            if (j < n) c[i * n + j] = acc[r][q];
        }
    }
}

#define INSTANTIATE(T, S)                                                                                  \
    extern "C" __global__ void __launch_bounds__(256) gemm_##S(i64 m, i64 n, i64 k, const T *a, i64 a_row, \
                                                               i64 a_col, const T *b, i64 b_row,           \
                                                               i64 b_col, T *c) {                          \
        gemm<T>(m, n, k, a, a_row, a_col, b, b_row, b_col, c);                                             \
    }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
