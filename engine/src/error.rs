//! The engine's typed errors. Every fallible public function returns
//! [`Result`]; messages say what was wrong and what to do about it.

use crate::{DType, Device, Shape};

/// Everything that can go wrong in a tensor operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that had to agree (or broadcast) did not.
    #[error("{op}: shapes {lhs} and {rhs} are incompatible: {hint}")]
    ShapeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's shape.
        lhs: Shape,
        /// The second operand's shape.
        rhs: Shape,
        /// What the shapes should satisfy.
        hint: &'static str,
    },
    /// Two tensors of different element types met in one operation.
    #[error("{op}: dtype mismatch ({lhs} vs {rhs}); convert one side with `.to_dtype(..)` first")]
    DTypeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's dtype.
        lhs: DType,
        /// The second operand's dtype.
        rhs: DType,
    },
    /// Two tensors on different devices met in one operation.
    #[error("{op}: device mismatch ({lhs} vs {rhs}); move one side with `.to_device(..)` first")]
    DeviceMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's device.
        lhs: Device,
        /// The second operand's device.
        rhs: Device,
    },
    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank} (valid: {}..{rank})", -(*rank as isize))]
    InvalidAxis {
        /// The operation that failed.
        op: &'static str,
        /// The axis asked for.
        axis: isize,
        /// The tensor's rank.
        rank: usize,
    },
    /// A buffer whose length does not match the shape it was given.
    #[error("{op}: {got} values cannot fill shape {shape} (it holds {expected}); pass exactly {expected} values or change the shape")]
    LengthMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The shape asked for.
        shape: Shape,
        /// The element count the shape needs.
        expected: usize,
        /// The element count supplied.
        got: usize,
    },
    /// An index outside its axis.
    #[error("{op}: index {index} is out of range for an axis of size {size}")]
    IndexOutOfRange {
        /// The operation that failed.
        op: &'static str,
        /// The index asked for.
        index: usize,
        /// The axis size.
        size: usize,
    },
    /// A NaN or infinity where only finite values are allowed.
    #[error("{what} is not finite ({value}); check the learning rate and inputs, or enable gradient clipping")]
    NonFinite {
        /// What held the value (for example "loss at epoch 3, step 5").
        what: String,
        /// The offending value.
        value: f64,
    },
    /// The requested device cannot be used.
    #[error("device {device} is unavailable: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: Device,
        /// Why it cannot be used and what to do.
        reason: String,
    },
    /// The GPU ran out of memory.
    #[cfg(feature = "cuda")]
    #[error("{device} is out of memory ({bytes} bytes asked); free tensors or use smaller batches")]
    DeviceOutOfMemory {
        /// The device.
        device: Device,
        /// The allocation asked for.
        bytes: usize,
    },
    /// A CUDA kernel failed to load, launch or run.
    #[cfg(feature = "cuda")]
    #[error("CUDA kernel {kernel} failed: {message}")]
    KernelFailed {
        /// The kernel (or PTX module) name.
        kernel: String,
        /// The driver's error.
        message: String,
    },
    /// A shape with more elements than one tensor may hold
    /// ([`crate::MAX_ELEMENTS`]), or whose element count overflows `usize`:
    /// refused before any memory is asked for.
    #[error(
        "{op}: shape {shape} holds more than {limit} elements, the most one tensor may hold \
         (MAX_ELEMENTS = 2^40, counting every non-zero dimension); use smaller dimensions, \
         or split the data into batches"
    )]
    TooManyElements {
        /// The operation that failed.
        op: &'static str,
        /// The shape asked for.
        shape: Shape,
        /// The most elements one tensor may hold ([`crate::MAX_ELEMENTS`]).
        limit: usize,
    },
    /// Host memory for a tensor buffer could not be allocated (the request
    /// was within [`crate::MAX_ELEMENTS`] but the machine cannot satisfy it).
    #[error("{op}: out of host memory: {bytes} bytes could not be allocated; use smaller tensors or batches, or free memory")]
    OutOfMemory {
        /// The operation that failed.
        op: &'static str,
        /// The allocation asked for, in bytes (saturated at `usize::MAX`).
        bytes: usize,
    },
    /// An instruction set that this build or this CPU cannot run, or a
    /// `FERROGRAD_ISA` value that names none (see [`crate::isa`]).
    #[error("instruction set {requested:?}: {reason}")]
    IsaUnavailable {
        /// The instruction set asked for, as written.
        requested: String,
        /// Why it cannot be used, and what can.
        reason: String,
    },
    /// Any other invalid argument, with a message that names the fix.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The operation that failed.
        op: &'static str,
        /// What was wrong and what to do.
        message: String,
    },
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for an [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            message: message.into(),
        }
    }
}
