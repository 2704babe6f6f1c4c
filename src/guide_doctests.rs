//! The guide's pages (`docs/guide/`), compiled and run as doctests so that
//! every Rust block in them keeps working. Nothing here exists outside
//! `cargo test --doc`.

/// `docs/guide/README.md`
#[doc = include_str!("../docs/guide/README.md")]
#[cfg(doctest)]
pub struct GuideIndex;

/// `docs/guide/micrograd.md`
#[doc = include_str!("../docs/guide/micrograd.md")]
#[cfg(doctest)]
pub struct GuideMicrograd;

/// `docs/guide/tensors-and-broadcasting.md`
#[doc = include_str!("../docs/guide/tensors-and-broadcasting.md")]
#[cfg(doctest)]
pub struct GuideTensorsAndBroadcasting;

/// `docs/guide/reverse-mode.md`
#[doc = include_str!("../docs/guide/reverse-mode.md")]
#[cfg(doctest)]
pub struct GuideReverseMode;

/// `docs/guide/forward-mode.md`
#[doc = include_str!("../docs/guide/forward-mode.md")]
#[cfg(doctest)]
pub struct GuideForwardMode;

/// `docs/guide/derivations.md`
#[doc = include_str!("../docs/guide/derivations.md")]
#[cfg(doctest)]
pub struct GuideDerivations;

/// `docs/guide/gradient-checking.md`
#[doc = include_str!("../docs/guide/gradient-checking.md")]
#[cfg(doctest)]
pub struct GuideGradientChecking;

/// `docs/guide/quadratic-theory.md`
#[doc = include_str!("../docs/guide/quadratic-theory.md")]
#[cfg(doctest)]
pub struct GuideQuadraticTheory;

/// `docs/guide/optimizers.md`
#[doc = include_str!("../docs/guide/optimizers.md")]
#[cfg(doctest)]
pub struct GuideOptimizers;

/// `docs/guide/your-own-network.md`
#[doc = include_str!("../docs/guide/your-own-network.md")]
#[cfg(doctest)]
pub struct GuideYourOwnNetwork;

/// `docs/guide/benchmark-task.md`
#[doc = include_str!("../docs/guide/benchmark-task.md")]
#[cfg(doctest)]
pub struct GuideBenchmarkTask;

/// `docs/guide/cuda.md`
#[doc = include_str!("../docs/guide/cuda.md")]
#[cfg(doctest)]
pub struct GuideCuda;

/// `docs/guide/serve.md`
#[doc = include_str!("../docs/guide/serve.md")]
#[cfg(doctest)]
pub struct GuideServe;
