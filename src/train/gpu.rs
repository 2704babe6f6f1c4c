//! The task model's training step on a GPU: the twin of the CPU's fused
//! step (`fused.rs`), with the kernels of `ptx/cuda/mlp.cu` through
//! [`ferrograd_engine::cuda::mlp`].
//!
//! Per step, for H hidden layers: one launch gathering the batch (its rows
//! read from the epoch's order on the device, at the step's index, which
//! the device keeps), H + 1 forward launches (each hidden layer's Linear,
//! ReLU and BatchNorm in one; the output layer with the loss and its
//! gradient in one), H backward launches (each hidden layer's BatchNorm,
//! ReLU and weight gradients in one; one more if the output layer is
//! trained), one closing the step (its loss into the epoch's loss array,
//! the step index on), two for the optimizer when it has a fused kernel
//! ([`TaskOptimizer::step_in_place`](crate::optim::TaskOptimizer::step_in_place):
//! the update, and its step counter on), and H small launches blending the
//! running statistics after it: 3H + 5. Every buffer is made on the first
//! step and reused, and nothing a step needs is uploaded or read back, so
//! a steady-state step allocates nothing, copies nothing and never waits
//! for the device. And since every launch's arguments are then the same
//! from step to step, a full-batch step is recorded once as a CUDA graph
//! and replayed: one driver call a step, the same launches, the same bits.

use super::SplitTensors;
use crate::engine::cuda::graph::Graph;
use crate::engine::cuda::mlp::{
    batch_gather, blend_running_stats, hidden_backward, hidden_forward_eval, hidden_forward_train, linear_grads,
    output_forward, step_finish, Batch, HiddenGrads, HiddenSaved, Layout, LinearParams, NormParams, StepCursor,
};
use crate::engine::storage::Storage;
use crate::engine::{DType, Device, Result, Tensor};
use crate::nn::{Mlp, Role, BN_EPS, BN_MOMENTUM};

/// The GPU step's buffers, made for one model shape, dtype and GPU, a
/// batch size and a training split's size; remade when any of them changes.
pub(crate) struct GpuWorkspace {
    key: (Vec<usize>, DType, Device, usize, usize),
    /// The step index and the epoch's order of training rows.
    cursor: StepCursor,
    /// The step's batch, sample-major.
    batch: (Tensor, Tensor),
    hidden: Vec<HiddenSaved>,
    /// Two gradient buffers used in turn, layer by layer (`[widest, n]`).
    dz: [Tensor; 2],
    /// The step's sum of squared errors, then one per step of an epoch.
    step_sse: Tensor,
    losses: Tensor,
    /// The inference forward's two output buffers used in turn, and its
    /// loss (made for the largest split evaluated).
    eval: Option<(usize, [Tensor; 2], Tensor)>,
    /// Recorded steps, by the signature of what they touch.
    graphs: Vec<(Vec<u64>, Graph)>,
    /// Signatures of steps run launch by launch, the latest last.
    seen: Vec<Vec<u64>>,
}

/// The hidden widths of `model` (one per BatchNorm).
fn hidden_widths(model: &Mlp) -> Vec<usize> {
    model.norms().iter().map(|n| n.features()).collect()
}

/// A GPU tensor's device address.
fn address(t: &Tensor) -> Option<u64> {
    match t.storage() {
        Storage::Cuda(s) => Some(s.device_ptr()),
        _ => None,
    }
}

/// What a recorded step depends on: the address of every model tensor,
/// gradient buffer and training split tensor, and the batch size; `None`
/// when one of them is shared with another tensor (the step would then
/// copy it before writing, and a recording would write the old buffer).
pub(crate) fn step_signature(model: &Mlp, grads: &[Tensor], train: &SplitTensors, n: usize) -> Option<Vec<u64>> {
    let model_tensors = (0..model.tensor_count()).map(|i| model.tensor(model.role(i)));
    let mut signature = vec![n as u64];
    for t in model_tensors.chain(grads).chain([&train.inputs, &train.targets]) {
        if t.storage_is_shared() {
            return None;
        }
        signature.push(address(t)?);
    }
    Some(signature)
}

