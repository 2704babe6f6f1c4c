//! Optimizer steps over many tensors in one GPU launch, for optimizers
//! written outside the engine (`ferrograd-optim`), which need not know
//! whether this build has the CUDA backend.
//!
//! The arithmetic of each rule is its CPU optimizer's, with the same
//! constants rounded the same way, so the two agree bit for bit where the
//! GPU rounds as the CPU does (the emulated device does).

use crate::{Device, Error, Result, Tensor};

/// The constants of one step of the catalog's clipped Adam (Kingma and Ba
/// 2015, gradients clamped to `[-clip, clip]` first), computed in f64 once
/// and rounded to the element type by the CPU pass (the GPU kernel computes
/// the same values on the device from [`ClippedAdamHyper`] and the step):
/// `g = min(max(grad, lo), hi)`, `m = m b1 + g nb1`, `v = v b2 + (g g) nb2`,
/// `update = ((m inv_c1) / (sqrt(v inv_c2) + eps)) neg_lr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClippedAdamConstants {
    /// `-clip`.
    pub lo: f64,
    /// `clip`.
    pub hi: f64,
    /// `beta1`.
    pub b1: f64,
    /// `1 - beta1`.
    pub nb1: f64,
    /// `beta2`.
    pub b2: f64,
    /// `1 - beta2`.
    pub nb2: f64,
    /// `1 / (1 - beta1^t)`.
    pub inv_c1: f64,
    /// `1 / (1 - beta2^t)`.
    pub inv_c2: f64,
    /// `eps`.
    pub eps: f64,
    /// `-lr`.
    pub neg_lr: f64,
}

impl ClippedAdamConstants {
    /// The constants of step `t` (1-based) with these hyperparameters.
    pub fn new(lr: f64, (beta1, beta2): (f64, f64), eps: f64, clip: f64, t: u64) -> ClippedAdamConstants {
        let (c1, c2) = adam_bias_corrections((beta1, beta2), t);
        ClippedAdamConstants {
            lo: -clip,
            hi: clip,
            b1: beta1,
            nb1: 1.0 - beta1,
            b2: beta2,
            nb2: 1.0 - beta2,
            inv_c1: 1.0 / c1,
            inv_c2: 1.0 / c2,
            eps,
            neg_lr: -lr,
        }
    }
}

/// Adam's bias corrections `(1 - beta1^t, 1 - beta2^t)` at step `t`
/// (1-based), `beta^t` by repeated squaring (`powi`): the one place every
/// Adam of ferrograd takes them from (the GPU kernels compute `beta^t` the
/// same way).
pub fn adam_bias_corrections((beta1, beta2): (f64, f64), t: u64) -> (f64, f64) {
    let t = t.min(i32::MAX as u64) as i32;
    (1.0 - beta1.powi(t), 1.0 - beta2.powi(t))
}

/// Clipped Adam's hyperparameters, the same for every step (the GPU kernel
/// computes each step's [`ClippedAdamConstants`] from them and the step
/// count, as the CPU does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClippedAdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator stabiliser.
    pub eps: f64,
    /// Gradients are clamped to `[-clip, clip]`.
    pub clip: f64,
}

/// One tensor of a clipped-Adam step: the parameter and both moments are
/// updated in place; all four share one shape, dtype and GPU.
#[derive(Debug)]
pub struct AdamTensors<'a> {
    /// The parameter: `param += update`.
    pub param: &'a mut Tensor,
    /// Its gradient.
    pub grad: &'a Tensor,
    /// The first moment.
    pub m: &'a mut Tensor,
    /// The second moment.
    pub v: &'a mut Tensor,
}

/// What a multi-tensor launch keeps between steps (on a GPU, the device
/// table of its tensors, uploaded again only when one of them moved). Keep
/// one per optimizer; a clone starts empty.
#[derive(Debug, Default)]
pub struct MultiTensorTable {
    #[cfg(feature = "cuda")]
    table: crate::cuda::optim::SlotTable,
}

impl Clone for MultiTensorTable {
    fn clone(&self) -> Self {
        MultiTensorTable::default()
    }
}

/// Whether [`clipped_adam_in_place`] can run on `device` in this build.
pub fn runs_on(device: Device) -> bool {
    cfg!(feature = "cuda") && matches!(device, Device::Cuda(_))
}

/// Step `t` (1-based) of clipped Adam applied in place to every tensor of
/// `tensors`, in one launch on their GPU plus one advancing the device's
/// step counter (nothing allocated once `table` holds them, nothing waited
/// for). The kernel reads the step from the device, so the launches can be
/// captured in a CUDA graph and replayed ([`clipped_adam_replayed`]). CPU
/// tensors are refused: the optimizer's own CPU pass computes the same
/// numbers there.
pub fn clipped_adam_in_place(
    tensors: &mut [AdamTensors<'_>],
    hyper: &ClippedAdamHyper,
    t: u64,
    table: &mut MultiTensorTable,
) -> Result<()> {
    let Some(first) = tensors.first() else { return Ok(()) };
    refuse_cpu(first.param.device())?;
    #[cfg(feature = "cuda")]
    {
        let h = crate::cuda::optim::ClippedAdamHyper {
            lr: hyper.lr,
            beta1: hyper.beta1,
            beta2: hyper.beta2,
            eps: hyper.eps,
            clip: hyper.clip,
        };
        crate::cuda::optim::clipped_adam_in_place(&mut slots(tensors), h, t, &mut table.table)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (hyper, t, table);
        unreachable!("refuse_cpu refuses every tensor without the cuda feature")
    }
}

/// Before a harness replays a captured [`clipped_adam_in_place`] as step
/// `t`: whether the capture still fits (the same tensors in the same
/// buffers, the device's counter where the host left it). If so, records
/// the step as taken; if not, changes nothing and the harness must capture
/// again. Copies and launches nothing.
pub fn clipped_adam_replayed(tensors: &mut [AdamTensors<'_>], t: u64, table: &mut MultiTensorTable) -> Result<bool> {
    let Some(first) = tensors.first() else { return Ok(false) };
    refuse_cpu(first.param.device())?;
    #[cfg(feature = "cuda")]
    {
        crate::cuda::optim::clipped_adam_replay_matches(&mut slots(tensors), t, &mut table.table)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (t, table);
        unreachable!("refuse_cpu refuses every tensor without the cuda feature")
    }
}

#[cfg(feature = "cuda")]
fn slots<'a>(tensors: &'a mut [AdamTensors<'_>]) -> Vec<crate::cuda::optim::AdamSlot<'a>> {
    tensors
        .iter_mut()
        .map(|t| crate::cuda::optim::AdamSlot {
            param: &mut *t.param,
            grad: t.grad,
            m: &mut *t.m,
            v: &mut *t.v,
        })
        .collect()
}

fn refuse_cpu(device: Device) -> Result<()> {
    if runs_on(device) {
        return Ok(());
    }
    Err(Error::invalid(
        "clipped adam (multi-tensor)",
        format!("runs on a GPU, and these tensors are on {device}; the optimizer's CPU pass handles them"),
    ))
}
