//! Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR
//! 2015) with elementwise gradient clipping in front, as the benchmark task's
//! early accepted submissions used it:
//!
//! ```text
//! g  = clamp(grad, -clip, clip)
//! m  = beta1 m + (1 - beta1) g
//! v  = beta2 v + (1 - beta2) g^2
//! update = -lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//! ```
//!
//! Two implementations of the same arithmetic:
//!
//! * [`clipped_adam`]: the readable chain `ClipByValue -> ScaleByAdam ->
//!   ScaleByLr` (the moment arithmetic lives in the `update` method of
//!   [`crate::basic::ScaleByAdam`]);
//! * [`ClippedAdam`]: the catalog's `clipped_adam`, all of it in **one pass** over
//!   each tensor (read the gradient, clip, update both moments, write the
//!   update) instead of four (copy, clip, moments, learning rate). Every
//!   operation and rounding is the chain's, in the same order, so the two give
//!   the same bits (tested over many steps in f32 and f64), and they save and
//!   load the same state.

use crate::basic::{adam_tensor_ops, AdamCore, ClipByValue, ScaleByAdam, ScaleByLr};
use crate::layout::ModelLayout;
use crate::schedule::Constant;
use crate::transform::{ChainOptimizer, Slots};
use crate::{chain, check_grads, check_step, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::ops::multi_tensor::{
    self, adam_bias_corrections, AdamTensors, ClippedAdamConstants, ClippedAdamHyper, MultiTensorTable,
};
use ferrograd_engine::storage::CpuSlice;
use ferrograd_engine::{DType, Device, Element, Error, Result, Shape, Tensor, UnaryOp};

/// Adam with value clipping (`clip = f64::INFINITY` disables it), as a
/// chain of three stages. Paper defaults: lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8. [`ClippedAdam`] computes the same updates in one pass.
pub fn clipped_adam(lr: f64, beta1: f64, beta2: f64, eps: f64, clip: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "clipped_adam",
        chain![
            ClipByValue { limit: clip },
            ScaleByAdam::new(beta1, beta2, eps, false),
            ScaleByLr::new(Constant(lr))
        ],
    )
}

/// Clipped Adam (the catalog's `clipped_adam`) in one fused pass per tensor: the
/// same updates as [`clipped_adam`]'s chain, bit for bit, and the same saved
/// state (a checkpoint of one loads into the other).
///
/// What it does differently is only *how much work* it does:
///
/// * one pass over each tensor instead of four, reading the gradient where
///   the caller keeps it (no copy) and writing the update into a buffer of
///   its own that is reused from step to step (no allocation once the caller
///   drops the updates it was given; if it keeps them, the next step copies
///   first, so what the caller holds never changes);
/// * the tensors' elements, all together, are cut into two fixed halves run
///   on two threads (`ops::join`) when there are enough of them; the
///   arithmetic is elementwise, so the cut changes no bit and the results
///   do not depend on the thread count;
/// * a tensor whose gradient is exactly zero everywhere while its moments are
///   still exactly zero (as for tensors a harness never trains: the task's
///   frozen layers and BatchNorm running statistics) is not swept: the
///   formula then gives the same value `u0` for every element (`-0.0` for a
///   positive learning rate) and leaves the moments at zero, so the update
///   buffer is filled with `u0` (once: it is only rewritten when it holds
///   something else) and the moments are left alone. This is an exact
///   shortcut (checked against the formula itself for the configured
///   hyperparameters, and not taken when they make it inexact, e.g. a
///   non-finite beta), not an assumption about which tensors are trained: the
///   first nonzero gradient element puts the tensor on the full path for good.
///
/// Off the CPU (device tensors) each tensor goes through the chain's tensor
/// operations instead.
#[derive(Debug, Clone)]
pub struct ClippedAdam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    clip: f64,
    count: u64,
    shapes: Vec<Shape>,
    m: Slots,
    v: Slots,
    /// The update buffers handed out (as shared clones) by the last step.
    updates: Vec<Tensor>,
    /// Per tensor: both moments are known to be `+0.0` everywhere.
    idle: Vec<bool>,
    /// Per tensor: the bits (`to_f64().to_bits()`) of the value that every
    /// element of its update buffer is known to hold.
    filled: Vec<Option<u64>>,
    /// The GPU step's table of tensors (see [`TaskOptimizer::step_in_place`]).
    table: MultiTensorTable,
}

