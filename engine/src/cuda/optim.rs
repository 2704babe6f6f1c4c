//! Fused multi-tensor optimizer updates: one kernel launch updates every
//! parameter tensor (SGD with momentum, Adam/AdamW, Lion, Adan). The
//! formulas are those of the CPU optimizers in `ferrograd-optim`, written
//! out next to each kernel in `ptx/cuda/optim.cu`; the GPU tests compare
//! the two step by step.

use super::backend::{backend, BLOCK};
use super::memory::RawBuffer;
use super::ops::{args, buf, full, pick};
use crate::{Device, Error, Result, Tensor};
use std::ffi::c_void;

/// Elements per block (`CHUNK` in optim.cu).
const CHUNK: usize = 2048;

/// The update rule and its hyperparameters (learning rate and weight decay
/// live in [`FusedOptimizer`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedRule {
    /// `torch.optim.SGD` with momentum; L2 weight decay.
    Sgdm {
        /// Momentum factor.
        momentum: f64,
        /// Dampening of new gradients in the buffer.
        dampening: f64,
        /// Nesterov's variant.
        nesterov: bool,
    },
    /// Adam, or AdamW when `decoupled`.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator stabiliser.
        eps: f64,
        /// Decoupled (AdamW) weight decay instead of L2.
        decoupled: bool,
    },
    /// Lion (decoupled weight decay times the learning rate).
    Lion {
        /// Interpolation for the sign.
        beta1: f64,
        /// Momentum decay.
        beta2: f64,
    },
    /// Adan (EMA convention; proximal decay unless `no_prox`).
    Adan {
        /// First-moment decay.
        beta1: f64,
        /// Gradient-difference decay.
        beta2: f64,
        /// Second-moment decay.
        beta3: f64,
        /// Denominator stabiliser.
        eps: f64,
        /// Plain decoupled decay instead of the proximal form.
        no_prox: bool,
    },
}

impl FusedRule {
    fn state_count(self) -> usize {
        match self {
            FusedRule::Sgdm { .. } | FusedRule::Lion { .. } => 1,
            FusedRule::Adam { .. } => 2,
            FusedRule::Adan { .. } => 4,
        }
    }

    fn kernel(self, dtype: crate::DType) -> &'static str {
        match self {
            FusedRule::Sgdm { .. } => pick(dtype, "sgdm_multi_f32", "sgdm_multi_f64"),
            FusedRule::Adam { .. } => pick(dtype, "adam_multi_f32", "adam_multi_f64"),
            FusedRule::Lion { .. } => pick(dtype, "lion_multi_f32", "lion_multi_f64"),
            FusedRule::Adan { .. } => pick(dtype, "adan_multi_f32", "adan_multi_f64"),
        }
    }
}

/// Mirrors `Slot` in ptx/cuda/optim.cu. `Pod`: uploaded as bytes, and the
/// derive proves at compile time that it has no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Slot {
    param: u64,
    grad: u64,
    state: [u64; 4],
    update: u64,
    len: i64,
    first_block: i64,
    pad: i64,
}

/// Mirrors `Hyper` in ptx/cuda/optim.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Hyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    beta3: f64,
    eps: f64,
    weight_decay: f64,
    c1: f64,
    c2: f64,
    c3: f64,
    momentum: f64,
    dampening: f64,
    flags: i32,
    pad: i32,
}

const FLAG_DECOUPLED: i32 = 1;
const FLAG_NESTEROV: i32 = 2;
const FLAG_APPLY: i32 = 4;
const FLAG_FIRST: i32 = 8;

/// An optimizer whose whole step over every parameter is one kernel launch.
#[derive(Debug, Clone)]
pub struct FusedOptimizer {
    /// The update rule.
    pub rule: FusedRule,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay (L2 for SGD and non-decoupled Adam, decoupled otherwise).
    pub weight_decay: f64,
    step: u64,
    state: Vec<Vec<Tensor>>,
}

