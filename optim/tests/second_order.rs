//! The curvature family (`ferrograd_optim::second_order`): Hutchinson's
//! estimator, Sophia, AdaHessian and Newton-CG, driven with exact
//! Hessian-vector products of small test functions. First steps are
//! recomputed here with plain f64 arithmetic from the papers' equations (on a
//! diagonal quadratic, where Hutchinson's estimate is exact whatever the
//! probe), then convergence, state round trips and errors.

use ferrograd_engine::{Result, Rng, Shape, Tensor};
use ferrograd_optim::second_order::{hutchinson_diagonal, rademacher};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, Curvature, HyperParams, StepContext, TaskOptimizer};

// ----- problems with exact Hessians -------------------------------------------

/// A test function of one vector: value, gradient and Hessian-vector product.
struct Problem {
    f: fn(&[f64]) -> f64,
    grad: fn(&[f64]) -> Vec<f64>,
    hvp: fn(&[f64], &[f64]) -> Vec<f64>,
}

/// `H v` at a fixed point, counting products.
struct Exact<'a> {
    problem: &'a Problem,
    at: Vec<f64>,
    products: usize,
}

impl Curvature for Exact<'_> {
    fn hvp(&mut self, v: &[Tensor]) -> Result<Vec<Tensor>> {
        self.products += 1;
        Ok(vec![vec64(&(self.problem.hvp)(
            &self.at,
            &v[0].to_vec::<f64>().unwrap(),
        ))])
    }
}

fn vec64(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

const DIAGONAL: [f64; 3] = [4.0, 1.0, 0.25];

/// `f(x) = 1/2 sum a_i x_i^2` with `a = DIAGONAL`.
fn diagonal_quadratic() -> Problem {
    Problem {
        f: |x| x.iter().zip(DIAGONAL).map(|(x, a)| 0.5 * a * x * x).sum(),
        grad: |x| x.iter().zip(DIAGONAL).map(|(x, a)| a * x).collect(),
        hvp: |_, v| v.iter().zip(DIAGONAL).map(|(v, a)| a * v).collect(),
    }
}

/// A symmetric positive definite 4x4 matrix with off-diagonal coupling.
const SPD: [[f64; 4]; 4] = [
    [4.0, 1.0, 0.5, 0.0],
    [1.0, 3.0, 0.2, 0.3],
    [0.5, 0.2, 2.0, 0.1],
    [0.0, 0.3, 0.1, 1.0],
];
const MINIMUM: [f64; 4] = [1.0, -2.0, 0.5, 3.0];

fn spd_times(v: &[f64]) -> Vec<f64> {
    SPD.iter()
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

/// `f(x) = 1/2 (x - x*)^T A (x - x*)` with `A = SPD`, `x* = MINIMUM`.
fn coupled_quadratic() -> Problem {
    Problem {
        f: |x| {
            let d: Vec<f64> = x.iter().zip(MINIMUM).map(|(x, m)| x - m).collect();
            0.5 * d.iter().zip(spd_times(&d)).map(|(a, b)| a * b).sum::<f64>()
        },
        grad: |x| spd_times(&x.iter().zip(MINIMUM).map(|(x, m)| x - m).collect::<Vec<_>>()),
        hvp: |_, v| spd_times(v),
    }
}

/// Rosenbrock `(1 - x)^2 + 100 (y - x^2)^2`, minimum at (1, 1).
fn rosenbrock() -> Problem {
    Problem {
        f: |p| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
        grad: |p| {
            let (x, y) = (p[0], p[1]);
            vec![-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)]
        },
        hvp: |p, v| {
            let (x, y) = (p[0], p[1]);
            let (hxx, hxy, hyy) = (2.0 - 400.0 * (y - x * x) + 800.0 * x * x, -400.0 * x, 200.0);
            vec![hxx * v[0] + hxy * v[1], hxy * v[0] + hyy * v[1]]
        },
    }
}

// ----- driving an optimizer ----------------------------------------------------

fn build(name: &str, hps: &[(&str, f64)]) -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(name).unwrap();
    let mut h = HyperParams::defaults(info);
    for &(k, v) in hps {
        h.set(k, v).unwrap();
    }
    (info.build)(&h).unwrap()
}

