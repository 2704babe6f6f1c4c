//! The modern family (`ferrograd_optim::modern`): for each algorithm, its
//! first steps recomputed here with plain f64 arithmetic from the paper's
//! equations; convergence on a convex quadratic and on Rosenbrock (a matrix
//! quadratic for Muon); and a state round trip that must continue bit for bit.
//!
//! The optimizers are driven as the trainer drives them: `query_at_params`,
//! the gradient at the returned parameters (or the current ones for `None`),
//! `step`, and `param += update`.

use ferrograd_engine::{DType, Result, Shape, Tensor};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, HyperParams, StepContext, TaskOptimizer};

// ----- helpers ---------------------------------------------------------------

fn build(name: &str, hps: &[(&str, f64)]) -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(name).unwrap();
    let mut h = HyperParams::defaults(info);
    for &(k, v) in hps {
        h.set(k, v).unwrap();
    }
    (info.build)(&h).unwrap()
}

fn vec64(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

fn mat64(v: &[f64], rows: usize, cols: usize) -> Tensor {
    Tensor::from_vec(v.to_vec(), [rows, cols]).unwrap()
}

fn shapes(params: &[Tensor]) -> Vec<Shape> {
    params.iter().map(|p| p.shape().clone()).collect()
}

/// One trainer step: query, gradient at the answer, step, `param += update`.
/// Returns the queried point (if any) and the updates.
fn train_step(
    opt: &mut dyn TaskOptimizer,
    params: &mut [Tensor],
    grad: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
) -> Result<(Option<Vec<Tensor>>, Vec<Tensor>)> {
    let ctx = StepContext::default();
    let query = opt.query_at_params(params, &ctx)?;
    let g = grad(query.as_deref().unwrap_or(params));
    let updates = opt.step(params, &g, &ctx)?;
    for (p, u) in params.iter_mut().zip(&updates) {
        *p = p.add(u)?;
    }
    Ok((query, updates))
}

fn drive(opt: &mut dyn TaskOptimizer, params: &mut [Tensor], grad: &dyn Fn(&[Tensor]) -> Vec<Tensor>, steps: usize) {
    opt.init_state(0, &ModelLayout::any(&shapes(params))).unwrap();
    for _ in 0..steps {
        train_step(opt, params, grad).unwrap();
    }
}

fn assert_close(got: &Tensor, want: &[f64], what: &str) {
    let got = got.to_vec::<f64>().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::abs_diff_eq!(g, w, epsilon = 1e-13 + 1e-10 * w.abs()),
            "{what}[{j}]: got {g:e}, want {w:e}"
        );
    }
}

/// -1, 0 or 1 (f64::signum maps 0 to 1).
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

// The convex quadratic f(x) = 0.5 sum a_i x_i^2, a_i = 0.5, 1.0, ..., 5.0,
// from x_i = 1 + 0.05 i (f0 = 23.44).
fn quad_a() -> Vec<f64> {
    (0..10).map(|i| 0.5 + 0.5 * i as f64).collect()
}
fn quad_start() -> Vec<Tensor> {
    vec![vec64(&(0..10).map(|i| 1.0 + 0.05 * i as f64).collect::<Vec<_>>())]
}
fn quad_f(p: &[Tensor]) -> f64 {
    p[0].to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(quad_a())
        .map(|(x, a)| 0.5 * a * x * x)
        .sum()
}
fn quad_grad(p: &[Tensor]) -> Vec<Tensor> {
    let g: Vec<f64> = p[0]
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(quad_a())
        .map(|(x, a)| a * x)
        .collect();
    vec![vec64(&g)]
}

// Rosenbrock f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1) (f0 = 24.2).
fn rosen_start() -> Vec<Tensor> {
    vec![vec64(&[-1.2, 1.0])]
}
fn rosen_f(p: &[Tensor]) -> f64 {
    let v = p[0].to_vec::<f64>().unwrap();
    (1.0 - v[0]).powi(2) + 100.0 * (v[1] - v[0] * v[0]).powi(2)
}
fn rosen_grad(p: &[Tensor]) -> Vec<Tensor> {
    let v = p[0].to_vec::<f64>().unwrap();
    let (x, y) = (v[0], v[1]);
    vec![vec64(&[
        -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
        200.0 * (y - x * x),
    ])]
}

