//! The function transforms: Jacobians by forward and by reverse mode agree
//! with each other and with calculus, Hessian-vector products by both modes
//! agree with calculus, and wrong arguments are refused with the fix.

use ferrograd_autograd::functional::{jacfwd, jacrev, jvp, vjp};
use ferrograd_autograd::{hessian, hvp_with, HvpMode, Var};
use ferrograd_engine::{DType, Result, Rng, Tensor};
use proptest::prelude::*;

fn vector(values: &[f64]) -> Tensor {
    Tensor::from_vec(values.to_vec(), [values.len()]).unwrap()
}

/// `f(x) = [x0 x1, sin x0, x1^2]`, whose Jacobian is written by hand below.
fn small_map(x: &Var) -> Result<Var> {
    let (x0, x1) = (x.narrow(0, 0, 1)?, x.narrow(0, 1, 1)?);
    Var::concat(&[x0.mul(&x1)?, x0.sin()?, x1.square()?], 0)
}

#[test]
fn both_jacobians_of_a_small_map_match_calculus() {
    let (a, b) = (0.7f64, -1.3f64);
    let want = [b, a, a.cos(), 0.0, 0.0, 2.0 * b]; // [3, 2], row-major
    for (name, jacobian) in [
        ("jacfwd", jacfwd(small_map, &vector(&[a, b]))),
        ("jacrev", jacrev(small_map, &vector(&[a, b]))),
    ] {
        let jacobian = jacobian.unwrap();
        assert_eq!(jacobian.dims(), &[3, 2], "{name}");
        assert_eq!(jacobian.to_vec::<f64>().unwrap(), want.to_vec(), "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// `softmax(tanh(X W))` flattened, as a function of `W`: a composite
    /// with matmul, broadcasting and a reduction; forward and reverse
    /// Jacobians agree to rounding.
    #[test]
    fn jacfwd_equals_jacrev_on_a_layer(rows in 1usize..4, fan_in in 1usize..4, width in 1usize..4, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let x = Tensor::rand_normal([rows, fan_in], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let w = Tensor::rand_normal([fan_in, width], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let layer = |w: &Var| Var::constant(x.clone()).matmul(w)?.tanh().unwrap().softmax(-1);
        let forward = jacfwd(layer, &w).unwrap();
        let reverse = jacrev(layer, &w).unwrap();
        prop_assert_eq!(forward.dims(), &[rows, width, fan_in, width][..]);
        for (f, r) in forward.to_vec::<f64>().unwrap().iter().zip(reverse.to_vec::<f64>().unwrap()) {
            prop_assert!(approx::abs_diff_eq!(*f, r, epsilon = 1e-12), "jacfwd {} vs jacrev {}", f, r);
        }
    }
}

#[test]
fn both_hvp_modes_give_the_hessian_of_a_cubic_exactly() {
    // f(x) = sum(x^3): H = diag(6 x), so H v = 6 x v.
    let x = vector(&[0.5, -2.0, 1.5]);
    let v = vector(&[1.0, 0.25, -2.0]);
    let cube = |x: &Var| x.pow_scalar(3.0)?.sum_all();
    for mode in HvpMode::ALL {
        let hv = hvp_with(cube, &x, &v, mode).unwrap();
        assert_eq!(hv.to_vec::<f64>().unwrap(), vec![3.0, -3.0, -18.0], "{}", mode.name());
    }
    let h = hessian(cube, &x).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(h, vec![3.0, 0.0, 0.0, 0.0, -12.0, 0.0, 0.0, 0.0, 9.0]);
}

#[test]
fn a_function_that_ignores_its_input_has_zero_derivatives() {
    let x = vector(&[1.0, 2.0]);
    let constant = |_: &[Var]| Ok(Var::constant(vector(&[4.0, 5.0, 6.0])));
    let (_, tangent) = jvp(constant, std::slice::from_ref(&x), &[vector(&[1.0, 1.0])]).unwrap();
    assert_eq!(tangent.to_vec::<f64>().unwrap(), vec![0.0; 3]);
    let (_, grads) = vjp(constant, std::slice::from_ref(&x), &vector(&[1.0, 1.0, 1.0])).unwrap();
    assert_eq!(grads[0].to_vec::<f64>().unwrap(), vec![0.0; 2]);
    for mode in HvpMode::ALL {
        let hv = hvp_with(|_| Ok(Var::constant(Tensor::scalar(1.0, DType::F64))), &x, &x, mode).unwrap();
        assert_eq!(hv.to_vec::<f64>().unwrap(), vec![0.0; 2], "{}", mode.name());
    }
}

#[test]
fn wrong_directions_are_refused_with_what_to_pass() {
    let x = vector(&[1.0, 2.0]);
    let err = jvp(|v| Ok(v[0].clone()), std::slice::from_ref(&x), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("0 tangents for 1 inputs"), "{err}");
    let err = jvp(|v| Ok(v[0].clone()), std::slice::from_ref(&x), &[vector(&[1.0])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("jvp") && err.contains("shape"), "{err}");
    let err = vjp(|v| Ok(v[0].clone()), std::slice::from_ref(&x), &vector(&[1.0]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("output shape"), "{err}");
    let err = hvp_with(|v| Ok(v.clone()), &x, &x, HvpMode::ForwardOverReverse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("scalar"), "{err}");
}

#[test]
fn a_tangent_is_differentiable_in_reverse_mode() {
    // Reverse over forward: with recording on, a tangent is a recorded Var.
    // y = sum(exp(x) * sin(x)) along v has tangent sum((exp x sin x + exp x cos x) v),
    // whose gradient in x is (2 exp(x) cos(x)) v.
    let xs = [0.3f64, -1.1];
    let vs = [2.0f64, -0.5];
    let x = Var::parameter(vector(&xs))
        .with_tangent(&Var::constant(vector(&vs)))
        .unwrap();
    let y = x.exp().unwrap().mul(&x.sin().unwrap()).unwrap().sum_all().unwrap();
    let tangent = y.tangent().unwrap();
    assert!(tangent.requires_grad(), "the tangent was recorded");
    let grads = tangent.backward().unwrap();
    let got = grads.get(&x).unwrap().to_vec::<f64>().unwrap();
    for i in 0..2 {
        let want = 2.0 * xs[i].exp() * xs[i].cos() * vs[i];
        assert!(
            approx::abs_diff_eq!(got[i], want, epsilon = 1e-14 * want.abs().max(1.0)),
            "{i}: {} vs {want}",
            got[i]
        );
    }
}

/// A primitive whose forward rule returns a tangent of the wrong shape.
#[derive(Debug)]
struct BadTangentShape;

impl ferrograd_autograd::PrimitiveOp for BadTangentShape {
    fn name(&self) -> &'static str {
        "bad_tangent_shape"
    }
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        Ok(inputs[0].clone())
    }
    fn backward(&self, _inputs: &[Var], _out: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        Ok(vec![Some(grad.clone())])
    }
    fn jvp(&self, _inputs: &[Var], _out: &Var, tangents: &[Option<Var>]) -> Option<Result<Option<Var>>> {
        Some(tangents[0].as_ref().map(|t| t.sum_all()).transpose())
    }
}

#[test]
fn a_primitive_forward_rule_of_the_wrong_shape_is_an_error_naming_it() {
    let x = vector(&[1.0, 2.0]);
    let op = std::sync::Arc::new(BadTangentShape);
    let err = jvp(
        |v| Var::apply_primitive(op.clone(), v),
        std::slice::from_ref(&x),
        &[vector(&[1.0, 1.0])],
    )
    .expect_err("a tangent of the wrong shape must be refused");
    let expected =
        "forward rule of `bad_tangent_shape` returned a F64 tangent of shape [] for a F64 output of shape [2]";
    assert!(err.to_string().contains(expected), "{err}");
}
