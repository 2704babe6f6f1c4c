//! Device buffers: [`CudaStorage`] owns one block of device memory on one
//! GPU and moves data to and from host memory; [`BlockCache`] hands blocks
//! out and takes them back without a driver call in steady state.
//!
//! Every kernel and every copy of a backend runs in one order (its stream,
//! and the legacy stream's synchronous copies, which wait for it), so a block
//! freed after the launches that read it may be handed to the next
//! allocation at once: any launch that writes it is queued after them. That
//! is freeing in stream order, as PyTorch's caching allocator does for a
//! single stream. `cuMemFree` happens only when an allocation fails (after
//! synchronising), or in [`empty_cache`].

use super::backend::{backend, status_to_result, unavailable};
use crate::{DType, Device, Error, Result};
use cust::error::CudaError;
use cust::sys as cu;
use std::collections::HashMap;

/// Device memory blocks kept for reuse, by exact size in bytes (exact, so
/// that the emulated device's guard pages still catch an overrun of a reused
/// block; the task's tensors repeat their shapes every step).
#[derive(Debug, Default)]
pub struct BlockCache {
    free: HashMap<usize, Vec<cu::CUdeviceptr>>,
    cached_bytes: usize,
}

impl BlockCache {
    /// A block of `bytes` (> 0): a cached one, else a new one from the driver;
    /// when the driver is out of memory, every cached block is returned to it
    /// (after the device has finished with them) and the allocation retried.
    pub(crate) fn take(
        &mut self,
        ordinal: usize,
        bytes: usize,
        sync: impl Fn() -> Result<()>,
    ) -> Result<cu::CUdeviceptr> {
        if let Some(ptr) = self.free.get_mut(&bytes).and_then(Vec::pop) {
            self.cached_bytes -= bytes;
            return Ok(ptr);
        }
        match driver_alloc(bytes) {
            Err(CudaError::OutOfMemory) if self.cached_bytes > 0 => {
                self.release(sync)?;
                driver_alloc(bytes).map_err(|e| alloc_error(ordinal, bytes, e))
            }
            other => other.map_err(|e| alloc_error(ordinal, bytes, e)),
        }
    }

    /// Takes a block back for reuse by later allocations of the same size.
    pub(crate) fn give(&mut self, ptr: cu::CUdeviceptr, bytes: usize) {
        self.free.entry(bytes).or_default().push(ptr);
        self.cached_bytes += bytes;
    }

    /// Returns every cached block to the driver, once the device has
    /// finished the work queued before (which may still read them).
    pub(crate) fn release(&mut self, sync: impl Fn() -> Result<()>) -> Result<()> {
        if self.cached_bytes == 0 {
            return Ok(());
        }
        sync()?;
        for (_, blocks) in self.free.drain() {
            for ptr in blocks {
                // SAFETY: every cached block came from cuMemAlloc, is owned by
                // no storage, and no queued work uses it (synchronised above).
                let _ = unsafe { cu::cuMemFree_v2(ptr) };
            }
        }
        self.cached_bytes = 0;
        Ok(())
    }

    /// Bytes held for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }
}

fn driver_alloc(bytes: usize) -> std::result::Result<cu::CUdeviceptr, CudaError> {
    let mut ptr: cu::CUdeviceptr = 0;
    // SAFETY: cuMemAlloc writes one device pointer through a valid pointer.
    status_to_result(unsafe { cu::cuMemAlloc_v2(&mut ptr, bytes) })?;
    Ok(ptr)
}

/// Returns the blocks GPU `ordinal` keeps for reuse to the driver (for
/// example before handing the memory to another library).
pub fn empty_cache(ordinal: usize) -> Result<()> {
    backend(ordinal)?.release_cached_blocks()
}

/// A device block of `bytes` bytes (at least one) on GPU `ordinal`.
fn take_block(ordinal: usize, bytes: usize) -> Result<cu::CUdeviceptr> {
    backend(ordinal)?.take_block(bytes)
}

/// Gives a block back to its GPU's cache (any thread; the backend lives for
/// the rest of the process once created).
fn give_block(ordinal: usize, ptr: cu::CUdeviceptr, bytes: usize) {
    if let Ok(b) = backend(ordinal) {
        b.give_block(ptr, bytes);
    }
}

/// A tensor's elements in GPU memory: contiguous, row-major, one dtype.
///
/// Dropping it gives the block back to the device's [`BlockCache`], in
/// stream order (see the module documentation), from any thread.
pub struct CudaStorage {
    ptr: cu::CUdeviceptr,
    len: usize,
    dtype: DType,
    ordinal: usize,
}

