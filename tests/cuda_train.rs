//! Training on the GPU: track 4 (`n_hidden: 4`, 3 epochs, the default
//! clipped Adam) on the CPU and on the GPU from the same seed, in f32 (the
//! task's dtype) and in f64, with per-epoch training and validation losses
//! compared.
//!
//! The two runs take the same arithmetic (the GPU's fused step,
//! `src/train/gpu.rs`, computes what the CPU's `src/train/fused.rs` does,
//! operation for operation) but sum in other orders (and a real GPU fuses
//! multiply-adds), so they differ by rounding, and training amplifies
//! rounding: Adam normalises near-zero gradient coordinates to steps of
//! about `lr` whose sign the rounding decides. Measured on the CPU alone,
//! relative differences of the losses (a: one weight matrix scaled by
//! `1 + 1e-7` in f32, `1 + 1e-15` in f64, the size of one rounding; b: the
//! autograd step, which the GPU ran before it had a fused step, vs the fused
//! step, by switching the fused step off locally):
//!
//! | dtype | run | epoch 0 | epochs 1-2 | test loss |
//! |-------|-----|---------|------------|-----------|
//! | f32   | a   | 5e-4    | 2e-2       | 2e-5      |
//! | f32   | b   | 5e-4    | 1e-2       | 3e-5      |
//! | f64   | a   | 1e-14   | 1e-12      | 0         |
//! | f64   | b   | 4e-14   | 8e-12      | 1e-15     |
//!
//! The tolerances: in f64, 1e-8 relative to the CPU's value; in f32, the
//! GPU's f32 run may be at most 5 times as far from the CPU's f64 run as
//! the CPU's own f32 run is (the largest such distance over the epochs so
//! far; see [`assert_f32_close`]), so the bar is derived from f32's effect
//! on this very training rather than fixed. Both are far below what any
//! wrong kernel or wrong gradient gives (those move the losses by O(1)).
//!
//! Without a GPU (or against the stub libcuda) the GPU comparison prints
//! `skipped: no CUDA device (...)`; the tests of the device plumbing that
//! need no GPU (a CUDA trainer is a typed error, moving a CPU trainer to the
//! CPU changes no bit) still run.
#![cfg(feature = "cuda")]

use ferrograd::engine::{DType, Device, Error};
use ferrograd::nn::Role;
use ferrograd::optim::{catalog, HyperParams, TaskOptimizer};
use ferrograd::train::{EpochMetrics, TaskConfig, Trainer};

/// The relative tolerance on f64 losses, GPU vs CPU.
const F64_RTOL: f64 = 1e-8;

/// How many times the CPU's own f32 error (its f32 run against its f64
/// run, the largest so far) the GPU's f32 run may be from the f64 run.
const F32_ERROR_FACTOR: f64 = 5.0;

/// `|a - b| / |b|`.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The f32 check: `gpu` within `F32_ERROR_FACTOR` times `cpu_error` (the
/// CPU's own f32 error, with f32's unit roundoff as a floor) of `f64`.
fn assert_f32_close(what: &str, gpu: f64, f64: f64, cpu_error: f64) {
    let bound = F32_ERROR_FACTOR * cpu_error.max(f32::EPSILON as f64 / 2.0);
    let got = rel(gpu, f64);
    assert!(
        got <= bound,
        "{what}: gpu f32 {gpu} is {got:e} from the f64 {f64}; the CPU's own f32 error is {cpu_error:e}"
    );
}

/// The GPU, or `None` after printing why the test is skipped (a failure
/// under `FERROGRAD_REQUIRE_GPU=1`).
fn gpu(test: &str) -> Option<Device> {
    ferrograd::engine::cuda::device_or_skip(test)
}

fn adam() -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(catalog::DEFAULT).unwrap();
    (info.build)(&HyperParams::defaults(info)).unwrap()
}

fn track4(device: Device, dtype: DType) -> TaskConfig {
    TaskConfig {
        n_hidden: 4,
        max_epochs: 3,
        device,
        dtype,
        ..TaskConfig::default()
    }
}

fn assert_close(what: &str, gpu: f64, cpu: f64, rtol: f64) {
    assert!(
        approx::abs_diff_eq!(gpu, cpu, epsilon = rtol * cpu.abs()),
        "{what}: gpu {gpu} vs cpu {cpu} (rtol {rtol:e})"
    );
}

