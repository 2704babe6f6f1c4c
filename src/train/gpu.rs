//! The task model's training step on a GPU: the twin of the CPU's fused
//! step (`fused.rs`), with the kernels of `ptx/cuda/mlp.cu` through
//! [`ferrograd_engine::cuda::mlp`].
//!
//! Per step, for H hidden layers: H + 1 forward launches (each hidden
//! layer's Linear, ReLU and BatchNorm in one; the output layer with the
//! loss and its gradient in one), H backward launches (each hidden layer's
//! BatchNorm, ReLU and weight gradients in one; one more if the output
//! layer is trained), one optimizer launch when the optimizer has a fused
//! kernel ([`TaskOptimizer::step_in_place`](crate::optim::TaskOptimizer::step_in_place)),
//! and H small launches blending the running statistics after it. Every
//! buffer is made on the first step and reused; the batch is a slice of
//! the epoch's gathered rows; the step's loss is written into the epoch's
//! loss array on the device. So a steady-state step allocates nothing and
//! never waits for the device.

use crate::engine::cuda::mlp::{
    blend_running_stats, hidden_backward, hidden_forward_eval, hidden_forward_train, linear_grads, output_forward,
    Batch, HiddenGrads, HiddenSaved, Layout, LinearParams, NormParams,
};
use crate::engine::{DType, Device, Result, Tensor};
use crate::nn::{Mlp, BN_EPS, BN_MOMENTUM};

/// The GPU step's buffers, made for one model shape, dtype and GPU, and a
/// batch capacity; remade when any of them changes.
pub(crate) struct GpuWorkspace {
    key: (Vec<usize>, DType, Device, usize),
    hidden: Vec<HiddenSaved>,
    /// Two gradient buffers used in turn, layer by layer (`[widest, n]`).
    dz: [Tensor; 2],
    /// One sum of squared errors per step of an epoch.
    losses: Tensor,
    /// The inference forward's two output buffers used in turn, and its
    /// loss (made for the largest split evaluated).
    eval: Option<(usize, [Tensor; 2], Tensor)>,
}

/// The hidden widths of `model` (one per BatchNorm).
fn hidden_widths(model: &Mlp) -> Vec<usize> {
    model.norms.iter().map(|n| n.scale.numel()).collect()
}

impl GpuWorkspace {
    /// Whether the GPU step computes `model` on `inputs`: the task's shape
    /// with at least one hidden layer, everything on one GPU.
    pub(crate) fn supports(model: &Mlp, inputs: &Tensor) -> bool {
        let device = inputs.device();
        super::fused::FusedWorkspace::supports(model)
            && !model.norms.is_empty()
            && matches!(device, Device::Cuda(_))
            && model.tensors_on(device)
    }

    /// A workspace for `model` on its GPU with batches of up to `n` rows
    /// and `steps` loss slots.
    pub(crate) fn new(model: &Mlp, n: usize, steps: usize) -> Result<GpuWorkspace> {
        let weight = &model.linears[0].weight;
        let (device, dtype) = (weight.device(), weight.dtype());
        let Device::Cuda(ordinal) = device else {
            unreachable!("supports() checked the device")
        };
        let widths = hidden_widths(model);
        let hidden = widths
            .iter()
            .map(|&c| HiddenSaved::new(ordinal, c, n, dtype))
            .collect::<Result<Vec<_>>>()?;
        let widest = model.linears.iter().map(|l| l.weight.dims()[0]).max().unwrap_or(1);
        let zeros = |len: usize| Tensor::zeros([len], dtype).to_device(device);
        Ok(GpuWorkspace {
            key: (widths, dtype, device, n),
            hidden,
            dz: [zeros(widest * n)?, zeros(widest * n)?],
            losses: zeros(steps.max(1))?,
            eval: None,
        })
    }

    /// Whether this workspace fits `model` with batches of up to `n` rows.
    pub(crate) fn fits(&self, model: &Mlp, n: usize) -> bool {
        let weight = &model.linears[0].weight;
        let (widths, dtype, device, capacity) = &self.key;
        *widths == hidden_widths(model) && *dtype == weight.dtype() && *device == weight.device() && n <= *capacity
    }

    /// The loss slots (one per step of an epoch; more are made on demand).
    pub(crate) fn ensure_loss_slots(&mut self, steps: usize) -> Result<()> {
        if self.losses.numel() < steps {
            self.losses = Tensor::zeros([steps], self.key.1).to_device(self.key.2)?;
        }
        Ok(())
    }

    /// The first `steps` losses written by [`GpuWorkspace::train_step`],
    /// read in one copy (this waits for the device).
    pub(crate) fn read_losses(&self, steps: usize) -> Result<Vec<f64>> {
        let losses = self.losses.to_device(Device::Cpu)?.to_vec_f64();
        Ok(losses[..steps.min(losses.len())].to_vec())
    }