impl GpuWorkspace {
    /// Whether the GPU step computes `model` on `inputs`: the task's shape
    /// with at least one hidden layer, everything on one GPU.
    pub(crate) fn supports(model: &Mlp, inputs: &Tensor) -> bool {
        let device = inputs.device();
        super::fused::FusedWorkspace::supports(model)
            && !model.norms().is_empty()
            && matches!(device, Device::Cuda(_))
            && model.tensors_on(device)
    }

    /// A workspace for `model` on its GPU, batches of up to `n` rows from a
    /// training split of `rows` rows.
    pub(crate) fn new(model: &Mlp, n: usize, rows: usize) -> Result<GpuWorkspace> {
        let weight = model.tensor(Role::Weight(0));
        let (device, dtype) = (weight.device(), weight.dtype());
        let Device::Cuda(ordinal) = device else {
            unreachable!("supports() checked the device")
        };
        let widths = hidden_widths(model);
        let hidden = widths
            .iter()
            .map(|&c| HiddenSaved::new(ordinal, c, n, dtype))
            .collect::<Result<Vec<_>>>()?;
        let widest = model.linears().iter().map(|l| l.out_features()).max().unwrap_or(1);
        let (input, output) = (
            weight.dims()[1],
            model.linears()[model.linears().len() - 1].out_features(),
        );
        let zeros = |len: usize| Tensor::zeros([len], dtype)?.to_device(device);
        Ok(GpuWorkspace {
            key: (widths, dtype, device, n, rows),
            cursor: StepCursor::new(ordinal, rows)?,
            batch: (zeros(n * input)?, zeros(n * output)?),
            hidden,
            dz: [zeros(widest * n)?, zeros(widest * n)?],
            step_sse: zeros(1)?,
            losses: zeros(rows.div_ceil(n.max(1)).max(1))?,
            eval: None,
            graphs: Vec::new(),
            seen: Vec::new(),
        })
    }

    /// Whether this workspace fits `model` with batches of up to `n` rows
    /// from a split of `rows` rows.
    pub(crate) fn fits(&self, model: &Mlp, n: usize, rows: usize) -> bool {
        let weight = model.tensor(Role::Weight(0));
        let (widths, dtype, device, capacity, split) = &self.key;
        *widths == hidden_widths(model)
            && *dtype == weight.dtype()
            && *device == weight.device()
            && n <= *capacity
            && rows == *split
    }

    /// Uploads the order of the next steps' rows (an epoch's, or one
    /// step's); the next step is step 0. One copy.
    pub(crate) fn start(&self, order: &[usize]) -> Result<()> {
        self.cursor.start(order)
    }

    /// The first `steps` losses written by [`GpuWorkspace::train_step`]
    /// since [`GpuWorkspace::start`], read in one copy (this waits for the
    /// device).
    pub(crate) fn read_losses(&self, steps: usize) -> Result<Vec<f64>> {
        let losses = self.losses.to_device(Device::Cpu)?.to_vec_f64()?;
        Ok(losses[..steps.min(losses.len())].to_vec())
    }

    /// Whether a recorded step fits `signature`.
    pub(crate) fn has_graph(&self, signature: &[u64]) -> bool {
        self.graphs.iter().any(|(s, _)| s == signature)
    }

    /// Replays the step recorded for `signature` (see `has_graph`).
    pub(crate) fn replay(&self, signature: &[u64]) -> Result<()> {
        let (_, graph) = self
            .graphs
            .iter()
            .find(|(s, _)| s == signature)
            .expect("has_graph checked it");
        // SAFETY: the signature matched: every buffer the recording uses is
        // the one it was recorded with (the model's, gradients' and data's,
        // unshared, and this workspace's own), all alive.
        unsafe { graph.launch() }
    }

    /// Drops every recorded step (the optimizer refused a replay).
    pub(crate) fn forget_graphs(&mut self) {
        self.graphs.clear();
    }

    /// Notes a step of this kind; returns whether one ran before.
    pub(crate) fn saw(&mut self, signature: Vec<u64>) -> bool {
        if self.seen.contains(&signature) {
            return true;
        }
        if self.seen.len() >= 4 {
            self.seen.remove(0);
        }
        self.seen.push(signature);
        false
    }