fn compare_track_4(dev: Device, dtype: DType) {
    let mut cpu = Trainer::new(track4(Device::Cpu, dtype), adam()).unwrap();
    let mut gpu = Trainer::new(track4(dev, dtype), adam()).unwrap();
    // In f32, the reference is the CPU in f64, and the yardstick the CPU's
    // own f32 run's distance from it.
    let mut reference = Trainer::new(track4(Device::Cpu, DType::F64), adam()).unwrap();
    assert_eq!(gpu.config.device, dev);
    assert!(gpu.model.tensors_on(dev) && gpu.best_model.tensors_on(dev));
    assert_eq!(gpu.data.train.inputs.device(), dev);
    assert_eq!(gpu.data.val.targets.device(), dev);
    let mut epochs: Vec<(EpochMetrics, EpochMetrics)> = Vec::new();
    let (mut train_error, mut val_error) = (0.0f64, 0.0f64);
    while !cpu.finished() {
        let (c, g) = (cpu.run_epoch().unwrap(), gpu.run_epoch().unwrap());
        assert_eq!(g.epoch, c.epoch);
        eprintln!(
            "cuda_train {dtype}: epoch {}: train cpu {:.9} gpu {:.9}, val cpu {:.9} gpu {:.9}, {:.1} vs {:.1} ms",
            c.epoch,
            c.train_loss,
            g.train_loss,
            c.val_loss,
            g.val_loss,
            1e3 * c.seconds,
            1e3 * g.seconds
        );
        let what = format!("{dtype} epoch {}", c.epoch);
        if dtype == DType::F64 {
            assert_close(&format!("{what} train loss"), g.train_loss, c.train_loss, F64_RTOL);
            assert_close(&format!("{what} val loss"), g.val_loss, c.val_loss, F64_RTOL);
        } else {
            let r = reference.run_epoch().unwrap();
            train_error = train_error.max(rel(c.train_loss, r.train_loss));
            val_error = val_error.max(rel(c.val_loss, r.val_loss));
            assert_f32_close(&format!("{what} train loss"), g.train_loss, r.train_loss, train_error);
            assert_f32_close(&format!("{what} val loss"), g.val_loss, r.val_loss, val_error);
        }
        // Still on the GPU after the updates and the best-model copy.
        assert!(gpu.model.tensors_on(dev) && gpu.best_model.tensors_on(dev));
        epochs.push((c, g));
    }
    assert!(gpu.finished());
    assert_eq!(epochs.len(), 3);
    // Training did something on both devices.
    assert!(epochs[2].0.train_loss < epochs[0].0.train_loss);
    assert!(epochs[2].1.train_loss < epochs[0].1.train_loss);
    let (sc, sg) = (cpu.summary().unwrap(), gpu.summary().unwrap());
    if dtype == DType::F64 {
        assert_close(&format!("{dtype} test loss"), sg.test_loss, sc.test_loss, F64_RTOL);
    } else {
        let sr = reference.summary().unwrap();
        let test_error = rel(sc.test_loss, sr.test_loss);
        assert_f32_close(&format!("{dtype} test loss"), sg.test_loss, sr.test_loss, test_error);
    }
    assert_eq!(sg.epochs, 3);
}

#[test]
fn track_4_trains_on_the_gpu_with_the_cpu_losses() {
    let Some(dev) = gpu("cuda_train") else { return };
    compare_track_4(dev, DType::F64);
    compare_track_4(dev, DType::F32);
}

