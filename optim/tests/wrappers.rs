//! The wrappers (`ferrograd_optim::wrappers`): Lookahead, SAM, cautious
//! masking and EMA of weights, each checked step by step against plain f64
//! arithmetic, then for convergence on a convex quadratic and on Rosenbrock,
//! and for a bit-exact state round trip. Driven as the trainer drives them:
//! query, gradient at the returned parameters, step, `param += update`.

use ferrograd_engine::{Result, Shape, Tensor};
use ferrograd_optim::wrappers::{Cautious, Ema, Lookahead, Sam};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, HyperParams, OptimizerState, StepContext, TaskOptimizer};
use std::sync::{Arc, Mutex};

// ----- helpers ---------------------------------------------------------------

fn build(name: &str, hps: &[(&str, f64)]) -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(name).unwrap();
    let mut h = HyperParams::defaults(info);
    for &(k, v) in hps {
        h.set(k, v).unwrap();
    }
    (info.build)(&h).unwrap()
}

/// Plain SGD from the catalog (clipping off): `update = -lr * g`.
fn sgd(lr: f64) -> Box<dyn TaskOptimizer> {
    build("sgd", &[("lr", lr), ("clip", 1e300)])
}

fn vec64(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

fn shapes(params: &[Tensor]) -> Vec<Shape> {
    params.iter().map(|p| p.shape().clone()).collect()
}

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
            approx::abs_diff_eq!(g, w, epsilon = 1e-14 + 1e-12 * w.abs()),
            "{what}[{j}]: got {g:e}, want {w:e}"
        );
    }
}

const A3: [f64; 3] = [1.0, 2.0, 4.0];
const P3: [f64; 3] = [1.0, -0.5, 0.25];

/// The gradient of 0.5 sum A3_j x_j^2.
fn grad3(p: &[Tensor]) -> Vec<Tensor> {
    vec![vec64(
        &p[0]
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(A3)
            .map(|(x, a)| a * x)
            .collect::<Vec<_>>(),
    )]
}

/// An inner optimizer that returns scripted updates and records the
/// parameters and gradients it was given.
struct Scripted {
    updates: Vec<Vec<Vec<f64>>>,
    t: usize,
    seen: Seen,
}

impl TaskOptimizer for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn init_state(&mut self, _: u64, _layout: &ModelLayout) -> Result<()> {
        self.t = 0;
        Ok(())
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor], _: &StepContext) -> Result<Vec<Tensor>> {
        let all = |v: &[Tensor]| v.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
        self.seen.lock().unwrap().push((all(params), all(grads)));
        let u = self.updates[self.t]
            .iter()
            .zip(params)
            .map(|(u, p)| Tensor::from_vec(u.clone(), p.shape().clone()).unwrap())
            .collect();
        self.t += 1;
        Ok(u)
    }
    fn state(&self) -> OptimizerState {
        let mut s = OptimizerState::default();
        s.counters.insert("t".into(), self.t as u64);
        s
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.t = state.counter("t")? as usize;
        Ok(())
    }
}

type Seen = Arc<Mutex<Vec<(Vec<Vec<f64>>, Vec<Vec<f64>>)>>>;

fn scripted(updates: Vec<Vec<Vec<f64>>>) -> (Box<dyn TaskOptimizer>, Seen) {
    let seen: Seen = Arc::default();
    (
        Box::new(Scripted {
            updates,
            t: 0,
            seen: seen.clone(),
        }),
        seen,
    )
}

// ----- hand-computed steps -----------------------------------------------------

#[test]
fn lookahead_matches_the_paper() {
    let (lr, k, alpha) = (0.1, 2, 0.5);
    let mut opt = Lookahead::new(sgd(lr), k, alpha);
    assert_eq!(opt.name(), "lookahead_sgd");
    let mut params = vec![vec64(&P3)];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let (mut fast, mut slow) = (P3, P3);
    for t in 1..=7u64 {
        let mut next = [0.0; 3];
        for j in 0..3 {
            next[j] = fast[j] - lr * A3[j] * fast[j];
        }
        if t % k == 0 {
            for j in 0..3 {
                slow[j] += alpha * (next[j] - slow[j]);
            }
            next = slow;
        }
        let want: Vec<f64> = (0..3).map(|j| next[j] - fast[j]).collect();
        let (query, update) = train_step(&mut opt, &mut params, &grad3).unwrap();
        assert!(query.is_none());
        assert_close(&update[0], &want, &format!("update {t}"));
        assert_close(&params[0], &next, &format!("fast weights {t}"));
        if t % k == 0 {
            assert_close(&opt.slow_weights()[0], &slow, &format!("slow weights {t}"));
        }
        fast = next;
    }
}

