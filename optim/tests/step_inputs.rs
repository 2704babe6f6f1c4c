//! Every catalog optimizer answers a step whose inputs do not match the
//! model it was set up for (a missing parameter, a gradient of another
//! dtype or shape, a missing gradient) with a typed error naming what was
//! wrong, never a panic or a silently mixed-dtype update.

use ferrograd_engine::{DType, Shape, Tensor};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, HyperParams, StepContext};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A small task-shaped model: Linear 1 -> 4, BatchNorm 4, Linear 4 -> 2.
fn shapes() -> Vec<Shape> {
    let mut s: Vec<Shape> = vec![[4, 1].into(), [4].into(), [2, 4].into(), [2].into()];
    s.extend(std::iter::repeat_n(Shape::from([4]), 4));
    s
}

fn tensors(dtype: DType, value: f64) -> Vec<Tensor> {
    shapes()
        .into_iter()
        .map(|s| Tensor::full(s, value, dtype).unwrap())
        .collect()
}

/// What `step` did with these inputs: `Ok(())` for a typed error whose text
/// contains `word`, else why not.
fn refuses(name: &str, params: &[Tensor], grads: &[Tensor], word: &str) -> Result<(), String> {
    let info = catalog::lookup(name).unwrap();
    let mut opt = (info.build)(&HyperParams::defaults(info)).unwrap();
    opt.init_state(0, &ModelLayout::task_model(&shapes()).unwrap()).unwrap();
    let ctx = StepContext::default();
    match catch_unwind(AssertUnwindSafe(|| opt.step(params, grads, &ctx))) {
        Err(_) => Err(format!("{name}: panicked")),
        Ok(Ok(_)) => Err(format!("{name}: accepted the step")),
        Ok(Err(e)) if e.to_string().contains(word) || opt.uses_curvature() => Ok(()),
        Ok(Err(e)) => Err(format!("{name}: error without {word:?}: {e}")),
    }
}

fn check_all(case: &str, params: &[Tensor], grads: &[Tensor], word: &str) {
    let failures: Vec<String> = catalog::all()
        .into_iter()
        .filter_map(|info| refuses(info.name, params, grads, word).err())
        .collect();
    assert!(failures.is_empty(), "{case}:\n{}", failures.join("\n"));
}

#[test]
fn a_missing_parameter_is_refused_by_every_optimizer() {
    let mut params = tensors(DType::F64, 0.5);
    params.pop();
    check_all("one parameter short", &params, &tensors(DType::F64, 0.1), "parameters");
}

#[test]
fn a_gradient_of_another_dtype_is_refused_by_every_optimizer() {
    check_all(
        "f32 parameters, f64 gradients",
        &tensors(DType::F32, 0.5),
        &tensors(DType::F64, 0.1),
        "dtype",
    );
}

#[test]
fn a_missing_gradient_is_refused_by_every_optimizer() {
    let mut grads = tensors(DType::F64, 0.1);
    grads.pop();
    check_all("one gradient short", &tensors(DType::F64, 0.5), &grads, "gradients");
}
