//! Every catalog optimizer checks a state handed to `load_state` before it
//! assigns any of it: a tensor of another shape or dtype, a missing tensor
//! or counter, an absurd step counter are typed errors naming the offender,
//! and the optimizer goes on exactly as if the call had not been made. No
//! counter, loaded or declared, makes a step run for ever.

use ferrograd_engine::{DType, Result, Shape, Tensor};
use ferrograd_optim::ModelLayout;
use ferrograd_optim::{catalog, Curvature, HyperParams, OptimizerState, StepContext, TaskOptimizer, MAX_STEPS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// A small task-shaped model: Linear 1 -> 4, BatchNorm 4, Linear 4 -> 2.
fn shapes() -> Vec<Shape> {
    let mut s: Vec<Shape> = vec![[4, 1].into(), [4].into(), [2, 4].into(), [2].into()];
    s.extend(std::iter::repeat_n(Shape::from([4]), 4));
    s
}

/// A curvature of `2 I` (the loss `|p|^2`), for the optimizers that use one.
struct Quadratic;

impl Curvature for Quadratic {
    fn hvp(&mut self, v: &[Tensor]) -> Result<Vec<Tensor>> {
        v.iter().map(|t| t.mul_scalar(2.0)).collect::<Result<Vec<_>>>()
    }
}

/// The catalog entry `name` with its defaults, set up for [`shapes`].
fn fresh(name: &str) -> Box<dyn TaskOptimizer> {
    let info = catalog::lookup(name).unwrap();
    let mut opt = (info.build)(&HyperParams::defaults(info)).unwrap();
    opt.init_state(7, &ModelLayout::task_model(&shapes()).unwrap()).unwrap();
    opt
}

/// Parameters that differ per step and per tensor.
fn params_at(step: usize) -> Vec<Tensor> {
    shapes()
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.numel();
            let v: Vec<f64> = (0..n).map(|j| 0.3 + 0.1 * ((i + j + step) % 5) as f64).collect();
            Tensor::from_vec(v, s).unwrap()
        })
        .collect()
}

/// One step on the loss `|p|^2` (gradient `2 p`, at the queried point when
/// the optimizer asks for one); the updates.
fn step(opt: &mut dyn TaskOptimizer, step: usize) -> Vec<Tensor> {
    let params = params_at(step);
    let ctx = StepContext {
        step,
        steps_per_epoch: Some(4),
        epoch: step / 4,
        ..StepContext::default()
    };
    let at = opt
        .query_at_params(&params, &ctx)
        .unwrap()
        .unwrap_or_else(|| params.clone());
    let grads: Vec<Tensor> = at
        .iter()
        .map(|p| p.mul_scalar(2.0))
        .collect::<Result<Vec<_>>>()
        .unwrap();
    if opt.uses_curvature() {
        opt.step_with_curvature(&params, &grads, &mut Quadratic, &ctx).unwrap()
    } else {
        opt.step(&params, &grads, &ctx).unwrap()
    }
}

fn bits(tensors: &[Tensor]) -> Vec<Vec<u64>> {
    tensors
        .iter()
        .map(|t| t.to_vec::<f64>().unwrap().into_iter().map(f64::to_bits).collect())
        .collect()
}

/// A state like `state` with `edit` applied.
fn edited(state: &OptimizerState, edit: impl FnOnce(&mut OptimizerState)) -> OptimizerState {
    let mut s = state.clone();
    edit(&mut s);
    s
}

/// Whether the error text `e` names the entry `name`: quoted in full, or,
/// for a wrapper's inner entry, quoted after `inner.` with the prefix said.
fn names(e: &str, name: &str) -> bool {
    e.contains(&format!("{name:?}"))
        || name
            .strip_prefix("inner.")
            .is_some_and(|rest| e.contains(&format!("{rest:?}")) && e.contains("\"inner.\""))
}

