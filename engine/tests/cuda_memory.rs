//! Running out of device memory is a typed error, never a panic: an
//! impossible allocation on any GPU, and, on the emulated device, a whole
//! workload under a small device-memory limit (`CUDA_EMU_MEM_LIMIT`), run in
//! a child process so the limit is read when its driver starts. The block
//! cache gives its blocks back to the driver before the engine gives up.
#![cfg(feature = "cuda")]

use ferrograd_engine::cuda::{self, CudaStorage};
use ferrograd_engine::{DType, Device, Error, Tensor};
use std::process::Command;

const CHILD_VAR: &str = "FERROGRAD_OOM_CHILD";

#[test]
fn an_impossible_allocation_is_a_typed_out_of_memory_error() {
    let Some(Device::Cuda(ordinal)) = cuda::device_or_skip("cuda_memory") else {
        return;
    };
    let elements = 1usize << 40; // 4 TiB of f32: more than any GPU holds
    match CudaStorage::alloc(ordinal, DType::F32, elements) {
        Err(Error::DeviceOutOfMemory { device, bytes }) => {
            assert_eq!(device, Device::Cuda(ordinal));
            assert_eq!(bytes, elements * 4);
        }
        other => panic!("expected DeviceOutOfMemory, got {other:?}"),
    }
    // The device still works afterwards.
    let x = Tensor::ones([3], DType::F32)
        .unwrap()
        .to_device(Device::Cuda(ordinal))
        .unwrap();
    assert_eq!(x.add(&x).unwrap().to_vec_f64().unwrap(), vec![2.0; 3]);
}

#[test]
fn under_a_memory_limit_allocation_fails_with_a_typed_error() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return fill_the_device(); // the child's part
    }
    let Some(Device::Cuda(ordinal)) = cuda::device_or_skip("cuda_memory") else {
        return;
    };
    if !cuda::is_emulated(ordinal) {
        eprintln!("cuda_memory: the memory-limit check runs on the emulated device only (this is a real GPU)");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "under_a_memory_limit_allocation_fails_with_a_typed_error",
            "--nocapture",
        ])
        .env(CHILD_VAR, "1")
        .env("CUDA_EMU_MEM_LIMIT", "8M")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("child: out of device memory after"), "{text}");
}

/// Allocates 1 MiB tensors until the 8 MiB limit refuses one, then checks
/// that ops whose output does not fit fail the same way, and that freeing
/// memory (through the block cache) lets work continue.
fn fill_the_device() {
    let gpu = Device::Cuda(0);
    let mb = Tensor::zeros([256 * 1024], DType::F32).unwrap(); // 1 MiB
    let mut held = Vec::new();
    let err = loop {
        match mb.to_device(gpu) {
            Ok(t) => held.push(t),
            Err(e) => break e,
        }
        assert!(held.len() < 64, "the 8 MiB limit never refused an allocation");
    };
    assert!(
        matches!(
            err,
            Error::DeviceOutOfMemory {
                device: Device::Cuda(0),
                bytes: 1_048_576
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("out of memory"), "{err}");
    // An op's output allocation fails as a typed error too.
    let a = held[0].reshape([512, 512]).unwrap();
    assert!(matches!(a.matmul(&a), Err(Error::DeviceOutOfMemory { .. })));
    // So do the ops whose output is the size of their input, which used to
    // panic: a unary map, a cast, zeros like it, and copy-on-write (writing
    // a tensor whose buffer another one shares copies it first).
    let oom = |r: Result<Tensor, Error>| matches!(r, Err(Error::DeviceOutOfMemory { .. }));
    assert!(oom(a.exp()));
    assert!(oom(a.to_dtype(DType::F64)));
    assert!(oom(a.zeros_like()));
    let mut shared = a.clone();
    assert!(matches!(
        shared.unary_in_place(ferrograd_engine::UnaryOp::Exp),
        Err(Error::DeviceOutOfMemory { .. })
    ));
    assert!(matches!(shared.add_assign(&a), Err(Error::DeviceOutOfMemory { .. })));
    assert_eq!(
        a.to_vec_f64().unwrap(),
        vec![0.0; 512 * 512],
        "a failed write changed the shared buffer"
    );
    // Dropping tensors caches their blocks; a different size needs the
    // cache given back to the driver first, which the engine does itself.
    let n = held.len();
    held.clear();
    let big = Tensor::zeros([3 * 256 * 1024], DType::F32)
        .unwrap()
        .to_device(gpu)
        .unwrap();
    assert_eq!(big.numel(), 3 * 256 * 1024);
    println!("child: out of device memory after {n} MiB; recovered");
}
