//! Every registry entry passes gradcheck on a handful of drawn cases.
use ferrograd_autograd::{gradcheck, registry, GradcheckOptions};
use ferrograd_engine::Rng;

#[test]
fn every_entry_passes_a_few_cases() {
    let mut failures = Vec::new();
    for entry in registry::entries() {
        for seed in 0..20u64 {
            let mut rng = Rng::new(seed);
            let rank = 1 + rng.below(3);
            let dims: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
            let case = (entry.build)(&dims, &mut rng);
            let mut opts = GradcheckOptions::default();
            if let Some((eps, atol, rtol)) = entry.tolerance {
                opts = GradcheckOptions { eps, atol, rtol, seed };
            }
            match gradcheck(&case.apply, &case.inputs, &opts) {
                Ok(r) if r.passed => {}
                Ok(r) => failures.push(format!("{} dims {dims:?}: {r}", entry.name)),
                Err(e) => failures.push(format!("{} dims {dims:?}: error {e}", entry.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

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
