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
/// and rounded to the element type by each kernel:
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
        let t = t.min(i32::MAX as u64) as i32;
        let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
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

    #[cfg(feature = "cuda")]
    fn in_kernel_order(&self) -> [f64; 10] {
        [
            self.lo,
            self.hi,
            self.b1,
            self.nb1,
            self.b2,
            self.nb2,
            self.inv_c1,
            self.inv_c2,
            self.eps,
            self.neg_lr,
        ]
    }
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

/// One clipped-Adam step applied in place to every tensor of `tensors`, in
/// one launch on their GPU (nothing allocated once `table` holds them,
/// nothing waited for). CPU tensors are refused: the optimizer's own CPU
/// pass computes the same numbers there.
pub fn clipped_adam_in_place(
    tensors: &mut [AdamTensors<'_>],
    k: &ClippedAdamConstants,
    table: &mut MultiTensorTable,
) -> Result<()> {
    let Some(first) = tensors.first() else { return Ok(()) };
    if !runs_on(first.param.device()) {
        return Err(Error::invalid(
            "clipped adam (multi-tensor)",
            format!(
                "runs on a GPU, and these tensors are on {}; the optimizer's CPU pass handles them",
                first.param.device()
            ),
        ));
    }
    #[cfg(feature = "cuda")]
    {
        let mut slots: Vec<crate::cuda::optim::AdamSlot<'_>> = tensors
            .iter_mut()
            .map(|t| crate::cuda::optim::AdamSlot {
                param: &mut *t.param,
                grad: t.grad,
                m: &mut *t.m,
                v: &mut *t.v,
            })
            .collect();
        crate::cuda::optim::clipped_adam_in_place(&mut slots, k.in_kernel_order(), &mut table.table)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (k, table);
        unreachable!("runs_on is false without the cuda feature")
    }
}
