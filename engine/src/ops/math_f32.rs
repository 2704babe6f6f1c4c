//! `tanh` for f32 written so the compiler vectorises it: the maps of
//! [`super::elementwise`] call it once per element in a plain loop, and
//! libm's `tanhf` (a call per element, branches inside) was most of the
//! time of a tanh network's forward pass.
//!
//! The method and coefficients are Cephes' single-precision ones (Stephen
//! L. Moshier, Cephes Math Library, `tanhf.c` and `expf.c`): for
//! `|x| < 0.625` an odd polynomial, `x + x^3 P(x^2)`; above,
//! `1 - 2 / (exp(2|x|) + 1)` with the sign of `x`, and `exp` by range
//! reduction to `r = x - k ln 2` (ln 2 split in two parts so `k ln 2` is
//! exact), a degree-6 polynomial in `r`, and `2^k` built from its bits.
//! Every step is branch-free arithmetic: both sides are computed and one
//! is selected. The error against the exact value is at most 2 units in
//! the last place (checked by the tests below over every f32 in a dense
//! sweep). NaN stays NaN.

/// `log2(e)`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// The high part of `ln 2` (exact in few bits, so `k * LN2_HIGH` is exact).
const LN2_HIGH: f32 = 0.693_359_4;
/// `ln 2 - LN2_HIGH`.
const LN2_LOW: f32 = -2.121_944_4e-4;
/// Below this `|x|` the odd polynomial is used.
const SMALL: f32 = 0.625;

/// `e^x` for `x >= 0` (what [`tanh_f32`] passes; capped at `e^88`), branch-free.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.min(88.0);
    // Rounded to the nearest integer: x >= 0, so truncating after adding
    // 0.5 is floor(x log2 e + 0.5) (a conversion the compiler vectorises
    // even without SSE4.1's round instruction, unlike `floor`).
    let k_int = (x * LOG2_E + 0.5) as i32;
    let k = k_int as f32;
    let r = x - k * LN2_HIGH - k * LN2_LOW;
    let p =
        ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
    let e_r = p * (r * r) + r + 1.0;
    // k is in [0, 127] here, so 2^k is a normal f32.
    e_r * f32::from_bits(((k_int + 127) as u32) << 23)
}

/// `tanh(x)` within 2 ulp, in a form the compiler vectorises.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let odd =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z - 3.333_328e-1) * z * x
            + x;
    let large = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    let magnitude = if a < SMALL || a.is_nan() { odd } else { large };
    // tanh is odd: the result has the sign of x (also for -0).
    magnitude.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many f32 steps `got` is from the exact `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let rounded = want as f32;
        let step = (f32::from_bits(rounded.abs().to_bits() + 1) - rounded.abs()) as f64;
        (got as f64 - want).abs() / step
    }

    #[test]
    fn tanh_is_within_two_ulp_of_the_exact_value_over_a_dense_sweep() {
        let mut worst = (0.0f64, 0.0f32);
        // Every 37th f32 bit pattern from 1e-30 up to past where tanh is 1.
        let (lo, hi) = (1e-30f32.to_bits(), 12.0f32.to_bits());
        for bits in (lo..hi).step_by(37) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let e = ulps(tanh_f32(x), (x as f64).tanh());
                if e > worst.0 {
                    worst = (e, x);
                }
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {:e}", worst.0, worst.1);
    }

    #[test]
    fn tanh_keeps_its_limits_signs_and_nan() {
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        for big in [20.0f32, 100.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(tanh_f32(big), 1.0);
            assert_eq!(tanh_f32(-big), -1.0);
        }
        assert!(tanh_f32(f32::NAN).is_nan());
        let tiny = f32::from_bits(1); // the smallest subnormal
        assert_eq!(tanh_f32(tiny), tiny);
    }
}
