//! One [`Backend`] per GPU: the CUDA context (the device's primary context),
//! a stream, and every PTX module of `ferrograd-ptx` loaded once. Backends
//! are created on first use and live for the rest of the process; a device
//! that failed to initialise stays failed (the error is cached), so asking
//! again is cheap.

use super::memory::BlockCache;
use crate::{Device, Error, Result};
use cust::context::{Context, CurrentContext};
use cust::error::CudaError;
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};
use cust::sys::{CUgraph, CUgraphExec};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

/// Threads per block for elementwise and reduction kernels.
pub(crate) const BLOCK: u32 = 256;

/// A GPU ready to run ferrograd's kernels.
pub struct Backend {
    ordinal: usize,
    context: Context,
    stream: Stream,
    /// Kept loaded for as long as `functions` may be used.
    _modules: Vec<Module>,
    /// Every kernel's function handle, resolved once when the modules load,
    /// so a launch does no string search and no driver lookup.
    functions: HashMap<&'static str, KernelHandle>,
    /// `FERROGRAD_CUDA_SYNC` was set when the backend was made: synchronise
    /// after every launch (read once, not per launch).
    sync_every_launch: bool,
    /// Held while a CUDA graph is captured on the stream, and by every
    /// launch, allocation, copy and wait from another thread meanwhile: the
    /// stream is shared (a launch from elsewhere would be recorded into the
    /// graph), and the driver refuses the others during a capture.
    capture_gate: Mutex<()>,
    /// The thread capturing, if any (its launches are the recording).
    capture_owner: Mutex<Option<std::thread::ThreadId>>,
    /// The kernel launched last, named when an asynchronous fault surfaces.
    last_kernel: Mutex<&'static str>,
    /// Freed device blocks, reused in stream order.
    cache: Mutex<BlockCache>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend(cuda:{})", self.ordinal)
    }
}

/// A kernel's driver handle. Function handles may be used from any thread
/// of the process (CUDA driver API); the module that owns it outlives it
/// (both live in the [`Backend`]).
#[derive(Clone, Copy)]
struct KernelHandle(cust::sys::CUfunction);
// SAFETY: see above; the handle is only passed to cuLaunchKernel.
unsafe impl Send for KernelHandle {}
// SAFETY: as for Send.
unsafe impl Sync for KernelHandle {}

static DRIVER: OnceLock<std::result::Result<(), CudaError>> = OnceLock::new();
type Slots = Mutex<HashMap<usize, Result<Arc<Backend>>>>;
static BACKENDS: OnceLock<Slots> = OnceLock::new();

/// Initialises the driver once (`cuInit`).
fn driver() -> std::result::Result<(), CudaError> {
    *DRIVER.get_or_init(|| cust::init(cust::CudaFlags::empty()))
}

/// The number of CUDA devices, 0 when there is no driver or no GPU (for
/// example against the stub `libcuda` of `scripts/cuda-stub.sh`).
pub fn device_count() -> usize {
    if driver().is_err() {
        return 0;
    }
    cust::device::Device::num_devices().map_or(0, |n| n as usize)
}

/// The backend of GPU `ordinal`, creating it on first use, with its context
/// made current on the calling thread.
pub fn backend(ordinal: usize) -> Result<Arc<Backend>> {
    let slots = BACKENDS.get_or_init(|| Mutex::new(HashMap::new()));
    let backend = {
        let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(ordinal)
            .or_insert_with(|| Backend::create(ordinal))
            .clone()?
    };
    CurrentContext::set_current(&backend.context).map_err(|e| unavailable(ordinal, e, "making its context current"))?;
    Ok(backend)
}

