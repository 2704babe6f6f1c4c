//! # ferrograd-engine
//!
//! The tensor engine under ferrograd: [`Tensor`] with its [`Shape`],
//! [`DType`] (f32, f64) and [`Device`], and every forward kernel. The CPU
//! backend is the reference; a CUDA backend joins behind the `cuda` feature.
//!
//! ```
//! use ferrograd_engine::{DType, Tensor};
//! let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2])?;
//! let b = Tensor::ones([2], DType::F32)?;
//! let c = a.add(&b)?.matmul(&a)?; // broadcasting, then a 2x2 product
//! assert_eq!(c.to_vec::<f32>()?, vec![11.0, 16.0, 19.0, 28.0]);
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```
#![deny(missing_docs)]

mod alloc;
pub mod bytes;
#[cfg(feature = "cuda")]
pub mod cuda;
mod display;
mod dtype;
mod error;
pub mod isa;
pub mod ops;
pub mod rng;
mod shape;
pub mod storage;
mod tensor;

pub use dtype::{DType, Device, Element};
pub use error::{Error, Result};
pub use isa::Isa;
pub use ops::conv::Window2d;
pub use ops::elementwise::{BinaryOp, UnaryOp};
pub use rng::{Draw, Rng};
pub use shape::{checked_numel, Shape};
pub use storage::Storage;
pub use tensor::{Tensor, MAX_ELEMENTS};