/// Feeds fixed gradients (whatever the query) and checks each update
/// against `expected[t]`, per tensor.
fn check_fixed_grads(
    opt: &mut dyn TaskOptimizer,
    params: &mut [Tensor],
    grads: &[Vec<Vec<f64>>],
    expected: &[Vec<Vec<f64>>],
) {
    opt.init_state(0, &ModelLayout::any(&shapes(params))).unwrap();
    for (t, (g, want)) in grads.iter().zip(expected).enumerate() {
        let g: Vec<Tensor> = g
            .iter()
            .zip(params.iter())
            .map(|(g, p)| Tensor::from_vec(g.clone(), p.shape().clone()).unwrap())
            .collect();
        let (_, updates) = train_step(opt, params, &|_| g.clone()).unwrap();
        for (i, (u, w)) in updates.iter().zip(want).enumerate() {
            assert_close(u, w, &format!("{} step {} tensor {i}", opt.name(), t + 1));
        }
    }
}

const G3: [[f64; 3]; 3] = [[0.1, -0.2, 0.3], [0.05, 0.1, -0.4], [-0.3, 0.2, 0.1]];
const P3: [f64; 3] = [0.5, -1.0, 2.0];

// ----- hand-computed first steps ----------------------------------------------

#[test]
fn adabelief_first_steps_match_the_paper() {
    let (lr, b1, b2, eps, wd) = (0.01, 0.9f64, 0.999f64, 1e-16, 0.1);
    let (mut p, mut m, mut s) = (P3, [0.0; 3], [0.0; 3]);
    let mut expected = Vec::new();
    for (t, g) in G3.iter().enumerate() {
        let t = (t + 1) as i32;
        let mut u = [0.0; 3];
        for j in 0..3 {
            m[j] = b1 * m[j] + (1.0 - b1) * g[j];
            s[j] = b2 * s[j] + (1.0 - b2) * (g[j] - m[j]).powi(2) + eps;
            let m_hat = m[j] / (1.0 - b1.powi(t));
            let s_hat = s[j] / (1.0 - b2.powi(t));
            u[j] = -lr * (m_hat / (s_hat.sqrt() + eps) + wd * p[j]);
            p[j] += u[j];
        }
        expected.push(vec![u.to_vec()]);
    }
    let mut opt = build("adabelief", &[("lr", lr), ("weight_decay", wd)]);
    let grads: Vec<Vec<Vec<f64>>> = G3.iter().map(|g| vec![g.to_vec()]).collect();
    check_fixed_grads(opt.as_mut(), &mut [vec64(&P3)], &grads, &expected);
}

#[test]
fn lion_first_steps_match_the_paper() {
    let (lr, b1, b2, wd) = (0.01, 0.9, 0.99, 0.5);
    // A zero gradient on a zero momentum gives sign 0; later steps flip signs.
    let grads = [[0.1, -0.2, 0.0], [-0.5, 0.01, 0.3], [0.02, 0.03, -0.01]];
    let (mut p, mut m) = (P3, [0.0; 3]);
    let mut expected = Vec::new();
    for g in &grads {
        let mut u = [0.0; 3];
        for j in 0..3 {
            let c = b1 * m[j] + (1.0 - b1) * g[j];
            u[j] = -lr * (sign(c) + wd * p[j]);
            m[j] = b2 * m[j] + (1.0 - b2) * g[j];
            p[j] += u[j];
        }
        expected.push(vec![u.to_vec()]);
    }
    assert_eq!(expected[0][0][2], -lr * wd * P3[2], "sign(0) must be 0");
    let mut opt = build("lion", &[("lr", lr), ("weight_decay", wd)]);
    let grads: Vec<Vec<Vec<f64>>> = grads.iter().map(|g| vec![g.to_vec()]).collect();
    check_fixed_grads(opt.as_mut(), &mut [vec64(&P3)], &grads, &expected);
}