#[test]
fn one_pass_sam_perturbs_along_the_previous_gradient() {
    let (lr, rho) = (0.1, 0.05);
    let mut opt = Sam::one_pass(sgd(lr), rho);
    let mut params = vec![vec64(&P3)];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let mut p = P3;
    let mut prev: Option<[f64; 3]> = None;
    for t in 1..=4 {
        let at = match prev {
            None => p,
            Some(g) => {
                let n = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                std::array::from_fn(|j| p[j] + rho * g[j] / (n + 1e-12))
            }
        };
        let g: [f64; 3] = std::array::from_fn(|j| A3[j] * at[j]);
        let want: Vec<f64> = g.iter().map(|g| -lr * g).collect();
        let (query, update) = train_step(&mut opt, &mut params, &grad3).unwrap();
        match (&query, prev) {
            (None, None) => {}
            (Some(q), Some(_)) => assert_close(&q[0], &at, &format!("query {t}")),
            _ => panic!("step {t}: query {query:?}"),
        }
        assert_close(&update[0], &want, &format!("update {t}"));
        for j in 0..3 {
            p[j] += want[j];
        }
        prev = Some(g);
    }
}

#[test]
fn two_pass_sam_is_exact_sam_over_two_steps() {
    let (lr, rho) = (0.1, 0.05);
    let mut opt = Sam::new(sgd(lr), rho);
    let mut params = vec![vec64(&P3)];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let mut p = P3;
    for t in 1..=3 {
        // Ascent: the gradient at p, stored, and no move.
        let (query, update) = train_step(&mut opt, &mut params, &grad3).unwrap();
        assert!(query.is_none(), "ascent step {t}");
        assert_close(&update[0], &[0.0; 3], "ascent update");
        let g: [f64; 3] = std::array::from_fn(|j| A3[j] * p[j]);
        let n = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        let e: [f64; 3] = std::array::from_fn(|j| p[j] + rho * g[j] / (n + 1e-12));
        // Descent: the gradient at p + e, applied at p.
        let (query, update) = train_step(&mut opt, &mut params, &grad3).unwrap();
        assert_close(&query.expect("descent queries")[0], &e, &format!("perturbed point {t}"));
        let want: Vec<f64> = (0..3).map(|j| -lr * A3[j] * e[j]).collect();
        assert_close(&update[0], &want, &format!("descent update {t}"));
        for j in 0..3 {
            p[j] += want[j];
        }
    }
}

/// SAM around an optimizer that queries (Schedule-Free) perturbs the inner
/// optimizer's own point; a twin of the inner one shows where that is.
#[test]
fn sam_perturbs_the_inner_optimizers_query_point() {
    let rho = 0.05;
    let mut sam = Sam::one_pass(build("sf_sgd", &[("lr", 0.1), ("hold_y", 0.0)]), rho);
    let mut twin = build("sf_sgd", &[("lr", 0.1), ("hold_y", 0.0)]);
    let mut params = vec![vec64(&P3)];
    sam.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    twin.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let ctx = StepContext::default();
    let mut prev: Option<Vec<f64>> = None;
    for _ in 0..4 {
        let y = twin.query_at_params(&params, &ctx).unwrap().unwrap()[0]
            .to_vec::<f64>()
            .unwrap();
        let q = sam.query_at_params(&params, &ctx).unwrap().unwrap();
        let want: Vec<f64> = match &prev {
            None => y.clone(),
            Some(g) => {
                let n = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                (0..3).map(|j| y[j] + rho * g[j] / (n + 1e-12)).collect()
            }
        };
        assert_close(&q[0], &want, "perturbed y");
        let g = grad3(&q);
        let u = sam.step(&params, &g, &ctx).unwrap();
        let ut = twin.step(&params, &g, &ctx).unwrap();
        assert_eq!(u[0].to_vec::<f64>().unwrap(), ut[0].to_vec::<f64>().unwrap());
        params[0] = params[0].add(&u[0]).unwrap();
        prev = Some(g[0].to_vec::<f64>().unwrap());
    }
}