impl FusedOptimizer {
    /// A fresh optimizer (state is created on the first step).
    pub fn new(rule: FusedRule, lr: f64, weight_decay: f64) -> FusedOptimizer {
        FusedOptimizer {
            rule,
            lr,
            weight_decay,
            step: 0,
            state: Vec::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The state tensors of parameter `i` (moments, buffers), for tests.
    pub fn state(&self, i: usize) -> &[Tensor] {
        &self.state[i]
    }

    /// One step: returns the additive update of every parameter (the
    /// trainer's protocol, `param += update`) without changing `params`.
    pub fn updates(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut updates = Vec::with_capacity(params.len());
        for p in params {
            updates.push(full(super::ops::ordinal(p), p.shape().clone(), 0.0, p.dtype())?);
        }
        self.launch(params, grads, &updates, false)?;
        Ok(updates)
    }

    /// One step applied in place: `param += update` inside the kernel.
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) -> Result<()> {
        for p in params.iter_mut() {
            p.unique_storage("fused optimizer")?; // copy first if another tensor shares the buffer
        }
        self.launch(params, grads, &[], true)
    }

    fn launch(&mut self, params: &[Tensor], grads: &[Tensor], updates: &[Tensor], apply: bool) -> Result<()> {
        let op = "fused optimizer";
        if params.len() != grads.len() {
            return Err(Error::invalid(
                op,
                format!("{} params but {} grads", params.len(), grads.len()),
            ));
        }
        let Some(first) = params.first() else { return Ok(()) };
        let Device::Cuda(ordinal) = first.device() else {
            return Err(Error::DeviceMismatch {
                op,
                lhs: first.device(),
                rhs: Device::Cuda(0),
            });
        };
        for (p, g) in params.iter().zip(grads) {
            first.check_same_kind(p, op)?;
            p.check_same_kind(g, op)?;
            if p.shape() != g.shape() {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: p.shape().clone(),
                    rhs: g.shape().clone(),
                    hint: "each gradient must have its parameter's shape",
                });
            }
        }
        if self.state.is_empty() {
            for p in params {
                let zeros: Result<Vec<Tensor>> = (0..self.rule.state_count())
                    .map(|_| full(ordinal, p.shape().clone(), 0.0, p.dtype()))
                    .collect();
                self.state.push(zeros?);
            }
        } else if self.state.len() != params.len() {
            return Err(Error::invalid(op, "the number of parameters changed between steps"));
        }
        self.step += 1;
        let t = self.step as i32;
        let mut h = Hyper {
            lr: self.lr,
            weight_decay: self.weight_decay,
            flags: if apply { FLAG_APPLY } else { 0 } | if self.step == 1 { FLAG_FIRST } else { 0 },
            ..Hyper::default()
        };
        match self.rule {
            FusedRule::Sgdm {
                momentum,
                dampening,
                nesterov,
            } => {
                h.momentum = momentum;
                h.dampening = dampening;
                if nesterov {
                    h.flags |= FLAG_NESTEROV;
                }
            }
            FusedRule::Adam {
                beta1,
                beta2,
                eps,
                decoupled,
            } => {
                (h.beta1, h.beta2, h.eps) = (beta1, beta2, eps);
                (h.c1, h.c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
                if decoupled {
                    h.flags |= FLAG_DECOUPLED;
                }
            }
            FusedRule::Lion { beta1, beta2 } => (h.beta1, h.beta2) = (beta1, beta2),
            FusedRule::Adan {
                beta1,
                beta2,
                beta3,
                eps,
                no_prox,
            } => {
                (h.beta1, h.beta2, h.beta3, h.eps) = (beta1, beta2, beta3, eps);
                (h.c1, h.c2, h.c3) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t), 1.0 - beta3.powi(t));
                if no_prox {
                    h.flags |= FLAG_DECOUPLED;
                }
            }
        }
        let mut slots = Vec::with_capacity(params.len());
        let mut blocks = 0usize;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.numel() == 0 {
                continue;
            }
            let mut state = [0u64; 4];
            for (k, s) in self.state[i].iter().enumerate() {
                state[k] = buf(s).device_ptr();
            }
            slots.push(Slot {
                param: buf(p).device_ptr(),
                grad: buf(g).device_ptr(),
                state,
                update: updates.get(i).map_or(0, |u| buf(u).device_ptr()),
                len: p.numel() as i64,
                first_block: blocks as i64,
                pad: 0,
            });
            blocks += p.numel().div_ceil(CHUNK);
        }
        if slots.is_empty() {
            return Ok(());
        }
        let b = backend(ordinal)?;
        let table = RawBuffer::from_slice(ordinal, &slots)?;
        let (tp, ns) = (table.device_ptr(), slots.len() as i32);
        let kernel = self.rule.kernel(first.dtype());
        // SAFETY: arguments in the `*_multi` kernels' order; every slot's
        // pointers address `len` elements of the slot's dtype.
        // The slot table goes back to the cache in stream order when dropped.
        unsafe { b.launch(kernel, blocks as u32, BLOCK, &args![tp, ns, h]) }
    }
}