/// Adan in the *paper's* convention (b1, b2, b3 = 0.02, 0.08, 0.01, i.e.
/// m = (1 - b1) m + b1 g), against the catalog's (0.98, 0.92, 0.99).
fn adan_expected(no_prox: bool) -> Vec<Vec<Vec<f64>>> {
    let (lr, b1, b2, b3, eps, wd) = (0.01, 0.02f64, 0.08f64, 0.01f64, 1e-8, 0.05);
    let (mut p, mut m, mut v, mut n) = (P3, [0.0; 3], [0.0; 3], [0.0; 3]);
    let mut prev = G3[0];
    let mut expected = Vec::new();
    for (t, g) in G3.iter().enumerate() {
        let t = (t + 1) as i32;
        let mut u = [0.0; 3];
        for j in 0..3 {
            let d = g[j] - prev[j];
            m[j] = (1.0 - b1) * m[j] + b1 * g[j];
            v[j] = (1.0 - b2) * v[j] + b2 * d;
            n[j] = (1.0 - b3) * n[j] + b3 * (g[j] + (1.0 - b2) * d).powi(2);
            let m_hat = m[j] / (1.0 - (1.0 - b1).powi(t));
            let v_hat = v[j] / (1.0 - (1.0 - b2).powi(t));
            let n_hat = n[j] / (1.0 - (1.0 - b3).powi(t));
            let eta = lr / (n_hat.sqrt() + eps);
            let dir = eta * (m_hat + (1.0 - b2) * v_hat);
            let new = if no_prox {
                p[j] * (1.0 - lr * wd) - dir
            } else {
                (p[j] - dir) / (1.0 + lr * wd)
            };
            u[j] = new - p[j];
            p[j] = new;
        }
        prev = *g;
        expected.push(vec![u.to_vec()]);
    }
    expected
}

#[test]
fn adan_first_steps_match_the_paper() {
    let grads: Vec<Vec<Vec<f64>>> = G3.iter().map(|g| vec![g.to_vec()]).collect();
    for no_prox in [false, true] {
        let mut opt = build(
            "adan",
            &[
                ("lr", 0.01),
                ("weight_decay", 0.05),
                ("no_prox", f64::from(u8::from(no_prox))),
            ],
        );
        check_fixed_grads(opt.as_mut(), &mut [vec64(&P3)], &grads, &adan_expected(no_prox));
    }
}

#[test]
fn lamb_first_steps_match_the_paper() {
    let (lr, b1, b2, eps, wd) = (0.01, 0.9f64, 0.999f64, 1e-6, 0.01);
    // Tensor 0 is P3; tensor 1 starts at zero (trust ratio 1 on step 1).
    let grads = [
        [vec![0.1, -0.2, 0.3], vec![0.5, -0.5]],
        [vec![0.05, 0.1, -0.4], vec![0.2, 0.1]],
        [vec![-0.3, 0.2, 0.1], vec![-0.1, 0.3]],
    ];
    let mut p = [P3.to_vec(), vec![0.0, 0.0]];
    let mut m = [vec![0.0; 3], vec![0.0; 2]];
    let mut v = m.clone();
    let mut expected = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        let mut step = Vec::new();
        for i in 0..2 {
            let mut u = vec![0.0; p[i].len()];
            for j in 0..u.len() {
                m[i][j] = b1 * m[i][j] + (1.0 - b1) * g[i][j];
                v[i][j] = b2 * v[i][j] + (1.0 - b2) * g[i][j].powi(2);
                let r = (m[i][j] / (1.0 - b1.powi(t))) / ((v[i][j] / (1.0 - b2.powi(t))).sqrt() + eps);
                u[j] = r + wd * p[i][j];
            }
            let (wn, un) = (norm(&p[i]), norm(&u));
            let ratio = if wn > 0.0 && un > 0.0 { wn / un } else { 1.0 };
            let delta: Vec<f64> = u.iter().map(|u| -lr * ratio * u).collect();
            for j in 0..delta.len() {
                p[i][j] += delta[j];
            }
            step.push(delta);
        }
        expected.push(step);
    }
    let mut opt = build("lamb", &[("lr", lr)]);
    let grads: Vec<Vec<Vec<f64>>> = grads.iter().map(|g| g.to_vec()).collect();
    check_fixed_grads(opt.as_mut(), &mut [vec64(&P3), vec64(&[0.0, 0.0])], &grads, &expected);
}

