//! ferrograd facade.
#![deny(missing_docs)]
pub use ferrograd_engine as engine;
