//! CUDA graphs (`cuda::graph`): a recording runs nothing, a replay runs the
//! recorded launches on the buffers they were recorded with, and work a
//! graph cannot hold (an allocation, a copy) is a typed error that leaves
//! the device usable. The emulated device runs these in CI.
#![cfg(feature = "cuda")]

use ferrograd_engine::cuda::graph::Graph;
use ferrograd_engine::{cuda, DType, Device, Error, Tensor};

fn host(t: &Tensor) -> Vec<f64> {
    t.to_device(Device::Cpu).unwrap().to_vec::<f64>().unwrap()
}

#[test]
fn a_recorded_step_runs_only_when_replayed_and_each_replay_runs_it_again() {
    let Some(gpu) = cuda::device_or_skip("cuda_graph") else {
        return;
    };
    let Device::Cuda(ordinal) = gpu else { unreachable!() };
    let mut x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3])
        .unwrap()
        .to_device(gpu)
        .unwrap();
    let y = Tensor::from_vec(vec![0.5f64, -1.0, 4.0], [3])
        .unwrap()
        .to_device(gpu)
        .unwrap();
    let graph = Graph::capture(ordinal, || x.add_assign(&y)).unwrap();
    assert_eq!(host(&x), [1.0, 2.0, 3.0], "recording ran the launch");
    for _ in 0..3 {
        // SAFETY: x and y are alive and unshared.
        unsafe { graph.launch().unwrap() };
    }
    assert_eq!(host(&x), [2.5, -1.0, 15.0]);
}

#[test]
fn an_upload_inside_a_recording_is_a_typed_error_and_the_device_still_works() {
    let Some(gpu) = cuda::device_or_skip("cuda_graph") else {
        return;
    };
    let Device::Cuda(ordinal) = gpu else { unreachable!() };
    let e = Graph::capture(ordinal, || Tensor::zeros([7], DType::F64)?.to_device(gpu).map(drop)).unwrap_err();
    assert!(matches!(e, Error::KernelFailed { .. }), "{e}");
    assert!(e.to_string().contains("cannot hold"), "{e}");
    let t = Tensor::from_vec(vec![1.0f64, 2.0], [2])
        .unwrap()
        .to_device(gpu)
        .unwrap();
    assert_eq!(host(&t.mul_scalar(3.0).unwrap()), [3.0, 6.0]);
}

#[test]
fn another_threads_uploads_and_downloads_wait_for_a_recording_instead_of_spoiling_it() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let Some(gpu) = cuda::device_or_skip("cuda_graph") else {
        return;
    };
    let Device::Cuda(ordinal) = gpu else { unreachable!() };
    let stop = AtomicBool::new(false);
    let round_trips = AtomicU32::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let value = f64::from(round_trips.load(Ordering::Relaxed));
                let t = Tensor::from_vec(vec![value; 33], [33]).unwrap().to_device(gpu).unwrap();
                assert_eq!(host(&t), vec![value; 33]);
                round_trips.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut x = Tensor::zeros([5], DType::F64).unwrap().to_device(gpu).unwrap();
        let one = Tensor::ones([5], DType::F64).unwrap().to_device(gpu).unwrap();
        // The copier stops however this thread leaves (a failed assertion too).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        let mut replays = 0u32;
        // Interleave until both threads have done plenty.
        while replays < 100 || round_trips.load(Ordering::Relaxed) < 100 {
            let graph = Graph::capture(ordinal, || x.add_assign(&one)).unwrap();
            // SAFETY: x and one are alive and unshared.
            unsafe { graph.launch().unwrap() };
            replays += 1;
        }
        assert_eq!(host(&x), vec![f64::from(replays); 5]);
    });
}