#[test]
fn lars_first_steps_match_the_paper() {
    let (lr, mom, wd, eta) = (1.0, 0.9, 5e-4, 1e-3);
    let grads = [
        [vec![0.1, -0.2, 0.3], vec![0.5, -0.5]],
        [vec![0.05, 0.1, -0.4], vec![0.2, 0.1]],
        [vec![-0.3, 0.2, 0.1], vec![-0.1, 0.3]],
    ];
    let mut p = [P3.to_vec(), vec![0.0, 0.0]];
    let mut vel = [vec![0.0; 3], vec![0.0; 2]];
    let mut expected = Vec::new();
    for g in &grads {
        let mut step = Vec::new();
        for i in 0..2 {
            let (wn, gn) = (norm(&p[i]), norm(&g[i]));
            let local = if wn > 0.0 && gn > 0.0 {
                eta * wn / (gn + wd * wn)
            } else {
                1.0
            };
            let mut delta = vec![0.0; p[i].len()];
            for j in 0..delta.len() {
                vel[i][j] = mom * vel[i][j] + lr * local * (g[i][j] + wd * p[i][j]);
                delta[j] = -vel[i][j];
            }
            for j in 0..delta.len() {
                p[i][j] += delta[j];
            }
            step.push(delta);
        }
        expected.push(step);
    }
    let mut opt = build("lars", &[]);
    let grads: Vec<Vec<Vec<f64>>> = grads.iter().map(|g| g.to_vec()).collect();
    check_fixed_grads(opt.as_mut(), &mut [vec64(&P3), vec64(&[0.0, 0.0])], &grads, &expected);
}

/// Schedule-Free on f = 0.5 sum a_j x_j^2 with warmup: the queried y, the
/// update (x' - params, or y' - params with hold_y) and the model's params.
fn check_schedule_free(adam: bool, hold_y: bool) {
    let a = [1.0, 2.0, 4.0];
    let p0 = [1.0, -0.5, 0.25];
    let (beta, beta2, eps, wd, warmup) = (0.9, 0.999f64, 1e-8, 0.01, 2u64);
    let lr = if adam { 0.05 } else { 0.1 };
    let (mut z, mut x, mut v) = (p0, p0, [0.0; 3]);
    let (mut lr_max, mut weight_sum) = (-1.0f64, 0.0);
    let mut opt = if adam {
        build(
            "sf_adamw",
            &[
                ("lr", lr),
                ("weight_decay", wd),
                ("warmup_steps", 2.0),
                ("hold_y", f64::from(u8::from(hold_y))),
            ],
        )
    } else {
        build(
            "sf_sgd",
            &[
                ("lr", lr),
                ("weight_decay", wd),
                ("warmup_steps", 2.0),
                ("hold_y", f64::from(u8::from(hold_y))),
            ],
        )
    };
    let mut params = vec![vec64(&p0)];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let grad = |q: &[Tensor]| -> Vec<Tensor> {
        let g: Vec<f64> = q[0]
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(a)
            .map(|(y, a)| a * y)
            .collect();
        vec![vec64(&g)]
    };
    for k in 0..4u64 {
        let y: Vec<f64> = (0..3).map(|j| (1.0 - beta) * z[j] + beta * x[j]).collect();
        let before = params[0].to_vec::<f64>().unwrap();
        let (query, update) = train_step(opt.as_mut(), &mut params, &grad).unwrap();
        match (&query, hold_y) {
            (Some(q), false) => assert_close(&q[0], &y, &format!("y at step {}", k + 1)),
            (None, true) => assert_close(&vec64(&before), &y, &format!("params = y at step {}", k + 1)),
            _ => panic!("hold_y={hold_y} but query {query:?}"),
        }
        let sched = if k < warmup {
            (k + 1) as f64 / warmup as f64
        } else {
            1.0
        };
        let lr_k = if adam {
            lr * sched * (1.0 - beta2.powi(k as i32 + 1)).sqrt()
        } else {
            lr * sched
        };
        lr_max = lr_max.max(lr_k);
        let weight = lr_max * lr_max;
        weight_sum += weight;
        let c = weight / weight_sum;
        let mut target = [0.0; 3];
        for j in 0..3 {
            let g = a[j] * y[j];
            if adam {
                v[j] = beta2 * v[j] + (1.0 - beta2) * g * g;
                z[j] = z[j] - lr_k * wd * y[j] - lr_k * g / (v[j].sqrt() + eps);
            } else {
                z[j] -= lr_k * (g + wd * y[j]);
            }
            x[j] = (1.0 - c) * x[j] + c * z[j];
            target[j] = if hold_y {
                (1.0 - beta) * z[j] + beta * x[j]
            } else {
                x[j]
            };
        }
        let want: Vec<f64> = (0..3).map(|j| target[j] - before[j]).collect();
        assert_close(&update[0], &want, &format!("update at step {}", k + 1));
        assert_close(&params[0], &target, &format!("params at step {}", k + 1));
    }
}

