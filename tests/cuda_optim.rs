//! The fused multi-tensor optimizer kernels (`ferrograd_engine::cuda::optim`)
//! against the CPU optimizers of `ferrograd-optim`'s catalog (sgdm, clipped_adam,
//! adam, adamw, lion, adan), step by step on random tensors, and the same
//! catalog optimizers run on GPU tensors (their tensor-op and device
//! fall-back paths) against themselves on the CPU.
//!
//! Each step gives all three the same gradients; each keeps its own
//! parameters (`param += update`). Tolerances, per element of every update
//! and of the parameters after the last step:
//!
//! * f64: `|gpu - cpu| <= 1e-12 + 1e-9 |cpu|` (the kernels and the CPU round
//!   in a different order: `m * (1/c1)` vs `m / c1`, fused multiply-adds);
//! * f32: `|gpu - cpu| <= 1e-6 lr + 1e-4 |cpu|` over the 10 steps; Lion is
//!   checked in f64 only, since its update is `lr * sign(c)` and an f32
//!   rounding difference at `c ~ 0` flips a whole step.
//!
//! Without a GPU (or against the stub libcuda) the test still builds every
//! catalog optimizer with the test's hyperparameters and checks the mapping
//! to the fused rules, then prints `skipped: no CUDA device (...)`.
#![cfg(feature = "cuda")]

use ferrograd::engine::cuda::optim::{FusedOptimizer, FusedRule};
use ferrograd::engine::{DType, Device, Result, Rng, Shape, Tensor};
use ferrograd::optim::{catalog, HyperParams, ModelLayout, StepContext, TaskOptimizer};

const STEPS: usize = 10;

/// Several tensors: one spanning several of the kernel's 2048-element
/// chunks, small ones, a scalar-like one.
const SHAPES: [&[usize]; 4] = [&[300, 17], &[5], &[1], &[4097]];

/// The GPU, or `None` after printing why the test is skipped (a failure
/// under `FERROGRAD_REQUIRE_GPU=1`).
fn gpu(test: &str) -> Option<Device> {
    ferrograd::engine::cuda::device_or_skip(test)
}

/// One catalog optimizer with overrides, and its fused counterpart.
struct Pairing {
    name: &'static str,
    overrides: &'static [(&'static str, f64)],
    /// The fused rule, learning rate and weight decay, read from the
    /// catalog entry's hyperparameters.
    fused: fn(&HyperParams) -> Result<(FusedRule, f64, f64)>,
    /// Whether to compare in f32 too.
    f32_too: bool,
}

