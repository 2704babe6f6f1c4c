//! Optimizer calls: every catalog entry with random hyperparameters,
//! init_state, steps with well-formed and perturbed inputs, and
//! save_state / load_state round trips of perturbed states.

use crate::compat;
use crate::engine_calls::dtype;
use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::engine::{DType, Shape, Tensor};
use ferrograd::optim::{
    catalog, HyperParams, ModelLayout, OptimizerInfo, OptimizerState, Role, StepContext, TaskOptimizer,
};

/// Runs one optimizer case.
pub fn run(g: &mut Gen, s: &mut CaseStats) {
    let all = catalog::all();
    let info = all[g.below(all.len())];
    let hps = hyperparams(g, s, info);
    let Some(mut opt) = s.call(format!("{}.build(..)", info.name), || (info.build)(&hps)) else {
        return;
    };
    let shapes: Vec<Shape> = (0..1 + g.below(3)).map(|_| Shape::new(g.small_dims())).collect();
    let dt = dtype(g);
    let seed = g.u64();
    let layout = model_layout(g, &shapes);
    let init = format!("{}.init_state({layout:?})", info.name);
    if s.call(init, || opt.init_state(seed, &layout)).is_none() {
        return;
    }
    for _ in 0..1 + g.below(3) {
        step(g, s, opt.as_mut(), &shapes, dt);
    }
    if g.chance(0.6) {
        reload(g, s, info, &hps, opt.as_ref(), &shapes, dt);
    }
}

/// Defaults with a few random assignments, and a read by a random name.
fn hyperparams(g: &mut Gen, s: &mut CaseStats, info: &OptimizerInfo) -> HyperParams {
    let mut hps = HyperParams::defaults(info);
    for _ in 0..g.below(3) {
        let name = name(g, info);
        let value = if g.wild && g.chance(0.1) {
            // Absurd iteration counts, step counts and the like.
            g.pick(&[1e12, 1e300, 1099511627776.0])
        } else if g.chance(0.5) {
            g.float()
        } else {
            g.float().abs() * 0.01
        };
        s.call(format!("HyperParams({}).set({name:?}, {value})", info.name), || {
            hps.set(name, value)
        });
    }
    let name = name(g, info);
    s.call(format!("HyperParams({}).get({name:?})", info.name), || {
        compat::hp_get(&hps, name)
    });
    hps
}

/// One of the optimizer's names, or a name it does not have.
fn name(g: &mut Gen, info: &OptimizerInfo) -> &'static str {
    if info.hyperparams.is_empty() || g.chance(0.15) {
        "no_such_hp"
    } else {
        info.hyperparams[g.below(info.hyperparams.len())].name
    }
}

/// Random tensors of `shapes`.
fn tensors(g: &mut Gen, shapes: &[Shape], dt: DType) -> Vec<Tensor> {
    shapes
        .iter()
        .map(|sh| Tensor::from_f64_slice(&g.floats(sh.numel()), sh.clone(), dt).expect("length matches"))
        .collect()
}

/// One step, its inputs perturbed a quarter of the time.
fn step(g: &mut Gen, s: &mut CaseStats, opt: &mut dyn TaskOptimizer, shapes: &[Shape], dt: DType) {
    let mut params = tensors(g, shapes, dt);
    let mut grads = tensors(g, shapes, dt);
    let mut how = if g.chance(0.25) {
        perturb(g, &mut grads)
    } else {
        "well-formed"
    };
    if g.chance(0.05) {
        params.pop();
        how = "params one missing";
    }
    let ctx = context(g);
    if g.chance(0.2) {
        s.call(format!("{}.query_at_params(..)", opt.name()), || {
            opt.query_at_params(&params, &ctx)
        });
    }
    let desc = format!("{}.step({shapes:?} {dt:?}, grads {how}, {ctx:?})", opt.name());
    s.call(desc, || opt.step(&params, &grads, &ctx));
}

/// Breaks `grads` in one of several ways; says which.
fn perturb(g: &mut Gen, grads: &mut Vec<Tensor>) -> &'static str {
    match g.below(5) {
        0 => {
            grads.pop();
            "one missing"
        }
        1 => {
            grads.push(Tensor::zeros([2], DType::F32).expect("two elements fit"));
            "one extra"
        }
        2 => {
            grads[0] = grads[0].to_dtype(other(grads[0].dtype())).unwrap();
            "first of the other dtype"
        }
        3 => {
            grads[0] = Tensor::zeros([grads[0].numel() + 1], grads[0].dtype()).expect("a small tensor fits");
            "first of another shape"
        }
        _ => {
            grads[0] = grads[0].mul_scalar(f64::NAN).unwrap();
            "first NaN"
        }
    }
}

