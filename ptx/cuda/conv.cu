// Sliding windows over [n, c, h, w] image batches: unfold (im2col) and its
// adjoint fold (col2im), the CPU kernels of engine/src/ops/conv.rs one
// output element per thread. fold is a gather: each image pixel sums the
// column entries that read it, taps in row-major order, so it needs no
// atomics and gives the same sum in the same order as the CPU.
#include "common.cuh"

// The sizes of one unfold/fold; mirrors `ConvGeometry` in engine/src/cuda/ops.rs.
struct ConvGeometry {
    i64 n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

// cols[ni, (ci * kh + ki) * kw + kj, oy * ow + ox] = x[ni, ci, y, x] (0 in the padding)
template <typename T> __device__ void unfold(ConvGeometry g, const T *x, T *cols) {
    GRID_STRIDE(i, g.n * g.c * g.kh * g.kw * g.oh * g.ow) {
        i64 ox = i % g.ow, oy = i / g.ow % g.oh;
        i64 kj = i / (g.ow * g.oh) % g.kw, ki = i / (g.ow * g.oh * g.kw) % g.kh;
        i64 plane = i / (g.ow * g.oh * g.kw * g.kh); // ni * c + ci
        i64 y = oy * g.sh + ki * g.dh - g.ph, xx = ox * g.sw + kj * g.dw - g.pw;
        bool inside = y >= 0 && y < g.h && xx >= 0 && xx < g.w;
        cols[i] = inside ? x[(plane * g.h + y) * g.w + xx] : (T)0;
    }
}

// The window position whose tap `tap` reads pixel `p` along one axis, or -1.
__device__ inline i64 position_of(i64 p, i64 tap, i64 stride, i64 pad, i64 dilation, i64 positions) {
    i64 padded = p + pad - tap * dilation;
    if (padded < 0 || padded % stride != 0 || padded / stride >= positions) return -1;
    return padded / stride;
}

// x[ni, ci, y, xx] = sum over taps (ki, kj) reading it of cols[ni, (ci * kh + ki) * kw + kj, oy * ow + ox]
template <typename T> __device__ void fold(ConvGeometry g, const T *cols, T *x) {
    GRID_STRIDE(i, g.n * g.c * g.h * g.w) {
        i64 xx = i % g.w, y = i / g.w % g.h, plane = i / (g.w * g.h); // plane = ni * c + ci
        i64 l = g.oh * g.ow;
        T acc = (T)0;
        for (i64 ki = 0; ki < g.kh; ++ki) {
            i64 oy = position_of(y, ki, g.sh, g.ph, g.dh, g.oh);
            if (oy < 0) continue;
            for (i64 kj = 0; kj < g.kw; ++kj) {
                i64 ox = position_of(xx, kj, g.sw, g.pw, g.dw, g.ow);
                if (ox >= 0) acc += cols[((plane * g.kh + ki) * g.kw + kj) * l + oy * g.ow + ox];
            }
        }
        x[i] = acc;
    }
}

#define INSTANTIATE(T, S)                                                                        \
    extern "C" __global__ void unfold_##S(ConvGeometry g, const T *x, T *cols) { unfold<T>(g, x, cols); } \
    extern "C" __global__ void fold_##S(ConvGeometry g, const T *cols, T *x) { fold<T>(g, cols, x); }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
