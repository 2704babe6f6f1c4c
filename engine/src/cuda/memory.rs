//! Device buffers: [`CudaStorage`] owns one allocation on one GPU, and
//! moves data to and from host memory.

use super::backend::{backend, status_to_result};
use crate::{DType, Device, Error, Result};
use cust::error::CudaError;
use cust::sys as cu;

/// A tensor's elements in GPU memory: contiguous, row-major, one dtype.
///
/// Dropping it frees the allocation (with the owning device's context
/// made current first, so any thread may drop it).
pub struct CudaStorage {
    ptr: cu::CUdeviceptr,
    len: usize,
    dtype: DType,
    ordinal: usize,
}

/// Host element types that can be copied to the device.
pub trait HostElement: crate::Element {}
impl HostElement for f32 {}
impl HostElement for f64 {}

impl CudaStorage {
    /// An uninitialised buffer of `len` elements of `dtype` on GPU `ordinal`.
    pub fn alloc(ordinal: usize, dtype: DType, len: usize) -> Result<CudaStorage> {
        backend(ordinal)?;
        let bytes = len.checked_mul(dtype.size_in_bytes()).ok_or(Error::DeviceOutOfMemory {
            device: Device::Cuda(ordinal),
            bytes: usize::MAX,
        })?;
        let mut ptr: cu::CUdeviceptr = 0;
        if bytes > 0 {
            // SAFETY: cuMemAlloc writes one device pointer through a valid pointer.
            let status = unsafe { cu::cuMemAlloc_v2(&mut ptr, bytes) };
            status_to_result(status).map_err(|e| alloc_error(ordinal, bytes, e))?;
        }
        Ok(CudaStorage {
            ptr,
            len,
            dtype,
            ordinal,
        })
    }

    /// A copy of host `data` on GPU `ordinal`.
    pub fn from_host<T: HostElement>(ordinal: usize, data: &[T]) -> Result<CudaStorage> {
        let s = CudaStorage::alloc(ordinal, T::DTYPE, data.len())?;
        if !data.is_empty() {
            // SAFETY: the allocation holds exactly size_of_val(data) bytes.
            let status = unsafe { cu::cuMemcpyHtoD_v2(s.ptr, data.as_ptr().cast(), std::mem::size_of_val(data)) };
            status_to_result(status).map_err(|e| copy_error(ordinal, "host to device", e))?;
        }
        Ok(s)
    }

    /// The elements copied to host memory, after every queued kernel has
    /// finished (a kernel fault is reported here, naming the kernel).
    pub fn to_host<T: HostElement>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::DTypeMismatch {
                op: "to_host",
                lhs: self.dtype,
                rhs: T::DTYPE,
            });
        }
        let b = backend(self.ordinal)?;
        b.synchronize()?;
        let mut out = vec![T::zero(); self.len];
        if self.len > 0 {
            // SAFETY: `out` holds exactly the allocation's bytes.
            let status = unsafe { cu::cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), self.ptr, self.bytes()) };
            status_to_result(status).map_err(|e| copy_error(self.ordinal, "device to host", e))?;
        }
        Ok(out)
    }

    /// A new buffer with the same contents (device-to-device copy).
    pub fn try_clone(&self) -> Result<CudaStorage> {
        let s = CudaStorage::alloc(self.ordinal, self.dtype, self.len)?;
        if self.len > 0 {
            let b = backend(self.ordinal)?;
            b.synchronize()?;
            // SAFETY: both allocations hold `bytes()` bytes.
            let status = unsafe { cu::cuMemcpyDtoD_v2(s.ptr, self.ptr, self.bytes()) };
            status_to_result(status).map_err(|e| copy_error(self.ordinal, "device to device", e))?;
        }
        Ok(s)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The GPU holding the buffer.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// The GPU ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The raw device address, for kernel arguments.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }

    fn bytes(&self) -> usize {
        self.len * self.dtype.size_in_bytes()
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        if self.ptr != 0 && backend(self.ordinal).is_ok() {
            // SAFETY: the pointer came from cuMemAlloc and is freed once.
            // An error here (a dead context at exit) leaves nothing to do.
            let _ = unsafe { cu::cuMemFree_v2(self.ptr) };
        }
    }
}

impl Clone for CudaStorage {
    /// Copy-on-write needs `Clone`; a failed device copy (out of memory)
    /// panics here with the typed error's message.
    fn clone(&self) -> Self {
        self.try_clone()
            .unwrap_or_else(|e| panic!("copying a shared CUDA buffer failed: {e}"))
    }
}

impl PartialEq for CudaStorage {
    /// Equal dtype, length, device and elements (compared on the host).
    fn eq(&self, other: &Self) -> bool {
        if self.dtype != other.dtype || self.len != other.len || self.ordinal != other.ordinal {
            return false;
        }
        match self.dtype {
            DType::F32 => self.to_host::<f32>().ok() == other.to_host::<f32>().ok(),
            DType::F64 => self.to_host::<f64>().ok() == other.to_host::<f64>().ok(),
        }
    }
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaStorage({} x {} on cuda:{})", self.len, self.dtype, self.ordinal)
    }
}

fn alloc_error(ordinal: usize, bytes: usize, e: CudaError) -> Error {
    match e {
        CudaError::OutOfMemory => Error::DeviceOutOfMemory {
            device: Device::Cuda(ordinal),
            bytes,
        },
        other => super::backend::unavailable(ordinal, other, "allocating memory"),
    }
}

fn copy_error(ordinal: usize, what: &str, e: CudaError) -> Error {
    super::backend::unavailable(ordinal, e, &format!("copying {what}"))
}

/// An untyped device allocation for kernel side data (index lists, the
/// fused optimizers' slot tables).
pub(crate) struct RawBuffer {
    ptr: cu::CUdeviceptr,
    ordinal: usize,
}

impl RawBuffer {
    /// A device copy of `data`'s bytes.
    pub(crate) fn from_slice<T: Copy>(ordinal: usize, data: &[T]) -> Result<RawBuffer> {
        backend(ordinal)?;
        let bytes = std::mem::size_of_val(data);
        let mut ptr: cu::CUdeviceptr = 0;
        if bytes > 0 {
            // SAFETY: as in CudaStorage::alloc and from_host.
            unsafe {
                status_to_result(cu::cuMemAlloc_v2(&mut ptr, bytes)).map_err(|e| alloc_error(ordinal, bytes, e))?;
                let buf = RawBuffer { ptr, ordinal };
                status_to_result(cu::cuMemcpyHtoD_v2(ptr, data.as_ptr().cast(), bytes))
                    .map_err(|e| copy_error(ordinal, "host to device", e))?;
                return Ok(buf);
            }
        }
        Ok(RawBuffer { ptr, ordinal })
    }

    /// The device address.
    pub(crate) fn device_ptr(&self) -> u64 {
        self.ptr
    }
}

impl Drop for RawBuffer {
    fn drop(&mut self) {
        if self.ptr != 0 && backend(self.ordinal).is_ok() {
            // SAFETY: allocated by cuMemAlloc, freed once. Kernels reading it
            // are ordered before the free by the driver (cuMemFree synchronises).
            let _ = unsafe { cu::cuMemFree_v2(self.ptr) };
        }
    }
}
