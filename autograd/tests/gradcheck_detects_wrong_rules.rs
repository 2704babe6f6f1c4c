//! `gradcheck` must fail on wrong backward rules: it is what every op's
//! rule is proven with (the registry's property tests in the facade's
//! `tests/gradcheck_ops.rs` run every entry), so a checker that passed
//! everything would prove nothing.
use ferrograd_autograd::{gradcheck, GradcheckOptions};

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    use ferrograd_engine::Tensor;
    // d/dx (x * stop_gradient(x)) is reported as x, but the true derivative is 2x.
    let x = Tensor::from_vec(vec![0.7f64, -1.3, 2.0], [3]).unwrap();
    let report = gradcheck(|v| v[0].mul(&v[0].detach()), &[x], &GradcheckOptions::default()).unwrap();
    assert!(!report.passed, "{report}");
    let worst = report.worst.unwrap();
    assert!((worst.numeric - 2.0 * worst.analytic).abs() < 1e-4 * worst.numeric.abs().max(1.0));
}

#[test]
fn gradcheck_catches_a_gradient_off_by_a_small_factor() {
    use ferrograd_engine::Tensor;
    // f = x^2 + 1e-2 x^2 with the second term's gradient hidden (detached):
    // the analytic gradient is 2x, the true one 2.02x, a relative error of
    // 1e-2, ten times the default rtol (1e-3, PyTorch's gradcheck default;
    // an error of 1e-3 itself passes, by that definition).
    let x = Tensor::from_vec(vec![0.9f64, -1.1, 1.7, 0.4], [4]).unwrap();
    let f = |v: &[ferrograd_autograd::Var]| {
        let hidden = v[0].detach().mul(&v[0].detach())?.mul_scalar(1e-2)?;
        v[0].mul(&v[0])?.add(&hidden)
    };
    let report = gradcheck(f, &[x], &GradcheckOptions::default()).unwrap();
    assert!(!report.passed, "a 1e-2 relative error passed: {report}");
}
