//! One pass per tensor: the plumbing that the elementwise stages share.
//!
//! An elementwise stage (momentum, RMSprop, Adagrad, the Adam variants,
//! AdaBelief, Lion, ...) is written twice:
//!
//! * as **tensor operations** ([`TensorOpsReference::update_with_tensor_ops`]):
//!   the readable form of the formula, which runs on any device and is the
//!   reference;
//! * as **one element's arithmetic** (an `ElementStep`), which
//!   `one_pass` runs over each tensor on the CPU: one sweep that reads the
//!   update and the state and writes both back in place, instead of one
//!   sweep and one temporary tensor per operation.
//!
//! The element step repeats the tensor form operation for operation, with
//! each scalar rounded to the element type first as the scalar tensor ops
//! round theirs (`x.div_scalar(c)` is `x * T::from_f64(1 / c)`), so the two
//! give the same bits; tests hold every stage to that
//! (`testing::assert_one_pass_matches_tensor_ops`).

use crate::transform::{Slots, StepInfo, Transform};
use ferrograd_engine::storage::CpuSlice;
use ferrograd_engine::{DType, Device, Error, Result, Tensor};

/// A stage whose CPU step is a one-pass rewrite of a tensor-operation form,
/// kept as the reference: tests compare the two bit for bit and the benches
/// time one against the other.
pub trait TensorOpsReference: Transform {
    /// The step as tensor operations (any device): the same updates and
    /// state as [`Transform::update`], the slow readable way.
    fn update_with_tensor_ops(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>>;
}

/// One element of a stage's step, with the step's constants already
/// rounded to `T`: takes the incoming update and the element's `N` state
/// values (updated in place) and returns the outgoing update.
pub(crate) trait ElementStep<T, const N: usize>: Sync {
    /// The step for one element.
    fn apply(&self, update: T, state: [&mut T; N]) -> T;
}

/// Whether `tensors` all live on the CPU (where [`one_pass`] can run).
pub(crate) fn all_on_cpu(tensors: &[Tensor]) -> bool {
    tensors.iter().all(|t| t.device() == Device::Cpu)
}

/// Runs `step` over every element of every tensor of `updates`, in place:
/// each update element is replaced by the step's result, and the elements of
/// the `N` state slots (created as zeros shaped like the updates where
/// missing) are updated alongside. `step.0` serves `f32` tensors and
/// `step.1` `f64` ones. All tensors must be on the CPU ([`all_on_cpu`]).
pub(crate) fn one_pass<const N: usize>(
    updates: &mut [Tensor],
    slots: [&mut Slots; N],
    step: (&impl ElementStep<f32, N>, &impl ElementStep<f64, N>),
) -> Result<()> {
    let mut state = all_ok(slots.map(|s| s.all_mut(updates)))?;
    for (i, u) in updates.iter_mut().enumerate() {
        let cells = state.each_mut().map(|s| &mut s[i]);
        match u.dtype() {
            DType::F32 => tensor_in_place(u, cells, step.0)?,
            DType::F64 => tensor_in_place(u, cells, step.1)?,
        }
    }
    Ok(())
}

/// `[Ok(a), Ok(b), ...]` as `Ok([a, b, ...])`, or the first error.
fn all_ok<X, const N: usize>(results: [Result<X>; N]) -> Result<[X; N]> {
    let mut first_error = None;
    let values = results.map(|r| match r {
        Ok(x) => Some(x),
        Err(e) => {
            first_error.get_or_insert(e);
            None
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(values.map(|x| x.expect("no error, so every value is present"))),
    }
}

/// [`one_pass`] for one tensor `u` and its state tensors.
fn tensor_in_place<T: CpuSlice, const N: usize>(
    u: &mut Tensor,
    state: [&mut Tensor; N],
    step: &impl ElementStep<T, N>,
) -> Result<()> {
    let u = u.as_mut_slice::<T>()?;
    let state = all_ok(state.map(|s| s.as_mut_slice::<T>()))?;
    if let Some(s) = state.iter().find(|s| s.len() != u.len()) {
        return Err(Error::invalid(
            "one_pass",
            format!("a state slot has {} elements for an update of {}", s.len(), u.len()),
        ));
    }
    sweep(u, state, step);
    Ok(())
}

/// Below this many elements one thread sweeps the whole tensor.
const SPLIT: usize = 1 << 15;

/// Applies `step` along equal-length slices. Large ones are cut into two
/// fixed halves run on two threads (`ops::join`); the arithmetic is
/// elementwise, so the cut changes no bit.
fn sweep<T: Copy + Send, const N: usize>(u: &mut [T], state: [&mut [T]; N], step: &impl ElementStep<T, N>) {
    if u.len() < SPLIT {
        return sweep_serial(u, state, step);
    }
    let half = u.len() / 2;
    let (u0, u1) = u.split_at_mut(half);
    let mut halves = state.map(|s| s.split_at_mut(half));
    let state0 = halves.each_mut().map(|h| std::mem::take(&mut h.0));
    let state1 = halves.map(|h| h.1);
    ferrograd_engine::ops::join(|| sweep(u0, state0, step), || sweep(u1, state1, step));
}

/// [`sweep`] on one thread.
fn sweep_serial<T: Copy, const N: usize>(u: &mut [T], state: [&mut [T]; N], step: &impl ElementStep<T, N>) {
    // Every slice cut to the same length, so that the compiler drops the
    // bounds checks and vectorises the loop.
    let len = u.len();
    let mut state = state.map(|s| &mut s[..len]);
    for j in 0..len {
        u[j] = step.apply(u[j], state.each_mut().map(|s| &mut s[j]));
    }
}

/// The check every one-pass stage's tests run: over random shapes, values
/// and steps, the one-pass step and the tensor form give the same bits.
#[cfg(test)]
pub(crate) mod testing {
    use super::TensorOpsReference;
    use crate::transform::StepInfo;
    use crate::{OptimizerState, StepContext};
    use ferrograd_engine::{DType, Rng, Shape, Tensor};
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    /// A run to compare: tensor shapes, element type, step count and seed.
    #[derive(Debug, Clone)]
    pub(crate) struct Run {
        shapes: Vec<Shape>,
        dtype: DType,
        steps: u64,
        seed: u64,
    }

    /// Random runs: one to four tensors of up to three dimensions (one
    /// large enough to be cut across two threads), f32 or f64, 1 to 8 steps.
    pub(crate) fn runs() -> impl Strategy<Value = Run> {
        let dims = prop::collection::vec(1usize..9, 0..4);
        let small = dims.prop_map(Shape::new);
        let shapes = (prop::collection::vec(small, 1..4), any::<bool>()).prop_map(|(mut shapes, large)| {
            if large {
                shapes.push(Shape::new([super::SPLIT + 3]));
            }
            shapes
        });
        let dtype = prop_oneof![Just(DType::F32), Just(DType::F64)];
        (shapes, dtype, 1u64..9, any::<u64>()).prop_map(|(shapes, dtype, steps, seed)| Run {
            shapes,
            dtype,
            steps,
            seed,
        })
    }

    /// Element bits, so that `-0.0` and NaN payloads count.
    fn bits(t: &Tensor) -> Vec<u64> {
        t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// Runs `stage` (one pass) and a clone of it (tensor form) side by side
    /// over `run`'s steps, on gradients whose scale changes from step to
    /// step and that hold exact zeros every third step; asserts that every
    /// step's updates and the final saved states are equal bit for bit.
    pub(crate) fn assert_one_pass_matches_tensor_ops<S>(stage: S, run: &Run) -> Result<(), TestCaseError>
    where
        S: TensorOpsReference + Clone,
    {
        let (mut fast, mut reference) = (stage.clone(), stage);
        let mut rng = Rng::new(run.seed);
        let normal = |rng: &mut Rng, s: &Shape, scale: f64| Tensor::rand_normal(s.clone(), 0.0, scale, run.dtype, rng);
        let params: Vec<Tensor> = run.shapes.iter().map(|s| normal(&mut rng, s, 1.0).unwrap()).collect();
        let ctx = StepContext::default();
        for count in 1..=run.steps {
            let scale = [1.0, 1e-3, 30.0][count as usize % 3];
            let grads: Vec<Tensor> = run
                .shapes
                .iter()
                .map(|s| {
                    let g = normal(&mut rng, s, scale).unwrap();
                    if count % 3 == 2 {
                        g.relu().unwrap()
                    } else {
                        g
                    }
                })
                .collect();
            let info = StepInfo {
                count,
                params: &params,
                ctx: &ctx,
            };
            let got = fast.update(grads.clone(), &info).unwrap();
            let want = reference.update_with_tensor_ops(grads, &info).unwrap();
            prop_assert_eq!(got.len(), want.len());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                prop_assert_eq!(bits(a), bits(b), "update {} at step {}", k, count);
            }
        }
        let (mut a, mut b) = (OptimizerState::default(), OptimizerState::default());
        fast.save("0.", &mut a);
        reference.save("0.", &mut b);
        prop_assert_eq!(a.tensors.len(), b.tensors.len());
        for (name, t) in &a.tensors {
            prop_assert_eq!(bits(t), bits(&b.tensors[name]), "state {}", name);
        }
        Ok(())
    }
}