/// The typed error for a device that cannot be used.
pub(crate) fn unavailable(ordinal: usize, e: CudaError, during: &str) -> Error {
    let reason = match e {
        CudaError::NoDevice => format!(
            "no CUDA device ({e:?} while {during}): this machine has no NVIDIA GPU or driver, \
             or the stub libcuda from scripts/cuda-stub.sh is on LD_LIBRARY_PATH; use --device cpu"
        ),
        CudaError::InvalidDevice => format!(
            "there is no GPU with ordinal {ordinal} ({} found); pick a smaller ordinal or use --device cpu",
            device_count()
        ),
        other => format!(
            "the CUDA driver failed with {other:?} while {during}; check the driver install or use --device cpu"
        ),
    };
    Error::DeviceUnavailable {
        device: Device::Cuda(ordinal),
        reason,
    }
}

impl Backend {
    fn create(ordinal: usize) -> Result<Arc<Backend>> {
        driver().map_err(|e| unavailable(ordinal, e, "initialising the driver"))?;
        let device =
            cust::device::Device::get_device(ordinal as u32).map_err(|e| unavailable(ordinal, e, "selecting it"))?;
        let context = Context::new(device).map_err(|e| unavailable(ordinal, e, "creating its context"))?;
        let stream =
            Stream::new(StreamFlags::DEFAULT, None).map_err(|e| unavailable(ordinal, e, "creating a stream"))?;
        let mut modules = Vec::with_capacity(ferrograd_ptx::MODULES.len());
        let mut functions = HashMap::new();
        for m in ferrograd_ptx::MODULES {
            let module = Module::from_ptx(m.ptx, &[]).map_err(|e| Error::KernelFailed {
                kernel: m.name.to_string(),
                message: format!(
                    "loading PTX module {} failed with {e:?}; the driver may be older than CUDA 12.0 (PTX ISA 8.0)",
                    m.name
                ),
            })?;
            for &kernel in m.kernels {
                let function = module.get_function(kernel).map_err(|e| launch_error(kernel, e))?;
                functions.insert(kernel, KernelHandle(function.to_raw()));
            }
            modules.push(module);
        }
        Ok(Arc::new(Backend {
            ordinal,
            context,
            stream,
            _modules: modules,
            functions,
            sync_every_launch: std::env::var_os("FERROGRAD_CUDA_SYNC").is_some(),
            capture_gate: Mutex::new(()),
            capture_owner: Mutex::new(None),
            last_kernel: Mutex::new("(none)"),
            cache: Mutex::new(BlockCache::default()),
        }))
    }

    /// The device's name as the driver reports it.
    pub fn name(&self) -> Result<String> {
        let device = cust::device::Device::get_device(self.ordinal as u32)
            .map_err(|e| unavailable(self.ordinal, e, "selecting it"))?;
        device
            .name()
            .map_err(|e| unavailable(self.ordinal, e, "reading its name"))
    }

    /// The device this backend drives.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// Launches `kernel` (a name from `ferrograd-ptx`) on a 1-D grid.
    ///
    /// # Safety
    /// `args` must point to values whose types and order match the kernel's
    /// parameters, and every device pointer among them must be valid for the
    /// elements the kernel touches.
    pub(crate) unsafe fn launch(
        &self,
        kernel: &'static str,
        grid: u32,
        block: u32,
        args: &[*mut c_void],
    ) -> Result<()> {
        self.launch_grid(kernel, (grid.max(1), 1, 1), block, args)
    }

    /// [`Backend::launch`] on a 3-D grid.
    ///
    /// # Safety
    /// As [`Backend::launch`].
    pub(crate) unsafe fn launch_grid(
        &self,
        kernel: &'static str,
        grid: (u32, u32, u32),
        block: u32,
        args: &[*mut c_void],
    ) -> Result<()> {
        let function = self.functions.get(kernel).ok_or_else(|| Error::KernelFailed {
            kernel: kernel.to_string(),
            message: "no PTX module defines this kernel; run ptx/regen.sh".into(),
        })?;
        let capturing = self.captured_by_this_thread();
        // Another thread's capture records whatever reaches the stream: wait.
        let _gate = (!capturing).then(|| self.capture_gate.lock().unwrap_or_else(|e| e.into_inner()));
        *self.last_kernel.lock().unwrap_or_else(|e| e.into_inner()) = kernel;
        // SAFETY: forwarded from the caller's contract; the handle belongs
        // to a module this backend keeps loaded, the stream is this
        // backend's, and `args` outlives the call (the driver copies the
        // values it points to before returning).
        let status = unsafe {
            cust::sys::cuLaunchKernel(
                function.0,
                grid.0,
                grid.1,
                grid.2,
                block,
                1,
                1,
                0,
                self.stream.as_inner(),
                args.as_ptr() as *mut *mut c_void,
                std::ptr::null_mut(),
            )
        };
        status_to_result(status).map_err(|e| launch_error(kernel, e))?;
        if self.sync_every_launch && !capturing {
            // Debug mode: fault at the launch that caused it.
            self.stream.synchronize().map_err(|e| launch_error(kernel, e))?;
        }
        Ok(())
    }