/// One step as the trainer takes it; returns the hvps the step used.
fn step(opt: &mut dyn TaskOptimizer, x: &mut [f64], problem: &Problem) -> usize {
    let params = [vec64(x)];
    let grads = [vec64(&(problem.grad)(x))];
    let mut curvature = Exact {
        problem,
        at: x.to_vec(),
        products: 0,
    };
    let updates = opt
        .step_with_curvature(&params, &grads, &mut curvature, &StepContext::default())
        .unwrap();
    for (xi, u) in x.iter_mut().zip(updates[0].to_vec::<f64>().unwrap()) {
        *xi += u;
    }
    curvature.products
}

/// Runs `steps` steps from `start`; returns the iterates after each step.
fn run(opt: &mut dyn TaskOptimizer, start: &[f64], problem: &Problem, steps: usize) -> Vec<Vec<f64>> {
    opt.init_state(0, &ModelLayout::any(&[Shape::new([start.len()])]))
        .unwrap();
    let mut x = start.to_vec();
    (0..steps)
        .map(|_| {
            step(opt, &mut x, problem);
            x.clone()
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::abs_diff_eq!(g, w, epsilon = tol * w.abs().max(1.0)),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

// ----- Hutchinson ----------------------------------------------------------------

#[test]
fn hutchinson_is_exact_for_a_diagonal_hessian_and_unbiased_for_a_coupled_one() {
    let problem = diagonal_quadratic();
    let params = [vec64(&[0.3, -1.0, 2.0])];
    let mut rng = Rng::new(5);
    let mut exact = Exact {
        problem: &problem,
        at: vec![0.0; 3],
        products: 0,
    };
    let d = hutchinson_diagonal(&params, &[true], &mut rng, &mut exact).unwrap();
    assert_eq!(d[0].to_vec::<f64>().unwrap(), DIAGONAL.to_vec());

    // Off-diagonal terms average out: E[u * (A u)] = diag(A).
    let problem = coupled_quadratic();
    let params = [vec64(&[0.0; 4])];
    let mut exact = Exact {
        problem: &problem,
        at: vec![0.0; 4],
        products: 0,
    };
    let samples = 4000;
    let mut mean = [0.0; 4];
    for _ in 0..samples {
        let d = hutchinson_diagonal(&params, &[true], &mut rng, &mut exact).unwrap()[0]
            .to_vec::<f64>()
            .unwrap();
        for (m, v) in mean.iter_mut().zip(d) {
            *m += v / samples as f64;
        }
    }
    // Each sample's error is a sum of at most 3 off-diagonal terms of size
    // <= 1, so its standard deviation is <= sqrt(1.3); 4000 samples give
    // <= 0.018 for the mean, and 0.08 is over four standard deviations.
    for (i, m) in mean.iter().enumerate() {
        assert!((m - SPD[i][i]).abs() < 0.08, "diag[{i}]: {m} vs {}", SPD[i][i]);
    }
}

#[test]
fn rademacher_probes_are_zero_on_unmasked_tensors() {
    let params = [vec64(&[1.0; 5]), vec64(&[1.0; 3])];
    let u = rademacher(&params, &[true, false], &mut Rng::new(1)).unwrap();
    assert!(u[0].to_vec::<f64>().unwrap().iter().all(|s| s.abs() == 1.0));
    assert_eq!(u[1].to_vec::<f64>().unwrap(), vec![0.0; 3]);
}

// ----- first steps against the papers' equations ----------------------------------

#[test]
fn sophia_first_steps_match_the_paper_on_a_diagonal_quadratic() {
    let (lr, b1, b2, rho, eps, every) = (0.05, 0.96, 0.99, 0.5, 1e-12, 3u64);
    let mut opt = build(
        "sophia",
        &[
            ("lr", lr),
            ("beta1", b1),
            ("beta2", b2),
            ("rho", rho),
            ("every", every as f64),
        ],
    );
    let problem = diagonal_quadratic();
    let start = [1.0, -2.0, 3.0];
    let got = run(opt.as_mut(), &start, &problem, 7);
    // Algorithm 1: h is refreshed at t = 1, k + 1, 2k + 1, ... with the
    // exact diagonal (Hutchinson is exact here), m is an EMA of gradients.
    let (mut x, mut m, mut h) = (start.to_vec(), [0.0; 3], [0.0; 3]);
    for t in 1..=7u64 {
        let g = (problem.grad)(&x);
        if (t - 1) % every == 0 {
            for i in 0..3 {
                h[i] = b2 * h[i] + (1.0 - b2) * DIAGONAL[i];
            }
        }
        for i in 0..3 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            let ratio = (m[i] / (rho * h[i]).max(eps)).clamp(-1.0, 1.0);
            x[i] -= lr * ratio;
        }
        assert_close(&got[t as usize - 1], &x, 1e-12, &format!("sophia step {t}"));
    }
}

#[test]
fn adahessian_first_steps_match_the_paper_on_a_diagonal_quadratic() {
    let (lr, b1, b2, eps, k): (f64, f64, f64, f64, f64) = (0.1, 0.9, 0.999, 1e-4, 0.5);
    let mut opt = build(
        "adahessian",
        &[("lr", lr), ("hessian_power", k), ("weight_decay", 0.01)],
    );
    let problem = diagonal_quadratic();
    let start = [1.0, -2.0, 3.0];
    let got = run(opt.as_mut(), &start, &problem, 5);
    let (mut x, mut m, mut v) = (start.to_vec(), [0.0; 3], [0.0; 3]);
    for t in 1..=5i32 {
        let g = (problem.grad)(&x);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for i in 0..3 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * DIAGONAL[i] * DIAGONAL[i];
            let denom = (v[i].sqrt() / c2.sqrt()).powf(k) + eps;
            x[i] -= lr * (m[i] / c1 / denom + 0.01 * x[i]);
        }
        assert_close(&got[t as usize - 1], &x, 1e-12, &format!("adahessian step {t}"));
    }
}

// ----- Newton-CG ----------------------------------------------------------------

#[test]
fn newton_cg_solves_a_convex_quadratic_in_one_step() {
    let problem = coupled_quadratic();
    let mut opt = build(
        "newton_cg",
        &[("damping", 0.0), ("max_norm", 0.0), ("cg_iters", 4.0), ("tol", 0.0)],
    );
    opt.init_state(0, &ModelLayout::any(&[Shape::new([4])])).unwrap();
    let mut x = vec![0.0; 4];
    let products = step(opt.as_mut(), &mut x, &problem);
    assert!(products <= 4, "{products} hvps for 4 unknowns");
    assert_close(&x, &MINIMUM, 1e-10, "after one Newton-CG step");
}

#[test]
fn newton_cg_falls_back_to_steepest_descent_along_negative_curvature() {
    // f(x, y) = x^2 - y^2 at (1, 1): the gradient (2, -2) has curvature 0
    // along itself; with the saddle tilted, p.Hp < 0 on the first iteration.
    let saddle = Problem {
        f: |p| p[0] * p[0] - 3.0 * p[1] * p[1],
        grad: |p| vec![2.0 * p[0], -6.0 * p[1]],
        hvp: |_, v| vec![2.0 * v[0], -6.0 * v[1]],
    };
    let mut opt = build("newton_cg", &[("damping", 0.0), ("max_norm", 0.0), ("lr", 0.1)]);
    opt.init_state(0, &ModelLayout::any(&[Shape::new([2])])).unwrap();
    let mut x = vec![1.0, 1.0];
    step(opt.as_mut(), &mut x, &saddle);
    assert_close(
        &x,
        &[1.0 - 0.2, 1.0 + 0.6],
        1e-12,
        "a steepest-descent step of length lr",
    );
    assert!((saddle.f)(&x) < (saddle.f)(&[1.0, 1.0]));
}

#[test]
fn newton_cg_caps_the_step_norm() {
    let problem = coupled_quadratic();
    let mut opt = build("newton_cg", &[("max_norm", 0.5), ("damping", 0.0)]);
    opt.init_state(0, &ModelLayout::any(&[Shape::new([4])])).unwrap();
    let mut x = vec![0.0; 4];
    step(opt.as_mut(), &mut x, &problem);
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(approx::abs_diff_eq!(norm, 0.5, epsilon = 1e-12), "step norm {norm}");
}

// ----- convergence ------------------------------------------------------------------

#[test]
fn each_converges_on_rosenbrock_from_the_classic_start() {
    let problem = rosenbrock();
    type Case<'a> = (&'a str, &'a [(&'a str, f64)], usize);
    let cases: [Case; 3] = [
        ("newton_cg", &[("damping", 1e-3), ("max_norm", 0.5)], 100),
        ("sophia", &[("lr", 0.02), ("rho", 0.05), ("every", 1.0)], 5000),
        ("adahessian", &[("lr", 1.0)], 5000),
    ];
    for (name, hps, steps) in cases {
        let mut opt = build(name, hps);
        let path = run(opt.as_mut(), &[-1.2, 1.0], &problem, steps);
        let last = path.last().unwrap();
        let loss = (problem.f)(last);
        assert!(loss < 1e-3, "{name}: f = {loss} at {last:?} after {steps} steps");
    }
}

