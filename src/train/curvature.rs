//! The harness's curvature hook: Hessian-vector products of one training
//! step's loss, for optimizers that ask for them
//! ([`TaskOptimizer::uses_curvature`](crate::optim::TaskOptimizer::uses_curvature)).

use crate::autograd::{set_grad_enabled, HvpMode, Var};
use crate::engine::{Error, Result, Tensor};
use crate::nn::{self, Mlp};
use crate::optim::Curvature;

/// `H v` for the sum-of-squared-errors loss of `model` (in training mode) on
/// one mini-batch: the loss whose gradient the step received.
///
/// The Trainer computes its products by [`HvpMode::ForwardOverReverse`],
/// about 0.7 of reverse-over-reverse's time on the task's models
/// (`bench/RESULTS.md`). The two agree only up to f32 rounding, and a
/// different last bit in one product changes every later step of Sophia,
/// AdaHessian and Newton-CG: their results recorded before this choice
/// (the committed second-order race) were computed with
/// [`HvpMode::ReverseOverReverse`], which [`BatchCurvature::with_mode`]
/// still selects.
pub struct BatchCurvature<'a> {
    model: &'a Mlp,
    inputs: &'a Var,
    targets: &'a Var,
    products: usize,
    mode: HvpMode,
}

impl<'a> BatchCurvature<'a> {
    /// The hook for `model` on the batch `(inputs, targets)`.
    pub fn new(model: &'a Mlp, inputs: &'a Var, targets: &'a Var) -> BatchCurvature<'a> {
        BatchCurvature {
            model,
            inputs,
            targets,
            products: 0,
            mode: HvpMode::ForwardOverReverse,
        }
    }

    /// The same hook computing its products by `mode`.
    pub fn with_mode(self, mode: HvpMode) -> BatchCurvature<'a> {
        BatchCurvature { mode, ..self }
    }

    /// How this hook computes its products.
    pub fn mode(&self) -> HvpMode {
        self.mode
    }

    /// Hessian-vector products computed so far.
    pub fn products(&self) -> usize {
        self.products
    }
}

impl Curvature for BatchCurvature<'_> {
    /// `H v` for the batch loss, by the hook's mode.
    fn hvp(&mut self, v: &[Tensor]) -> Result<Vec<Tensor>> {
        let vars = self.model.vars();
        if v.len() != vars.len() {
            return Err(Error::invalid(
                "hvp",
                format!(
                    "got {} direction tensors for a model of {} tensors",
                    v.len(),
                    vars.len()
                ),
            ));
        }
        let products = match self.mode {
            HvpMode::ReverseOverReverse => self.reverse_over_reverse(vars, v)?,
            HvpMode::ForwardOverReverse => self.forward_over_reverse(vars, v)?,
        };
        self.products += 1;
        Ok(products)
    }
}

impl BatchCurvature<'_> {
    /// The batch loss of the model's tensors `vars`, recorded.
    fn loss(&self, vars: &[Var]) -> Result<Var> {
        let (prediction, _running_stats) = self.model.functional_forward(self.inputs, vars, true)?;
        nn::sse(&prediction, self.targets)
    }

    /// Record the backward pass of the loss, form `<grad, v>` and
    /// differentiate that once more.
    fn reverse_over_reverse(&self, vars: Vec<Var>, v: &[Tensor]) -> Result<Vec<Tensor>> {
        let _recording = set_grad_enabled(true);
        let grads = self.loss(&vars)?.backward_with(true)?;
        let mut directional: Option<Var> = None;
        for (var, direction) in vars.iter().zip(v) {
            if let Some(g) = grads.get_var(var) {
                let term = g.mul(&Var::constant(direction.clone()))?.sum_all()?;
                directional = Some(match directional {
                    Some(total) => total.add(&term)?,
                    None => term,
                });
            }
        }
        let Some(directional) = directional else {
            return v.iter().map(Tensor::zeros_like).collect();
        };
        let second = directional.backward()?;
        vars.iter().map(|var| second.get_or_zeros(var)).collect()
    }

    /// Attach `v` as the trained tensors' tangents, run one forward and one
    /// plain backward pass, and read the gradients' tangents.
    fn forward_over_reverse(&self, vars: Vec<Var>, v: &[Tensor]) -> Result<Vec<Tensor>> {
        let _recording = set_grad_enabled(true);
        let duals: Vec<Var> = vars
            .iter()
            .zip(v)
            .map(|(var, direction)| match var.requires_grad() {
                true => var.with_tangent(&Var::constant(direction.clone())),
                false => Ok(var.clone()),
            })
            .collect::<Result<_>>()?;
        let grads = self.loss(&duals)?.backward()?;
        duals
            .iter()
            .map(|var| match grads.get_var(var).and_then(Var::tangent) {
                Some(hv) => Ok(hv.value().clone()),
                None => var.value().zeros_like(),
            })
            .collect()
    }
}
