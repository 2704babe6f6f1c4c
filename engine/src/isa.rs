//! Which instruction set the CPU kernels use, chosen at run time.
//!
//! One binary serves every x86-64 host: the GEMM runs the `gemm` crate's
//! AVX-512 kernels where the CPU has AVX-512F, its AVX2+FMA kernels where
//! it has those, and a portable scalar kernel elsewhere ([`Isa::best`]).
//!
//! **Determinism.** The AVX-512 and AVX2 GEMMs add a dot product's terms in
//! different orders (16- against 8-wide registers, other tile shapes), so a
//! training run gives other bits, and another score, on each. Everything
//! else the engine computes (elementwise ops, BatchNorm, the optimizers) is
//! the same bit for bit on every instruction set. So:
//!
//! * the same binary on the same instruction set gives the same bits,
//!   whatever the thread count;
//! * `FERROGRAD_ISA=avx2` (also `portable`), or [`set`]`(Isa::Avx2)`, runs the
//!   AVX2 kernels even on an AVX-512 host and reproduces what an AVX2 host
//!   computes, bit for bit, for every product whose inner dimension is at most
//!   512 (all of the task's; beyond that the `gemm` crate cuts the sum into
//!   blocks sized by the host's L1 cache);
//! * `FERROGRAD_ISA=avx512` or `scalar` force those paths (an error where
//!   the CPU lacks them), `native` (the default) takes the best.

use crate::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that picks the instruction set at start-up.
pub const ENV: &str = "FERROGRAD_ISA";

/// An instruction set the CPU kernels can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain scalar code: any CPU, slowest; the fallback off x86-64.
    Scalar,
    /// AVX2 with FMA (x86-64-v3): 8 f32 lanes. The portable choice.
    Avx2,
    /// AVX-512F (x86-64-v4): 16 f32 lanes.
    Avx512,
}

impl Isa {
    /// Every instruction set, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name `FERROGRAD_ISA` takes for it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU (checked at run time) can run it.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2.is_available() && std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The instruction sets this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The fastest instruction set this CPU can run.
    pub fn best() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Scalar)
    }

    /// Parses a `FERROGRAD_ISA` value: `native` (the best here), `avx512`,
    /// `avx2` or `portable` (the same), `scalar`. Case-insensitive. An error
    /// if the name is unknown or this CPU cannot run it.
    pub fn parse(value: &str) -> Result<Isa> {
        let isa = match value.trim().to_ascii_lowercase().as_str() {
            "native" | "" => return Ok(Isa::best()),
            "avx512" | "avx-512" | "x86-64-v4" => Isa::Avx512,
            "avx2" | "portable" | "x86-64-v3" => Isa::Avx2,
            "scalar" => Isa::Scalar,
            _ => return Err(unavailable(value, "not an instruction set ferrograd knows")),
        };
        if isa.is_available() {
            Ok(isa)
        } else {
            Err(unavailable(value, "this CPU cannot run it"))
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for `requested`, naming what this CPU offers.
fn unavailable(requested: &str, why: &str) -> Error {
    let offered: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    Error::IsaUnavailable {
        requested: requested.to_string(),
        reason: format!(
            "{why}; {ENV} takes native, {} (avx2 is also called portable)",
            offered.join(", ")
        ),
    }
}

/// What [`ENV`] asks for: `Ok(None)` when it is unset.
pub fn from_env() -> Result<Option<Isa>> {
    match std::env::var(ENV) {
        Ok(v) => Isa::parse(&v).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(unavailable("(not UTF-8)", "not an instruction set ferrograd knows"))
        }
    }
}

/// The active instruction set; `UNSET` until first read.
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

/// The instruction set the CPU kernels use now: the one [`set`] chose, else
/// the one [`ENV`] names, else [`Isa::best`]. An invalid [`ENV`] falls back
/// to the best (a program that wants the error calls [`from_env`] first, as
/// the `ferrograd` command does).
pub fn active() -> Isa {
    match ACTIVE.load(Ordering::Relaxed) {
        UNSET => {
            let isa = from_env().ok().flatten().unwrap_or_else(Isa::best);
            // Another thread may have set it meanwhile: its choice wins.
            match ACTIVE.compare_exchange(UNSET, isa as u8, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => isa,
                Err(now) => decode(now),
            }
        }
        v => decode(v),
    }
}

fn decode(v: u8) -> Isa {
    Isa::ALL[usize::from(v)]
}

/// Makes `isa` the instruction set of every later CPU kernel call in this
/// process (tests that compare against numbers computed on an AVX2 host set
/// [`Isa::Avx2`]). Change it between computations, not during one: a product
/// already running finishes on the old one. An error if this CPU cannot run it.
pub fn set(isa: Isa) -> Result<()> {
    if !isa.is_available() {
        return Err(unavailable(isa.name(), "this CPU cannot run it"));
    }
    ACTIVE.store(isa as u8, Ordering::Relaxed);
    Ok(())
}

/// Defines a CPU kernel `$name` (on the active instruction set) and
/// `$on` (on a chosen one) from one body, compiled three times: plain, with
/// AVX2+FMA, and with AVX-512F enabled, so the compiler vectorises the same
/// loops for each. The three give the same bits: Rust never contracts
/// `a * b + c` into an FMA nor reorders floating-point sums on its own, so
/// wider registers change only how many elements a step handles (the
/// kernels' sums keep their own fixed lane order, as `fused::lane_sum` does).
#[macro_export]
#[doc(hidden)]
macro_rules! per_isa {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident / $on:ident <$T:ident: $bound:path> ( $($arg:ident : $ty:ty),* $(,)? ) $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name<$T: $bound>($($arg: $ty),*) {
            $on($crate::isa::active(), $($arg),*)
        }

        /// The same kernel compiled for the instruction set `isa` (the same
        /// bits on each). Panics if this CPU cannot run `isa`.
        #[allow(dead_code, clippy::too_many_arguments)]
        $vis fn $on<$T: $bound>(isa: $crate::isa::Isa, $($arg: $ty),*) {
            #[inline(always)]
            fn body<$T: $bound>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$T: $bound>($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512<$T: $bound>($($arg: $ty),*) {
                body($($arg),*)
            }
            assert!(isa.is_available(), "this CPU cannot run {isa}");
            match isa {
                // SAFETY: the CPU runs `isa` (asserted above).
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_errors() {
        for isa in Isa::available() {
            assert_eq!(Isa::parse(isa.name()).unwrap(), isa);
            assert_eq!(Isa::parse(&isa.name().to_uppercase()).unwrap(), isa);
        }
        assert_eq!(Isa::parse("native").unwrap(), Isa::best());
        let err = Isa::parse("avx9000").unwrap_err().to_string();
        assert!(err.contains("avx9000") && err.contains("native"), "{err}");
        assert!(Isa::available().contains(&Isa::Scalar));
    }

    #[test]
    fn the_best_is_available_and_unavailable_sets_are_refused() {
        assert!(Isa::best().is_available());
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()).is_ok(), isa.is_available(), "{isa}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(Isa::best(), Isa::Avx512);
        }
    }
}