    /// Records every launch `record` makes on this backend's stream into a
    /// CUDA graph instead of running it (stream capture, CUDA's global mode:
    /// an allocation, copy or synchronisation inside is an error), and
    /// instantiates it.
    pub(crate) fn capture(&self, record: impl FnOnce() -> Result<()>) -> Result<(CUgraph, CUgraphExec)> {
        use cust::sys::CUstreamCaptureMode_enum::CU_STREAM_CAPTURE_MODE_GLOBAL;
        let op = "CUDA graph capture";
        let stream = self.stream.as_inner();
        let _gate = self.capture_gate.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the stream is this backend's and lives as long as it.
        let status = unsafe { cust::sys::cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL) };
        status_to_result(status).map_err(|e| launch_error(op, e))?;
        *self.capture_owner.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
        let recorded = record();
        *self.capture_owner.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut graph: CUgraph = std::ptr::null_mut();
        // SAFETY: ends the capture begun above; `graph` receives the handle.
        let ended = status_to_result(unsafe { cust::sys::cuStreamEndCapture(stream, &mut graph) });
        let held = |inner: String| Error::KernelFailed {
            kernel: op.into(),
            message: format!(
                "the captured work did something a CUDA graph cannot hold (an allocation, a copy or a \
                 synchronisation): {inner}"
            ),
        };
        if let Err(e) = recorded {
            if ended.is_ok() {
                // SAFETY: the graph is not used again.
                unsafe { cust::sys::cuGraphDestroy(graph) };
            }
            return Err(if ended.is_err() { held(e.to_string()) } else { e });
        }
        ended.map_err(|e| held(format!("{e:?}")))?;
        let mut exec: CUgraphExec = std::ptr::null_mut();
        // SAFETY: `graph` is the valid graph just captured.
        let status = unsafe { cust::sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0) };
        if let Err(e) = status_to_result(status) {
            // SAFETY: the graph is not used again.
            unsafe { cust::sys::cuGraphDestroy(graph) };
            return Err(launch_error(op, e));
        }
        Ok((graph, exec))
    }

    /// Launches an instantiated graph on this backend's stream.
    ///
    /// # Safety
    /// `exec` must be a live graph from [`Backend::capture`] whose launches'
    /// buffers are all still allocated.
    pub(crate) unsafe fn launch_graph(&self, exec: CUgraphExec) -> Result<()> {
        if self.captured_by_this_thread() {
            return Err(Error::KernelFailed {
                kernel: "CUDA graph".into(),
                message: "a graph cannot be launched while this thread records another".into(),
            });
        }
        let _gate = self.capture_gate.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: forwarded from the caller.
        let status = unsafe { cust::sys::cuGraphLaunch(exec, self.stream.as_inner()) };
        status_to_result(status).map_err(|e| launch_error("CUDA graph", e))?;
        if self.sync_every_launch {
            self.stream.synchronize().map_err(|e| launch_error("CUDA graph", e))?;
        }
        Ok(())
    }

    /// Whether the calling thread is capturing a graph on this backend.
    fn captured_by_this_thread(&self) -> bool {
        *self.capture_owner.lock().unwrap_or_else(|e| e.into_inner()) == Some(std::thread::current().id())
    }

    /// A device block of `bytes` (> 0) bytes, from the cache when it holds one.
    pub(crate) fn take_block(&self, bytes: usize) -> Result<cust::sys::CUdeviceptr> {
        self.outside_capture(|| {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.take(self.ordinal, bytes, || self.wait_for_stream())
        })
    }

    /// Takes a block back for reuse (in stream order: later launches that
    /// write it are queued after every launch that reads it now).
    pub(crate) fn give_block(&self, ptr: cust::sys::CUdeviceptr, bytes: usize) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).give(ptr, bytes);
    }

    /// Returns every cached block to the driver.
    pub(crate) fn release_cached_blocks(&self) -> Result<()> {
        self.outside_capture(|| {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.release(|| self.wait_for_stream())
        })
    }

    /// Bytes of device memory kept for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).cached_bytes()
    }

    /// Waits for every launched kernel; an asynchronous fault is reported
    /// naming the last kernel launched (set `FERROGRAD_CUDA_SYNC=1` to
    /// synchronise after every launch and so name the faulting one).
    pub fn synchronize(&self) -> Result<()> {
        self.outside_capture(|| self.wait_for_stream())
    }

    /// Runs `f` (an allocation, a copy or a wait) once no other thread is
    /// capturing a graph on this backend: the driver refuses those during a
    /// capture, and the refusal would spoil the other thread's recording.
    /// On the capturing thread itself `f` runs at once, so that what a graph
    /// cannot hold is refused there, as a typed error.
    pub(crate) fn outside_capture<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.captured_by_this_thread() {
            return f();
        }
        let _gate = self.capture_gate.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// [`Backend::synchronize`] without the capture gate (its caller holds it).
    pub(crate) fn wait_for_stream(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| {
            let kernel = *self.last_kernel.lock().unwrap_or_else(|e| e.into_inner());
            launch_error(kernel, e)
        })
    }
}

