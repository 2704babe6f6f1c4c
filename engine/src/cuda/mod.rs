//! The CUDA backend (feature `cuda`): the engine's ops on NVIDIA GPUs,
//! through the hand-written kernels of `ferrograd-ptx`, driven by `cust`.
//!
//! A CUDA tensor is an ordinary [`Tensor`] whose storage is
//! a [`CudaStorage`]; the op entry points in `ops/*.rs` send such tensors
//! to [`ops`], which launches the kernel for the dtype. Without a GPU (or
//! against the stub `libcuda` of `scripts/cuda-stub.sh`),
//! [`Device::cuda`](crate::Device::cuda) returns
//! [`Error::DeviceUnavailable`](crate::Error::DeviceUnavailable) saying so.
//!
//! ```
//! use ferrograd_engine::{cuda, DType, Device, Tensor};
//! match Device::cuda(0) {
//!     Ok(gpu) => {
//!         let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], [3])?.to_device(gpu)?;
//!         assert_eq!(x.relu()?.to_device(Device::Cpu)?.to_vec::<f32>()?, vec![1.0, 0.0, 3.0]);
//!     }
//!     Err(e) => {
//!         assert_eq!(cuda::device_count(), 0);
//!         assert!(e.to_string().contains("cuda:0 is unavailable"));
//!     }
//! }
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```

mod backend;
pub mod graph;
mod memory;
pub mod mlp;
pub mod nn;
pub mod ops;
pub mod optim;

pub use backend::{backend, device_count, Backend};
pub use memory::{empty_cache, BlockCache, CudaStorage, HostElement};

use crate::{Device, Result, Tensor};

/// Whether GPU `ordinal` can be used (its context and modules load).
pub fn is_available(ordinal: usize) -> bool {
    backend(ordinal).is_ok()
}

/// [`Device::Cuda`]`(ordinal)` if that GPU can be used, else the typed
/// error saying why (no driver, no device, bad ordinal, PTX rejected).
pub fn device(ordinal: usize) -> Result<Device> {
    backend(ordinal).map(|b| b.device())
}

/// The environment variable that turns a GPU test's skip into a failure:
/// set it to `1` where a GPU (or the emulated device) must be present, as
/// the emulator step of `.ci/cuda.sh` does.
pub const REQUIRE_GPU_VAR: &str = "FERROGRAD_REQUIRE_GPU";

/// For GPU tests: GPU 0 if it can be used; otherwise prints
/// `<test>: skipped: no CUDA device (<why>)` and returns `None`, or, when
/// [`REQUIRE_GPU_VAR`] is set to `1`, panics with that message, so a run
/// that must exercise the GPU cannot pass by skipping.
pub fn device_or_skip(test: &str) -> Option<Device> {
    match device(0) {
        Ok(d) => Some(d),
        Err(e) => {
            let message = format!("{test}: skipped: no CUDA device ({e})");
            if std::env::var(REQUIRE_GPU_VAR).is_ok_and(|v| v == "1") {
                panic!("{message}, but {REQUIRE_GPU_VAR}=1 requires one");
            }
            eprintln!("{message}");
            None
        }
    }
}

/// Whether GPU `ordinal` is ferrograd's emulated device (`ptx/emu`), whose
/// fault-finding modes some tests exercise.
pub fn is_emulated(ordinal: usize) -> bool {
    backend(ordinal).is_ok_and(|b| b.name().is_ok_and(|n| n.contains("ferrograd emulated device")))
}

/// Every kernel name the Rust code launches (checked against the PTX by
/// the tests and by `.ci/cuda.sh`).
pub const LAUNCHED_KERNELS: &[&str] = &[
    "fill_f32",
    "fill_f64",
    "cast_f32_f64",
    "cast_f64_f32",
    "unary_f32",
    "unary_f64",
    "binary_f32",
    "binary_f64",
    "binary_contig_f32",
    "binary_contig_f64",
    "select_f32",
    "select_f64",
    "strided_copy_f32",
    "strided_copy_f64",
    "add_assign_f32",
    "add_assign_f64",
    "reduce_f32",
    "reduce_f64",
    "softmax_f32",
    "softmax_f64",
    "gemm_f32",
    "gemm_f64",
    "index_select_f32",
    "index_select_f64",
    "index_add_f32",
    "index_add_f64",
    "gather_f32",
    "gather_f64",
    "scatter_f32",
    "scatter_f64",
    "unfold_f32",
    "unfold_f64",
    "fold_f32",
    "fold_f64",
    "batchnorm_fwd_f32",
    "batchnorm_fwd_f64",
    "batchnorm_eval_f32",
    "batchnorm_eval_f64",
    "batchnorm_bwd_f32",
    "batchnorm_bwd_f64",
    "rng_uniform_f32",
    "rng_uniform_f64",
    "rng_normal_f32",
    "rng_normal_f64",
    "sgdm_multi_f32",
    "sgdm_multi_f64",
    "adam_multi_f32",
    "adam_multi_f64",
    "lion_multi_f32",
    "lion_multi_f64",
    "adan_multi_f32",
    "adan_multi_f64",
    "clipped_adam_multi_f32",
    "clipped_adam_multi_f64",
    "counter_increment",
    "mlp_batch_gather_f32",
    "mlp_batch_gather_f64",
    "mlp_step_finish_f32",
    "mlp_step_finish_f64",
    "mlp_hidden_fwd_f32",
    "mlp_hidden_fwd_f64",
    "mlp_running_stats_f32",
    "mlp_running_stats_f64",
    "mlp_output_fwd_f32",
    "mlp_output_fwd_f64",
    "mlp_hidden_bwd_f32",
    "mlp_hidden_bwd_f64",
    "mlp_linear_grads_f32",
    "mlp_linear_grads_f64",
];

impl Tensor {
    /// Whether the data lives on a GPU.
    pub fn is_cuda(&self) -> bool {
        matches!(self.device(), Device::Cuda(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn every_launched_kernel_is_in_the_ptx_and_every_ptx_kernel_is_launched() {
        for k in LAUNCHED_KERNELS {
            assert!(
                ferrograd_ptx::has_kernel(k),
                "{k} is launched but no PTX module defines it"
            );
        }
        for k in ferrograd_ptx::kernels() {
            assert!(LAUNCHED_KERNELS.contains(&k), "{k} is in the PTX but never launched");
        }
    }

    #[test]
    fn every_kernel_name_in_the_sources_is_listed() {
        // Every "..._f32" / "..._f64" string literal in engine/src/cuda is a
        // kernel name: it must be in LAUNCHED_KERNELS (and so in the PTX).
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cuda");
        let mut found = 0;
        let typed = |k: &str| k.ends_with("_f32") || k.ends_with("_f64");
        let mut untyped: Vec<&str> = LAUNCHED_KERNELS.iter().copied().filter(|k| !typed(k)).collect();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if path.file_name().unwrap() == "mod.rs" {
                continue;
            }
            // A kernel without a dtype suffix must be launched by name somewhere.
            untyped.retain(|k| !text.contains(&format!("\"{k}\"")));
            for piece in text.split('"').skip(1).step_by(2) {
                let is_kernel = piece.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && (piece.ends_with("_f32") || piece.ends_with("_f64"));
                if is_kernel {
                    found += 1;
                    assert!(
                        LAUNCHED_KERNELS.contains(&piece),
                        "{} launches unlisted {piece}",
                        path.display()
                    );
                }
            }
        }
        let listed = LAUNCHED_KERNELS.iter().filter(|k| typed(k)).count();
        assert!(found >= listed, "found only {found} of {listed} kernel names");
        assert!(untyped.is_empty(), "listed but never launched by name: {untyped:?}");
    }

    #[test]
    fn without_a_device_the_errors_are_typed_and_say_what_to_do() {
        if device_count() > 0 {
            eprintln!("skipped: a CUDA device is present (this test covers the no-device path)");
            return;
        }
        let e = Device::cuda(0).unwrap_err();
        assert!(matches!(
            e,
            crate::Error::DeviceUnavailable {
                device: Device::Cuda(0),
                ..
            }
        ));
        let msg = e.to_string();
        assert!(msg.contains("no CUDA device") && msg.contains("--device cpu"), "{msg}");
        let x = Tensor::ones([2], DType::F32).unwrap();
        assert!(matches!(
            x.to_device(Device::Cuda(0)),
            Err(crate::Error::DeviceUnavailable { .. })
        ));
        assert!(!is_available(0) && !is_available(3));
        assert!(CudaStorage::alloc(0, DType::F64, 4).is_err());
    }
}
