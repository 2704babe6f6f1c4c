//! `gradcheck_fast`: random projections of the Jacobian instead of every
//! element. It passes correct rules on inputs far too large for the
//! elementwise check, and catches a planted error in either mode.

use ferrograd_autograd::suite::Mode;
use ferrograd_autograd::{gradcheck_fast, GradcheckOptions, Var};
use ferrograd_engine::{DType, Result, Rng, Tensor};

/// A `[64, 64]` input: 4,096 elements, so 8,192 evaluations for the
/// elementwise check, against two evaluations and one pass per projection.
fn large_input(seed: u64) -> Tensor {
    Tensor::rand_normal([64, 64], 0.0, 1.0, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn layer(v: &[Var]) -> Result<Var> {
    v[0].matmul(&v[1])?.tanh()?.softmax(-1)
}

/// `tanh(x)` with an extra `0.1 (x - detach(x))`: worth 0 as a value (so
/// finite differences cannot see it) but 0.1 on the Jacobian's diagonal in
/// both modes, a wrong rule in disguise.
fn planted(v: &[Var]) -> Result<Var> {
    let x = &v[0];
    x.tanh()?.add(&x.sub(&x.detach())?.mul_scalar(0.1)?)
}

#[test]
fn correct_rules_pass_on_a_large_input_in_both_modes() {
    let inputs = [large_input(1), large_input(2).mul_scalar(0.1).unwrap()];
    for mode in [Mode::Reverse, Mode::Forward] {
        let report = gradcheck_fast(layer, &inputs, &GradcheckOptions::default(), 4, mode).unwrap();
        assert!(report.passed, "{}: {report}", mode.name());
        assert_eq!(report.projections.len(), 4);
    }
}

#[test]
fn a_planted_error_is_caught_at_every_seed_in_both_modes() {
    // ||D v|| = 0.1 ||v|| ~ 6.4 against a tolerance of about 1e-3 * 40: the
    // stated bound puts one projection's miss chance under 1%, and four
    // projections' under 1e-8.
    for seed in 0..16 {
        let options = GradcheckOptions {
            seed,
            ..GradcheckOptions::default()
        };
        for mode in [Mode::Reverse, Mode::Forward] {
            let report = gradcheck_fast(planted, &[large_input(seed)], &options, 4, mode).unwrap();
            assert!(!report.passed, "seed {seed}, {}: {report}", mode.name());
        }
    }
}