#[test]
fn schedule_free_sgd_first_steps_match_the_paper() {
    check_schedule_free(false, false);
    check_schedule_free(false, true);
}

#[test]
fn schedule_free_adamw_first_steps_match_the_paper() {
    check_schedule_free(true, false);
    check_schedule_free(true, true);
}

/// Newton-Schulz in plain f64 on a row-major `rows x cols` matrix.
fn ns_reference(g: &[f64], rows: usize, cols: usize, steps: usize) -> Vec<f64> {
    let (a, b, c) = (3.4445, -4.7750, 2.0315);
    let tall = rows > cols;
    let (r, k) = if tall { (cols, rows) } else { (rows, cols) };
    // x: r x k
    let mut x: Vec<f64> = (0..r * k)
        .map(|idx| {
            let (i, j) = (idx / k, idx % k);
            if tall {
                g[j * cols + i]
            } else {
                g[i * cols + j]
            }
        })
        .collect();
    let nrm = norm(&x) + 1e-7;
    x.iter_mut().for_each(|v| *v /= nrm);
    let matmul = |p: &[f64], q: &[f64], n: usize, inner: usize, m: usize| -> Vec<f64> {
        (0..n * m)
            .map(|idx| (0..inner).map(|l| p[(idx / m) * inner + l] * q[l * m + idx % m]).sum())
            .collect()
    };
    for _ in 0..steps {
        let xt: Vec<f64> = (0..k * r).map(|idx| x[(idx % r) * k + idx / r]).collect();
        let gram = matmul(&x, &xt, r, k, r);
        let gram2 = matmul(&gram, &gram, r, r, r);
        let poly: Vec<f64> = gram.iter().zip(&gram2).map(|(g1, g2)| b * g1 + c * g2).collect();
        let px = matmul(&poly, &x, r, r, k);
        x = x.iter().zip(&px).map(|(x, px)| a * x + px).collect();
    }
    if tall {
        (0..rows * cols).map(|idx| x[(idx % cols) * k + idx / cols]).collect()
    } else {
        x
    }
}

#[test]
fn newton_schulz_matches_a_plain_reference_and_nearly_orthogonalises() {
    let g = [3.0, 0.2, -0.1, 0.4, 0.5, 0.3];
    for (rows, cols) in [(2, 3), (3, 2)] {
        let got = ferrograd_optim::modern::newton_schulz5(&mat64(&g, rows, cols), 5).unwrap();
        assert_close(&got, &ns_reference(&g, rows, cols, 5), &format!("NS {rows}x{cols}"));
    }
    // A diagonal input keeps its singular vectors; the quintic maps every
    // singular value into roughly [0.7, 1.2] (not exactly 1, by design).
    let d = mat64(&[2.0, 0.0, 0.0, 0.0, 0.3, 0.0], 2, 3);
    let o = ferrograd_optim::modern::newton_schulz5(&d, 5)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!((0.7..1.2).contains(&o[0]) && (0.7..1.2).contains(&o[4]), "{o:?}");
    assert!([1, 2, 3, 5].iter().all(|&i| o[i] == 0.0), "{o:?}");
}

