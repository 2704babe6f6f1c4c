//! Gradient checks (f64) of composite functions, and the graph semantics
//! that single-op checks cannot see: accumulation when a `Var` is used
//! twice, `no_grad`, `detach`, and `backward` on a non-scalar.

use ferrograd::autograd::{gradcheck, no_grad, GradcheckOptions, GradcheckReport, Var};
use ferrograd::engine::{DType, Error, Result, Rng, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn normal(shape: &[usize], std: f64, rng: &mut Rng) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, std, DType::F64, rng).unwrap()
}

fn assert_passed(what: &str, report: Result<GradcheckReport>) {
    match report {
        Ok(r) => assert!(r.passed, "{what}: {r}"),
        Err(e) => panic!("{what}: gradcheck errored: {e}"),
    }
}

// ----- (a) a two-layer MLP with batch normalisation ---------------------------

const BN_EPS: f64 = 1e-5;

/// `x[4,3] -> Linear(3,5) -> relu -> batchnorm over the batch axis (biased
/// variance, eps 1e-5, scale and shift) -> Linear(5,2)`, then MSE against
/// `target`. Inputs: `[x, w1, b1, gamma, beta, w2, b2]`.
fn mlp_loss(v: &[Var], target: &Tensor) -> Result<Var> {
    let (x, w1, b1, gamma, beta, w2, b2) = (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]);
    let h = x.matmul(w1)?.add(b1)?.relu()?;
    let mu = h.mean(Some(&[0]), true)?;
    let centered = h.sub(&mu)?;
    let var = centered.square()?.mean(Some(&[0]), true)?;
    let normed = centered.div(&var.add_scalar(BN_EPS)?.sqrt()?)?;
    let bn = normed.mul(gamma)?.add(beta)?;
    let out = bn.matmul(w2)?.add(b2)?;
    out.sub(&Var::constant(target.clone()))?.square()?.mean_all()
}

/// Draws MLP parameters whose first-layer pre-activations are all at least
/// 0.05 from relu's kink, and whose per-feature batch variance after relu is
/// not tiny (a near-zero variance makes the normalisation's curvature huge
/// and finite differences meaningless); redraws until both hold.
fn mlp_inputs(seed: u64) -> (Vec<Tensor>, Tensor) {
    let mut rng = Rng::new(seed);
    for _ in 0..1000 {
        let x = normal(&[4, 3], 1.0, &mut rng);
        let w1 = normal(&[3, 5], 0.8, &mut rng);
        let b1 = normal(&[5], 0.3, &mut rng);
        let pre = x.matmul(&w1).unwrap().add(&b1).unwrap();
        let away_from_kink = pre.to_vec_f64().unwrap().iter().all(|z| z.abs() >= 0.05);
        let min_var = pre
            .relu()
            .unwrap()
            .var(Some(&[0]), false, false)
            .unwrap()
            .min(None, false)
            .unwrap()
            .to_scalar()
            .unwrap();
        if !away_from_kink || min_var < 0.05 {
            continue;
        }
        let gamma = Tensor::rand_uniform([5], 0.5, 1.5, DType::F64, &mut rng).unwrap();
        let beta = normal(&[5], 0.5, &mut rng);
        let w2 = normal(&[5, 2], 0.7, &mut rng);
        let b2 = normal(&[2], 0.3, &mut rng);
        let target = normal(&[4, 2], 1.0, &mut rng);
        return (vec![x, w1, b1, gamma, beta, w2, b2], target);
    }
    panic!("seed {seed}: could not draw MLP inputs away from the relu kink");
}

#[test]
fn mlp_with_batchnorm_passes_gradcheck_for_every_input() {
    for seed in 0..12u64 {
        let (inputs, target) = mlp_inputs(seed);
        // Backward must reach every input, including x.
        let params: Vec<Var> = inputs.iter().cloned().map(Var::parameter).collect();
        let grads = mlp_loss(&params, &target).unwrap().backward().unwrap();
        for (i, p) in params.iter().enumerate() {
            let g = grads
                .get(p)
                .unwrap_or_else(|| panic!("seed {seed}: no gradient for input {i}"));
            assert_eq!(g.dims(), p.dims(), "seed {seed}: gradient {i} has the wrong shape");
        }
        let report = gradcheck(
            |v| mlp_loss(v, &target),
            &inputs,
            &GradcheckOptions {
                seed,
                ..Default::default()
            },
        );
        assert_passed(
            &format!("MLP seed {seed} (inputs x, w1, b1, gamma, beta, w2, b2)"),
            report,
        );
    }
}

// ----- (b) softmax cross-entropy ---------------------------------------------

fn cross_entropy(logits: &Var, labels: &[usize]) -> Result<Var> {
    logits.log_softmax(-1)?.gather(labels)?.neg()?.mean_all()
}