/// Below this many elements in all (non-idle) tensors together, one thread
/// does the whole pass.
const SPLIT: usize = 1 << 15;

/// The chain's save prefix of its Adam stage (`ClipByValue` is stage 0,
/// `ScaleByAdam` stage 1): the fused form saves under the same names.
const MOMENTS_PREFIX: &str = "1.";
/// The full stems of the moments' names, as saved.
const MOMENT_STEMS: [&str; 2] = ["1.m", "1.v"];

impl ClippedAdam {
    /// Clipped Adam with these hyperparameters (`clip = f64::INFINITY`
    /// disables clipping); the arguments of [`clipped_adam`].
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64, clip: f64) -> ClippedAdam {
        ClippedAdam {
            lr,
            beta1,
            beta2,
            eps,
            clip,
            count: 0,
            shapes: Vec::new(),
            m: Slots::default(),
            v: Slots::default(),
            updates: Vec::new(),
            idle: Vec::new(),
            filled: Vec::new(),
            table: MultiTensorTable::default(),
        }
    }

    /// The constants of step `count`, rounded to the element type as the
    /// chain's stages round them.
    fn coefficients<T: Element>(&self) -> Coefficients<T> {
        let f = T::from_f64;
        let k = self.constants();
        Coefficients {
            lo: f(k.lo),
            hi: f(k.hi),
            adam: AdamCore::new(
                (self.beta1, self.beta2),
                adam_bias_corrections((self.beta1, self.beta2), self.count),
                self.eps,
            ),
            neg_lr: f(k.neg_lr),
        }
    }

    /// The constants of step `count` in f64: one place for them, shared
    /// with the GPU's multi-tensor kernel.
    fn constants(&self) -> ClippedAdamConstants {
        ClippedAdamConstants::new(self.lr, (self.beta1, self.beta2), self.eps, self.clip, self.count)
    }

    /// The hyperparameters as the GPU kernel takes them.
    fn hyper(&self) -> ClippedAdamHyper {
        ClippedAdamHyper {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            clip: self.clip,
        }
    }

    /// Whether an in-place step can run on the device: the arguments are
    /// checked (an error if inconsistent), then the tensors must be on a GPU
    /// and `trained` increasing.
    fn device_step_applies(&self, params: &[&mut Tensor], trained: &[usize], grads: &[Tensor]) -> Result<bool> {
        check_grads("optimizer step", &self.shapes, grads)?;
        if params.len() != trained.len() || trained.iter().any(|&i| i >= grads.len()) {
            return Err(Error::invalid(
                "optimizer step",
                format!(
                    "{} trained tensors named by {} indices into {} gradients",
                    params.len(),
                    trained.len(),
                    grads.len()
                ),
            ));
        }
        self.check_clip()?;
        let on_gpu = grads.first().is_some_and(|g| multi_tensor::runs_on(g.device()));
        Ok(on_gpu && trained.windows(2).all(|w| w[0] < w[1]))
    }

    /// Runs `f` on the trained tensors with their gradients and moments (the
    /// moments made where missing), and marks them as no longer idle.
    fn on_device_tensors<R>(
        &mut self,
        params: &mut [&mut Tensor],
        trained: &[usize],
        grads: &[Tensor],
        f: impl FnOnce(&mut [AdamTensors<'_>], &mut MultiTensorTable) -> Result<R>,
    ) -> Result<R> {
        let n = grads.len();
        self.idle.resize(n, true);
        self.filled.resize(n, None);
        for &i in trained {
            self.idle[i] = false;
            self.filled[i] = None;
        }
        let ms = self.m.all_mut(grads)?;
        let vs = self.v.all_mut(grads)?;
        let mut moments = ms.iter_mut().zip(vs.iter_mut()).enumerate();
        let mut tensors = Vec::with_capacity(trained.len());
        for (param, &i) in params.iter_mut().zip(trained) {
            let (_, (m, v)) = moments
                .find(|(j, _)| *j == i)
                .expect("indices are in range and increasing");
            tensors.push(AdamTensors {
                param,
                grad: &grads[i],
                m,
                v,
            });
        }
        f(&mut tensors, &mut self.table)
    }

    /// The clip as `ClipByValue` checks it.
    fn check_clip(&self) -> Result<()> {
        if self.clip.is_nan() || self.clip < 0.0 {
            return Err(Error::invalid(
                "clamp",
                format!("need lo <= hi, got [{}, {}]", -self.clip, self.clip),
            ));
        }
        Ok(())
    }

    /// The off-CPU path: the chain's tensor operations, tensor by tensor.
    fn device_step(&mut self, grads: &[Tensor]) -> Result<()> {
        let corrections = adam_bias_corrections((self.beta1, self.beta2), self.count);
        let ms = self.m.all_mut(grads)?;
        let vs = self.v.all_mut(grads)?;
        for (i, ((g, m), v)) in grads.iter().zip(ms).zip(vs).enumerate() {
            let mut g = g.unary(UnaryOp::Clamp(-self.clip, self.clip))?;
            adam_tensor_ops(&mut g, m, v, None, (self.beta1, self.beta2), corrections, self.eps)?;
            self.updates[i] = g.unary(UnaryOp::MulScalar(-self.lr))?;
            self.idle[i] = false;
            self.filled[i] = None;
        }
        Ok(())
    }

    /// The CPU path for the tensors of element type `T`.
    fn cpu_pass<T: CpuSlice>(&mut self, grads: &[Tensor]) -> Result<()> {
        let k = self.coefficients::<T>();
        let shortcut = k.zero_gradient_shortcut();
        let ms = self.m.all_mut(grads)?;
        let vs = self.v.all_mut(grads)?;
        let mut pieces: Vec<Piece<'_, T>> = Vec::with_capacity(grads.len() + 1);
        let per_tensor = grads
            .iter()
            .zip(ms)
            .zip(vs)
            .zip(&mut self.updates)
            .zip(self.idle.iter_mut().zip(&mut self.filled));
        for ((((g, m), v), u), (idle, filled)) in per_tensor {
            if g.dtype() != T::DTYPE {
                continue;
            }
            let g = g.as_slice::<T>()?;
            if let Some(u0) = shortcut {
                if *idle && all_zero(g) {
                    let bits = u0.to_f64().to_bits();
                    if *filled != Some(bits) {
                        u.as_mut_slice::<T>()?.fill(u0);
                        *filled = Some(bits);
                    }
                    continue;
                }
            }
            *idle = false;
            *filled = None;
            pieces.push(Piece {
                g,
                m: m.as_mut_slice::<T>()?,
                v: v.as_mut_slice::<T>()?,
                u: u.as_mut_slice::<T>()?,
            });
        }
        run_in_two_halves(&mut pieces, &k);
        Ok(())
    }
}

/// The per-step constants of the fused pass, in the element type.
#[derive(Debug, Clone, Copy)]
struct Coefficients<T> {
    lo: T,
    hi: T,
    adam: AdamCore<T>,
    neg_lr: T,
}

impl<T: Element> Coefficients<T> {
    /// One element of the whole step: clip, moments, direction, learning
    /// rate, operation for operation as `ClipByValue`, `ScaleByAdam` and
    /// `ScaleByLr` compute them. Returns the update.
    #[inline(always)]
    fn apply(&self, g: T, m: &mut T, v: &mut T) -> T {
        // The engine's `Clamp`: `min(max(x, lo), hi)`, NaN kept.
        let g = if g.is_nan() { g } else { g.max(self.lo).min(self.hi) };
        self.adam.step(g, m, v) * self.neg_lr
    }

    /// The update `u0` of an element whose gradient is `±0` and whose
    /// moments are `+0`, if the formula leaves both moments at exactly `+0`
    /// and gives the same `u0` for either sign of the gradient (true for any
    /// finite betas); `None` when the shortcut would not be exact.
    fn zero_gradient_shortcut(&self) -> Option<T> {
        let bits = |x: T| x.to_f64().to_bits();
        let mut results = [T::zero(), -T::zero()].map(|g| {
            let (mut m, mut v) = (T::zero(), T::zero());
            let u = self.apply(g, &mut m, &mut v);
            (bits(m) == 0 && bits(v) == 0).then_some(u)
        });
        match results {
            [Some(a), Some(b)] if bits(a) == bits(b) => results[0].take(),
            _ => None,
        }
    }
}

/// Whether every element is zero (either sign).
fn all_zero<T: Element>(x: &[T]) -> bool {
    x.chunks(64)
        .all(|c| c.iter().fold(true, |acc, &v| acc & (v == T::zero())))
}

/// A stretch of one tensor for the fused pass: its gradient, moments and
/// update buffer, all the same length.
struct Piece<'a, T> {
    g: &'a [T],
    m: &'a mut [T],
    v: &'a mut [T],
    u: &'a mut [T],
}