/// Mirrors `ClippedAdamHyper` in ptx/cuda/optim.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ClippedAdamHyper {
    pub(crate) lr: f64,
    pub(crate) beta1: f64,
    pub(crate) beta2: f64,
    pub(crate) eps: f64,
    pub(crate) clip: f64,
}

/// What a multi-tensor launch keeps on the device between steps: the table
/// of its tensors (uploaded again only when a tensor's buffer moved) and
/// the step counter the kernel reads (advanced on the device after each
/// launch), so that a steady-state step copies nothing to the device and
/// its launches can be captured once in a CUDA graph and replayed.
#[derive(Default)]
pub struct SlotTable {
    slots: Vec<Slot>,
    blocks: usize,
    device: Option<RawBuffer>,
    /// The device's step counter, and the value the host knows it holds.
    step: Option<(RawBuffer, u64)>,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotTable({} tensors, {} blocks)", self.slots.len(), self.blocks)
    }
}

impl SlotTable {
    /// `slots` with `first_block` filled in, and the blocks they need.
    fn numbered(mut slots: Vec<Slot>) -> (Vec<Slot>, usize) {
        let mut blocks = 0usize;
        for s in &mut slots {
            s.first_block = blocks as i64;
            blocks += (s.len as usize).div_ceil(CHUNK);
        }
        (slots, blocks)
    }

    /// Whether the device table describes `slots` already.
    fn holds(&self, slots: &[Slot]) -> bool {
        self.device.is_some() && self.slots == slots
    }

    /// Makes the table describe `slots`, uploading it only if it changed.
    fn update(&mut self, ordinal: usize, slots: Vec<Slot>) -> Result<()> {
        let (slots, blocks) = SlotTable::numbered(slots);
        if !self.holds(&slots) {
            self.device = Some(RawBuffer::from_slice(ordinal, &slots)?);
            self.slots = slots;
            self.blocks = blocks;
        }
        Ok(())
    }

    /// Makes the device's step counter hold `value` (uploading only if the
    /// host does not know it to hold it already).
    fn sync_step(&mut self, ordinal: usize, value: u64) -> Result<()> {
        match &mut self.step {
            Some((_, known)) if *known == value => Ok(()),
            Some((buffer, known)) => {
                buffer.write(&[value as i64])?;
                *known = value;
                Ok(())
            }
            None => {
                self.step = Some((RawBuffer::from_slice(ordinal, &[value as i64])?, value));
                Ok(())
            }
        }
    }
}

/// One tensor of a clipped-Adam launch: the parameter (updated in place),
/// its gradient and both moments (updated in place).
pub(crate) struct AdamSlot<'a> {
    pub(crate) param: &'a mut Tensor,
    pub(crate) grad: &'a Tensor,
    pub(crate) m: &'a mut Tensor,
    pub(crate) v: &'a mut Tensor,
}

/// The slot table entries of `tensors` (their buffers made unshared) and
/// their GPU, after checking shapes, dtypes and devices.
fn adam_slots(tensors: &mut [AdamSlot<'_>], op: &'static str) -> Result<Option<(usize, crate::DType, Vec<Slot>)>> {
    let Some(first) = tensors.first() else { return Ok(None) };
    let Device::Cuda(ordinal) = first.param.device() else {
        return Err(Error::DeviceMismatch {
            op,
            lhs: first.param.device(),
            rhs: Device::Cuda(0),
        });
    };
    let dtype = first.param.dtype();
    let mut slots = Vec::with_capacity(tensors.len());
    for t in tensors.iter_mut() {
        for other in [t.grad, &*t.m, &*t.v] {
            t.param.check_same_kind(other, op)?;
            if other.shape() != t.param.shape() {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: t.param.shape().clone(),
                    rhs: other.shape().clone(),
                    hint: "each gradient and moment must have its parameter's shape",
                });
            }
        }
        first_kind(t.param, ordinal, dtype, op)?;
        if t.param.numel() == 0 {
            continue;
        }
        slots.push(Slot {
            param: unique_ptr(t.param)?,
            grad: buf(t.grad).device_ptr(),
            state: [unique_ptr(t.m)?, unique_ptr(t.v)?, 0, 0],
            update: 0,
            len: t.param.numel() as i64,
            first_block: 0,
            pad: 0,
        });
    }
    Ok(Some((ordinal, dtype, slots)))
}

