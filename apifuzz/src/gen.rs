//! The harness's own seeded generator (splitmix64), so a case's calls depend
//! only on its seed and not on the engine's RNG, and the argument makers:
//! mostly plausible values, sometimes adversarial ones.

/// Sizes that overflow element counts or exceed any allocation.
const HUGE_DIMS: [usize; 7] = [1 << 20, 1 << 31, 1 << 32, 1 << 40, 1 << 62, 1 << 63, usize::MAX];

/// Floats that break naive arithmetic.
const ODD_FLOATS: [f64; 10] = [
    0.0,
    -0.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e300,
    -1e300,
    1e-310,
    f64::MAX,
    1e12,
];

/// A seeded generator of call arguments.
#[derive(Debug, Clone)]
pub struct Gen {
    state: u64,
    /// Whether absurd sizes and counters may be drawn (they may abort or
    /// hang a process: only a supervised worker draws them).
    pub wild: bool,
}

impl Gen {
    /// The generator of case `case`.
    pub fn new(case: u64, wild: bool) -> Gen {
        Gen {
            state: case.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
            wild,
        }
    }

    /// The next 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.u64() % n as u64) as usize
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let u = (self.u64() >> 11) as f64 / (1u64 << 53) as f64;
        u < p
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A dimension: usually 0 to 5, rarely absurd when wild.
    pub fn dim(&mut self) -> usize {
        if self.wild && self.chance(0.03) {
            self.pick(&HUGE_DIMS)
        } else if self.chance(0.08) {
            0
        } else {
            1 + self.below(5)
        }
    }

    /// A shape of rank 0 to 3 made of [`Gen::dim`]s.
    pub fn dims(&mut self) -> Vec<usize> {
        let rank = self.below(4);
        (0..rank).map(|_| self.dim()).collect()
    }

    /// A small shape (no absurd sizes), rank 0 to 3.
    pub fn small_dims(&mut self) -> Vec<usize> {
        let rank = self.below(4);
        (0..rank).map(|_| 1 + self.below(4)).collect()
    }

    /// A count: small, or absurd when wild.
    pub fn count(&mut self) -> usize {
        if self.wild && self.chance(0.05) {
            self.pick(&HUGE_DIMS)
        } else {
            self.below(9)
        }
    }

    /// An index into `len` items, sometimes out of range.
    pub fn index(&mut self, len: usize) -> usize {
        if len == 0 || self.chance(0.1) {
            len + self.below(3) + if self.chance(0.3) { usize::MAX / 2 } else { 0 }
        } else {
            self.below(len)
        }
    }

    /// An axis, sometimes out of range.
    pub fn axis(&mut self) -> isize {
        if self.chance(0.05) {
            self.pick(&[isize::MIN, isize::MAX, 9, -9])
        } else {
            self.below(7) as isize - 3
        }
    }

    /// A float: usually a normal draw, sometimes an odd value (huge finite
    /// values, which may be taken as sizes or counts, only when wild).
    pub fn float(&mut self) -> f64 {
        if self.chance(0.15) {
            let odd = if self.wild { &ODD_FLOATS[..] } else { &ODD_FLOATS[..5] };
            self.pick(odd)
        } else {
            self.normal() * 2.0
        }
    }

    /// A standard normal draw (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = ((self.u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `n` plausible floats.
    pub fn floats(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }

    /// Random bytes, `len` of them.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_draws_and_another_seed_others() {
        let draw = |seed| {
            let mut g = Gen::new(seed, true);
            (0..8).map(|_| g.u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn tame_generators_never_draw_absurd_sizes() {
        let mut g = Gen::new(1, false);
        for _ in 0..10_000 {
            assert!(g.dim() <= 5 && g.count() <= 8);
        }
    }
}
