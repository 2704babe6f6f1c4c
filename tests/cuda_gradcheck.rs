//! The gradcheck suite on the GPU, in f64: every registry entry
//! (`ferrograd::autograd::registry::entries()`) evaluated with its inputs on
//! the device. For each drawn case:
//!
//! * the forward value stays on the GPU and matches the CPU's to 1e-10
//!   relative + 1e-12 absolute (GEMM and reductions sum in another order);
//! * the gradients of `sum(r * f)` (a fixed random cotangent `r`, also on
//!   the GPU) stay on the GPU and match the CPU's to the same tolerance;
//! * those GPU gradients match central finite differences computed from
//!   GPU evaluations, with the entry's tolerance (PyTorch's defaults unless
//!   the entry overrides them: eps 1e-6, atol 1e-5, rtol 1e-3).
//!
//! Without a GPU (or against the stub libcuda) the test prints
//! `skipped: no CUDA device (...)` and passes.
#![cfg(feature = "cuda")]

use ferrograd::autograd::registry::{self, OpEntry};
use ferrograd::autograd::suite::{draw_dims, options_for};
use ferrograd::autograd::{no_grad, GradcheckOptions, Var};
use ferrograd::engine::{DType, Device, Result, Rng, Tensor};

/// A registry case's function, borrowed.
type VarFnRef<'a> = &'a dyn Fn(&[Var]) -> Result<Var>;

/// Drawn cases per registry entry.
const CASES: u64 = 6;

/// GPU vs CPU, f64: reductions and GEMM add in a different order.
const RTOL: f64 = 1e-10;
const ATOL: f64 = 1e-12;

/// The GPU, or `None` after printing why the test is skipped (a failure
/// under `FERROGRAD_REQUIRE_GPU=1`).
fn gpu(test: &str) -> Option<Device> {
    ferrograd::engine::cuda::device_or_skip(test)
}

fn assert_same(what: &str, gpu: &Tensor, cpu: &Tensor, dev: Device) {
    assert_eq!(gpu.device(), dev, "{what}: left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    for (i, (a, b)) in gpu
        .to_vec_f64()
        .unwrap()
        .iter()
        .zip(cpu.to_vec_f64().unwrap())
        .enumerate()
    {
        // max_relative 0: exactly `a == b || |a - b| <= ATOL + RTOL |b|`.
        let tol = ATOL + RTOL * b.abs();
        assert!(
            approx::relative_eq!(*a, b, epsilon = tol, max_relative = 0.0),
            "{what}: element {i}: gpu {a} vs cpu {b}"
        );
    }
}

/// `sum(r * f(inputs))` evaluated where `inputs` and `r` live, without recording.
fn projected(f: VarFnRef<'_>, inputs: &[Tensor], r: &Tensor) -> f64 {
    no_grad(|| {
        let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
        let out = f(&vars).expect("the case evaluates");
        out.value()
            .mul(r)
            .expect("same shape")
            .sum_all()
            .unwrap()
            .to_scalar()
            .expect("scalar")
    })
}

/// Gradients of `sum(r * f(inputs))`, one per input (zeros where none flows).
fn gradients(f: VarFnRef<'_>, inputs: &[Tensor], r: &Tensor) -> (Tensor, Vec<Tensor>) {
    let params: Vec<Var> = inputs.iter().cloned().map(Var::parameter).collect();
    let out = f(&params).expect("the case evaluates");
    let loss = out.mul(&Var::constant(r.clone())).expect("same shape").sum_all();
    let grads = loss.unwrap().backward().expect("backward");
    let per_input = params
        .iter()
        .map(|p| grads.get(p).cloned().unwrap_or_else(|| p.value().zeros_like().unwrap()))
        .collect();
    (out.value().clone(), per_input)
}

/// Checks one drawn case of `entry`; returns the number of elements compared
/// with finite differences.
fn check_case(entry: &OpEntry, seed: u64, dev: Device) -> usize {
    let mut rng = Rng::new(seed);
    let dims = draw_dims(&mut rng);
    let case = (entry.build)(&dims, &mut rng);
    let what = format!("{} (seed {seed}, dims {dims:?})", entry.name);
    let f: VarFnRef<'_> = &case.apply;
    let options: GradcheckOptions = options_for(entry, seed);

    let cpu_inputs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    let gpu_inputs: Vec<Tensor> = cpu_inputs.iter().map(|t| t.to_device(dev).unwrap()).collect();
    let cpu_out_shape = no_grad(|| {
        let vars: Vec<Var> = cpu_inputs.iter().cloned().map(Var::constant).collect();
        f(&vars).expect("the case evaluates").shape().clone()
    });
    let r = Tensor::rand_normal(cpu_out_shape, 0.0, 1.0, DType::F64, &mut Rng::new(seed ^ 0xC0DA)).unwrap();
    let r_gpu = r.to_device(dev).unwrap();

    let (cpu_out, cpu_grads) = gradients(f, &cpu_inputs, &r);
    let (gpu_out, gpu_grads) = gradients(f, &gpu_inputs, &r_gpu);
    assert_same(&format!("{what}: forward"), &gpu_out, &cpu_out, dev);
    for (i, (g, c)) in gpu_grads.iter().zip(&cpu_grads).enumerate() {
        assert_same(&format!("{what}: gradient of input {i}"), g, c, dev);
    }

    // Central differences of the GPU function against the GPU gradients.
    let mut checked = 0;
    for (i, input) in cpu_inputs.iter().enumerate() {
        let base = input.to_vec_f64().unwrap();
        let analytic = gpu_grads[i].to_vec_f64().unwrap();
        for (j, &a) in analytic.iter().enumerate() {
            let at = |delta: f64| {
                let mut values = base.clone();
                values[j] += delta;
                let mut shifted = gpu_inputs.clone();
                shifted[i] = Tensor::from_vec(values, input.shape().clone())
                    .unwrap()
                    .to_device(dev)
                    .unwrap();
                projected(f, &shifted, &r_gpu)
            };
            let numeric = (at(options.eps) - at(-options.eps)) / (2.0 * options.eps);
            let tol = options.atol + options.rtol * numeric.abs();
            assert!(
                approx::relative_eq!(a, numeric, epsilon = tol, max_relative = 0.0),
                "{what}: input {i} element {j}: gpu gradient {a} vs finite difference {numeric} \
                 (atol {}, rtol {})",
                options.atol,
                options.rtol
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_registry_entry_gradchecks_on_the_gpu_in_f64() {
    let entries = registry::entries();
    assert!(entries.len() >= 50, "the registry has {} entries", entries.len());
    let Some(dev) = gpu("cuda_gradcheck") else { return };
    let mut elements = 0;
    for entry in &entries {
        for i in 0..CASES {
            elements += check_case(entry, 0xFE44_0000 + i, dev);
        }
    }
    eprintln!(
        "cuda_gradcheck: {} entries x {CASES} cases, {elements} gradient elements vs finite differences",
        entries.len()
    );
    assert!(elements > entries.len() * CASES as usize, "too few elements compared");
}