#[test]
fn cautious_keeps_only_coordinates_that_descend() {
    let updates = vec![
        vec![vec![0.3, -0.2, 0.5, 0.0], vec![1.0, -1.0]],
        vec![vec![-0.1, -0.2, -0.3, 0.4], vec![0.5, 0.5]],
    ];
    let grads = [
        [vec![-1.0, -1.0, 1.0, 2.0], vec![-2.0, 3.0]],
        [vec![1.0, 1.0, 1.0, -1.0], vec![1.0, 0.0]],
    ];
    let (inner, seen) = scripted(updates.clone());
    let mut opt = Cautious::new(inner);
    assert_eq!(opt.name(), "cautious_scripted");
    let mut params = vec![vec64(&[0.0; 4]), vec64(&[0.0; 2])];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    for (t, (u, g)) in updates.iter().zip(&grads).enumerate() {
        let gt: Vec<Tensor> = g.iter().map(|g| vec64(g)).collect();
        let (_, out) = train_step(&mut opt, &mut params, &|_| gt.clone()).unwrap();
        for i in 0..2 {
            let mask: Vec<f64> = u[i]
                .iter()
                .zip(&g[i])
                .map(|(u, g)| if u * g < 0.0 { 1.0 } else { 0.0 })
                .collect();
            let scale = mask.len() as f64 / (mask.iter().sum::<f64>() + 1.0);
            let want: Vec<f64> = u[i].iter().zip(&mask).map(|(u, m)| u * m * scale).collect();
            assert_close(&out[i], &want, &format!("step {t} tensor {i}"));
        }
    }
    // Step 1 by hand: tensor 0 keeps only 0.3 (one of four kept: x 4/2),
    // tensor 1 keeps both (x 2/3).
    assert_eq!(seen.lock().unwrap().len(), 2);
    let mut again = Cautious::new(scripted(updates).0);
    again.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let gt: Vec<Tensor> = grads[0].iter().map(|g| vec64(g)).collect();
    let out = again.step(&params, &gt, &StepContext::default()).unwrap();
    assert_close(&out[0], &[0.6, 0.0, 0.0, 0.0], "by hand");
    assert_close(&out[1], &[2.0 / 3.0, -2.0 / 3.0], "by hand");
}

/// The expected average after each of the scripted steps, from `p0`.
fn ema_reference(p0: &[f64], updates: &[Vec<f64>], decay: f64, warmup: bool) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (mut raw, mut avg) = (p0.to_vec(), p0.to_vec());
    let (mut raws, mut avgs) = (Vec::new(), Vec::new());
    for (t, u) in updates.iter().enumerate() {
        let t = (t + 1) as f64;
        let d = if warmup {
            decay.min((1.0 + t) / (10.0 + t))
        } else {
            decay
        };
        for j in 0..raw.len() {
            raw[j] += u[j];
            avg[j] = d * avg[j] + (1.0 - d) * raw[j];
        }
        raws.push(raw.clone());
        avgs.push(avg.clone());
    }
    (raws, avgs)
}

#[test]
fn ema_tracks_the_average_and_leaves_updates_alone() {
    let updates: Vec<Vec<f64>> = vec![
        vec![0.5, -0.25, 1.0],
        vec![-0.1, 0.2, 0.3],
        vec![0.05, 0.05, -0.5],
        vec![0.2, 0.0, 0.1],
    ];
    for (decay, warmup) in [(0.9, true), (0.5, false)] {
        let (inner, _) = scripted(updates.iter().map(|u| vec![u.clone()]).collect());
        let mut opt = Ema::new(inner, decay).with_warmup(warmup);
        assert_eq!(opt.name(), "ema_scripted");
        let mut params = vec![vec64(&P3)];
        opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
        let (raws, avgs) = ema_reference(&P3, &updates, decay, warmup);
        for t in 0..updates.len() {
            let (query, out) = train_step(&mut opt, &mut params, &grad3).unwrap();
            assert!(query.is_none());
            assert_eq!(
                out[0].to_vec::<f64>().unwrap(),
                updates[t],
                "the inner update, unchanged"
            );
            assert_close(&params[0], &raws[t], "the model holds the raw weights");
            assert_close(&opt.ema_params()[0], &avgs[t], &format!("average {t}"));
        }
    }
}

