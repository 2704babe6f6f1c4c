//! Only a carrier for `benches/matmul.rs`.