/// A raw driver status as cust's error type (for the few driver calls made
/// through `cust::sys` directly: allocation, copies and launches).
pub(crate) fn status_to_result(status: cust::sys::CUresult) -> std::result::Result<(), CudaError> {
    use cust::sys::cudaError_enum as S;
    Err(match status {
        S::CUDA_SUCCESS => return Ok(()),
        S::CUDA_ERROR_INVALID_VALUE => CudaError::InvalidValue,
        S::CUDA_ERROR_OUT_OF_MEMORY => CudaError::OutOfMemory,
        S::CUDA_ERROR_NOT_INITIALIZED => CudaError::NotInitialized,
        S::CUDA_ERROR_DEINITIALIZED => CudaError::Deinitialized,
        S::CUDA_ERROR_NO_DEVICE => CudaError::NoDevice,
        S::CUDA_ERROR_INVALID_DEVICE => CudaError::InvalidDevice,
        S::CUDA_ERROR_INVALID_CONTEXT => CudaError::InvalidContext,
        S::CUDA_ERROR_ILLEGAL_ADDRESS => CudaError::IllegalAddress,
        S::CUDA_ERROR_LAUNCH_FAILED => CudaError::LaunchFailed,
        S::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES => CudaError::LaunchOutOfResources,
        S::CUDA_ERROR_INVALID_HANDLE => CudaError::InvalidHandle,
        S::CUDA_ERROR_NOT_SUPPORTED => CudaError::NotSupported,
        // cust has no variant for these: a call a CUDA graph cannot hold.
        S::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED | S::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED => CudaError::NotSupported,
        _ => CudaError::UnknownError,
    })
}

/// Maps a failed launch (or a fault surfacing at a later synchronisation).
pub(crate) fn launch_error(kernel: &str, e: CudaError) -> Error {
    let hint = match e {
        CudaError::IllegalAddress | CudaError::LaunchFailed => {
            " (the GPU context is now unusable; rerun with FERROGRAD_CUDA_SYNC=1 to find the faulting launch)"
        }
        CudaError::OutOfMemory => " (out of device memory)",
        _ => "",
    };
    Error::KernelFailed {
        kernel: kernel.to_string(),
        message: format!("{e:?}{hint}"),
    }
}
