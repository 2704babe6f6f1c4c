//! Optimizer state files: save after k steps, rebuild a fresh optimizer from
//! the saved name and hyperparameters, load, continue — the updates must be
//! bit-identical to an uninterrupted run.

use ferrograd::engine::{DType, Shape, Tensor};
use ferrograd::io::{
    hyperparams_from_map, load_optimizer_state, load_optimizer_state_for, restore_optimizer, save_optimizer_state,
    OptimizerStateError, OPTIMIZER_JSON_FILE, OPTIMIZER_TENSORS_FILE,
};
use ferrograd::optim::basic::{ClipByValue, ScaleByAdam, ScaleByLr};
use ferrograd::optim::schedule::ReduceOnPlateau;
use ferrograd::optim::transform::ChainOptimizer;
use ferrograd::optim::ModelLayout;
use ferrograd::optim::{catalog, chain, hp, HyperParams, OptimizerInfo, StepContext, TaskOptimizer};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-optstate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An optimizer outside the catalog: clipped Adam whose rate drops on
/// validation-loss plateaus (its state includes the schedule's counters).
const PLATEAU: OptimizerInfo = OptimizerInfo {
    name: "adam_plateau",
    about: "Adam with ReduceLROnPlateau (test only)",
    hyperparams: &[
        hp("lr", 0.05, "learning rate").non_negative(),
        hp("factor", 0.5, "plateau factor").decay_rate(),
        hp("patience", 1.0, "plateau patience").whole_number(),
    ],
    build: |h| {
        let schedule = ReduceOnPlateau::new(h.get("lr")?).with(h.get("factor")?, h.whole("patience")?);
        Ok(Box::new(ChainOptimizer::new(
            "adam_plateau",
            chain![
                ClipByValue { limit: 1.0 },
                ScaleByAdam::new(0.9, 0.999, 1e-8, false),
                ScaleByLr::new(schedule)
            ],
        )))
    },
};

/// The catalog, plus [`PLATEAU`].
fn info_for(name: &str) -> &'static OptimizerInfo {
    if name == PLATEAU.name {
        &PLATEAU
    } else {
        catalog::lookup(name).unwrap()
    }
}

/// A small quadratic: f(x) = 0.5 sum a_i x_i^2 over two tensors.
struct Problem {
    params: Vec<Tensor>,
    curvature: Vec<Tensor>,
}

impl Problem {
    fn new(dtype: DType) -> Problem {
        let shapes = [Shape::new([2, 3]), Shape::new([4])];
        let params = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let v: Vec<f64> = (0..s.numel()).map(|i| 1.0 - 0.3 * i as f64 + k as f64).collect();
                Tensor::from_f64_slice(&v, s.clone(), dtype).unwrap()
            })
            .collect();
        let curvature = shapes
            .iter()
            .map(|s| {
                let v: Vec<f64> = (0..s.numel()).map(|i| 0.5 + 0.7 * i as f64).collect();
                Tensor::from_f64_slice(&v, s.clone(), dtype).unwrap()
            })
            .collect();
        Problem { params, curvature }
    }

    fn shapes(&self) -> Vec<Shape> {
        self.params.iter().map(|p| p.shape().clone()).collect()
    }

    fn loss(&self) -> f64 {
        self.params
            .iter()
            .zip(&self.curvature)
            .map(|(p, a)| {
                0.5 * p
                    .square()
                    .unwrap()
                    .mul(a)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar()
                    .unwrap()
            })
            .sum()
    }

    /// One optimizer step; returns the updates.
    fn step(&mut self, opt: &mut dyn TaskOptimizer, ctx: &StepContext) -> Vec<Tensor> {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .zip(&self.curvature)
            .map(|(p, a)| p.mul(a).unwrap())
            .collect();
        let updates = opt.step(&self.params, &grads, ctx).unwrap();
        for (p, u) in self.params.iter_mut().zip(&updates) {
            *p = p.add(u).unwrap();
        }
        updates
    }
}