#[test]
fn sophia_and_adahessian_beat_gradient_scale_on_an_ill_conditioned_quadratic() {
    // Curvatures 4, 1, 0.25: a diagonal preconditioner equalises them, so
    // every coordinate shrinks at the same rate; 60 steps get all of them
    // below 1 % of the start.
    let problem = diagonal_quadratic();
    for (name, hps) in [
        ("sophia", vec![("lr", 0.05), ("rho", 1.0), ("every", 1.0)]),
        ("adahessian", vec![("lr", 0.05)]),
    ] {
        let mut opt = build(name, &hps);
        let start = [1.0, -1.0, 1.0];
        let last = run(opt.as_mut(), &start, &problem, 200).pop().unwrap();
        for (i, v) in last.iter().enumerate() {
            assert!(
                v.abs() < 0.01,
                "{name}: coordinate {i} (curvature {}) still at {v}",
                DIAGONAL[i]
            );
        }
    }
}

// ----- state and errors --------------------------------------------------------------

#[test]
fn a_saved_state_continues_bit_for_bit() {
    let problem = coupled_quadratic();
    for name in ["sophia", "adahessian", "newton_cg"] {
        let hps: &[(&str, f64)] = if name == "sophia" { &[("every", 2.0)] } else { &[] };
        let start = [0.5, 0.5, 0.5, 0.5];
        let straight = run(build(name, hps).as_mut(), &start, &problem, 6);
        let mut first = build(name, hps);
        let halfway = run(first.as_mut(), &start, &problem, 3).pop().unwrap();
        let mut resumed = build(name, hps);
        resumed.init_state(0, &ModelLayout::any(&[Shape::new([4])])).unwrap();
        resumed.load_state(&first.state()).unwrap();
        let mut x = halfway;
        for _ in 0..3 {
            step(resumed.as_mut(), &mut x, &problem);
        }
        assert_eq!(&x, straight.last().unwrap(), "{name} after a round trip");
    }
}

#[test]
fn stepping_without_curvature_says_what_to_do() {
    for name in ["sophia", "adahessian", "newton_cg"] {
        let mut opt = build(name, &[]);
        assert!(opt.uses_curvature());
        opt.init_state(0, &ModelLayout::any(&[Shape::new([2])])).unwrap();
        let err = opt
            .step(&[vec64(&[1.0, 2.0])], &[vec64(&[0.1, 0.2])], &StepContext::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Hessian-vector products") && err.contains("ferrograd train"),
            "{err}"
        );
    }
}

#[test]
fn bad_hyperparameters_are_refused_with_the_reason() {
    let refused = |name: &str, hp: &str, v: f64| {
        let mut h = HyperParams::defaults(catalog::lookup(name).unwrap());
        h.set(hp, v).unwrap_err().to_string()
    };
    let err = refused("sophia", "every", 0.5);
    assert!(err.contains("every") && err.contains("whole number >= 1"), "{err}");
    let err = refused("adahessian", "hessian_power", 2.0);
    assert!(err.contains("hessian_power") && err.contains("(0, 1]"), "{err}");
}