/// The dtype that `dt` is not.
fn other(dt: DType) -> DType {
    if dt == DType::F32 {
        DType::F64
    } else {
        DType::F32
    }
}

/// A step context, sometimes odd.
fn context(g: &mut Gen) -> StepContext {
    let loss = g.chance(0.7).then(|| g.float());
    let spe = g.chance(0.5).then(|| g.below(4));
    compat::step_context(g.below(5), g.count(), loss, spe)
}

/// Saves the state, perturbs it, loads it into a fresh optimizer and steps.
fn reload(
    g: &mut Gen,
    s: &mut CaseStats,
    info: &OptimizerInfo,
    hps: &HyperParams,
    opt: &dyn TaskOptimizer,
    shapes: &[Shape],
    dt: DType,
) {
    let Some(mut state) = s.infallible(format!("{}.state()", info.name), || opt.state()) else {
        return;
    };
    let how = perturb_state(g, &mut state);
    let Ok(mut fresh) = (info.build)(hps) else { return };
    if fresh.init_state(1, &model_layout(g, shapes)).is_err() {
        return;
    }
    let desc = format!("{}.load_state(state with {how})", info.name);
    if s.call(desc, || fresh.load_state(&state)).is_some() {
        step(g, s, fresh.as_mut(), shapes, dt);
    }
}

/// Changes one entry of a saved state (or none); says what changed.
fn perturb_state(g: &mut Gen, state: &mut OptimizerState) -> String {
    let tensor_key = nth_key(g, state.tensors.keys());
    let counter_key = nth_key(g, state.counters.keys());
    match (g.below(6), tensor_key, counter_key) {
        (0, Some(k), _) => {
            let t = &state.tensors[&k];
            let reshaped = Tensor::zeros([t.numel() + 1], t.dtype()).expect("a small tensor fits");
            state.tensors.insert(k.clone(), reshaped);
            format!("tensor {k} of another shape")
        }
        (1, Some(k), _) => {
            let t = state.tensors[&k].to_dtype(other(state.tensors[&k].dtype())).unwrap();
            state.tensors.insert(k.clone(), t);
            format!("tensor {k} of the other dtype")
        }
        (2, Some(k), _) => {
            state.tensors.remove(&k);
            format!("tensor {k} missing")
        }
        (3 | 4, _, Some(k)) => {
            let v = absurd_counter(g);
            state.counters.insert(k.clone(), v);
            format!("counter {k} = {v}")
        }
        (5, _, Some(k)) => {
            state.counters.remove(&k);
            format!("counter {k} missing")
        }
        _ => "no change".into(),
    }
}

/// A key of a map, picked at random.
fn nth_key<'a>(g: &mut Gen, keys: impl ExactSizeIterator<Item = &'a String>) -> Option<String> {
    let n = keys.len();
    let i = g.below(n);
    keys.into_iter().nth(i).cloned()
}

/// A counter value: small, or (when wild) absurd.
fn absurd_counter(g: &mut Gen) -> u64 {
    if g.wild && g.chance(0.6) {
        g.pick(&[1 << 40, 1_000_000_000_000, u64::MAX, 1e300 as u64, u64::MAX / 2])
    } else {
        g.below(1000) as u64
    }
}

/// A layout for `shapes`: bare tensors, or roles and trained flags drawn at
/// random (roles that need not fit the shapes: an optimizer must refuse
/// them with an error, not a panic).
fn model_layout(g: &mut Gen, shapes: &[Shape]) -> ModelLayout {
    if g.chance(0.4) {
        return ModelLayout::any(shapes);
    }
    let roles = shapes.iter().map(|_| random_role(g)).collect();
    let trained = shapes.iter().map(|_| g.chance(0.7)).collect();
    ModelLayout::new(shapes.to_vec(), Some(roles), trained).expect("one role and flag per shape")
}

/// Any role, of one of the first three layers.
fn random_role(g: &mut Gen) -> Role {
    let layer = g.below(3);
    match g.below(6) {
        0 => Role::Weight(layer),
        1 => Role::Bias(layer),
        2 => Role::BnScale(layer),
        3 => Role::BnShift(layer),
        4 => Role::RunningMean(layer),
        _ => Role::RunningVar(layer),
    }
}
