// The op codes the engine passes to the kernels: the one table both sides
// read. The kernels include it (through common.cuh) and name these constants
// in `unary_apply`, `binary_apply` and the reduction folds; ptx/build.rs
// turns the same lines into `ferrograd_ptx::op_codes`, which
// engine/src/cuda/ops.rs uses. A new op gets its line here and its `case` in
// elementwise.cu; ptx/tests/op_codes.rs fails while either is missing.
//
// Format (ptx/build.rs reads it line by line): `enum Name {` opens a table,
// each entry is `NAME = number, // what it computes`, `};` closes it.
// Changing a number changes the compiled PTX: run ptx/regen.sh.
#pragma once

// `unary_apply` in elementwise.cu; p0, p1 are the op's scalar parameters.
enum UnaryCode {
    UNARY_NEG = 0,          // -x
    UNARY_ABS = 1,          // |x|
    UNARY_EXP = 2,          // e^x
    UNARY_LOG = 3,          // ln x
    UNARY_SQRT = 4,         // sqrt(x)
    UNARY_RSQRT = 5,        // 1 / sqrt(x)
    UNARY_SQUARE = 6,       // x * x
    UNARY_RECIP = 7,        // 1 / x
    UNARY_RELU = 8,         // max(x, 0), NaN kept
    UNARY_LEAKY_RELU = 9,   // x, or x * p0 where x <= 0
    UNARY_SIGMOID = 10,     // 1 / (1 + e^-x)
    UNARY_TANH = 11,        // tanh x
    UNARY_GELU = 12,        // GELU, tanh approximation
    UNARY_SILU = 13,        // x * sigmoid(x)
    UNARY_SIN = 14,         // sin x
    UNARY_COS = 15,         // cos x
    UNARY_SIGN = 16,        // -1, 0 or 1 (NaN kept)
    UNARY_CLAMP = 17,       // x clamped to [p0, p1]
    UNARY_ADD_SCALAR = 18,  // x + p0
    UNARY_MUL_SCALAR = 19,  // x * p0
    UNARY_POW_SCALAR = 20,  // x^p0
    UNARY_GT_SCALAR = 21,   // 1 where x > p0, else 0
    UNARY_LT_SCALAR = 22,   // 1 where x < p0, else 0
};

// `binary_apply` in elementwise.cu; comparisons give 1 or 0.
enum BinaryCode {
    BINARY_ADD = 0,         // a + b
    BINARY_SUB = 1,         // a - b
    BINARY_MUL = 2,         // a * b
    BINARY_DIV = 3,         // a / b
    BINARY_POW = 4,         // a^b
    BINARY_MAXIMUM = 5,     // max(a, b), a NaN in a wins
    BINARY_MINIMUM = 6,     // min(a, b), a NaN in a wins
    BINARY_EQ = 7,          // a == b
    BINARY_NE = 8,          // a != b
    BINARY_LT = 9,          // a < b
    BINARY_LE = 10,         // a <= b
    BINARY_GT = 11,         // a > b
    BINARY_GE = 12,         // a >= b
};

// `red_init`, `red_fold` and `block_reduce` in common.cuh, and so the
// `reduce` kernels; a NaN wins max and min, as in the CPU fold.
enum ReduceCode {
    REDUCE_SUM = 0,         // sum
    REDUCE_MAX = 1,         // maximum
    REDUCE_MIN = 2,         // minimum
};