#[test]
fn ema_evaluating_the_average_holds_it_in_the_model() {
    let updates: Vec<Vec<f64>> = vec![vec![0.5, -0.25, 1.0], vec![-0.1, 0.2, 0.3], vec![0.05, 0.05, -0.5]];
    let (inner, seen) = scripted(updates.iter().map(|u| vec![u.clone()]).collect());
    let mut opt = Ema::new(inner, 0.9).evaluating_average(true);
    let mut params = vec![vec64(&P3)];
    opt.init_state(0, &ModelLayout::any(&shapes(&params))).unwrap();
    let (raws, avgs) = ema_reference(&P3, &updates, 0.9, true);
    for t in 0..updates.len() {
        let before = params[0].to_vec::<f64>().unwrap();
        let (query, out) = train_step(&mut opt, &mut params, &grad3).unwrap();
        let raw_before = if t == 0 { P3.to_vec() } else { raws[t - 1].clone() };
        assert_close(&query.expect("queries the raw weights")[0], &raw_before, "query");
        assert_eq!(
            seen.lock().unwrap()[t].0[0],
            raw_before,
            "the inner optimizer steps the raw weights"
        );
        let grad_at_raw: Vec<f64> = raw_before.iter().zip(A3).map(|(x, a)| a * x).collect();
        assert_eq!(seen.lock().unwrap()[t].1[0], grad_at_raw);
        let want: Vec<f64> = (0..3).map(|j| avgs[t][j] - before[j]).collect();
        assert_close(&out[0], &want, "update to the average");
        assert_close(&params[0], &avgs[t], "the model holds the average");
        assert_close(&opt.raw_params()[0], &raws[t], "raw weights in the state");
    }
}

// ----- convergence -------------------------------------------------------------

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
    vec![vec64(
        &p[0]
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(quad_a())
            .map(|(x, a)| a * x)
            .collect::<Vec<_>>(),
    )]
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