impl<T: Element> Piece<'_, T> {
    fn run(&mut self, k: &Coefficients<T>) {
        adam_pass(self.g, self.m, self.v, self.u, k);
    }
}

ferrograd_engine::per_isa! {
    /// `u = apply(g)` element by element, updating the moments, compiled for
    /// each instruction set and picked at run time (the same bits on each).
    fn adam_pass / adam_pass_on <T: Element> (g: &[T], m: &mut [T], v: &mut [T], u: &mut [T], k: &Coefficients<T>) {
        let n = g.len();
        let (g, m, v, u) = (&g[..n], &mut m[..n], &mut v[..n], &mut u[..n]);
        for i in 0..n {
            u[i] = k.apply(g[i], &mut m[i], &mut v[i]);
        }
    }
}

/// Runs every piece, the elements of all of them together cut into two
/// halves of fixed size (the piece at the middle split in two) that run
/// through `ops::join` when there are at least [`SPLIT`] of them.
fn run_in_two_halves<T: CpuSlice>(pieces: &mut Vec<Piece<'_, T>>, k: &Coefficients<T>) {
    let total: usize = pieces.iter().map(|p| p.g.len()).sum();
    if total < SPLIT {
        pieces.iter_mut().for_each(|p| p.run(k));
        return;
    }
    let half = total / 2;
    let (mut before, mut at) = (0, 0);
    while before + pieces[at].g.len() <= half {
        before += pieces[at].g.len();
        at += 1;
    }
    let offset = half - before;
    let cut = if offset == 0 {
        at
    } else {
        let Piece { g, m, v, u } = std::mem::replace(
            &mut pieces[at],
            Piece {
                g: &[],
                m: &mut [],
                v: &mut [],
                u: &mut [],
            },
        );
        let (g0, g1) = g.split_at(offset);
        let (m0, m1) = m.split_at_mut(offset);
        let (v0, v1) = v.split_at_mut(offset);
        let (u0, u1) = u.split_at_mut(offset);
        pieces[at] = Piece {
            g: g0,
            m: m0,
            v: v0,
            u: u0,
        };
        pieces.insert(
            at + 1,
            Piece {
                g: g1,
                m: m1,
                v: v1,
                u: u1,
            },
        );
        at + 1
    };
    let (first, second) = pieces.split_at_mut(cut);
    ferrograd_engine::ops::join(
        || first.iter_mut().for_each(|p| p.run(k)),
        || second.iter_mut().for_each(|p| p.run(k)),
    );
}

