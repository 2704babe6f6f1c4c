//! CUDA kernels for ferrograd, as CUDA C sources and committed PTX text.
//!
//! The CUDA backend is planned in its own issue; until it lands this crate
//! exposes no kernels. It exists now so the workspace layout of `DESIGN.md`
//! is complete and the engine's `cuda` seam has a place to point at.
#![deny(missing_docs)]

/// The kernels this crate ships, as `(name, ptx_text)` pairs. Empty until the
/// CUDA backend lands.
pub const KERNELS: &[(&str, &str)] = &[];