/// Optimizers without a fused GPU kernel take the fallback (their `step`,
/// then `param += update` per tensor), and one that asks for the gradient
/// at other parameters (SAM, two-pass: every second step queries) keeps the
/// model's own running statistics at a query step, bit for bit.
///
/// Compared step by step from the same state, not over whole epochs: with
/// clipped SGD this training is so sensitive that moving one weight matrix
/// by 1e-15 on the CPU alone moves epoch 0's loss by 5e-10 and epoch 1's by
/// 7e-3 (measured). In f64, three steps (a full batch, a short scattered
/// one, a full one) leave every tensor within 1e-10 of the CPU's with SGD.
/// SAM's inner Adam gets 1e-4: a bias in front of a BatchNorm has a zero
/// gradient up to rounding noise (about 1e-12 here), which Adam divides by
/// `sqrt(v) + eps` into a step of up to `lr`, so the two devices' first-layer
/// biases differ by 2.6e-7 after SAM's first descent step (measured). A
/// gradient taken at the wrong point (the model instead of the query) or
/// running statistics blended at a query step move tensors by 1e-2 or more.
#[test]
fn optimizers_without_a_fused_kernel_and_with_queries_train_on_the_gpu() {
    let Some(dev) = gpu("cuda_train") else { return };
    for (name, tol) in [("sgd", 1e-10), ("sam_adam", 1e-4)] {
        let info = catalog::lookup(name).unwrap();
        let build = || (info.build)(&HyperParams::defaults(info)).unwrap();
        let mut cpu = Trainer::new(track4(Device::Cpu, DType::F64), build()).unwrap();
        let mut gpu = Trainer::new(track4(dev, DType::F64), build()).unwrap();
        let rows = cpu.data.train.len();
        let batches: [Vec<usize>; 3] = [
            (0..128).collect(),
            (0..104).map(|i| (i * 7 + 3) % rows).collect(),
            (300..428).collect(),
        ];
        let running = |t: &Trainer| {
            let bits = |x: &ferrograd::engine::Tensor| x.to_device(Device::Cpu).unwrap().to_vec_f64().unwrap();
            (0..t.model.norms().len())
                .flat_map(|i| [Role::RunningMean(i), Role::RunningVar(i)])
                .map(|role| bits(t.model.tensor(role)))
                .collect::<Vec<_>>()
        };
        for (step, batch) in batches.iter().enumerate() {
            let before = running(&gpu);
            let (c, g) = (cpu.step_on(batch).unwrap(), gpu.step_on(batch).unwrap());
            assert_close(&format!("{name} step {step} loss"), g, c, tol);
            // SAM's second step queries: the running statistics stay.
            let queried = name == "sam_adam" && step == 1;
            assert_eq!(
                running(&gpu) == before,
                queried,
                "{name} step {step}: running statistics"
            );
        }
        for i in 0..cpu.model.tensor_count() {
            let role = cpu.model.role(i);
            let c = cpu.model.tensor(role).to_vec_f64().unwrap();
            let g = gpu
                .model
                .tensor(role)
                .to_device(Device::Cpu)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            // Relative to the tensor's largest value, or absolute below 1 (the
            // noise-driven bias above is all noise, of size lr).
            let scale = c.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let worst = c.iter().zip(&g).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(
                worst <= tol * scale,
                "{name}: {role:?} differs by {worst:e} (scale {scale:e})"
            );
        }
    }
}

/// A diverging run is stopped with the same report on both devices: the
/// GPU reads its steps' losses once per epoch, and still names the first
/// step whose loss was not finite, as the CPU does at that step.
#[test]
fn a_diverging_run_names_the_same_first_bad_step_on_both_devices() {
    let Some(dev) = gpu("cuda_train") else { return };
    let info = catalog::lookup("clipped_adam").unwrap();
    // Adam moves every trained weight by about lr a step: 1e30 overflows f32.
    let build = || (info.build)(&HyperParams::defaults(info).with("lr", 1e30).unwrap()).unwrap();
    let error = |device| {
        let mut trainer = Trainer::new(track4(device, DType::F32), build()).unwrap();
        match trainer.run_epoch() {
            Err(e @ Error::NonFinite { .. }) => e.to_string(),
            other => panic!("{device}: expected a non-finite loss, got {other:?}"),
        }
    };
    let (cpu, gpu) = (error(Device::Cpu), error(dev));
    assert!(cpu.contains("training loss at epoch 0, step"), "{cpu}");
    assert_eq!(gpu, cpu);
}