fn pairings() -> Vec<Pairing> {
    vec![
        Pairing {
            name: "sgdm",
            overrides: &[("lr", 1e-2), ("dampening", 0.1), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Sgdm {
                    momentum: h.get("momentum")?,
                    dampening: h.get("dampening")?,
                    nesterov: h.flag("nesterov")?,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: true,
        },
        Pairing {
            name: "sgdm",
            overrides: &[("lr", 1e-2), ("nesterov", 1.0), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Sgdm {
                    momentum: h.get("momentum")?,
                    dampening: h.get("dampening")?,
                    nesterov: h.flag("nesterov")?,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: true,
        },
        // The task's clipped Adam: gradients are drawn inside [-clip, clip],
        // where clipping is the identity, so the fused (unclipped) rule applies.
        Pairing {
            name: "clipped_adam",
            overrides: &[("lr", 1e-2)],
            fused: |h| {
                let rule = FusedRule::Adam {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                    eps: h.get("eps")?,
                    decoupled: false,
                };
                Ok((rule, h.get("lr")?, 0.0))
            },
            f32_too: true,
        },
        Pairing {
            name: "adam",
            overrides: &[("lr", 1e-2), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Adam {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                    eps: h.get("eps")?,
                    decoupled: false,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: true,
        },
        Pairing {
            name: "adamw",
            overrides: &[("lr", 1e-2), ("beta2", 0.99), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Adam {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                    eps: h.get("eps")?,
                    decoupled: true,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: true,
        },
        Pairing {
            name: "lion",
            overrides: &[("lr", 1e-3), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Lion {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: false,
        },
        Pairing {
            name: "adan",
            overrides: &[("lr", 1e-2), ("weight_decay", 0.05)],
            fused: |h| {
                let rule = FusedRule::Adan {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                    beta3: h.get("beta3")?,
                    eps: h.get("eps")?,
                    no_prox: h.flag("no_prox")?,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: true,
        },
        Pairing {
            name: "adan",
            overrides: &[("lr", 1e-2), ("weight_decay", 0.05), ("no_prox", 1.0)],
            fused: |h| {
                let rule = FusedRule::Adan {
                    beta1: h.get("beta1")?,
                    beta2: h.get("beta2")?,
                    beta3: h.get("beta3")?,
                    eps: h.get("eps")?,
                    no_prox: h.flag("no_prox")?,
                };
                Ok((rule, h.get("lr")?, h.get("weight_decay")?))
            },
            f32_too: false,
        },
    ]
}

fn hyperparams(p: &Pairing) -> HyperParams {
    let info = catalog::lookup(p.name).expect("in the catalog");
    let mut h = HyperParams::defaults(info);
    for (k, v) in p.overrides {
        h.set(k, *v).expect("a declared hyperparameter");
    }
    h
}

fn build(p: &Pairing, shapes: &[Shape]) -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(p.name).expect("in the catalog");
    let mut opt = (info.build)(&hyperparams(p)).expect("builds");
    opt.init_state(0, &ModelLayout::any(shapes)).expect("init");
    opt
}

fn tolerance(dtype: DType, lr: f64) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-12, 1e-9),
        DType::F32 => (1e-6 * lr, 1e-4),
    }
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor, (atol, rtol): (f64, f64), dev: Option<Device>) {
    if let Some(dev) = dev {
        assert_eq!(got.device(), dev, "{what}: left the GPU");
    }
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (a, b)) in got
        .to_vec_f64()
        .unwrap()
        .iter()
        .zip(want.to_vec_f64().unwrap())
        .enumerate()
    {
        assert!(
            approx::abs_diff_eq!(*a, b, epsilon = atol + rtol * b.abs()),
            "{what}[{k}]: {a} vs cpu {b} (atol {atol:e}, rtol {rtol:e})"
        );
    }
}

fn ctx(step: usize) -> StepContext {
    StepContext {
        epoch: 0,
        step,
        train_loss: None,
        val_loss: None,
        steps_per_epoch: None,
    }
}

fn run(p: &Pairing, dtype: DType, dev: Device) {
    let h = hyperparams(p);
    let (rule, lr, wd) = (p.fused)(&h).unwrap();
    let what = format!("{} {:?} {dtype}", p.name, p.overrides);
    let tol = tolerance(dtype, lr);
    let shapes: Vec<Shape> = SHAPES.iter().map(|s| Shape::new(s.to_vec())).collect();
    let mut rng = Rng::new(0x0971);
    let mut cpu: Vec<Tensor> = SHAPES
        .iter()
        .map(|s| Tensor::rand_normal(s.to_vec(), 0.0, 1.0, dtype, &mut rng).unwrap())
        .collect();
    let to_gpu = |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.to_device(dev).unwrap()).collect() };
    let mut gpu_chain = to_gpu(&cpu);
    let mut gpu_fused = to_gpu(&cpu);
    let mut cpu_opt = build(p, &shapes);
    let mut gpu_opt = build(p, &shapes);
    let mut fused = FusedOptimizer::new(rule, lr, wd);
    for t in 0..STEPS {
        // Inside [-1, 1): the clipped baselines' clip (1) changes nothing.
        let grads: Vec<Tensor> = SHAPES
            .iter()
            .map(|s| Tensor::rand_uniform(s.to_vec(), -1.0, 1.0, dtype, &mut rng).unwrap())
            .collect();
        let ggrads = to_gpu(&grads);
        let want = cpu_opt.step(&cpu, &grads, &ctx(t)).unwrap();
        let chain = gpu_opt.step(&gpu_chain, &ggrads, &ctx(t)).unwrap();
        let kernel = fused.updates(&gpu_fused, &ggrads).unwrap();
        for i in 0..SHAPES.len() {
            let at = format!("{what} step {} tensor {i}", t + 1);
            assert_close(&format!("{at} fused update"), &kernel[i], &want[i], tol, Some(dev));
            assert_close(
                &format!("{at} catalog-on-gpu update"),
                &chain[i],
                &want[i],
                tol,
                Some(dev),
            );
            cpu[i].add_assign(&want[i]).unwrap();
            gpu_chain[i].add_assign(&chain[i]).unwrap();
            gpu_fused[i].add_assign(&kernel[i]).unwrap();
        }
    }
    assert_eq!(fused.steps(), STEPS as u64);
    for i in 0..SHAPES.len() {
        assert_close(
            &format!("{what} params {i} (fused)"),
            &gpu_fused[i],
            &cpu[i],
            tol,
            Some(dev),
        );
        assert_close(
            &format!("{what} params {i} (catalog on gpu)"),
            &gpu_chain[i],
            &cpu[i],
            tol,
            Some(dev),
        );
    }
}

#[test]
fn fused_kernels_match_the_catalog_optimizers_step_by_step() {
    // Runs everywhere: every pairing builds, and its fused rule reads the
    // hyperparameters the catalog optimizer was built with.
    let all = pairings();
    for p in &all {
        let h = hyperparams(p);
        let (rule, lr, wd) = (p.fused)(&h).unwrap();
        assert_eq!(lr, h.get("lr").unwrap(), "{}", p.name);
        assert!(wd >= 0.0 && lr > 0.0, "{}: {rule:?}", p.name);
        let shapes: Vec<Shape> = SHAPES.iter().map(|s| Shape::new(s.to_vec())).collect();
        build(p, &shapes);
    }
    let names: Vec<&str> = all.iter().map(|p| p.name).collect();
    for required in ["sgdm", "clipped_adam", "adam", "adamw", "lion", "adan"] {
        assert!(names.contains(&required), "{required} is compared");
    }
    let Some(dev) = gpu("cuda_optim") else { return };
    for p in &all {
        run(p, DType::F64, dev);
        if p.f32_too {
            run(p, DType::F32, dev);
        }
    }
}