/// The context of global step `step` with `per_epoch` steps an epoch; the
/// "validation loss" stalls from epoch 3 on so the plateau schedule reduces.
fn context(step: usize, per_epoch: usize) -> StepContext {
    let epoch = step / per_epoch;
    let val = |e: usize| if e < 3 { 1.0 / (e + 1) as f64 } else { 0.25 };
    StepContext {
        epoch,
        step,
        train_loss: None,
        val_loss: epoch.checked_sub(1).map(val),
        steps_per_epoch: Some(per_epoch),
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// Runs `total` steps uninterrupted, and `k` steps + save + fresh optimizer
/// from the files + `total - k` steps; every update must agree bit for bit.
fn resume_is_bit_identical(name: &str, overrides: &[(&str, f64)], dtype: DType, k: usize, total: usize) {
    let info = info_for(name);
    let mut hps = HyperParams::defaults(info);
    for (key, v) in overrides {
        hps.set(key, *v).unwrap();
    }
    let per_epoch = 4;

    let mut whole = Problem::new(dtype);
    let mut opt = (info.build)(&hps).unwrap();
    opt.init_state(7, &ModelLayout::any(&whole.shapes())).unwrap();
    let reference: Vec<Vec<Tensor>> = (0..total)
        .map(|s| whole.step(opt.as_mut(), &context(s, per_epoch)))
        .collect();
    assert!(whole.loss() < Problem::new(dtype).loss(), "{name} should make progress");

    let mut split = Problem::new(dtype);
    let mut first = (info.build)(&hps).unwrap();
    first.init_state(7, &ModelLayout::any(&split.shapes())).unwrap();
    for (s, want) in reference.iter().enumerate().take(k) {
        let got = split.step(first.as_mut(), &context(s, per_epoch));
        assert_eq!(
            got.iter().map(bits).collect::<Vec<_>>(),
            want.iter().map(bits).collect::<Vec<_>>()
        );
    }
    let dir = temp_dir(name);
    save_optimizer_state(&dir, first.name(), &hps, &first.state()).unwrap();
    drop(first);
    assert!(dir.join(OPTIMIZER_JSON_FILE).is_file() && dir.join(OPTIMIZER_TENSORS_FILE).is_file());

    let (saved_name, saved_hps, state) = load_optimizer_state(&dir).unwrap();
    assert_eq!(saved_name, name);
    let info = info_for(&saved_name);
    let rebuilt_hps = hyperparams_from_map(info, &saved_hps).unwrap();
    assert_eq!(rebuilt_hps, hps, "hyperparameters survive exactly");
    let mut second = (info.build)(&rebuilt_hps).unwrap();
    second.init_state(7, &ModelLayout::any(&split.shapes())).unwrap();
    second.load_state(&state).unwrap();
    for (s, want) in reference.iter().enumerate().skip(k) {
        let got = split.step(second.as_mut(), &context(s, per_epoch));
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.dtype(), w.dtype());
            assert_eq!(bits(g), bits(w), "{name}: step {s} differs after resuming");
        }
    }
    for (a, b) in split.params.iter().zip(&whole.params) {
        assert_eq!(bits(a), bits(b));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn adamw_resumes_bit_identically() {
    resume_is_bit_identical("adamw", &[("lr", 0.03), ("weight_decay", 0.1)], DType::F32, 7, 20);
    resume_is_bit_identical("adamw", &[("lr", 0.03), ("amsgrad", 1.0)], DType::F64, 5, 12);
}

#[test]
fn every_torch_family_optimizer_resumes_bit_identically() {
    for info in ferrograd::optim::torch_family::CATALOG {
        resume_is_bit_identical(info.name, &[], DType::F64, 6, 11);
    }
    resume_is_bit_identical("sgd", &[("lr", 0.01)], DType::F32, 3, 6);
}

/// Saved mid-epoch: after 26 steps of epochs of 4, i.e. two steps into
/// epoch 6, where the plateau schedule has just reduced the rate (the loss
/// stalls from epoch 4 on; patience 1). A second reduction follows at epoch 8.
#[test]
fn plateau_schedule_resumes_bit_identically_mid_epoch() {
    resume_is_bit_identical(PLATEAU.name, &[], DType::F64, 26, 40);
    // The run does exercise reductions: the saved counters say so.
    let info = &PLATEAU;
    let hps = HyperParams::defaults(info);
    let mut p = Problem::new(DType::F64);
    let mut opt = (info.build)(&hps).unwrap();
    opt.init_state(0, &ModelLayout::any(&p.shapes())).unwrap();
    for s in 0..26 {
        p.step(opt.as_mut(), &context(s, 4));
    }
    let dir = temp_dir("plateau-counters");
    save_optimizer_state(&dir, opt.name(), &hps, &opt.state()).unwrap();
    let (_, _, state) = load_optimizer_state(&dir).unwrap();
    assert_eq!(state.counters["2.plateau.reductions"], 1);
    assert_eq!(state.counters["2.plateau.last_epoch_plus_one"], 7);
    assert_eq!(state.counters["count"], 26);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restore_optimizer_rebuilds_from_the_catalog() {
    let info = catalog::lookup("nadam").unwrap();
    let hps = HyperParams::defaults(info).with("lr", 0.01).unwrap();
    let mut p = Problem::new(DType::F64);
    let mut opt = (info.build)(&hps).unwrap();
    opt.init_state(0, &ModelLayout::any(&p.shapes())).unwrap();
    for s in 0..5 {
        p.step(opt.as_mut(), &context(s, 4));
    }
    let dir = temp_dir("restore");
    save_optimizer_state(&dir, "nadam", &hps, &opt.state()).unwrap();
    let mut restored = restore_optimizer(&dir, 0, &ModelLayout::any(&p.shapes())).unwrap();
    assert_eq!(restored.name(), "nadam");
    let mut q = Problem {
        params: p.params.clone(),
        curvature: p.curvature.clone(),
    };
    let a = p.step(opt.as_mut(), &context(5, 4));
    let b = q.step(restored.as_mut(), &context(5, 4));
    assert_eq!(
        a.iter().map(bits).collect::<Vec<_>>(),
        b.iter().map(bits).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn saved_adam(dir: &Path) {
    let info = catalog::lookup("clipped_adam").unwrap();
    let hps = HyperParams::defaults(info);
    let mut p = Problem::new(DType::F32);
    let mut opt = (info.build)(&hps).unwrap();
    opt.init_state(0, &ModelLayout::any(&p.shapes())).unwrap();
    p.step(opt.as_mut(), &StepContext::default());
    save_optimizer_state(dir, "clipped_adam", &hps, &opt.state()).unwrap();
}

/// A state saved before the catalog's rename, as `adam` with a `clip`, is
/// the task's clipped Adam: it is read as `clipped_adam` and rebuilt as it,
/// stepping exactly as the optimizer that saved it; `adam`
/// (torch.optim.Adam, no `clip`) keeps its name.
#[test]
fn a_clipped_adam_saved_as_adam_before_the_rename_is_read_as_clipped_adam() {
    let dir = temp_dir("legacy-adam");
    let info = catalog::lookup("clipped_adam").unwrap();
    let hps = HyperParams::defaults(info);
    let mut p = Problem::new(DType::F64);
    let mut opt = (info.build)(&hps).unwrap();
    opt.init_state(0, &ModelLayout::any(&p.shapes())).unwrap();
    p.step(opt.as_mut(), &StepContext::default());
    save_optimizer_state(&dir, "adam", &hps, &opt.state()).unwrap();
    let (name, values, _) = load_optimizer_state(&dir).unwrap();
    assert_eq!(name, "clipped_adam");
    assert!(values.contains_key("clip"));
    let mut restored = restore_optimizer(&dir, 0, &ModelLayout::any(&p.shapes())).unwrap();
    assert_eq!(restored.name(), "clipped_adam");
    let mut q = Problem {
        params: p.params.clone(),
        curvature: p.curvature.clone(),
    };
    let bits = |t: &[Tensor]| t.iter().map(|x| x.to_vec::<f64>().unwrap()).collect::<Vec<_>>();
    let a = p.step(opt.as_mut(), &StepContext::default());
    let b = q.step(restored.as_mut(), &StepContext::default());
    assert_eq!(bits(&a), bits(&b));

    let torch = catalog::lookup("adam").unwrap();
    let torch_dir = temp_dir("torch-adam");
    save_optimizer_state(&torch_dir, "adam", &HyperParams::defaults(torch), &opt.state()).unwrap();
    assert_eq!(load_optimizer_state(&torch_dir).unwrap().0, "adam");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&torch_dir);
}

#[test]
fn typed_errors() {
    // Nothing saved.
    let empty = temp_dir("empty");
    match load_optimizer_state(&empty) {
        Err(OptimizerStateError::Missing { path }) => assert!(path.ends_with(OPTIMIZER_JSON_FILE)),
        other => panic!("expected Missing, got {other:?}"),
    }

    // The wrong optimizer.
    let dir = temp_dir("wrong");
    saved_adam(&dir);
    match load_optimizer_state_for(&dir, "adamw") {
        Err(OptimizerStateError::WrongOptimizer { expected, found, .. }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("adamw", "clipped_adam"));
        }
        other => panic!("expected WrongOptimizer, got {other:?}"),
    }
    assert!(load_optimizer_state_for(&dir, "clipped_adam").is_ok());
    // Through the facade's error type, with `?`.
    let facade: ferrograd::Error = load_optimizer_state_for(&dir, "adamw").unwrap_err().into();
    assert!(facade.to_string().contains("adamw"), "{facade}");

    // The tensors file missing.
    std::fs::remove_file(dir.join(OPTIMIZER_TENSORS_FILE)).unwrap();
    match load_optimizer_state(&dir) {
        Err(OptimizerStateError::Missing { path }) => assert!(path.ends_with(OPTIMIZER_TENSORS_FILE)),
        other => panic!("expected Missing, got {other:?}"),
    }

    // Files of two different saves.
    let (a, b) = (temp_dir("mix-a"), temp_dir("mix-b"));
    saved_adam(&a);
    saved_adam(&b);
    std::fs::copy(a.join(OPTIMIZER_TENSORS_FILE), b.join(OPTIMIZER_TENSORS_FILE)).unwrap();
    assert!(matches!(
        load_optimizer_state(&b),
        Err(OptimizerStateError::Mismatch { .. })
    ));

    // A malformed json file.
    std::fs::write(a.join(OPTIMIZER_JSON_FILE), b"{ not json").unwrap();
    match load_optimizer_state(&a) {
        Err(OptimizerStateError::Other(ferrograd::Error::Format { .. })) => {}
        other => panic!("expected a format error, got {other:?}"),
    }

    // Another optimizer's state: load_state refuses it.
    let c = temp_dir("other");
    saved_adam(&c);
    let mut sgd =
        (catalog::lookup("sgd").unwrap().build)(&HyperParams::defaults(catalog::lookup("sgd").unwrap())).unwrap();
    sgd.init_state(0, &ModelLayout::any(&Problem::new(DType::F32).shapes()))
        .unwrap();
    let (_, _, state) = load_optimizer_state(&c).unwrap();
    let err = sgd.load_state(&state).unwrap_err().to_string();
    assert!(
        err.contains("keeps its tensor"),
        "sgd keeps none of adam's moments: refused, not silently ignored: {err}"
    );
    let mut plateau = (PLATEAU.build)(&HyperParams::defaults(&PLATEAU)).unwrap();
    plateau
        .init_state(0, &ModelLayout::any(&Problem::new(DType::F32).shapes()))
        .unwrap();
    assert!(
        plateau.load_state(&state).is_err(),
        "the plateau schedule's counters are missing"
    );

    for d in [empty, dir, a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `anneal` keeps an epoch clock: resumed mid-epoch (step 6 of epochs of
/// 4), across its warmup, its decay and its settling at epoch 3, it
/// continues bit for bit; so do the tuned baselines built on it.
#[test]
fn anneal_resumes_bit_identically_mid_epoch() {
    let settings = [("lr", 0.05), ("warmup", 1.0), ("horizon", 3.0)];
    resume_is_bit_identical("anneal", &settings, DType::F64, 6, 16);
    resume_is_bit_identical("adam_tuned", &[], DType::F64, 5, 9);
}
