//! A chain saves each stage's state under the stage's position (`0.m.3`:
//! stage 0's first moment of parameter 3). Loading checks the saved names
//! against the chain's own before assigning anything, so a state saved by
//! one chain is refused by the same stages in another order, instead of
//! handing one stage's moments to another.

use ferrograd_engine::{DType, Shape, Tensor};
use ferrograd_optim::basic::{ClipByValue, ScaleByAdam, ScaleByLr};
use ferrograd_optim::schedule::Constant;
use ferrograd_optim::transform::ChainOptimizer;
use ferrograd_optim::{chain, ModelLayout, OptimizerState, StepContext, TaskOptimizer};

fn adam() -> ScaleByAdam {
    ScaleByAdam::new(0.9, 0.999, 1e-8, false)
}

/// One step of `opt` on two small tensors, from a fresh state.
fn stepped(mut opt: ChainOptimizer) -> ChainOptimizer {
    let shapes = [Shape::from([3]), Shape::from([2])];
    opt.init_state(0, &ModelLayout::any(&shapes)).unwrap();
    let params: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::ones(s.clone(), DType::F64).unwrap())
        .collect();
    let grads: Vec<Tensor> = params.iter().map(|p| p.mul_scalar(0.5).unwrap()).collect();
    opt.step(&params, &grads, &StepContext::default()).unwrap();
    opt
}

/// Whether two states hold the same counters and the same tensor values.
fn same(a: &OptimizerState, b: &OptimizerState) -> bool {
    a.counters == b.counters
        && a.tensors.len() == b.tensors.len()
        && a.tensors.iter().all(|(name, t)| {
            b.tensors
                .get(name)
                .is_some_and(|u| u.to_vec_f64().unwrap() == t.to_vec_f64().unwrap())
        })
}

#[test]
fn a_state_does_not_load_into_the_same_stages_reordered() {
    let saved = stepped(ChainOptimizer::new(
        "c",
        chain![ClipByValue { limit: 1.0 }, adam(), ScaleByLr::new(Constant(0.1))],
    ))
    .state();
    assert!(
        saved.tensors.contains_key("1.m.0"),
        "stage 1 (Adam) saves under its position"
    );
    let mut reordered = stepped(ChainOptimizer::new(
        "c",
        chain![adam(), ClipByValue { limit: 1.0 }, ScaleByLr::new(Constant(0.1))],
    ));
    let before = reordered.state();
    let err = reordered.load_state(&saved).unwrap_err().to_string();
    assert!(
        err.contains("1.m.0") || err.contains("0.m.0"),
        "the error names a slot: {err}"
    );
    assert!(same(&reordered.state(), &before), "nothing was assigned");
    // Resuming: a fresh optimizer with the stages reordered refuses it too.
    let mut fresh = ChainOptimizer::new(
        "c",
        chain![adam(), ClipByValue { limit: 1.0 }, ScaleByLr::new(Constant(0.1))],
    );
    fresh
        .init_state(0, &ModelLayout::any(&[Shape::from([3]), Shape::from([2])]))
        .unwrap();
    assert!(fresh.load_state(&saved).is_err());
    // The same order loads.
    let mut in_order = stepped(ChainOptimizer::new(
        "c",
        chain![ClipByValue { limit: 1.0 }, adam(), ScaleByLr::new(Constant(0.1))],
    ));
    in_order.load_state(&saved).unwrap();
    assert!(same(&in_order.state(), &saved));
}