#[test]
fn muon_first_steps_match_the_reference() {
    let (lr, mu, wd) = (0.02, 0.95, 0.1);
    let (alr, b1, b2, eps) = (3e-3, 0.9f64, 0.95f64, 1e-10);
    // A wide 2x3 matrix, a tall 3x2 matrix (scaled by sqrt(3/2)) and a bias.
    let dims = [(2usize, 3usize), (3, 2), (2, 0)];
    let p0 = [
        vec![0.5, -0.2, 0.1, 0.3, 0.8, -0.6],
        vec![0.2, 0.4, -0.3, 0.1, 0.9, -0.5],
        vec![0.1, -0.1],
    ];
    let grads: Vec<Vec<Vec<f64>>> = (0..3)
        .map(|t| {
            let f = |i: usize, j: usize| ((i * 7 + j * 3 + t * 5) % 11) as f64 / 5.0 - 1.0;
            vec![
                (0..6).map(|j| f(0, j)).collect(),
                (0..6).map(|j| f(1, j)).collect(),
                (0..2).map(|j| f(2, j)).collect(),
            ]
        })
        .collect();
    let mut p = p0.clone();
    let mut m: Vec<Vec<f64>> = p0.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut v = m.clone();
    let mut expected = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        let mut step = Vec::new();
        for i in 0..3 {
            let n = p[i].len();
            let mut delta = vec![0.0; n];
            if i < 2 {
                let (rows, cols) = dims[i];
                let mut u = vec![0.0; n];
                for j in 0..n {
                    m[i][j] = mu * m[i][j] + (1.0 - mu) * g[i][j];
                    u[j] = (1.0 - mu) * g[i][j] + mu * m[i][j];
                }
                let o = ns_reference(&u, rows, cols, 5);
                let scale = (rows as f64 / cols as f64).max(1.0).sqrt();
                for j in 0..n {
                    delta[j] = -lr * (o[j] * scale + wd * p[i][j]);
                }
            } else {
                for j in 0..n {
                    m[i][j] = b1 * m[i][j] + (1.0 - b1) * g[i][j];
                    v[i][j] = b2 * v[i][j] + (1.0 - b2) * g[i][j].powi(2);
                    let dir = (m[i][j] / (1.0 - b1.powi(t))) / ((v[i][j] / (1.0 - b2.powi(t))).sqrt() + eps);
                    delta[j] = -alr * (dir + wd * p[i][j]);
                }
            }
            for j in 0..n {
                p[i][j] += delta[j];
            }
            step.push(delta);
        }
        expected.push(step);
    }
    let mut opt = build("muon", &[("weight_decay", wd), ("adam_lr", alr)]);
    let mut params = vec![mat64(&p0[0], 2, 3), mat64(&p0[1], 3, 2), vec64(&p0[2])];
    check_fixed_grads(opt.as_mut(), &mut params, &grads, &expected);
}

#[test]
fn prodigy_first_steps_match_the_reference() {
    let (lr, b1, b2, eps, d0) = (1.0, 0.9, 0.999f64, 1e-8, 1e-6);
    let b3 = b2.sqrt();
    let grads = [[0.4, -0.3, 0.2], [0.3, -0.1, 0.25], [0.2, 0.1, 0.2], [0.1, -0.2, 0.3]];
    let x0 = [1.0, -2.0, 0.5];
    let (mut p, mut m, mut v, mut s) = (x0, [0.0; 3], [0.0; 3], [0.0f64; 3]);
    let (mut d, mut d_max, mut num) = (d0, d0, 0.0);
    let mut expected = Vec::new();
    let mut ds = Vec::new();
    for g in &grads {
        let dlr = d * lr;
        num = num * b3 + (d / d0) * dlr * (0..3).map(|j| g[j] * (x0[j] - p[j])).sum::<f64>();
        let mut den = 0.0;
        for j in 0..3 {
            m[j] = b1 * m[j] + (1.0 - b1) * d * g[j];
            v[j] = b2 * v[j] + (1.0 - b2) * d * d * g[j] * g[j];
            s[j] = b3 * s[j] + (d / d0) * dlr * g[j];
            den += s[j].abs();
        }
        d_max = d_max.max(num / den);
        let d_new = d_max;
        let mut u = [0.0; 3];
        for j in 0..3 {
            u[j] = -dlr * m[j] / (v[j].sqrt() + d_new * eps);
            p[j] += u[j];
        }
        d = d_new;
        ds.push(d);
        expected.push(vec![u.to_vec()]);
    }
    // The estimate must actually move after the first step (x = x0 there).
    assert_eq!(ds[0], d0);
    assert!(ds[3] > ds[1] && ds[1] > d0, "{ds:?}");
    let mut opt = build("prodigy", &[]);
    let grads: Vec<Vec<Vec<f64>>> = grads.iter().map(|g| vec![g.to_vec()]).collect();
    check_fixed_grads(opt.as_mut(), &mut [vec64(&x0)], &grads, &expected);
}

// ----- convergence -----------------------------------------------------------