#[test]
fn without_a_device_a_cuda_trainer_is_a_typed_error() {
    if Device::cuda(0).is_ok() {
        eprintln!("cuda_train_no_device: skipped: a CUDA device is present (this covers the no-device path)");
        return;
    }
    let err = Trainer::new(track4(Device::Cuda(0), DType::F32), adam())
        .err()
        .expect("no GPU to train on");
    assert!(
        matches!(
            err,
            Error::DeviceUnavailable {
                device: Device::Cuda(0),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("--device cpu"), "names the fix: {err}");
}

#[test]
fn moving_a_cpu_trainer_to_the_cpu_changes_no_bit() {
    let config = TaskConfig {
        n_hidden: 2,
        max_epochs: 2,
        ..TaskConfig::default()
    };
    assert_eq!(config.device, Device::Cpu, "the default device");
    let mut plain = Trainer::new(config.clone(), adam()).unwrap();
    let mut moved = Trainer::new(config, adam()).unwrap();
    moved.to_device(Device::Cpu).unwrap();
    plain.run_epoch().unwrap();
    moved.run_epoch().unwrap();
    // Data, models, gradient buffers and the optimizer's state round trip.
    moved.to_device(Device::Cpu).unwrap();
    let (a, b) = (plain.run_epoch().unwrap(), moved.run_epoch().unwrap());
    assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
    assert_eq!(a.val_loss.to_bits(), b.val_loss.to_bits());
    for (x, y) in plain.model.tensors().iter().zip(moved.model.tensors()) {
        assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    }
}

/// The emulated device's counters (`CUDA_EMU_STATS`) and the JSON summary
/// of one run of `ferrograd train --device cuda` on track 4 with `epochs`
/// epochs (and `extra` arguments).
fn emulator_counters(dir: &std::path::Path, epochs: usize, extra: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let stats = dir.join(format!("stats-{epochs}-{}.json", extra.join("")));
    let epochs = epochs.to_string();
    let args = [
        "train",
        "--json",
        "--n-hidden",
        "4",
        "--seed",
        "0",
        "--device",
        "cuda",
        "--max-epochs",
        &epochs,
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .args(extra)
        .env("CUDA_EMU_STATS", &stats)
        .output()
        .expect("runs ferrograd");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counters = std::fs::read(&stats).expect("the emulator wrote its counters");
    (
        serde_json::from_slice(&counters).expect("JSON"),
        serde_json::from_slice(&out.stdout).expect("a JSON summary"),
    )
}

/// One epoch in steady state on the emulated device, launch by launch and
/// as CUDA graphs: a 2-epoch run minus a 1-epoch run (8 training steps and
/// the validation pass; set-up and the test cancel).
#[test]
fn an_epoch_on_the_device_allocates_nothing_waits_twice_and_runs_each_step_as_one_graph() {
    let Some(Device::Cuda(ordinal)) = gpu("cuda_train") else {
        return;
    };
    if !ferrograd::engine::cuda::is_emulated(ordinal) {
        eprintln!("cuda_train counters: skipped: they come from the emulated device (CUDA_EMU_STATS)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (steps, h) = (8, 4);
    let mut summaries = Vec::new();
    for graphs in [false, true] {
        let extra: &[&str] = if graphs { &[] } else { &["--no-cuda-graph"] };
        let ((one, _), (two, summary)) = (
            emulator_counters(tmp.path(), 1, extra),
            emulator_counters(tmp.path(), 2, extra),
        );
        summaries.push(summary);
        let epoch = |key: &str| two[key].as_u64().unwrap() - one[key].as_u64().unwrap();
        let kernel =
            |name: &str| two["kernels"][name].as_u64().unwrap_or(0) - one["kernels"][name].as_u64().unwrap_or(0);
        let mode = if graphs { "graphs" } else { "launch by launch" };
        assert_eq!(epoch("allocs"), 0, "{mode}: an epoch allocated device memory: {two}");
        assert_eq!(epoch("frees"), 0, "{mode}: an epoch freed device memory: {two}");
        assert_eq!(
            epoch("function_lookups"),
            0,
            "{mode}: a launch looked its kernel up: {two}"
        );
        // One read of the 8 steps' losses and one of the validation loss; a
        // step that waited for the device would add one each.
        assert!(
            epoch("syncs") <= 2,
            "{mode}: {} synchronisations in one epoch",
            epoch("syncs")
        );
        assert!(
            epoch("dtoh") <= 2,
            "{mode}: {} copies to the host in one epoch",
            epoch("dtoh")
        );
        // The epoch's order, once; a step that uploaded anything would add one.
        assert!(
            epoch("htod") <= 1,
            "{mode}: {} copies to the device in one epoch",
            epoch("htod")
        );
        // One optimizer launch a step (run directly or by a graph).
        assert_eq!(kernel("clipped_adam_multi_f32"), steps, "{mode}: {two}");
        if graphs {
            // Every step one graph launch; the launches left are the
            // validation pass's H + 1.
            assert_eq!(epoch("graph_launches"), steps, "{two}");
            assert!(
                epoch("launches") <= h + 1,
                "{} launches besides the graphs: {two}",
                epoch("launches")
            );
        } else {
            // At most 3 H + 10 launches a step (H = 4 hidden layers), and
            // the validation pass's H + 1.
            let budget = steps * (3 * h + 10) + (h + 1);
            assert_eq!(epoch("graph_launches"), 0);
            assert!(
                epoch("launches") <= budget,
                "{} launches in one epoch of {steps} steps, over the budget of {budget}: {two}",
                epoch("launches")
            );
        }
    }
    // The same numbers either way, bit for bit.
    for key in ["test_loss", "best_val_loss", "quality"] {
        assert_eq!(summaries[0][key], summaries[1][key], "{key} with and without graphs");
    }
}
