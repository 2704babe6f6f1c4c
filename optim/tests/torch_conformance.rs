//! Conformance with PyTorch: every fixture in `optim/fixtures/*.json` is a
//! `torch.optim` trajectory in float64; ferrograd's catalog entry, built with
//! the fixture's hyperparameters, must reproduce every recorded parameter to
//!
//! ```text
//! |ours - torch| <= 1e-10 * max(|torch|, 1e-3)
//! ```
//!
//! (float64 reproduces PyTorch to about 1e-13; 1e-10 leaves room for another
//! platform's `sin` and `pow`, yet catches an `eps` in the wrong place, which
//! the fixtures with `eps = 1e-3` turn into errors of 1e-6 and more.)
//!
//! The gradient at step t (1-based) is `0.3 * p + sin(0.7 t + 1.3 j + 0.5 k)`
//! for element j (row-major) of parameter k, at the current parameters, and
//! the start is `cos(1.1 j + 2.0 k + 0.3)`, the formulas of
//! `optim/fixtures/make_fixtures.py`.
//!
//! Regenerating the fixtures needs PyTorch (never installed in CI):
//!
//! ```text
//! python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
//! /tmp/torchenv/bin/python optim/fixtures/make_fixtures.py
//! ```
//!
//! Run with `--nocapture` to see the largest relative error per fixture.

use ferrograd_engine::{Shape, Tensor};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, HyperParams, StepContext};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The relative tolerance.
const RTOL: f64 = 1e-10;
/// Below this magnitude the tolerance is absolute (`RTOL * FLOOR`).
const FLOOR: f64 = 1e-3;

const GRAD: &str = "0.3*p + sin(0.7*t + 1.3*j + 0.5*k)";
const INIT: &str = "cos(1.1*j + 2.0*k + 0.3)";

#[derive(Deserialize)]
struct Fixture {
    optimizer: String,
    hyperparams: BTreeMap<String, f64>,
    shapes: Vec<Vec<usize>>,
    init: String,
    grad: String,
    steps: u64,
    initial: Vec<Vec<f64>>,
    trajectory: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    step: u64,
    params: Vec<Vec<f64>>,
}

fn fixture_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
}

fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures' gradient: `0.3 * p + sin(0.7 t + 1.3 j + 0.5 k)`.
fn gradient(params: &[Vec<f64>], t: u64) -> Vec<Vec<f64>> {
    params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            p.iter()
                .enumerate()
                .map(|(j, x)| 0.3 * x + (0.7 * t as f64 + 1.3 * j as f64 + 0.5 * k as f64).sin())
                .collect()
        })
        .collect()
}

fn tensors(values: &[Vec<f64>], shapes: &[Shape]) -> Vec<Tensor> {
    values
        .iter()
        .zip(shapes)
        .map(|(v, s)| Tensor::from_vec(v.clone(), s.clone()).unwrap())
        .collect()
}

/// Replays `fixture` through ferrograd; returns the largest relative error
/// `|ours - torch| / max(|torch|, FLOOR)`.
fn replay(name: &str, fixture: &Fixture) -> f64 {
    assert_eq!(fixture.grad, GRAD, "{name}: unknown gradient formula");
    assert_eq!(fixture.init, INIT, "{name}: unknown initialisation");
    let info = catalog::lookup(&fixture.optimizer).unwrap();
    let mut hp = HyperParams::defaults(info);
    for (k, v) in &fixture.hyperparams {
        hp.set(k, *v).unwrap();
    }
    let mut opt = (info.build)(&hp).unwrap();
    let shapes: Vec<Shape> = fixture.shapes.iter().map(|s| Shape::new(s.clone())).collect();
    opt.init_state(0, &ModelLayout::any(&shapes)).unwrap();

    let mut params = fixture.initial.clone();
    let mut records = fixture.trajectory.iter().peekable();
    let mut worst: f64 = 0.0;
    for t in 1..=fixture.steps {
        let ctx = StepContext {
            step: (t - 1) as usize,
            ..StepContext::default()
        };
        let grads = tensors(&gradient(&params, t), &shapes);
        let updates = opt.step(&tensors(&params, &shapes), &grads, &ctx).unwrap();
        for (p, u) in params.iter_mut().zip(&updates) {
            for (x, d) in p.iter_mut().zip(u.to_vec::<f64>().unwrap()) {
                *x += d;
            }
        }
        let Some(record) = records.next_if(|r| r.step == t) else {
            continue;
        };
        for (k, (ours, theirs)) in params.iter().zip(&record.params).enumerate() {
            for (j, (a, b)) in ours.iter().zip(theirs).enumerate() {
                let rel = (a - b).abs() / b.abs().max(FLOOR);
                assert!(
                    rel <= RTOL,
                    "{name}: step {t}, param {k}[{j}]: ferrograd {a} vs torch {b} (relative error {rel:.2e})"
                );
                worst = worst.max(rel);
            }
        }
    }
    assert!(records.next().is_none(), "{name}: records past the last step");
    worst
}

#[test]
fn every_torch_fixture_is_reproduced() {
    let paths = fixture_paths();
    assert!(!paths.is_empty(), "no fixtures in optim/fixtures");
    let mut worst_by_optimizer: BTreeMap<String, f64> = BTreeMap::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let fixture = load(path);
        let worst = replay(&name, &fixture);
        eprintln!("{name:32} max relative error {worst:.2e}");
        let entry = worst_by_optimizer.entry(fixture.optimizer).or_default();
        *entry = entry.max(worst);
    }
    for (optimizer, worst) in &worst_by_optimizer {
        eprintln!("{optimizer:12} {worst:.2e}");
    }
}

#[test]
fn every_torch_family_entry_has_a_fixture() {
    let covered: BTreeSet<String> = fixture_paths().iter().map(|p| load(p).optimizer).collect();
    for info in ferrograd_optim::torch_family::CATALOG {
        assert!(covered.contains(info.name), "no PyTorch fixture for {}", info.name);
    }
}

/// The fixtures must exercise the code paths they are meant to: RAdam past
/// its rectification threshold, every switch on somewhere.
#[test]
fn fixtures_cover_the_interesting_settings() {
    let fixtures: Vec<Fixture> = fixture_paths().iter().map(|p| load(p)).collect();
    assert!(fixtures.iter().all(|f| f.steps >= 100));
    for switch in ["nesterov", "centered", "amsgrad", "decoupled_weight_decay"] {
        assert!(
            fixtures.iter().any(|f| f.hyperparams.get(switch) == Some(&1.0)),
            "no fixture turns on {switch}"
        );
    }
    for optimizer in [
        "sgdm", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "nadam", "radam", "adamax",
    ] {
        assert!(
            fixtures
                .iter()
                .any(|f| f.optimizer == optimizer && f.hyperparams.get("weight_decay").is_some_and(|w| *w > 0.0)),
            "no fixture with weight decay for {optimizer}"
        );
    }
}
