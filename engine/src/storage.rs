//! Where a tensor's elements live: one variant per host dtype, and one for
//! GPU memory (any dtype) with the `cuda` feature, so every op dispatches
//! through this enum and the rest of the engine never sees raw buffers.

use crate::{DType, Device, Element};

/// A tensor's element buffer, contiguous and row-major.
#[derive(Debug, PartialEq)]
pub enum Storage {
    /// f32 values in host memory.
    CpuF32(Vec<f32>),
    /// f64 values in host memory.
    CpuF64(Vec<f64>),
    /// f32 or f64 values in GPU memory (the CUDA backend).
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::CpuF32(_) => DType::F32,
            Storage::CpuF64(_) => DType::F64,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// The device holding the buffer.
    pub fn device(&self) -> Device {
        #[cfg(feature = "cuda")]
        if let Storage::Cuda(s) = self {
            return s.device();
        }
        Device::Cpu
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::CpuF32(v) => v.len(),
            Storage::CpuF64(v) => v.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the buffer on the same device, allocated fallibly: out of
    /// memory is a typed error (`OutOfMemory` naming `op` on the host,
    /// `DeviceOutOfMemory` on a GPU), never an abort (copy-on-write goes through here, so `Storage` has no `Clone`).
    pub fn try_clone(&self, op: &'static str) -> crate::Result<Storage> {
        Ok(match self {
            Storage::CpuF32(v) => Storage::CpuF32(copy_vec(op, v)?),
            Storage::CpuF64(v) => Storage::CpuF64(copy_vec(op, v)?),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Storage::Cuda(s.try_clone()?),
        })
    }
}

fn copy_vec<T: Copy>(op: &'static str, v: &[T]) -> crate::Result<Vec<T>> {
    let mut out = crate::alloc::with_capacity(op, v.len())?;
    out.extend_from_slice(v);
    Ok(out)
}

/// Typed access to a CPU storage: lets kernels be written once, generic over
/// `f32` and `f64`.
pub trait CpuSlice: Element + crate::ops::matmul::GemmKernels {
    /// The buffer as `&[Self]`, if its dtype is `Self`.
    fn slice(s: &Storage) -> Option<&[Self]>;
    /// The buffer as `&mut [Self]`, if its dtype is `Self`.
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]>;
    /// Wraps a vector into storage.
    fn wrap(v: Vec<Self>) -> Storage;
}

impl CpuSlice for f32 {
    fn slice(s: &Storage) -> Option<&[f32]> {
        match s {
            Storage::CpuF32(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut Storage) -> Option<&mut [f32]> {
        match s {
            Storage::CpuF32(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<f32>) -> Storage {
        Storage::CpuF32(v)
    }
}

impl CpuSlice for f64 {
    fn slice(s: &Storage) -> Option<&[f64]> {
        match s {
            Storage::CpuF64(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut Storage) -> Option<&mut [f64]> {
        match s {
            Storage::CpuF64(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<f64>) -> Storage {
        Storage::CpuF64(v)
    }
}