impl TaskOptimizer for ClippedAdam {
    fn name(&self) -> &str {
        "clipped_adam"
    }

    fn init_state(&mut self, _seed: u64, layout: &ModelLayout) -> Result<()> {
        *self = ClippedAdam::new(self.lr, self.beta1, self.beta2, self.eps, self.clip);
        self.shapes = layout.shapes().to_vec();
        Ok(())
    }

    fn step(&mut self, params: &[Tensor], grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_step("optimizer step", &self.shapes, params, grads)?;
        self.check_clip()?;
        self.count += 1;
        let n = grads.len();
        self.idle.resize(n, true);
        self.filled.resize(n, None);
        self.updates.truncate(n);
        for (i, g) in grads.iter().enumerate() {
            match self.updates.get_mut(i) {
                Some(u) if u.shape() == g.shape() && u.dtype() == g.dtype() && u.device() == g.device() => {}
                Some(u) => {
                    *u = g.zeros_like()?;
                    self.filled[i] = None;
                }
                None => self.updates.push(g.zeros_like()?),
            }
        }
        if grads.iter().any(|g| g.device() != Device::Cpu) {
            self.device_step(grads)?;
        } else {
            self.cpu_pass::<f32>(grads)?;
            if grads.iter().any(|g| g.dtype() == DType::F64) {
                self.cpu_pass::<f64>(grads)?;
            }
        }
        Ok(self.updates.clone())
    }

    /// On a GPU, the whole step is one launch of the engine's multi-tensor
    /// kernel (and one advancing its step counter), with
    /// [`ClippedAdam::step`]'s arithmetic and constants.
    fn step_in_place(
        &mut self,
        params: &mut [&mut Tensor],
        trained: &[usize],
        grads: &[Tensor],
        _ctx: &StepContext,
    ) -> Result<bool> {
        if !self.device_step_applies(params, trained, grads)? {
            return Ok(false);
        }
        let (t, hyper) = (self.count + 1, self.hyper());
        self.on_device_tensors(params, trained, grads, |tensors, table| {
            multi_tensor::clipped_adam_in_place(tensors, &hyper, t, table)
        })?;
        self.count = t;
        Ok(true)
    }

