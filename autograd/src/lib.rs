//! # ferrograd-autograd
//!
//! Reverse- and forward-mode automatic differentiation over
//! [`ferrograd_engine`] tensors. Wrap tensors in [`Var`]s, compute with
//! them, call [`Var::backward`] on a scalar, and read each leaf's gradient.
//! [`gradcheck()`] proves a backward rule against central finite
//! differences, and [`registry`] lists every op with the input domain its
//! gradient check uses. Forward mode: [`Var::with_tangent`] attaches a
//! tangent that every op pushes forward with its JVP rule; [`functional`]
//! and [`hvp_with`] build transforms on it, and [`jvpcheck()`] and
//! [`dot_product_check()`] prove the forward rules.
//!
//! ```
//! use ferrograd_autograd::{Var, gradcheck, GradcheckOptions};
//! use ferrograd_engine::Tensor;
//!
//! let x = Var::parameter(Tensor::from_vec(vec![0.5f64, -1.0, 2.0], [3])?);
//! let y = x.tanh()?.mul(&x)?.sum_all()?;        // y = sum(x * tanh(x))
//! let grads = y.backward()?;
//! println!("dy/dx = {:?}", grads.get(&x).unwrap().to_vec::<f64>()?);
//!
//! let report = gradcheck(|v| v[0].tanh()?.mul(&v[0]), &[x.value().clone()], &GradcheckOptions::default())?;
//! assert!(report.passed);
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```
#![deny(missing_docs)]

mod backward;
pub mod conv;
pub mod custom;
mod dot;
mod forward;
pub mod functional;
pub mod gradcheck;
mod jvp;
pub mod jvpcheck;
pub mod nn_ops;
pub mod op;
#[cfg(test)]
mod op_log;
pub mod registry;
pub mod second_order;
pub mod suite;
mod var;

pub use backward::Gradients;
pub use conv::{Conv1dParams, Conv2dParams};
pub use custom::PrimitiveOp;
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckOptions, GradcheckReport};
pub use jvpcheck::{dot_product_check, gradcheck_fast, hvpcheck, jvpcheck, DotProductReport, FastCheckReport};
pub use nn_ops::dropout_mask;
pub use op::{Op, OpKind};
pub use second_order::{hessian, hvp, hvp_of_inputs, hvp_with, HvpMode};
pub use var::{is_grad_enabled, no_grad, set_grad_enabled, GradModeGuard, Node, Var};
