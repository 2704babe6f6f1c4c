//! Benchmarks for ferrograd (see `benches/`).
#![deny(missing_docs)]