    fn replayable_in_place(&self) -> bool {
        true
    }

    fn replayed_in_place(
        &mut self,
        params: &mut [&mut Tensor],
        trained: &[usize],
        grads: &[Tensor],
        _ctx: &StepContext,
    ) -> Result<bool> {
        if !self.device_step_applies(params, trained, grads)? {
            return Ok(false);
        }
        let t = self.count + 1;
        let fits = self.on_device_tensors(params, trained, grads, |tensors, table| {
            multi_tensor::clipped_adam_replayed(tensors, t, table)
        })?;
        if fits {
            self.count = t;
        }
        Ok(fits)
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        state.counters.insert("count".into(), self.count);
        self.m.save(MOMENTS_PREFIX, "m", &mut state);
        self.v.save(MOMENTS_PREFIX, "v", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check_fits(self.name(), Some(&self.shapes), &self.state())?;
        state.check_kept(self.name(), &[MOMENT_STEMS[0], MOMENT_STEMS[1]])?;
        self.count = state.counter("count")?;
        self.m.load(MOMENTS_PREFIX, "m", state);
        self.v.load(MOMENTS_PREFIX, "v", state);
        // Which moments are exactly zero (a slot not saved is zero).
        let zero = |slots: &Slots, i: usize| match slots.all().get(i) {
            None => true,
            Some(t) => match t.dtype() {
                _ if t.device() != Device::Cpu => false,
                DType::F32 => t.as_slice::<f32>().is_ok_and(|x| x.iter().all(|v| v.to_bits() == 0)),
                DType::F64 => t.as_slice::<f64>().is_ok_and(|x| x.iter().all(|v| v.to_bits() == 0)),
            },
        };
        self.idle = (0..self.shapes.len())
            .map(|i| zero(&self.m, i) && zero(&self.v, i))
            .collect();
        self.filled = vec![None; self.shapes.len()];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_engine::Rng;

    fn bits(t: &Tensor) -> Vec<u64> {
        t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// The pass gives the same bits on every available instruction set,
    /// over three steps with clipped, NaN, zero and odd-length inputs.
    #[test]
    fn the_pass_gives_the_same_bits_on_every_isa() {
        use ferrograd_engine::isa::Isa;
        let mut rng = Rng::new(4);
        let len = 1003;
        let grads: Vec<Vec<f32>> = (0..3)
            .map(|_| {
                (0..len)
                    .map(|i| {
                        if i % 97 == 0 {
                            f32::NAN
                        } else {
                            (rng.normal() * 2.0) as f32
                        }
                    })
                    .collect()
            })
            .collect();
        let run = |isa: Isa| {
            let mut opt = ClippedAdam::new(1e-3, 0.9, 0.999, 1e-8, 1.0);
            let (mut m, mut v, mut u) = (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
            let mut out = Vec::new();
            for g in &grads {
                opt.count += 1;
                adam_pass_on(isa, g, &mut m, &mut v, &mut u, &opt.coefficients::<f32>());
                out.extend(u.iter().chain(&m).chain(&v).map(|x| x.to_bits()));
            }
            out
        };
        for isa in Isa::available() {
            assert_eq!(run(isa), run(Isa::Scalar), "{isa}");
        }
    }

    /// The fused optimizer against the chain it replaces, bit for bit, over
    /// 40 steps in f32 and f64, on tensors that exercise every path: always
    /// zero (the shortcut), zero for a while then not, then zero again (the
    /// full path with nonzero moments), large (the two-thread cut, which
    /// falls inside a tensor), gradients beyond the clip, and lone zero
    /// elements. The saved states match as well, and each loads into the
    /// other to continue identically.
    #[test]
    fn fused_is_bit_identical_to_the_chain() {
        for dtype in [DType::F32, DType::F64] {
            let shapes: Vec<Shape> = [
                &[300usize, 7][..],
                &[7],
                &[200, 250],
                &[250],
                &[256],
                &[256],
                &[3, 5],
                &[40_000],
            ]
            .iter()
            .map(|d| Shape::new(d.to_vec()))
            .collect();
            let (lr, b1, b2, eps, clip) = (3e-3, 0.9, 0.999, 1e-8, 0.7);
            let mut chain = clipped_adam(lr, b1, b2, eps, clip);
            let mut fused = ClippedAdam::new(lr, b1, b2, eps, clip);
            chain.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            fused.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            let mut rng = Rng::new(17);
            let ctx = StepContext::default();
            let params: Vec<Tensor> = shapes
                .iter()
                .map(|s| Tensor::zeros(s.clone(), dtype).unwrap())
                .collect();
            let mut kept = Vec::new();
            for step in 0..40 {
                let grads: Vec<Tensor> = shapes
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let zero = match i {
                            2 | 4 | 5 => true,              // never trained
                            6 => !(10..20).contains(&step), // trained for a while
                            _ => false,
                        };
                        if zero {
                            Tensor::zeros(s.clone(), dtype).unwrap()
                        } else {
                            let g = Tensor::rand_normal(s.clone(), 0.0, 1.0, dtype, &mut rng).unwrap();
                            // Some exact zeros inside a trained tensor.
                            g.mul(&g.gt_scalar(-1.5).unwrap()).unwrap()
                        }
                    })
                    .collect();
                let want = chain.step(&params, &grads, &ctx).unwrap();
                let got = fused.step(&params, &grads, &ctx).unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(bits(a), bits(b), "{dtype} step {step} tensor {i}");
                }
                if step % 7 == 3 {
                    // A caller that keeps the updates: they must not change.
                    kept = got.iter().map(|t| (t.clone(), bits(t))).collect();
                }
            }
            for (t, b) in &kept {
                assert_eq!(&bits(t), b, "a kept update changed");
            }
            let (sc, sf) = (chain.state(), fused.state());
            assert_eq!(sc.counters, sf.counters);
            assert_eq!(
                sc.tensors.keys().collect::<Vec<_>>(),
                sf.tensors.keys().collect::<Vec<_>>()
            );
            for (name, t) in &sc.tensors {
                assert_eq!(bits(t), bits(&sf.tensors[name]), "state {name}");
            }
            // Cross-loading: the chain's state into a fresh fused optimizer and back.
            let mut fused2 = ClippedAdam::new(lr, b1, b2, eps, clip);
            fused2.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            fused2.load_state(&sc).unwrap();
            let mut chain2 = clipped_adam(lr, b1, b2, eps, clip);
            chain2.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            chain2.load_state(&sf).unwrap();
            for _ in 0..3 {
                let grads: Vec<Tensor> = shapes
                    .iter()
                    .map(|s| Tensor::rand_normal(s.clone(), 0.0, 0.1, dtype, &mut rng).unwrap())
                    .collect();
                let a = fused2.step(&params, &grads, &ctx).unwrap();
                let b = chain2.step(&params, &grads, &ctx).unwrap();
                let c = chain.step(&params, &grads, &ctx).unwrap();
                for ((a, b), c) in a.iter().zip(&b).zip(&c) {
                    assert_eq!(bits(a), bits(b));
                    assert_eq!(bits(a), bits(c));
                }
            }
        }
    }

    /// The shortcut for all-zero gradients leaves the moments untouched and
    /// fills the update with the formula's value; with a NaN learning rate
    /// that value is NaN, and with an infinite beta the shortcut is refused
    /// (the moments would become NaN): both still match the chain.
    #[test]
    fn zero_gradient_shortcut_is_exact_or_not_taken() {
        let k = ClippedAdam::new(1e-3, 0.9, 0.999, 1e-8, 1.0);
        let mut k = k;
        k.count = 1;
        let u0 = k.coefficients::<f32>().zero_gradient_shortcut();
        assert_eq!(u0.map(f32::to_bits), Some((-0.0f32).to_bits()));
        k.beta1 = f64::INFINITY;
        assert!(k.coefficients::<f64>().zero_gradient_shortcut().is_none());
        for (lr, beta1) in [(f64::NAN, 0.9), (1e-3, f64::INFINITY), (-1e-3, 0.9)] {
            let shapes = [Shape::new([5])];
            let mut chain = clipped_adam(lr, beta1, 0.999, 1e-8, 1.0);
            let mut fused = ClippedAdam::new(lr, beta1, 0.999, 1e-8, 1.0);
            chain.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            fused.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            let g = [Tensor::zeros([5], DType::F64).unwrap()];
            for _ in 0..3 {
                let a = chain.step(&g, &g, &StepContext::default()).unwrap();
                let b = fused.step(&g, &g, &StepContext::default()).unwrap();
                assert_eq!(bits(&a[0]), bits(&b[0]), "lr {lr} beta1 {beta1}");
            }
            assert_eq!(
                bits(&chain.state().tensors["1.m.0"]),
                bits(&fused.state().tensors["1.m.0"])
            );
        }
    }

    /// The catalog's `clipped_adam` is the fused form, and a negative clip fails
    /// with the chain's error.
    #[test]
    fn catalog_adam_is_fused_and_checks_the_clip() {
        let info = crate::catalog::lookup("clipped_adam").unwrap();
        let opt = (info.build)(&crate::HyperParams::defaults(info)).unwrap();
        assert_eq!(opt.name(), "clipped_adam");
        let mut bad = ClippedAdam::new(1e-3, 0.9, 0.999, 1e-8, -1.0);
        bad.init_state(0, &ModelLayout::any(&[Shape::new([1])])).unwrap();
        let g = [Tensor::zeros([1], DType::F32).unwrap()];
        let err = bad.step(&g, &g, &StepContext::default()).unwrap_err();
        assert!(err.to_string().contains("clamp"), "{err}");
    }

    /// Adam on f(x) = x^2 / 2 from x = 1 with lr 0.1: the first steps move by
    /// almost exactly lr each (bias-corrected m/sqrt(v) = 1 while g is constant
    /// in sign), an independent property of the algorithm.
    #[test]
    fn first_steps_move_by_lr() {
        let mut adam = clipped_adam(0.1, 0.9, 0.999, 1e-8, f64::INFINITY);
        adam.init_state(0, &ModelLayout::any(&[Shape::new([1])])).unwrap();
        let mut x = 1.0f64;
        for _ in 0..3 {
            let p = Tensor::from_vec(vec![x], [1]).unwrap();
            let u = adam
                .step(
                    std::slice::from_ref(&p),
                    std::slice::from_ref(&p),
                    &StepContext::default(),
                )
                .unwrap();
            let dx = u[0].to_scalar().unwrap();
            assert!((dx + 0.1).abs() < 2e-3, "{dx}");
            x += dx;
        }
    }

    /// A NaN gradient gives a NaN update in the fused pass and in the chain
    /// (the clip keeps NaN), so the loss check sees the divergence instead
    /// of an ordinary step of size lr; the other elements step as usual.
    #[test]
    fn a_nan_gradient_is_not_clipped_into_an_ordinary_step() {
        let shapes = [Shape::new([3])];
        let g = Tensor::from_vec(vec![f64::NAN, 5.0, -0.5], [3]).unwrap();
        let p = g.zeros_like().unwrap();
        let mut fused = ClippedAdam::new(1e-2, 0.9, 0.999, 1e-8, 1.0);
        let mut chain = clipped_adam(1e-2, 0.9, 0.999, 1e-8, 1.0);
        for opt in [&mut fused as &mut dyn TaskOptimizer, &mut chain] {
            opt.init_state(0, &ModelLayout::any(&shapes)).unwrap();
            let u = opt
                .step(
                    std::slice::from_ref(&p),
                    std::slice::from_ref(&g),
                    &StepContext::default(),
                )
                .unwrap()[0]
                .to_vec::<f64>()
                .unwrap();
            assert!(u[0].is_nan(), "{}: {u:?}", opt.name());
            assert!((u[1] + 1e-2).abs() < 1e-6 && (u[2] - 1e-2).abs() < 1e-6, "{u:?}");
        }
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let shapes = [Shape::new([3])];
        let g = Tensor::from_vec(vec![0.3f32, -2.0, 0.1], [3]).unwrap();
        let p = g.zeros_like().unwrap();
        let ctx = StepContext::default();
        let mut a = clipped_adam(1e-3, 0.9, 0.999, 1e-8, 1.0);
        a.init_state(0, &ModelLayout::any(&shapes)).unwrap();
        a.step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        let mut b = clipped_adam(1e-3, 0.9, 0.999, 1e-8, 1.0);
        b.init_state(0, &ModelLayout::any(&shapes)).unwrap();
        b.load_state(&a.state()).unwrap();
        let ua = a
            .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        let ub = b
            .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        assert_eq!(ua[0].to_vec::<f32>().unwrap(), ub[0].to_vec::<f32>().unwrap());
    }
}