    /// Records the launches of `step` as the graph for `signature`, then
    /// replays it once (recording runs nothing).
    pub(crate) fn record(
        &mut self,
        signature: Vec<u64>,
        step: impl FnOnce(&mut GpuWorkspace) -> Result<()>,
    ) -> Result<()> {
        let Device::Cuda(ordinal) = self.key.2 else {
            unreachable!("a GPU workspace")
        };
        let graph = Graph::capture(ordinal, || step(self))?;
        // SAFETY: recorded just now, on this workspace's buffers and the
        // caller's (the tensors `signature` names), all alive.
        unsafe { graph.launch()? };
        self.graphs.push((signature, graph));
        Ok(())
    }

    /// The step's launches: its batch of `n` rows gathered from `(inputs,
    /// targets)` (rows `order[step * stride + r]`), forward and backward at
    /// `params` (every tensor, in the task's order), the trained tensors'
    /// gradients of the sum of squared errors into `grads`, and the sum
    /// into the step's loss slot.
    pub(crate) fn train_step(
        &mut self,
        model: &Mlp,
        params: &[Tensor],
        (inputs, targets): (&Tensor, &Tensor),
        (n, stride): (usize, usize),
        grads: &mut [Tensor],
    ) -> Result<()> {
        let n_lin = model.linears().len();
        let h = n_lin - 1;
        let (batch_x, batch_y) = &mut self.batch;
        batch_gather(&self.cursor, (n, stride), (inputs, targets), batch_x, batch_y)?;
        let (batch_x, batch_y) = &self.batch;
        let x0 = Batch {
            data: batch_x,
            n,
            features: inputs.dims()[1],
            layout: Layout::SampleMajor { first: 0 },
        };
        let widths = |i: usize| model.linears()[i].out_features();
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
            data: batch_y,
            n,
            features: targets.dims()[1],
            layout: Layout::SampleMajor { first: 0 },
        };
        let [dz_top, dz_other] = &mut self.dz;
        output_forward(top, linear(h), y, None, Some(dz_top), (&mut self.step_sse, 0))?;
        let first_frozen = n_lin.saturating_sub(model.frozen());
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
        step_finish(&self.cursor, &self.step_sse, &mut self.losses)
    }

    /// Blends the last training step's batch statistics (a batch of `n`)
    /// into `model`'s running statistics, in place.
    pub(crate) fn store_running_stats(&self, model: &mut Mlp, n: usize) -> Result<()> {
        for (i, saved) in self.hidden.iter().enumerate() {
            let (running_mean, running_var) = model.running_stats_mut(i);
            blend_running_stats(saved, n, running_mean, running_var, BN_MOMENTUM)?;
        }
        Ok(())
    }

    /// Inference-mode mean squared error of `model` on `(inputs, targets)`
    /// (one copy back, so it waits for the device).
    pub(crate) fn eval_mse(&mut self, model: &Mlp, inputs: &Tensor, targets: &Tensor) -> Result<f64> {
        let n = inputs.dims()[0];
        let n_lin = model.linears().len();
        let (dtype, device) = (self.key.1, self.key.2);
        let widest = model.linears().iter().map(|l| l.out_features()).max().unwrap_or(1);
        if self.eval.as_ref().is_none_or(|(cap, ..)| *cap < n) {
            let zeros = |len: usize| Tensor::zeros([len], dtype)?.to_device(device);
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
                feature_major(below, model.linears()[i - 1].out_features(), n)
            };
            let tensor = |role| model.tensor(role);
            hidden_forward_eval(
                x,
                LinearParams {
                    weight: tensor(Role::Weight(i)),
                    bias: tensor(Role::Bias(i)),
                },
                NormParams {
                    scale: tensor(Role::BnScale(i)),
                    shift: tensor(Role::BnShift(i)),
                },
                (tensor(Role::RunningMean(i)), tensor(Role::RunningVar(i))),
                out,
                BN_EPS,
            )?;
            std::mem::swap(&mut below, &mut out);
        }
        let y = Batch {
            data: targets,
            n,
            features: targets.dims()[1],
            layout: Layout::SampleMajor { first: 0 },
        };
        let params = LinearParams {
            weight: model.tensor(Role::Weight(n_lin - 1)),
            bias: model.tensor(Role::Bias(n_lin - 1)),
        };
        let top = feature_major(below, model.linears()[n_lin - 2].out_features(), n);
        output_forward(top, params, y, None, None, (sse, 0))?;
        let total = sse.to_device(Device::Cpu)?.to_vec_f64()?[0];
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
