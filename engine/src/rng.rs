//! A small, seeded, portable random number generator, and the draws
//! ferrograd makes from any generator.
//!
//! ferrograd promises "same seed, same numbers, bit for bit on the CPU". The
//! generator is xoshiro256++ (Blackman and Vigna, "Scrambled linear
//! pseudorandom number generators", 2021), seeded through SplitMix64 as its
//! authors recommend: [`Rng`] wraps `rand_xoshiro`'s `Xoshiro256PlusPlus`
//! (pinned to an exact version, and checked against the C reference's output
//! by this module's tests) and implements `rand`'s [`rand::Rng`] and
//! [`rand::SeedableRng`], so it works with everything in the `rand`
//! ecosystem.
//!
//! The other direction works too: every function of the library that draws
//! numbers takes any `rand` generator (`&mut impl Draw`), and [`Draw`] gives
//! every `rand` generator ferrograd's draws. Uniform floats come from `rand`'s
//! `StandardUniform` (the same 53-bit conversion ferrograd always used).
//! Normals, integers below `n` and shuffles stay written here, because
//! `rand`/`rand_distr`'s versions (Ziggurat normals, rejection-sampled ranges,
//! their shuffle) give different numbers, and the task's data, initial
//! weights and every recorded result are made of these numbers.

use rand::{RngExt, SeedableRng, TryRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};
use std::convert::Infallible;

/// `rand`, at the version ferrograd implements, so that users name the same
/// traits: `ferrograd_engine::rng::rand::Rng`.
pub use rand;

/// A seeded xoshiro256++ generator. Cloning it forks an identical stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    inner: Xoshiro256PlusPlus,
}

/// The draws ferrograd makes, for every `rand` generator.
///
/// Implemented for all `R: rand::Rng`, so a function that takes
/// `&mut impl Draw` accepts [`Rng`], `rand::rngs::StdRng`, or any other
/// generator. The numbers depend only on the generator's `next_u64` stream.
pub trait Draw: rand::Rng {
    /// Uniform in [0, 1), with 53 random bits.
    fn uniform(&mut self) -> f64 {
        self.random::<f64>()
    }

