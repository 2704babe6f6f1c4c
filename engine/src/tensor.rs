//! [`Tensor`]: an immutable, cheaply cloned n-dimensional array, and the ways
//! to create and read one. The operations live in `ops/`, one file per family.

use crate::alloc;
use crate::rng::Draw;
use crate::storage::{CpuSlice, Storage};
use crate::{DType, Device, Element, Error, Result, Shape};
use std::sync::Arc;

/// The most elements one tensor may hold (2^40): requests beyond it are
/// [`Error::TooManyElements`], refused before any memory is asked for (see
/// [`crate::checked_numel`]); requests within it that the machine cannot
/// satisfy are [`Error::OutOfMemory`], not allocation aborts.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// An n-dimensional array of `f32` or `f64`, contiguous and row-major.
///
/// Tensors are values: every operation returns a new tensor, and cloning one
/// only bumps a reference count. (In-place updates for optimizers go through
/// [`Tensor::update_in_place`], which copies first if the buffer is shared.)
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Shape,
}

/// Runs `$body` with `$T` bound to the Rust type of `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

impl Tensor {
    // ----- construction -------------------------------------------------

    /// Wraps a storage buffer; the buffer length must match the shape.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let expected = shape.checked_numel("from_storage")?;
        if storage.len() != expected {
            return Err(Error::LengthMismatch {
                op: "from_storage",
                expected,
                got: storage.len(),
                shape,
            });
        }
        Ok(Tensor {
            storage: Arc::new(storage),
            shape,
        })
    }

    /// A tensor holding `data` (row-major) with the given shape.
    pub fn from_vec<T: CpuSlice>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let expected = shape.checked_numel("from_vec")?;
        if data.len() != expected {
            return Err(Error::LengthMismatch {
                op: "from_vec",
                expected,
                got: data.len(),
                shape,
            });
        }
        Ok(Tensor::from_parts(T::wrap(data), shape))
    }

    /// A tensor from a slice of f64 values, converted to `dtype`.
    pub fn from_f64_slice(data: &[f64], shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        with_dtype!(dtype, T => Tensor::from_vec::<T>(
            data.iter().map(|&v| T::from_f64(v)).collect(),
            shape,
        ))
    }

    /// Internal constructor for kernels that already guarantee the length.
    pub(crate) fn from_parts(storage: Storage, shape: Shape) -> Tensor {
        debug_assert_eq!(storage.len(), shape.numel());
        Tensor {
            storage: Arc::new(storage),
            shape,
        }
    }

    /// Internal: a tensor from a typed vector whose length matches `shape`.
    pub(crate) fn from_typed<T: CpuSlice>(data: Vec<T>, shape: Shape) -> Tensor {
        Tensor::from_parts(T::wrap(data), shape)
    }

    /// A 0-dimensional tensor holding `value`.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Tensor::filled("scalar", Shape::scalar(), value, dtype).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tensor of the given shape filled with `value`, or
    /// [`Error::TooManyElements`] / [`Error::OutOfMemory`] if the shape is
    /// too large to hold.
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType) -> Result<Tensor> {
        Tensor::filled("full", shape.into(), value, dtype)
    }

    /// A tensor of zeros, or an error if the shape is too large to hold (as
    /// [`Tensor::full`]).
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::filled("zeros", shape.into(), 0.0, dtype)
    }

    /// A tensor of ones, or an error if the shape is too large to hold (as
    /// [`Tensor::full`]).
    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::filled("ones", shape.into(), 1.0, dtype)
    }

    /// Internal: `value` everywhere, the count checked and the buffer
    /// allocated fallibly.
    pub(crate) fn filled(op: &'static str, shape: Shape, value: f64, dtype: DType) -> Result<Tensor> {
        let n = shape.checked_numel(op)?;
        with_dtype!(dtype, T => Ok(Tensor::from_typed(alloc::filled(op, n, T::from_f64(value))?, shape)))
    }

    /// Zeros with this tensor's shape, dtype and device (an error only if
    /// memory runs out).
    pub fn zeros_like(&self) -> Result<Tensor> {
        self.full_like("zeros_like", 0.0)
    }

    /// Ones with this tensor's shape, dtype and device (an error only if
    /// memory runs out).
    pub fn ones_like(&self) -> Result<Tensor> {
        self.full_like("ones_like", 1.0)
    }

    /// Internal: `value` everywhere, with this tensor's shape, dtype and device.
    fn full_like(&self, op: &'static str, value: f64) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::full_like(self, value);
        }
        Tensor::filled(op, self.shape.clone(), value, self.dtype())
    }

    /// `[start, start + step, ...)` up to (not including) `end`, as a 1-D tensor.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                "start, end and step must be finite and step non-zero",
            ));
        }
        // `as` saturates: a count past usize::MAX becomes usize::MAX, which
        // checked_numel refuses like any count past MAX_ELEMENTS.
        let count = ((end - start) / step).ceil().max(0.0) as usize;
        let count = crate::checked_numel("arange", &[count])?;
        let values = with_dtype!(dtype, T => T::wrap(alloc::collect(
            "arange",
            count,
            (0..count).map(|i| T::from_f64(start + step * i as f64)),
        )?));
        Ok(Tensor::from_parts(values, Shape::new([count])))
    }

    /// The `n x n` identity matrix, or [`Error::TooManyElements`] /
    /// [`Error::OutOfMemory`] if it is too large to hold.
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        let count = crate::checked_numel("eye", &[n, n])?;
        let values = with_dtype!(dtype, T => {
            let mut values = alloc::filled("eye", count, T::from_f64(0.0))?;
            for i in 0..n {
                values[i * n + i] = T::from_f64(1.0);
            }
            T::wrap(values)
        });
        Ok(Tensor::from_parts(values, Shape::new([n, n])))
    }

    /// Values drawn uniformly from `[low, high)` with the given generator.
    pub fn rand_uniform(
        shape: impl Into<Shape>,
        low: f64,
        high: f64,
        dtype: DType,
        rng: &mut (impl Draw + ?Sized),
    ) -> Result<Tensor> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::invalid(
                "rand_uniform",
                format!("need finite low <= high, got [{low}, {high})"),
            ));
        }
        let shape = shape.into();
        let n = shape.checked_numel("rand_uniform")?;
        let values = with_dtype!(dtype, T => T::wrap(alloc::collect(
            "rand_uniform",
            n,
            (0..n).map(|_| T::from_f64(rng.uniform_range(low, high))),
        )?));
        Ok(Tensor::from_parts(values, shape))
    }

    /// Values drawn from a normal distribution with the given generator.
    pub fn rand_normal(
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        dtype: DType,
        rng: &mut (impl Draw + ?Sized),
    ) -> Result<Tensor> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(
                "rand_normal",
                format!("need finite mean and std >= 0, got mean {mean}, std {std}"),
            ));
        }
        let shape = shape.into();
        let n = shape.checked_numel("rand_normal")?;
        let values = with_dtype!(dtype, T => T::wrap(alloc::collect(
            "rand_normal",
            n,
            (0..n).map(|_| T::from_f64(mean + std * rng.normal())),
        )?));
        Ok(Tensor::from_parts(values, shape))
    }

    // ----- metadata -----------------------------------------------------

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions (shorthand for `shape().dims()`).
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// The underlying storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Whether another tensor shares this one's buffer (an in-place write
    /// through this tensor would then copy first).
    pub fn storage_is_shared(&self) -> bool {
        Arc::strong_count(&self.storage) > 1
    }

    /// Whether two tensors share one buffer (a clone of the other, or a reshape).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    // ----- reading --------------------------------------------------------

    /// The elements as a typed slice; fails if `T` is not this tensor's dtype.
    pub fn as_slice<T: CpuSlice>(&self) -> Result<&[T]> {
        #[cfg(feature = "cuda")]
        self.check_on_cpu("as_slice")?;
        T::slice(&self.storage).ok_or(Error::DTypeMismatch {
            op: "as_slice",
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }

    /// Internal typed access; callers have checked the dtype.
    pub(crate) fn data<T: CpuSlice>(&self) -> &[T] {
        T::slice(&self.storage).expect("kernel called with the wrong dtype")
    }

    /// The elements converted to f64, row-major. Fails only for a GPU
    /// tensor whose copy to the host fails.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.to_vec::<f64>()
    }

    /// The elements as `Vec<T>`, converting if the dtype differs. Fails only
    /// for a GPU tensor whose copy to the host fails.
    pub fn to_vec<T: CpuSlice>(&self) -> Result<Vec<T>> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::to_host(self)?.to_vec();
        }
        Ok(match T::slice(&self.storage) {
            Some(s) => s.to_vec(),
            None => with_dtype!(self.dtype(), S => self.data::<S>().iter().map(|v| T::from_f64(v.to_f64())).collect()),
        })
    }

    /// The single value of a one-element tensor, as f64.
    pub fn to_scalar(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "to_scalar",
                format!(
                    "tensor of shape {} has {} elements; reduce it (e.g. `.sum_all()`) first",
                    self.shape,
                    self.numel()
                ),
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// The element at a multi-index, as f64.
    pub fn get(&self, index: &[usize]) -> Result<f64> {
        if index.len() != self.rank() {
            return Err(Error::invalid(
                "get",
                format!("index has {} entries for a rank-{} tensor", index.len(), self.rank()),
            ));
        }
        let mut flat = 0;
        for ((&i, &d), s) in index.iter().zip(self.dims()).zip(self.shape.strides()) {
            if i >= d {
                return Err(Error::IndexOutOfRange {
                    op: "get",
                    index: i,
                    size: d,
                });
            }
            flat += i * s;
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return Ok(self.to_vec_f64()?[flat]);
        }
        Ok(with_dtype!(self.dtype(), T => self.data::<T>()[flat].to_f64()))
    }

    /// Whether every element is finite (an error only for a GPU tensor
    /// whose copy to the host fails).
    pub fn all_finite(&self) -> Result<bool> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return Ok(self.to_vec_f64()?.iter().all(|v| v.is_finite()));
        }
        Ok(with_dtype!(self.dtype(), T => self.data::<T>().iter().all(|v| v.is_finite())))
    }

    // ----- conversion -----------------------------------------------------

    /// The same values in another dtype (a cheap clone if already `dtype`;
    /// an error only if memory runs out).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::cast(self, dtype);
        }
        let storage = match (&*self.storage, dtype) {
            (Storage::CpuF32(v), DType::F64) => {
                Storage::CpuF64(alloc::collect("to_dtype", v.len(), v.iter().map(|&x| x as f64))?)
            }
            (Storage::CpuF64(v), DType::F32) => {
                Storage::CpuF32(alloc::collect("to_dtype", v.len(), v.iter().map(|&x| x as f32))?)
            }
            _ => unreachable!("same-dtype case returned above"),
        };
        Ok(Tensor::from_parts(storage, self.shape.clone()))
    }

    /// This tensor on another device.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() || device != Device::Cpu {
            return crate::cuda::ops::to_device(self, device);
        }
        match device {
            Device::Cpu => Ok(self.clone()),
            Device::Cuda(i) => Device::cuda(i).map(|_| self.clone()),
        }
    }

    // ----- in-place access (for optimizers and fused kernels) ------------

    /// Mutates the elements in place through `f`, copying first if the buffer
    /// is shared with another tensor (so no other tensor ever changes).
    pub fn update_in_place<T: CpuSlice>(&mut self, f: impl FnOnce(&mut [T])) -> Result<()> {
        #[cfg(feature = "cuda")]
        self.check_on_cpu("update_in_place")?;
        let dtype = self.dtype();
        let storage = self.unique_storage("update_in_place")?;
        let slice = T::slice_mut(storage).ok_or(Error::DTypeMismatch {
            op: "update_in_place",
            lhs: dtype,
            rhs: T::DTYPE,
        })?;
        f(slice);
        Ok(())
    }

    /// The elements as a mutable slice, copying first if the buffer is shared
    /// with another tensor (copy-on-write, as [`Tensor::update_in_place`]).
    /// When this tensor holds the only reference, no memory is allocated:
    /// the training step writes its gradients this way into buffers it keeps
    /// from one step to the next.
    pub fn as_mut_slice<T: CpuSlice>(&mut self) -> Result<&mut [T]> {
        #[cfg(feature = "cuda")]
        self.check_on_cpu("as_mut_slice")?;
        if self.dtype() != T::DTYPE {
            return Err(Error::DTypeMismatch {
                op: "as_mut_slice",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        Ok(T::slice_mut(self.unique_storage("as_mut_slice")?).expect("dtype checked above"))
    }

    /// Overwrites this tensor's elements with `src`'s (same shape and dtype),
    /// in place: no allocation unless the buffer is shared.
    pub fn copy_from(&mut self, src: &Tensor) -> Result<()> {
        self.check_same_kind(src, "copy_from")?;
        if self.shape() != src.shape() {
            return Err(Error::ShapeMismatch {
                op: "copy_from",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
                hint: "copy_from needs equal shapes",
            });
        }
        if self.same_storage(src) {
            return Ok(());
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::copy_from(self.unique_storage("copy_from")?, src);
        }
        crate::with_dtype!(self.dtype(), T => self.as_mut_slice::<T>()?.copy_from_slice(src.data::<T>()));
        Ok(())
    }

    /// `self += rhs` elementwise (same shape and dtype), in place: no
    /// allocation unless the buffer is shared. How the trainer applies an
    /// optimizer's additive updates.
    pub fn add_assign(&mut self, rhs: &Tensor) -> Result<()> {
        self.check_same_kind(rhs, "add_assign")?;
        if self.shape() != rhs.shape() {
            return Err(Error::ShapeMismatch {
                op: "add_assign",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
                hint: "add_assign needs equal shapes (use `add` to broadcast)",
            });
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::add_assign(self.unique_storage("add_assign")?, rhs);
        }
        crate::with_dtype!(self.dtype(), T => {
            let rhs = rhs.data::<T>();
            crate::ops::elementwise::add_in_place(self.as_mut_slice::<T>()?, rhs);
        });
        Ok(())
    }

    /// Internal: host slices exist only for CPU tensors; a device tensor gets
    /// a typed error (never a CPU view of GPU memory, never a panic).
    #[cfg(feature = "cuda")]
    fn check_on_cpu(&self, op: &'static str) -> Result<()> {
        match self.device() {
            Device::Cpu => Ok(()),
            device => Err(Error::DeviceMismatch {
                op,
                lhs: device,
                rhs: Device::Cpu,
            }),
        }
    }

    /// Internal: the storage for writing, copied first if another tensor
    /// shares it (copy-on-write). The copy is allocated fallibly, so running
    /// out of memory (host or device) is a typed error naming `op`.
    pub(crate) fn unique_storage(&mut self, op: &'static str) -> Result<&mut Storage> {
        if Arc::get_mut(&mut self.storage).is_none() {
            self.storage = Arc::new(self.storage.try_clone(op)?);
        }
        Ok(Arc::get_mut(&mut self.storage).expect("the storage was just made unique"))
    }

    /// Internal: a tensor with the same buffer and a new shape of equal size.
    pub(crate) fn with_shape(&self, shape: Shape) -> Tensor {
        debug_assert_eq!(shape.numel(), self.numel());
        Tensor {
            storage: Arc::clone(&self.storage),
            shape,
        }
    }

    /// Checks that `other` has the same dtype and device, for binary ops.
    pub(crate) fn check_same_kind(&self, other: &Tensor, op: &'static str) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device(),
                rhs: other.device(),
            });
        }
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        Ok(())
    }
}