/// Host element types that can be copied to the device (plain old data, so
/// that a buffer of them is a byte buffer: see `bytemuck::Pod`).
pub trait HostElement: crate::Element + bytemuck::Pod {}
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
        let ptr = if bytes > 0 { take_block(ordinal, bytes)? } else { 0 };
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
        let host: &[u8] = bytemuck::cast_slice(data);
        if !host.is_empty() {
            // SAFETY: the allocation holds exactly host.len() bytes, and the
            // driver reads host.len() bytes of an initialised byte slice.
            let status = backend(ordinal)?
                .outside_capture(|| unsafe { cu::cuMemcpyHtoD_v2(s.ptr, host.as_ptr().cast(), host.len()) });
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
        b.outside_capture(|| {
            b.wait_for_stream()?;
            let mut out = vec![T::zero(); self.len];
            let host: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
            if !host.is_empty() {
                debug_assert_eq!(host.len(), self.bytes());
                // SAFETY: `host` is exactly the allocation's bytes long, and
                // any bytes are a valid T (T: Pod).
                let status = unsafe { cu::cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), self.ptr, host.len()) };
                status_to_result(status).map_err(|e| copy_error(self.ordinal, "device to host", e))?;
            }
            Ok(out)
        })
    }

    /// A new buffer with the same contents (device-to-device copy; the
    /// synchronous copy runs after the kernels queued before it).
    pub fn try_clone(&self) -> Result<CudaStorage> {
        let s = CudaStorage::alloc(self.ordinal, self.dtype, self.len)?;
        if self.len > 0 {
            // SAFETY: both allocations hold `bytes()` bytes.
            let status = backend(self.ordinal)?
                .outside_capture(|| unsafe { cu::cuMemcpyDtoD_v2(s.ptr, self.ptr, self.bytes()) });
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
        if self.ptr != 0 {
            give_block(self.ordinal, self.ptr, self.bytes());
        }
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
        other => unavailable(ordinal, other, "allocating memory"),
    }
}

fn copy_error(ordinal: usize, what: &str, e: CudaError) -> Error {
    unavailable(ordinal, e, &format!("copying {what}"))
}

/// An untyped device allocation for kernel side data (index lists, the
/// fused optimizers' slot tables); like [`CudaStorage`], it goes back to the
/// cache in stream order when dropped, so a launch may still read it.
pub(crate) struct RawBuffer {
    ptr: cu::CUdeviceptr,
    bytes: usize,
    ordinal: usize,
}

impl RawBuffer {
    /// A device copy of `data`'s bytes.
    pub(crate) fn from_slice<T: bytemuck::NoUninit>(ordinal: usize, data: &[T]) -> Result<RawBuffer> {
        let host: &[u8] = bytemuck::cast_slice(data);
        let bytes = host.len();
        if bytes == 0 {
            backend(ordinal)?;
            return Ok(RawBuffer { ptr: 0, bytes, ordinal });
        }
        let buf = RawBuffer {
            ptr: take_block(ordinal, bytes)?,
            bytes,
            ordinal,
        };
        // SAFETY: the block holds `bytes` bytes and `host` is `bytes`
        // initialised bytes (T: NoUninit has no padding); the synchronous
        // copy waits for the kernels that may still read the block's
        // previous contents.
        let status =
            backend(ordinal)?.outside_capture(|| unsafe { cu::cuMemcpyHtoD_v2(buf.ptr, host.as_ptr().cast(), bytes) });
        status_to_result(status).map_err(|e| copy_error(ordinal, "host to device", e))?;
        Ok(buf)
    }

    /// The device address.
    pub(crate) fn device_ptr(&self) -> u64 {
        self.ptr
    }

    /// Overwrites the buffer with `data` (of exactly its size), after every
    /// queued launch (a synchronous copy).
    pub(crate) fn write<T: bytemuck::NoUninit>(&self, data: &[T]) -> Result<()> {
        let host: &[u8] = bytemuck::cast_slice(data);
        let bytes = host.len();
        if bytes != self.bytes {
            return Err(Error::invalid(
                "device buffer write",
                format!("{bytes} bytes for a buffer of {}", self.bytes),
            ));
        }
        if bytes == 0 {
            return Ok(());
        }
        // SAFETY: the block holds `bytes` bytes and `host` is `bytes`
        // initialised bytes; the copy is synchronous.
        let status = backend(self.ordinal)?
            .outside_capture(|| unsafe { cu::cuMemcpyHtoD_v2(self.ptr, host.as_ptr().cast(), bytes) });
        status_to_result(status).map_err(|e| copy_error(self.ordinal, "host to device", e))
    }
}

impl Drop for RawBuffer {
    fn drop(&mut self) {
        if self.ptr != 0 {
            give_block(self.ordinal, self.ptr, self.bytes);
        }
    }
}