/// The first tensor of `state` that holds numbers (not an empty placeholder).
fn some_tensor(state: &OptimizerState) -> Option<(String, Tensor)> {
    state
        .tensors
        .iter()
        .find(|(_, t)| t.numel() > 0)
        .map(|(k, t)| (k.clone(), t.clone()))
}

/// The optimizer's own step counter.
fn step_counter(state: &OptimizerState) -> &'static str {
    ["count", "k"]
        .into_iter()
        .find(|k| state.counters.contains_key(*k))
        .expect("every optimizer counts its steps")
}

/// The broken states to try on a saved `state`, each with the name its
/// error must mention.
fn corruptions(state: &OptimizerState) -> Vec<(String, OptimizerState, String)> {
    let mut cases = Vec::new();
    let counter = step_counter(state);
    cases.push((
        format!("{counter} = u64::MAX"),
        edited(state, |s| {
            s.counters.insert(counter.into(), u64::MAX);
        }),
        counter.to_string(),
    ));
    cases.push((
        format!("{counter} = 2^53 + 1"),
        edited(state, |s| {
            s.counters.insert(counter.into(), MAX_STEPS + 1);
        }),
        counter.to_string(),
    ));
    cases.push((
        format!("no counter {counter}"),
        edited(state, |s| {
            s.counters.remove(counter);
        }),
        counter.to_string(),
    ));
    cases.push((
        "a foreign counter".into(),
        edited(state, |s| {
            s.counters.insert("foreign".into(), 1);
        }),
        "foreign".into(),
    ));
    if let Some((name, t)) = some_tensor(state) {
        let other = if t.dtype() == DType::F32 {
            DType::F64
        } else {
            DType::F32
        };
        let reshaped = Tensor::zeros([t.numel() + 1], t.dtype()).unwrap();
        cases.push((
            format!("{name} reshaped"),
            edited(state, |s| {
                s.tensors.insert(name.clone(), reshaped);
            }),
            name.clone(),
        ));
        cases.push((
            format!("{name} as {other}"),
            edited(state, |s| {
                s.tensors.insert(name.clone(), t.to_dtype(other).unwrap());
            }),
            name.clone(),
        ));
        cases.push((
            format!("no {name}"),
            edited(state, |s| {
                s.tensors.remove(&name);
            }),
            name.clone(),
        ));
    }
    if let Some(last) = state.tensors.keys().next_back().cloned() {
        cases.push((
            format!("no {last}"),
            edited(state, |s| {
                s.tensors.remove(&last);
            }),
            last.clone(),
        ));
    }
    cases
}

/// Runs every corruption of a 3-step state against `name`: `Ok` when each
/// is refused naming its offender and the optimizer then steps exactly as
/// a twin that was never handed a bad state.
fn refuses_every_corruption(name: &str) -> std::result::Result<(), String> {
    let (mut opt, mut twin) = (fresh(name), fresh(name));
    for k in 0..3 {
        step(opt.as_mut(), k);
        step(twin.as_mut(), k);
    }
    let saved = opt.state();
    for (case, bad, word) in corruptions(&saved) {
        match catch_unwind(AssertUnwindSafe(|| opt.load_state(&bad))) {
            Err(_) => return Err(format!("{name}, {case}: panicked")),
            Ok(Ok(())) => return Err(format!("{name}, {case}: accepted")),
            Ok(Err(e)) if !names(&e.to_string(), &word) => {
                return Err(format!("{name}, {case}: the error does not name {word:?}: {e}"))
            }
            Ok(Err(_)) => {}
        }
    }
    for k in 3..5 {
        if bits(&step(opt.as_mut(), k)) != bits(&step(twin.as_mut(), k)) {
            return Err(format!("{name}: steps differ from its twin's after the refused loads"));
        }
    }
    Ok(())
}