    /// Forward and backward at `params` (every tensor, in the task's order)
    /// on the `n` rows of `(inputs, targets)` from `first`: writes the
    /// trained tensors' gradients of the sum of squared errors into `grads`
    /// and the sum into loss slot `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn train_step(
        &mut self,
        model: &Mlp,
        params: &[Tensor],
        (inputs, targets): (&Tensor, &Tensor),
        first: usize,
        n: usize,
        grads: &mut [Tensor],
        slot: usize,
    ) -> Result<()> {
        let n_lin = model.linears.len();
        let h = n_lin - 1;
        let x0 = Batch {
            data: inputs,
            n,
            features: inputs.dims()[1],
            layout: Layout::SampleMajor { first },
        };
        let widths = |i: usize| model.linears[i].weight.dims()[0];
        let linear = |i: usize| LinearParams {
            weight: &params[2 * i],
            bias: &params[2 * i + 1],
        };
        let norm = |i: usize| NormParams {
            scale: &params[2 * n_lin + 4 * i],
            shift: &params[2 * n_lin + 4 * i + 1],
        };
        for i in 0..h {
            let (below, rest) = self.hidden.split_at_mut(i);
            let x = match below.last() {
                Some(prev) => feature_major(&prev.out, widths(i - 1), n),
                None => x0,
            };
            hidden_forward_train(x, linear(i), norm(i), &mut rest[0], BN_EPS)?;
        }
        let top = feature_major(&self.hidden[h - 1].out, widths(h - 1), n);
        let y = Batch {
            data: targets,
            n,
            features: targets.dims()[1],
            layout: Layout::SampleMajor { first },
        };
        let [dz_top, dz_other] = &mut self.dz;
        output_forward(top, linear(h), y, None, Some(dz_top), (&mut self.losses, slot))?;
        let first_frozen = n_lin.saturating_sub(model.frozen);
        let (lin_grads, bn_grads) = grads.split_at_mut(2 * n_lin);
        if h < first_frozen {
            let [gw, gb] = &mut lin_grads[2 * h..2 * h + 2] else {
                unreachable!("two tensors per Linear")
            };
            linear_grads(dz_top, top, gw, gb)?;
        }
        let (mut upper, mut lower) = (dz_top, dz_other);
        for i in (0..h).rev() {
            let x = if i == 0 {
                x0
            } else {
                feature_major(&self.hidden[i - 1].out, widths(i - 1), n)
            };
            let layer_grads = if i < first_frozen {
                let [gw, gb] = &mut lin_grads[2 * i..2 * i + 2] else {
                    unreachable!("two tensors per Linear")
                };
                let [gs, gh, ..] = &mut bn_grads[4 * i..4 * i + 4] else {
                    unreachable!("four tensors per BatchNorm")
                };
                Some(HiddenGrads {
                    weight: gw,
                    bias: gb,
                    scale: gs,
                    shift: gh,
                })
            } else {
                None
            };
            hidden_backward(
                &params[2 * (i + 1)],
                upper,
                &self.hidden[i],
                norm(i),
                x,
                lower,
                layer_grads,
            )?;
            std::mem::swap(&mut upper, &mut lower);
        }
        Ok(())
    }

    /// Blends the last training step's batch statistics (a batch of `n`)
    /// into `model`'s running statistics, in place.
    pub(crate) fn store_running_stats(&self, model: &mut Mlp, n: usize) -> Result<()> {
        for (norm, saved) in model.norms.iter_mut().zip(&self.hidden) {
            blend_running_stats(saved, n, &mut norm.running_mean, &mut norm.running_var, BN_MOMENTUM)?;
        }
        Ok(())
    }

    /// Inference-mode mean squared error of `model` on `(inputs, targets)`
    /// (one copy back, so it waits for the device).
    pub(crate) fn eval_mse(&mut self, model: &Mlp, inputs: &Tensor, targets: &Tensor) -> Result<f64> {
        let n = inputs.dims()[0];
        let n_lin = model.linears.len();
        let (dtype, device) = (self.key.1, self.key.2);
        let widest = model.linears.iter().map(|l| l.weight.dims()[0]).max().unwrap_or(1);
        if self.eval.as_ref().is_none_or(|(cap, ..)| *cap < n) {
            let zeros = |len: usize| Tensor::zeros([len], dtype).to_device(device);
            self.eval = Some((n, [zeros(widest * n)?, zeros(widest * n)?], zeros(1)?));
        }
        let (_, [a, b], sse) = self.eval.as_mut().expect("made above");
        let (mut below, mut out) = (a, b);
        for i in 0..n_lin - 1 {
            let x = if i == 0 {
                Batch {
                    data: inputs,
                    n,
                    features: inputs.dims()[1],
                    layout: Layout::SampleMajor { first: 0 },
                }
            } else {
                feature_major(below, model.linears[i - 1].weight.dims()[0], n)
            };
            let (lin, norm) = (&model.linears[i], &model.norms[i]);
            hidden_forward_eval(
                x,
                LinearParams {
                    weight: &lin.weight,
                    bias: &lin.bias,
                },
                NormParams {
                    scale: &norm.scale,
                    shift: &norm.shift,
                },
                (&norm.running_mean, &norm.running_var),
                out,
                BN_EPS,
            )?;
            std::mem::swap(&mut below, &mut out);
        }
        let last = &model.linears[n_lin - 1];
        let y = Batch {
            data: targets,
            n,
            features: targets.dims()[1],
            layout: Layout::SampleMajor { first: 0 },
        };
        let params = LinearParams {
            weight: &last.weight,
            bias: &last.bias,
        };
        let top = feature_major(below, model.linears[n_lin - 2].weight.dims()[0], n);
        output_forward(top, params, y, None, None, (sse, 0))?;
        let total = sse.to_device(Device::Cpu)?.to_vec_f64()[0];
        Ok(total / (n * targets.dims()[1]) as f64)
    }
}

/// A hidden layer's output (`features` wide, `n` samples) as the next
/// layer's input.
fn feature_major(out: &Tensor, features: usize, n: usize) -> Batch<'_> {
    Batch {
        data: out,
        n,
        features,
        layout: Layout::FeatureMajor,
    }
}
