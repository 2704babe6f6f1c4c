//! The harness's curvature hook: Hessian-vector products of one training
//! step's loss, for optimizers that ask for them
//! ([`TaskOptimizer::uses_curvature`](crate::optim::TaskOptimizer::uses_curvature)).

use crate::autograd::{set_grad_enabled, Var};
use crate::engine::{Error, Result, Tensor};
use crate::nn::{self, Mlp};
use crate::optim::Curvature;

/// `H v` for the sum-of-squared-errors loss of `model` (in training mode) on
/// one mini-batch: the loss whose gradient the step received.
pub struct BatchCurvature<'a> {
    model: &'a Mlp,
    inputs: &'a Var,
    targets: &'a Var,
    products: usize,
}

impl<'a> BatchCurvature<'a> {
    /// The hook for `model` on the batch `(inputs, targets)`.
    pub fn new(model: &'a Mlp, inputs: &'a Var, targets: &'a Var) -> BatchCurvature<'a> {
        BatchCurvature {
            model,
            inputs,
            targets,
            products: 0,
        }
    }

    /// Hessian-vector products computed so far.
    pub fn products(&self) -> usize {
        self.products
    }
}

impl Curvature for BatchCurvature<'_> {
    /// Reverse over reverse: record the backward pass of the loss, form
    /// `<grad, v>` and differentiate that once more.
    fn hvp(&mut self, v: &[Tensor]) -> Result<Vec<Tensor>> {
        let _recording = set_grad_enabled(true);
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
        let (prediction, _running_stats) = self.model.forward(self.inputs, &vars, true)?;
        let grads = nn::sse(&prediction, self.targets)?.backward_with(true)?;
        let mut directional: Option<Var> = None;
        for (var, direction) in vars.iter().zip(v) {
            if let Some(g) = grads.get_var(var) {
                let term = g.mul(&Var::constant(direction.clone()))?.sum_all();
                directional = Some(match directional {
                    Some(total) => total.add(&term)?,
                    None => term,
                });
            }
        }
        self.products += 1;
        let Some(directional) = directional else {
            return Ok(v.iter().map(Tensor::zeros_like).collect());
        };
        let second = directional.backward()?;
        Ok(vars
            .iter()
            .map(|var| second.get(var).cloned().unwrap_or_else(|| var.value().zeros_like()))
            .collect())
    }
}