/// Step `t` (1-based) of the catalog's clipped Adam, `param += update` for
/// every tensor, in one launch of `clipped_adam_multi` (which reads `t`
/// from the table's device counter) and one of `counter_increment`.
pub(crate) fn clipped_adam_in_place(
    tensors: &mut [AdamSlot<'_>],
    hyper: ClippedAdamHyper,
    t: u64,
    table: &mut SlotTable,
) -> Result<()> {
    let op = "clipped adam (multi-tensor)";
    let Some((ordinal, dtype, slots)) = adam_slots(tensors, op)? else {
        return Ok(());
    };
    if slots.is_empty() || t == 0 {
        return Ok(());
    }
    table.update(ordinal, slots)?;
    table.sync_step(ordinal, t - 1)?;
    let device_table = table.device.as_ref().expect("update uploads a table");
    let (counter, known) = table.step.as_mut().expect("sync_step makes the counter");
    let (tp, ns, sp) = (
        device_table.device_ptr(),
        table.slots.len() as i32,
        counter.device_ptr(),
    );
    let kernel = pick(dtype, "clipped_adam_multi_f32", "clipped_adam_multi_f64");
    let b = backend(ordinal)?;
    // SAFETY: arguments in `clipped_adam_multi`'s order; every slot's
    // pointers address `len` elements of `dtype`, in buffers no other tensor
    // shares (made unique above), kept alive by the caller's tensors; the
    // counter is one i64.
    unsafe { b.launch(kernel, table.blocks as u32, BLOCK, &args![tp, ns, hyper, sp])? };
    // SAFETY: `counter_increment` takes one i64 pointer.
    unsafe { b.launch("counter_increment", 1, 32, &args![sp])? };
    *known = t;
    Ok(())
}

/// For a replay of a captured [`clipped_adam_in_place`] of step `t`: whether
/// the captured launches are still this step's (the same tensors in the
/// same buffers, the device counter at `t - 1`); if so, records that the
/// replay advances the counter to `t`. Allocates, copies and launches
/// nothing.
pub(crate) fn clipped_adam_replay_matches(tensors: &mut [AdamSlot<'_>], t: u64, table: &mut SlotTable) -> Result<bool> {
    let Some((_, _, slots)) = adam_slots(tensors, "clipped adam (multi-tensor)")? else {
        return Ok(false);
    };
    let (slots, _) = SlotTable::numbered(slots);
    let counter_at = |v: u64| table.step.as_ref().is_some_and(|(_, known)| *known == v);
    if t == 0 || !table.holds(&slots) || !counter_at(t - 1) {
        return Ok(false);
    }
    if let Some((_, known)) = table.step.as_mut() {
        *known = t;
    }
    Ok(true)
}

/// Checks that `t` is on GPU `ordinal` with `dtype`.
fn first_kind(t: &Tensor, ordinal: usize, dtype: crate::DType, op: &'static str) -> Result<()> {
    if t.device() != Device::Cuda(ordinal) || t.dtype() != dtype {
        return Err(Error::invalid(
            op,
            format!(
                "every tensor must be on cuda:{ordinal} with {dtype:?}; one is on {} with {:?}",
                t.device(),
                t.dtype()
            ),
        ));
    }
    Ok(())
}

/// The device address of a tensor a kernel writes in place, after making
/// its buffer unshared.
fn unique_ptr(t: &mut Tensor) -> Result<u64> {
    match t.unique_storage("fused optimizer")? {
        crate::storage::Storage::Cuda(s) => Ok(s.device_ptr()),
        _ => unreachable!("checked to be on a GPU first"),
    }
}
