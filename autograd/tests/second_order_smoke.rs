//! `backward_with(true)` records the backward pass, so gradients can be
//! differentiated again (the seed of Hessian-vector products).
use ferrograd_autograd::Var;
use ferrograd_engine::Tensor;

#[test]
fn gradient_of_a_gradient_matches_the_second_derivative() {
    // f(x) = sum(x^3 + sin(x) * x); f' = 3x^2 + cos(x) x + sin(x);
    // d/dx (f' . v) = (6x - sin(x) x + 2 cos(x)) v
    let xs = [0.3f64, -1.2, 2.0];
    let vs = [1.0f64, -0.5, 2.0];
    let x = Var::parameter(Tensor::from_vec(xs.to_vec(), [3]).unwrap());
    let f = x
        .pow_scalar(3.0)
        .unwrap()
        .add(&x.sin().unwrap().mul(&x).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = f.backward_with(true).unwrap().get_var(&x).unwrap().clone();
    let v = Var::constant(Tensor::from_vec(vs.to_vec(), [3]).unwrap());
    let hv = g.mul(&v).unwrap().sum_all().unwrap().backward().unwrap();
    let got = hv.get(&x).unwrap().to_vec::<f64>().unwrap();
    for i in 0..3 {
        let want = (6.0 * xs[i] - xs[i].sin() * xs[i] + 2.0 * xs[i].cos()) * vs[i];
        assert!(
            approx::abs_diff_eq!(got[i], want, epsilon = 1e-12),
            "{i}: {} vs {want}",
            got[i]
        );
    }
}

/// Second derivatives of every registered op through `gradgradcheck`.
#[test]
fn every_registered_op_passes_gradgradcheck_on_a_few_cases() {
    use ferrograd_autograd::{gradgradcheck, registry, suite};
    use ferrograd_engine::Rng;
    let mut failures = Vec::new();
    for entry in registry::entries() {
        for seed in 0..8u64 {
            let mut rng = Rng::new(seed);
            let dims = suite::draw_dims(&mut rng);
            let case = (entry.build)(&dims, &mut rng);
            let options = suite::options_for(&entry, seed);
            match gradgradcheck(&case.apply, &case.inputs, &options) {
                Ok(r) if r.passed => {}
                Ok(r) => failures.push(format!("{} {dims:?}: {r}", entry.name)),
                Err(e) => failures.push(format!("{} {dims:?}: {e}", entry.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Forward-over-reverse second derivatives of every registered op against
/// finite differences of gradients, through `hvpcheck`.
#[test]
fn every_registered_op_passes_hvpcheck_on_a_few_cases() {
    use ferrograd_autograd::{hvpcheck, registry, suite};
    use ferrograd_engine::Rng;
    let mut failures = Vec::new();
    for entry in registry::entries() {
        for seed in 0..8u64 {
            let mut rng = Rng::new(seed);
            let dims = suite::draw_dims(&mut rng);
            let case = (entry.build)(&dims, &mut rng);
            let options = suite::options_for(&entry, seed);
            match hvpcheck(&case.apply, &case.inputs, &options) {
                Ok(r) if r.passed => {}
                Ok(r) => failures.push(format!("{} {dims:?}: {r}", entry.name)),
                Err(e) => failures.push(format!("{} {dims:?}: {e}", entry.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hvpcheck_catches_a_wrong_second_derivative() {
    use ferrograd_autograd::{hvpcheck, GradcheckOptions};
    // As below: the detached factor makes the gradient right as a value but
    // its derivative (here, its tangent) wrong.
    let x = Tensor::from_vec(vec![0.7f64, -1.3, 2.0], [3]).unwrap();
    let r = hvpcheck(
        |v| v[0].square()?.mul(&v[0].detach()),
        &[x],
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert!(!r.passed, "{r}");
}

#[test]
fn gradgradcheck_catches_a_wrong_second_derivative() {
    use ferrograd_autograd::{gradgradcheck, GradcheckOptions};
    // x^2 * stop_gradient(x): the first derivative is right only at the value
    // level; its derivative through the graph misses the detached factor.
    let x = Tensor::from_vec(vec![0.7f64, -1.3, 2.0], [3]).unwrap();
    let r = gradgradcheck(
        |v| v[0].square()?.mul(&v[0].detach()),
        &[x],
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert!(!r.passed, "{r}");
}