/// A convergence case: optimizer name, hyperparameters, steps, and the
/// value the objective must end below.
type Case = (&'static str, &'static [(&'static str, f64)], usize, f64);

/// `(name, hyperparameters, steps, f below)` on the quadratic (f0 = 23.44).
const QUADRATIC: &[Case] = &[
    ("adabelief", &[("lr", 0.03)], 2000, 1e-20),
    ("lion", &[("lr", 3e-3)], 2000, 1e-3),
    ("adan", &[("lr", 3e-3)], 2000, 1e-20),
    ("lamb", &[("lr", 0.1)], 2000, 1e-20),
    ("lars", &[("lr", 3.0)], 2000, 1e-20),
    ("sf_sgd", &[("lr", 1.0)], 2000, 1e-20),
    ("sf_adamw", &[("lr", 0.1)], 2000, 1e-20),
    ("muon", &[("adam_lr", 3e-3)], 2000, 1e-5),
    ("prodigy", &[], 2000, 1e-20),
];

/// `(name, hyperparameters, steps, f below)` on Rosenbrock (f0 = 24.2).
const ROSENBROCK: &[Case] = &[
    ("adabelief", &[("lr", 0.03)], 2000, 1e-4),
    ("lion", &[("lr", 3e-3)], 2000, 2e-2),
    ("adan", &[("lr", 3e-3)], 2000, 1e-5),
    ("lamb", &[("lr", 3e-3), ("weight_decay", 0.0)], 10000, 0.1),
    ("lars", &[("lr", 3.0)], 2000, 1e-4),
    ("sf_sgd", &[("lr", 1e-3)], 5000, 5e-3),
    ("sf_adamw", &[("lr", 0.1)], 2000, 5e-3),
    ("muon", &[("adam_lr", 3e-3)], 2000, 1e-3),
    ("prodigy", &[], 2000, 1e-5),
];

#[test]
fn every_algorithm_minimises_the_quadratic() {
    for &(name, hps, steps, below) in QUADRATIC {
        let mut p = quad_start();
        drive(build(name, hps).as_mut(), &mut p, &quad_grad, steps);
        let f = quad_f(&p);
        assert!(
            f < below,
            "{name} {hps:?}: f = {f:e} after {steps} steps, want < {below:e}"
        );
    }
}

#[test]
fn every_algorithm_minimises_rosenbrock() {
    for &(name, hps, steps, below) in ROSENBROCK {
        let mut p = rosen_start();
        drive(build(name, hps).as_mut(), &mut p, &rosen_grad, steps);
        let f = rosen_f(&p);
        assert!(
            f < below,
            "{name} {hps:?}: f = {f:e} after {steps} steps, want < {below:e}"
        );
    }
}

/// Muon on f(W) = 0.5 sum A_ij W_ij^2 for a wide 4x6 and a tall 6x4 matrix,
/// A from 0.5 to 5, W_ij = 1 + 0.05 (6 i + j) (f0 = 110.4 / 108.7): default
/// lr 0.02, 1000 steps, f < 5e-3. With a constant lr the orthogonalised step
/// keeps a fixed spectral size, so f levels off near lr^2 rather than at 0.
#[test]
fn muon_minimises_a_matrix_quadratic() {
    for (rows, cols) in [(4usize, 6usize), (6, 4)] {
        let n = rows * cols;
        let a: Vec<f64> = (0..n).map(|i| 0.5 + 4.5 * i as f64 / (n - 1) as f64).collect();
        let w0: Vec<f64> = (0..n).map(|i| 1.0 + 0.05 * i as f64).collect();
        let f = |p: &[Tensor]| -> f64 {
            p[0].to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(&a)
                .map(|(w, a)| 0.5 * a * w * w)
                .sum()
        };
        let grad = |p: &[Tensor]| -> Vec<Tensor> {
            let g: Vec<f64> = p[0]
                .to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(&a)
                .map(|(w, a)| a * w)
                .collect();
            vec![mat64(&g, rows, cols)]
        };
        let mut p = vec![mat64(&w0, rows, cols)];
        let f0 = f(&p);
        drive(build("muon", &[]).as_mut(), &mut p, &grad, 1000);
        assert!(f(&p) < 5e-3, "{rows}x{cols}: f = {:e} (f0 = {f0})", f(&p));
    }
}

/// Every entry, with its defaults, runs on f32 tensors (the trainer's dtype)
/// without producing non-finite values and lowers the quadratic.
#[test]
fn every_entry_runs_in_f32() {
    for info in ferrograd_optim::modern::CATALOG {
        let mut opt = (info.build)(&HyperParams::defaults(info)).unwrap();
        let a = Tensor::from_vec((0..12).map(|i| 0.5 + 0.4 * i as f32).collect::<Vec<_>>(), [3, 4]).unwrap();
        let mut p = vec![
            Tensor::ones([3, 4], DType::F32).unwrap(),
            Tensor::ones([4], DType::F32).unwrap(),
        ];
        let f = |p: &[Tensor]| {
            p[0].square()
                .unwrap()
                .mul(&a)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap()
                + p[1].square().unwrap().sum_all().unwrap().to_scalar().unwrap()
        };
        let grad = |q: &[Tensor]| vec![q[0].mul(&a).unwrap(), q[1].mul_scalar(2.0).unwrap()];
        let f0 = f(&p);
        drive(opt.as_mut(), &mut p, &grad, 300);
        assert!(p.iter().all(|t| t.all_finite().unwrap()), "{}", info.name);
        assert!(f(&p) < f0, "{}: {} -> {}", info.name, f0, f(&p));
    }
}

// ----- state round trip ------------------------------------------------------

/// A non-quadratic gradient over a matrix and a vector, so that every slot
/// of every algorithm is exercised.
fn mixed_grad(p: &[Tensor]) -> Vec<Tensor> {
    let g0: Vec<f64> = p[0]
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, x)| (1.0 + i as f64 * 0.3) * x + x.powi(3) * 0.1)
        .collect();
    let g1: Vec<f64> = p[1]
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|x| x - 0.5 + x.sin())
        .collect();
    vec![mat64(&g0, 3, 4), vec64(&g1)]
}