#[test]
fn softmax_cross_entropy_passes_gradcheck() {
    let strategy = (1usize..=6, 2usize..=5, any::<u64>());
    let result = runner(32).run(&strategy, |(n, c, seed)| {
        let mut rng = Rng::new(seed);
        let logits = normal(&[n, c], 2.0, &mut rng);
        let labels: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let report = gradcheck(
            |v| cross_entropy(&v[0], &labels),
            std::slice::from_ref(&logits),
            &GradcheckOptions {
                seed,
                ..Default::default()
            },
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(report.passed, "n {n}, c {c}, labels {labels:?}: {report}");

        // And the closed form: d/dlogits = (softmax - onehot) / n.
        let x = Var::parameter(logits.clone());
        let grad = cross_entropy(&x, &labels)
            .unwrap()
            .backward()
            .unwrap()
            .remove(&x)
            .unwrap();
        let p = logits.softmax(-1).unwrap().to_vec_f64().unwrap();
        for (k, (&g, &pk)) in grad.to_vec_f64().unwrap().iter().zip(&p).enumerate() {
            let onehot = if labels[k / c] == k % c { 1.0 } else { 0.0 };
            let want = (pk - onehot) / n as f64;
            prop_assert!(
                approx::abs_diff_eq!(g, want, epsilon = 1e-12),
                "element {k}: {g} vs closed form {want}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ----- (c) random chains of smooth ops ---------------------------------------

/// One step of a chain. Constants are drawn when the chain is built, from
/// the case seed, with shapes that fit the current value.
#[derive(Debug, Clone)]
enum Step {
    Tanh,
    Sigmoid,
    Sin,
    /// `exp(0.5 * tanh(x))`: exp of small values, so chains stay bounded.
    ExpSmall,
    Square,
    MulScalar(f64),
    /// Add a constant broadcast over rows, columns, or everything.
    AddBroadcast(u8),
    SoftmaxLast,
    /// Sum over axis 0 or 1, keeping it.
    SumKeepdim(u8),
    /// Multiply on the right by a random `[cols, k]` constant.
    Matmul(usize),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Tanh),
        Just(Step::Sigmoid),
        Just(Step::Sin),
        Just(Step::ExpSmall),
        Just(Step::Square),
        (-1.5f64..1.5).prop_map(Step::MulScalar),
        (0u8..3).prop_map(Step::AddBroadcast),
        Just(Step::SoftmaxLast),
        (0u8..2).prop_map(Step::SumKeepdim),
        (1usize..=4).prop_map(Step::Matmul),
    ]
}

/// A step with its constants fixed, ready to apply.
enum Built {
    Plain(Step),
    Add(Tensor),
    Matmul(Tensor),
}

/// Fixes the constants of `steps` for an input of shape `[rows, cols]`
/// (every step keeps the value 2-D, so the shape is tracked as a pair).
fn build_chain(steps: &[Step], rows: usize, cols: usize, rng: &mut Rng) -> Vec<Built> {
    let (mut r, mut c) = (rows, cols);
    steps
        .iter()
        .map(|s| match s {
            Step::AddBroadcast(which) => {
                let shape: Vec<usize> = match which {
                    0 => vec![c],
                    1 => vec![r, 1],
                    _ => vec![1],
                };
                Built::Add(normal(&shape, 0.5, rng))
            }
            Step::SumKeepdim(axis) => {
                if *axis == 0 {
                    r = 1;
                } else {
                    c = 1;
                }
                Built::Plain(s.clone())
            }
            Step::Matmul(k) => {
                let m = normal(&[c, *k], 1.0 / (c as f64).sqrt(), rng);
                c = *k;
                Built::Matmul(m)
            }
            other => Built::Plain(other.clone()),
        })
        .collect()
}

/// Applies the chain, returning every intermediate value's largest magnitude too.
fn run_chain(x: &Var, chain: &[Built]) -> Result<(Var, f64)> {
    let mut v = x.clone();
    let mut largest = 0.0f64;
    for b in chain {
        v = match b {
            Built::Plain(Step::Tanh) => v.tanh()?,
            Built::Plain(Step::Sigmoid) => v.sigmoid()?,
            Built::Plain(Step::Sin) => v.sin()?,
            Built::Plain(Step::ExpSmall) => v.tanh()?.mul_scalar(0.5)?.exp()?,
            Built::Plain(Step::Square) => v.square()?,
            Built::Plain(Step::MulScalar(c)) => v.mul_scalar(*c)?,
            Built::Plain(Step::SoftmaxLast) => v.softmax(-1)?,
            Built::Plain(Step::SumKeepdim(axis)) => v.sum(Some(&[*axis as isize]), true)?,
            Built::Add(t) => v.add(&Var::constant(t.clone()))?,
            Built::Matmul(m) => v.matmul(&Var::constant(m.clone()))?,
            Built::Plain(s) => unreachable!("{s:?} is built with its constant"),
        };
        largest = v
            .value()
            .to_vec_f64()
            .unwrap()
            .iter()
            .fold(largest, |m, x| m.max(x.abs()));
    }
    Ok((v, largest))
}

#[test]
fn random_smooth_chains_pass_gradcheck() {
    let strategy = (
        1usize..=4,
        1usize..=4,
        prop::collection::vec(step_strategy(), 5..=8),
        any::<u64>(),
    );
    let ran = std::cell::Cell::new(0);
    let result = runner(64).run(&strategy, |(rows, cols, steps, seed)| {
        let mut rng = Rng::new(seed);
        let x = normal(&[rows, cols], 1.0, &mut rng);
        let chain = build_chain(&steps, rows, cols, &mut rng);
        let (_, largest) =
            no_grad(|| run_chain(&Var::constant(x.clone()), &chain)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Repeated squaring can grow values until finite differences lose
        // their digits; such chains say nothing about the backward rules.
        prop_assume!(largest < 50.0);
        ran.set(ran.get() + 1);
        let report = gradcheck(
            |v| Ok(run_chain(&v[0], &chain)?.0),
            std::slice::from_ref(&x),
            &GradcheckOptions {
                seed,
                ..Default::default()
            },
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(report.passed, "x [{rows}, {cols}], steps {steps:?}: {report}");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(ran.get() >= 32, "only {} chains were checked", ran.get());
}

// ----- (d) accumulation, no_grad and detach ----------------------------------

#[test]
fn a_var_used_twice_accumulates_its_gradient() {
    let values = vec![-1.5f64, -0.25, 0.0, 0.5, 2.0, 3.75];
    let x = Var::parameter(Tensor::from_vec(values.clone(), [2, 3]).unwrap());
    // y = x*x + x, so dy/dx = 2x + 1 (x feeds mul twice and add once).
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    let grad = y.backward().unwrap().remove(&x).unwrap().to_vec_f64().unwrap();
    let want: Vec<f64> = values.iter().map(|v| 2.0 * v + 1.0).collect();
    assert_eq!(grad, want);

    // The same through an intermediate used twice: z = h*h with h = 3x, dz/dx = 18x.
    let h = x.mul_scalar(3.0).unwrap();
    let z = h.mul(&h).unwrap().sum_all().unwrap();
    let grad = z.backward().unwrap().remove(&x).unwrap().to_vec_f64().unwrap();
    for (g, v) in grad.iter().zip(&values) {
        assert!(
            approx::abs_diff_eq!(*g, 18.0 * v, epsilon = 1e-12),
            "{g} vs {}",
            18.0 * v
        );
    }
}

#[test]
fn no_grad_results_are_constants_and_recording_resumes() {
    let x = Var::parameter(Tensor::from_vec(vec![0.5f64, -1.0], [2]).unwrap());
    let inside = no_grad(|| x.tanh().unwrap().mul(&x).unwrap());
    assert!(!inside.requires_grad(), "a result computed under no_grad requires grad");
    assert!(inside.is_leaf(), "a result computed under no_grad recorded a node");
    assert!(
        ferrograd::autograd::is_grad_enabled(),
        "no_grad did not restore recording"
    );
    let after = x.tanh().unwrap();
    assert!(
        after.requires_grad() && !after.is_leaf(),
        "recording did not resume after no_grad"
    );
    // Backward from a no_grad result reaches nothing.
    let grads = inside.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&x).is_none());
}

#[test]
fn detach_cuts_the_graph() {
    let values = vec![0.7f64, -1.3, 2.0];
    let x = Var::parameter(Tensor::from_vec(values.clone(), [3]).unwrap());
    let d = x.detach();
    assert!(!d.requires_grad() && d.is_leaf());
    assert_eq!(d.value().to_vec_f64().unwrap(), values);

    // Only through the detached side: no gradient at all.
    let only_detached = d.square().unwrap().sum_all().unwrap();
    assert!(!only_detached.requires_grad());
    let grads = only_detached.backward().unwrap();
    assert!(grads.get(&x).is_none(), "backward through detach produced a gradient");

    // x * detach(x): the gradient is x (the detached factor is a constant), not 2x.
    let mixed = x.mul(&d).unwrap().sum_all().unwrap();
    let grad = mixed.backward().unwrap().remove(&x).unwrap().to_vec_f64().unwrap();
    assert_eq!(grad, values);
}

// ----- (e) backward needs a scalar -------------------------------------------

#[test]
fn backward_on_a_non_scalar_is_an_error_not_a_panic() {
    let x = Var::parameter(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap());
    let y = x.tanh().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward().map(|_| ())));
    let err = match outcome {
        Ok(Err(e)) => e,
        Ok(Ok(())) => panic!("backward on a [2, 3] output succeeded"),
        Err(_) => panic!("backward on a [2, 3] output panicked instead of returning an error"),
    };
    assert!(matches!(err, Error::InvalidArgument { op: "backward", .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("sum_all"),
        "unhelpful message: {msg}"
    );
    // A one-element non-scalar shape is fine.
    let one = x.sum(None, true).unwrap();
    assert_eq!(one.dims(), &[1, 1]);
    assert!(one.backward().is_ok());
}