    /// Uniform in (0, 1]: never zero, so safe under `ln`.
    fn uniform_open0(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// Uniform in [low, high).
    fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// A standard normal variate (Box-Muller; one of the pair is discarded so
    /// that the stream position does not depend on call history).
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform_open0();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A uniformly chosen integer in [0, n). `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Draw::below needs n > 0");
        // Lemire's multiply-shift; the tiny bias (< n / 2^64) is irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

impl<R: rand::Rng + ?Sized> Draw for R {}

impl Rng {
    /// A generator whose whole stream is determined by `seed` (the seed is
    /// expanded into the state by SplitMix64).
    pub fn new(seed: u64) -> Self {
        Rng {
            inner: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }

    /// A generator for a named sub-stream of `seed`, so that independent uses
    /// of one instance seed (data, init, shuffling) never share numbers.
    pub fn derived(seed: u64, stream: u64) -> Self {
        let mixed = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng::new(rand::Rng::next_u64(&mut SplitMix64::seed_from_u64(mixed)))
    }

    /// The raw state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        let bytes = self.inner.state();
        std::array::from_fn(|i| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes")))
    }

    /// Rebuilds a generator from a state returned by [`Rng::state`]. (The
    /// all-zero state, which no seed reaches, maps to `Rng::new(0)`.)
    pub fn from_state(state: [u64; 4]) -> Self {
        let mut seed = [0u8; 32];
        for (chunk, word) in seed.chunks_exact_mut(8).zip(state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Rng {
            inner: Xoshiro256PlusPlus::from_seed(seed),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        rand::Rng::next_u64(&mut self.inner)
    }

    /// Uniform in [0, 1), with 53 random bits ([`Draw::uniform`]).
    pub fn uniform(&mut self) -> f64 {
        Draw::uniform(self)
    }

    /// Uniform in (0, 1]: never zero, so safe under `ln` ([`Draw::uniform_open0`]).
    pub fn uniform_open0(&mut self) -> f64 {
        Draw::uniform_open0(self)
    }

    /// Uniform in [low, high) ([`Draw::uniform_range`]).
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        Draw::uniform_range(self, low, high)
    }

    /// A standard normal variate ([`Draw::normal`]).
    pub fn normal(&mut self) -> f64 {
        Draw::normal(self)
    }

    /// A uniformly chosen integer in [0, n). `n` must be positive ([`Draw::below`]).
    pub fn below(&mut self, n: usize) -> usize {
        Draw::below(self, n)
    }

    /// Shuffles `items` in place (Fisher-Yates, [`Draw::shuffle`]).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        Draw::shuffle(self, items)
    }
}

impl TryRng for Rng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.try_fill_bytes(dst)
    }
}

impl SeedableRng for Rng {
    type Seed = [u8; 32];

    /// The state as four little-endian words (see [`Rng::from_state`]).
    fn from_seed(seed: [u8; 32]) -> Self {
        Rng {
            inner: Xoshiro256PlusPlus::from_seed(seed),
        }
    }

    /// The same generator as [`Rng::new`].
    fn seed_from_u64(seed: u64) -> Self {
        Rng::new(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|_| r.uniform()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "uniform mean {mean}");
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let z: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = z.iter().sum::<f64>() / n as f64;
        let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01, "normal mean {m}");
        assert!((v - 1.0).abs() < 0.02, "normal variance {v}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = Rng::new(3);
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
    }

    #[test]
    fn matches_the_xoshiro256plusplus_c_reference() {
        // Output of Blackman and Vigna's xoshiro256plusplus.c from the state
        // {1, 2, 3, 4} (as quoted by rand_xoshiro's own reference test).
        let expected: [u64; 10] = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
            9973669472204895162,
            14011001112246962877,
            12406186145184390807,
            15849039046786891736,
            10450023813501588000,
        ];
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..10).map(|_| r.next_u64()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn seeding_matches_the_splitmix64_c_reference() {
        // The first four outputs of splitmix64.c seeded with
        // 1477776061723855037 (as quoted by rand_xoshiro's reference test):
        // Rng::new uses them, in order, as the xoshiro state.
        let expected: [u64; 4] = [
            1985237415132408290,
            2979275885539914483,
            13511426838097143398,
            8488337342461049707,
        ];
        assert_eq!(Rng::new(1477776061723855037).state(), expected);
    }

    #[test]
    fn state_round_trips_and_seedable_rng_agrees_with_new() {
        let mut a = Rng::new(9);
        a.next_u64();
        let mut b = Rng::from_state(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
        let mut c = <Rng as SeedableRng>::seed_from_u64(9);
        let mut d = Rng::new(9);
        assert_eq!(rand::Rng::next_u64(&mut c), d.next_u64());
    }

    /// A `rand` generator that is not ferrograd's: counts up by an odd step.
    struct Counter(u64);

    impl TryRng for Counter {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok((self.try_next_u64()? >> 32) as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(0);
            Ok(())
        }
    }

    #[test]
    fn any_rand_generator_draws() {
        let mut c = Counter(0);
        // 0x9E37_79B9_7F4A_7C15 >> 11, scaled by 2^-53.
        assert_eq!(
            c.uniform(),
            (0x9E37_79B9_7F4A_7C15u64 >> 11) as f64 / 9007199254740992.0
        );
        assert_eq!(c.below(4), 0x3C6E_F372_FE94_F82Au64 as usize >> 62);
        let mut v = [1, 2, 3, 4, 5];
        c.shuffle(&mut v);
        v.sort();
        assert_eq!(v, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn library_draws_accept_a_foreign_generator_even_behind_dyn() {
        let step = 0x9E37_79B9_7F4A_7C15u64;
        let want: Vec<f64> = (1..=3u64)
            .map(|k| (step.wrapping_mul(k) >> 11) as f64 / 9007199254740992.0)
            .collect();
        let mut c = Counter(0);
        let rng: &mut dyn rand::Rng = &mut c;
        let t = crate::Tensor::rand_uniform([3], 0.0, 1.0, crate::DType::F64, rng).unwrap();
        assert_eq!(t.to_vec::<f64>().unwrap(), want);
    }
}
