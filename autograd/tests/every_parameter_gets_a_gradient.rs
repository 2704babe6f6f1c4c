//! The opt-in check that every parameter received a gradient
//! (`Gradients::of_all`, `Var::gradients_of`): a tensor wrapped as a
//! constant by mistake, or one the loss never used, is an error naming it.
use ferrograd_autograd::Var;
use ferrograd_engine::{DType, Tensor};

fn vector(values: &[f64]) -> Tensor {
    Tensor::from_vec(values.to_vec(), [values.len()]).unwrap()
}

/// loss = sum(w * x) + b, with gradient x for w and 1 for b.
fn linear_loss(w: &Var, b: &Var, x: &Tensor) -> Var {
    let wx = w.mul(&Var::constant(x.clone())).unwrap().sum_all().unwrap();
    wx.add(b).unwrap()
}

#[test]
fn the_gradients_come_back_in_the_parameters_order() {
    let x = vector(&[1.0, 2.0, 3.0]);
    let w = Var::parameter(vector(&[0.5, -1.0, 2.0]));
    let b = Var::parameter(Tensor::scalar(0.25, DType::F64));
    let grads = linear_loss(&w, &b, &x).gradients_of(&[b.clone(), w.clone()]).unwrap();
    assert_eq!(grads[0].to_scalar().unwrap(), 1.0);
    assert_eq!(grads[1].to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0]);
}

#[test]
fn a_parameter_made_as_a_constant_is_named_with_the_fix() {
    let x = vector(&[1.0, 2.0]);
    let w = Var::parameter(vector(&[0.5, -1.0]));
    let b = Var::constant(Tensor::scalar(0.25, DType::F64)); // the mistake
    let err = linear_loss(&w, &b, &x).gradients_of(&[w, b]).unwrap_err().to_string();
    assert!(err.contains("parameter 1"), "{err}");
    assert!(err.contains("Var::constant") && err.contains("Var::parameter"), "{err}");
}

#[test]
fn a_parameter_the_loss_never_used_is_named() {
    let x = vector(&[1.0, 2.0]);
    let w = Var::parameter(vector(&[0.5, -1.0]));
    let b = Var::parameter(Tensor::scalar(0.25, DType::F64));
    let unused = Var::parameter(vector(&[7.0]));
    let grads = linear_loss(&w, &b, &x).backward().unwrap();
    assert!(grads.get(&unused).is_none(), "the unchecked accessor stays silent");
    let err = grads.of_all(&[w, unused, b]).unwrap_err().to_string();
    assert!(
        err.contains("parameter 1") && err.contains("does not depend on it"),
        "{err}"
    );
}