#[test]
fn every_optimizer_refuses_a_corrupt_state_and_keeps_its_own() {
    let failures: Vec<String> = catalog::all()
        .into_iter()
        .filter_map(|info| refuses_every_corruption(info.name).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The control: a state an optimizer saved loads into a fresh one of the
/// same model, which then steps exactly as the original (so the checks
/// refuse nothing that is right).
#[test]
fn every_optimizer_resumes_from_its_own_state() {
    let mut failures = Vec::new();
    for info in catalog::all() {
        let mut opt = fresh(info.name);
        for k in 0..3 {
            step(opt.as_mut(), k);
        }
        let mut resumed = fresh(info.name);
        if let Err(e) = resumed.load_state(&opt.state()) {
            failures.push(format!("{}: refused its own state: {e}", info.name));
            continue;
        }
        if bits(&step(opt.as_mut(), 3)) != bits(&step(resumed.as_mut(), 3)) {
            failures.push(format!("{}: resumed steps differ", info.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A fresh optimizer (set up, never stepped) checks tensors against the
/// shapes init_state gave it, and the dtypes of a parameter's state agree.
#[test]
fn a_fresh_optimizer_checks_shapes_against_init_state() {
    let mut failures = Vec::new();
    for info in catalog::all() {
        let mut opt = fresh(info.name);
        for k in 0..3 {
            step(opt.as_mut(), k);
        }
        let saved = opt.state();
        let Some((name, t)) = some_tensor(&saved) else {
            continue;
        };
        let bad = edited(&saved, |s| {
            s.tensors
                .insert(name.clone(), Tensor::zeros([t.numel() + 1], t.dtype()).unwrap());
        });
        match fresh(info.name).load_state(&bad) {
            Ok(()) => failures.push(format!("{}: accepted {name} reshaped", info.name)),
            Err(e) if !names(&e.to_string(), &name) => {
                failures.push(format!("{}: does not name {name}: {e}", info.name))
            }
            Err(_) => {}
        }
        // Another tensor of the same parameter, kept by the same optimizer
        // (a wrapper's or its inner one's), fixes the dtype it must have.
        let index = name.rsplit('.').next();
        let inner = |k: &str| k.starts_with("inner.");
        let shared = saved
            .tensors
            .iter()
            .any(|(k, u)| *k != name && u.numel() > 0 && k.rsplit('.').next() == index && inner(k) == inner(&name));
        let flipped = edited(&saved, |s| {
            s.tensors.insert(name.clone(), t.to_dtype(DType::F32).unwrap());
        });
        if shared && fresh(info.name).load_state(&flipped).is_ok() {
            failures.push(format!("{}: accepted {name} flipped to f32", info.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A wrapper's inner optimizer cannot claim more steps than the wrapper.
#[test]
fn an_inner_counter_ahead_of_its_wrapper_is_refused() {
    let mut opt = fresh("lookahead_adam");
    step(opt.as_mut(), 0);
    let bad = edited(&opt.state(), |s| {
        s.counters.insert("inner.count".into(), 1_000);
    });
    let err = opt.load_state(&bad).unwrap_err().to_string();
    assert!(
        err.contains("\"inner.count\"") && err.contains("nothing was changed"),
        "{err}"
    );
}

/// NAdam recomputes its momentum product from the step count after a load:
/// at the largest count a state may hold, the step still finishes at once.
#[test]
fn nadam_steps_at_once_after_loading_the_largest_step_count() {
    let mut opt = fresh("nadam");
    step(opt.as_mut(), 0);
    let state = edited(&opt.state(), |s| {
        s.counters.insert("count".into(), MAX_STEPS);
    });
    opt.load_state(&state).unwrap();
    let start = Instant::now();
    let updates = step(opt.as_mut(), 1);
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    assert!(updates
        .iter()
        .all(|u| u.to_vec::<f64>().unwrap().iter().all(|x| x.is_finite())));
    let err = opt
        .load_state(&edited(&state, |s| {
            s.counters.insert("count".into(), MAX_STEPS + 1);
        }))
        .unwrap_err();
    assert!(err.to_string().contains("2^53"), "{err}");
}

/// The updates of `name` after one step, then its step counters set to
/// `steps` (and nothing else changed), then one more step; the time that
/// last step took.
fn step_at(name: &str, steps: u64) -> (Vec<Tensor>, Duration) {
    let mut opt = fresh(name);
    step(opt.as_mut(), 0);
    let state = edited(&opt.state(), |s| {
        for (counter, value) in s.counters.iter_mut() {
            let last = counter.rsplit('.').next().unwrap_or(counter);
            if last == "count" || last == "k" {
                *value = steps;
            }
        }
    });
    opt.load_state(&state).unwrap();
    let start = Instant::now();
    let updates = step(opt.as_mut(), 1);
    (updates, start.elapsed())
}

/// Far beyond any bias correction (`beta^t` is 0 for every default beta
/// from a few thousand steps on), 3e9 and 2^53 - 2 steps (both multiples
/// of 10, so SAM's two phases and Lookahead's every-5 synchronisation fall
/// alike) give every optimizer the same finite step, at once: no loop over
/// the count, and no count cast to a wrapped power (as `i32`, 2^53 - 1 is
/// -1 and 3e9 + 1 is negative).
#[test]
fn every_optimizer_steps_alike_at_huge_step_counts() {
    let mut failures = Vec::new();
    for info in catalog::all() {
        let (a, took_a) = step_at(info.name, 3_000_000_000);
        let (b, took_b) = step_at(info.name, MAX_STEPS - 2);
        if took_a.max(took_b) > Duration::from_secs(2) {
            failures.push(format!("{}: took {:?}", info.name, took_a.max(took_b)));
        }
        if !a
            .iter()
            .all(|u| u.to_vec::<f64>().unwrap().iter().all(|x| x.is_finite()))
        {
            failures.push(format!("{}: non-finite updates", info.name));
        }
        if bits(&a) != bits(&b) {
            failures.push(format!("{}: 3e9 and 2^53 - 2 steps differ", info.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Iteration counts that would never finish are refused when set.
#[test]
fn iteration_counts_are_bounded_when_set() {
    for (optimizer, name, value) in [
        ("newton_cg", "cg_iters", 1e300),
        ("newton_cg", "cg_iters", 1e12),
        ("muon", "ns_steps", 1e12),
        ("muon", "ns_steps", 1e300),
    ] {
        let info = catalog::lookup(optimizer).unwrap();
        let start = Instant::now();
        let err = HyperParams::defaults(info).with(name, value).unwrap_err().to_string();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(err.contains(name) && err.contains("at most"), "{err}");
    }
}

/// Every catalog optimizer, handed another one's saved state, either
/// refuses it or takes every tensor in it: none loads part of a state and
/// silently drops the rest (a saved Adam's moments must not vanish into an
/// optimizer that keeps none).
#[test]
fn no_optimizer_silently_drops_part_of_another_ones_state() {
    let names: Vec<&str> = catalog::all().iter().map(|i| i.name).collect();
    let saved: Vec<OptimizerState> = names
        .iter()
        .map(|n| {
            let mut opt = fresh(n);
            step(opt.as_mut(), 0);
            step(opt.as_mut(), 1);
            opt.state()
        })
        .collect();
    let mut dropped = Vec::new();
    for (from, state) in names.iter().zip(&saved) {
        for to in &names {
            let mut opt = fresh(to);
            if opt.load_state(state).is_err() {
                continue;
            }
            let kept = opt.state();
            if let Some(lost) = state.tensors.keys().find(|k| !kept.tensors.contains_key(*k)) {
                dropped.push(format!("{to} took {from}'s state but dropped {lost:?}"));
            }
        }
    }
    assert!(dropped.is_empty(), "{}", dropped.join("\n"));
}
