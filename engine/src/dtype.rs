//! [`DType`], [`Device`] and the [`Element`] trait that ties Rust float types
//! to them.

use std::fmt;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float: fast, the default for training.
    F32,
    /// 64-bit IEEE float: for gradient checks and references.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

/// Where a tensor's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory; the reference backend.
    Cpu,
    /// An NVIDIA GPU by ordinal (usable in builds with the `cuda` feature;
    /// [`Device::cuda`] says whether one is there).
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl Device {
    /// The CUDA device with ordinal `ordinal`, or an error saying why it
    /// cannot be used. Without the `cuda` feature this always fails; with
    /// it, it fails when no usable GPU is found (the error says why).
    #[cfg_attr(feature = "cuda", allow(unreachable_code))]
    pub fn cuda(ordinal: usize) -> crate::Result<Device> {
        #[cfg(feature = "cuda")]
        {
            return crate::cuda::device(ordinal);
        }
        Err(crate::Error::DeviceUnavailable {
            device: Device::Cuda(ordinal),
            reason:
                "this build of ferrograd lacks the `cuda` feature (rebuild with --features cuda), or use --device cpu"
                    .into(),
        })
    }
}

/// A Rust float type that can be a tensor element (`f32` or `f64`).
pub trait Element:
    num_traits::Float + Copy + Send + Sync + fmt::Debug + fmt::Display + Default + std::iter::Sum + 'static
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Converts from f64 (rounding for f32).
    fn from_f64(v: f64) -> Self;
    /// Converts to f64 (exact).
    fn to_f64(self) -> f64;
    /// `tanh` as the engine's CPU kernels compute it: libm's for f64, a
    /// vectorisable form within 2 ulp for f32 (`ops::math_f32`).
    fn engine_tanh(self) -> Self {
        self.tanh()
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn engine_tanh(self) -> Self {
        crate::ops::math_f32::tanh_f32(self)
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}