fn mixed_start() -> Vec<Tensor> {
    vec![
        mat64(&(0..12).map(|i| (i as f64 * 0.37).cos()).collect::<Vec<_>>(), 3, 4),
        vec64(&[0.3, -0.7, 1.1, 0.0]),
    ]
}

/// Runs `k` steps, saves, loads into a fresh instance and checks that both
/// continue with identical queries and updates, bit for bit.
pub fn round_trip(name: &str, hps: &[(&str, f64)], k: usize) {
    let mut a = build(name, hps);
    let mut params = mixed_start();
    drive(a.as_mut(), &mut params, &mixed_grad, k);
    let mut b = build(name, hps);
    b.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    b.load_state(&a.state()).unwrap();
    let mut pb = params.clone();
    for t in 0..5 {
        let (qa, ua) = train_step(a.as_mut(), &mut params, &mixed_grad).unwrap();
        let (qb, ub) = train_step(b.as_mut(), &mut pb, &mixed_grad).unwrap();
        let bits = |v: &[Tensor]| {
            v.iter()
                .map(|t| {
                    t.to_vec::<f64>()
                        .unwrap()
                        .iter()
                        .map(|x| x.to_bits())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            qa.as_deref().map(bits),
            qb.as_deref().map(bits),
            "{name}: query {t} after resuming"
        );
        assert_eq!(bits(&ua), bits(&ub), "{name}: update {t} after resuming");
    }
}

#[test]
fn every_algorithm_resumes_bit_for_bit() {
    for info in ferrograd_optim::modern::CATALOG {
        round_trip(info.name, &[], 4);
    }
    round_trip("sf_sgd", &[("lr", 0.1), ("warmup_steps", 6.0)], 3);
    round_trip("sf_adamw", &[("hold_y", 1.0), ("weight_decay", 0.1)], 3);
    round_trip("prodigy", &[("bias_correction", 1.0), ("weight_decay", 0.01)], 3);
    round_trip("adan", &[("no_prox", 1.0), ("weight_decay", 0.02)], 3);
}

#[test]
fn the_catalog_lists_the_family_with_finite_defaults() {
    let names = [
        "adabelief",
        "lion",
        "adan",
        "lamb",
        "lars",
        "sf_sgd",
        "sf_adamw",
        "muon",
        "prodigy",
    ];
    let listed: Vec<&str> = ferrograd_optim::modern::CATALOG.iter().map(|o| o.name).collect();
    assert_eq!(listed, names);
    for info in ferrograd_optim::modern::CATALOG {
        assert!(info.hyperparams.iter().all(|h| h.default.is_finite()), "{}", info.name);
        let opt = (info.build)(&HyperParams::defaults(info)).unwrap();
        assert_eq!(opt.name(), info.name);
        assert!(catalog::find(info.name).is_some());
    }
    // Invalid values are refused when set rather than silently misread.
    let bad = |name: &str, hp: &str, v: f64| {
        HyperParams::defaults(catalog::lookup(name).unwrap())
            .with(hp, v)
            .is_err()
    };
    assert!(bad("lion", "beta1", 1.0));
    assert!(bad("sf_sgd", "warmup_steps", 2.5));
    assert!(bad("muon", "nesterov", 0.5));
    assert!(bad("prodigy", "d0", 0.0));
}