/// A convergence case: optimizer name, hyperparameters, steps, and the
/// value the objective must end below.
type Case = (&'static str, &'static [(&'static str, f64)], usize, f64);

/// `(name, hyperparameters, steps, f below)` on 0.5 sum a_i x_i^2,
/// a_i = 0.5..5, x_i = 1 + 0.05 i (f0 = 23.44).
const QUADRATIC: &[Case] = &[
    ("lookahead_adam", &[("lr", 0.03)], 2000, 1e-20),
    ("sam_adam", &[("lr", 1e-3), ("two_pass", 0.0)], 2000, 5e-3),
    ("sam_adam", &[("lr", 3e-3)], 2000, 1e-6),
    ("cautious_adam", &[("lr", 0.01)], 2000, 1e-20),
    ("ema_adam", &[("lr", 0.01)], 2000, 1e-20),
    ("ema_adam", &[("lr", 0.01), ("eval_average", 1.0)], 2000, 1e-12),
    ("cautious_lion", &[("lr", 3e-3)], 2000, 1e-3),
];

/// `(name, hyperparameters, steps, f below)` on Rosenbrock from (-1.2, 1)
/// (f0 = 24.2). SAM's sharpness penalty moves its fixed point off (1, 1), so
/// it runs with a small rho and without Adam's gradient clipping.
const ROSENBROCK: &[Case] = &[
    ("lookahead_adam", &[("lr", 0.03)], 2000, 1e-4),
    (
        "sam_adam",
        &[("lr", 0.01), ("rho", 0.002), ("clip", 1e6), ("two_pass", 0.0)],
        5000,
        3e-2,
    ),
    ("sam_adam", &[("lr", 0.03), ("rho", 0.002), ("clip", 1e6)], 5000, 2e-3),
    ("cautious_adam", &[("lr", 0.01)], 2000, 1e-8),
    ("ema_adam", &[("lr", 0.01)], 2000, 1e-4),
    ("ema_adam", &[("lr", 0.01), ("eval_average", 1.0)], 2000, 1e-5),
    ("cautious_lion", &[("lr", 3e-3)], 2000, 2e-2),
];

#[test]
fn every_wrapper_minimises_the_quadratic() {
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
fn every_wrapper_minimises_rosenbrock() {
    for &(name, hps, steps, below) in ROSENBROCK {
        let mut p = vec![vec64(&[-1.2, 1.0])];
        drive(build(name, hps).as_mut(), &mut p, &rosen_grad, steps);
        let f = rosen_f(&p);
        assert!(
            f < below,
            "{name} {hps:?}: f = {f:e} after {steps} steps, want < {below:e}"
        );
    }
}

/// The tracked average (model holding the raw weights) converges too:
/// Adam lr 0.01 with decay 0.99, 2000 steps on the quadratic.
#[test]
fn the_tracked_average_converges() {
    let mut opt = Ema::new(build("clipped_adam", &[("lr", 0.01)]), 0.99);
    let mut p = quad_start();
    drive(&mut opt, &mut p, &quad_grad, 2000);
    let f = quad_f(opt.ema_params());
    assert!(f < 1e-12, "f(average) = {f:e}");
}

// ----- state round trip ----------------------------------------------------------

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
    vec![Tensor::from_vec(g0, [3, 4]).unwrap(), vec64(&g1)]
}

fn round_trip(name: &str, hps: &[(&str, f64)], k: usize) {
    let start = vec![
        Tensor::from_vec((0..12).map(|i| (i as f64 * 0.37).cos()).collect::<Vec<_>>(), [3, 4]).unwrap(),
        vec64(&[0.3, -0.7, 1.1, 0.0]),
    ];
    let mut a = build(name, hps);
    let mut pa = start;
    drive(a.as_mut(), &mut pa, &mixed_grad, k);
    let mut b = build(name, hps);
    b.init_state(0, &ModelLayout::any(&shapes(&pa))).unwrap();
    b.load_state(&a.state()).unwrap();
    let mut pb = pa.clone();
    for t in 0..6 {
        let (qa, ua) = train_step(a.as_mut(), &mut pa, &mixed_grad).unwrap();
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
            "{name} {hps:?}: query {t} after resuming"
        );
        assert_eq!(bits(&ua), bits(&ub), "{name} {hps:?}: update {t} after resuming");
    }
}

#[test]
fn every_wrapper_resumes_bit_for_bit() {
    for info in ferrograd_optim::wrappers::CATALOG {
        round_trip(info.name, &[], 3);
    }
    round_trip("lookahead_adam", &[("k", 3.0)], 4);
    round_trip("sam_adam", &[], 4);
    round_trip("sam_adam", &[("two_pass", 0.0)], 3);
    round_trip("ema_adam", &[("eval_average", 1.0), ("decay", 0.9)], 3);
}

#[test]
fn the_catalog_lists_the_pairs_with_finite_defaults() {
    let names = [
        "lookahead_adam",
        "sam_adam",
        "cautious_adam",
        "ema_adam",
        "cautious_lion",
    ];
    let listed: Vec<&str> = ferrograd_optim::wrappers::CATALOG.iter().map(|o| o.name).collect();
    assert_eq!(listed, names);
    for info in ferrograd_optim::wrappers::CATALOG {
        assert!(info.hyperparams.iter().all(|h| h.default.is_finite()), "{}", info.name);
        assert_eq!((info.build)(&HyperParams::defaults(info)).unwrap().name(), info.name);
    }
    // The inner optimizer takes the wrapper's values for its own names:
    // lookahead_adam with k = 1 and alpha = 1 is exactly the catalog's clipped_adam.
    let mut la = build(
        "lookahead_adam",
        &[("lr", 0.05), ("clip", 0.3), ("k", 1.0), ("alpha", 1.0)],
    );
    let mut adam = build("clipped_adam", &[("lr", 0.05), ("clip", 0.3)]);
    let (mut p1, mut p2) = (quad_start(), quad_start());
    la.init_state(0, &ModelLayout::any(&shapes(&p1))).unwrap();
    adam.init_state(0, &ModelLayout::any(&shapes(&p2))).unwrap();
    for _ in 0..5 {
        let (_, u1) = train_step(la.as_mut(), &mut p1, &quad_grad).unwrap();
        let (_, u2) = train_step(adam.as_mut(), &mut p2, &quad_grad).unwrap();
        assert_close(
            &u1[0],
            &u2[0].to_vec::<f64>().unwrap(),
            "lookahead(k=1, alpha=1) = adam",
        );
    }
    let info = catalog::lookup("lookahead_adam").unwrap();
    assert!(HyperParams::defaults(info).with("k", 0.0).is_err());
}
