//! [`ModuleOptimizer`]: a catalog optimizer driving a module's named
//! parameters, with the step bookkeeping a training loop would otherwise
//! write by hand.

use super::{Module, ModuleError, Slot};
use crate::autograd::{set_grad_enabled, Gradients, Var};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::optim::{catalog, Curvature, HyperParams, StepContext, TaskOptimizer};
use std::path::Path;

/// The file of a saved optimizer directory that holds the parameter names
/// and the step context (beside `optimizer.json` and
/// `optimizer.safetensors`, see [`crate::io::save_optimizer_state`]).
pub const MODULE_OPTIMIZER_FILE: &str = "module_optimizer.json";

/// What [`MODULE_OPTIMIZER_FILE`] holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedContext {
    /// The model's tensors, in the order the optimizer's state numbers them.
    tensors: Vec<String>,
    epoch: usize,
    step: usize,
    train_loss: Option<f64>,
    val_loss: Option<f64>,
    steps_per_epoch: Option<usize>,
}

/// An optimizer from the catalog, set up for one module's tensors.
///
/// The optimizer sees every tensor of the state dict in its order (as the
/// benchmark task's optimizers do: buffers with zero gradients), is told
/// each tensor's role and whether it is trained ([`Module::layout`]), and
/// its updates are added to the trained parameters only.
///
/// ```
/// use ferrograd::autograd::Var;
/// use ferrograd::engine::{DType, Rng, Tensor};
/// use ferrograd::module::{Linear, Module, ModuleOptimizer};
/// use ferrograd::nn::mse;
///
/// let mut model = Linear::new(1, 1, DType::F64, &mut Rng::new(0))?;
/// let mut opt = ModuleOptimizer::new("sgd", &[("lr", 0.1)], &model, 0)?;
/// let x = Var::constant(Tensor::from_vec(vec![1.0f64, 2.0], [2, 1])?);
/// let y = Var::constant(Tensor::from_vec(vec![2.0f64, 4.0], [2, 1])?);
/// for _ in 0..1000 {
///     let loss = mse(&model.forward(&x)?, &y)?;
///     opt.backward_step(&mut model, &loss)?;
/// }
/// let w = model.state_dict()[0].1.to_vec::<f64>()?[0];
/// assert!((w - 2.0).abs() < 1e-3, "w = {w}");
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub struct ModuleOptimizer {
    optimizer: Box<dyn TaskOptimizer>,
    hyperparams: HyperParams,
    names: Vec<String>,
    ctx: StepContext,
}

impl ModuleOptimizer {
    /// The catalog optimizer `name` with `settings` overriding its default
    /// hyperparameters (`ferrograd optimizers` lists both), set up for
    /// `model`'s tensors with `seed` for any randomness of its own.
    pub fn new(name: &str, settings: &[(&str, f64)], model: &dyn Module, seed: u64) -> Result<ModuleOptimizer> {
        let info = catalog::lookup(name)?;
        let mut hyperparams = HyperParams::defaults(info);
        for &(key, value) in settings {
            hyperparams.set(key, value)?;
        }
        let mut optimizer = (info.build)(&hyperparams)?;
        optimizer.init_state(seed, &model.layout()?)?;
        Ok(ModuleOptimizer {
            optimizer,
            hyperparams,
            names: tensor_names(model),
            ctx: StepContext::default(),
        })
    }

    /// What the optimizer is told at the next step (step and epoch counts,
    /// the last epoch's losses).
    pub fn context(&self) -> &StepContext {
        &self.ctx
    }

    /// Tells the optimizer how many steps make an epoch (schedules counted
    /// in epochs need it; without it they measure the first epoch).
    pub fn set_steps_per_epoch(&mut self, steps: usize) {
        self.ctx.steps_per_epoch = Some(steps);
    }

    /// Back-propagates `loss` (a scalar computed from `model`'s latest
    /// forward pass) and takes one optimizer step: every trained parameter
    /// gets its gradient's update added. An optimizer that uses curvature
    /// (Sophia, AdaHessian, Newton-CG) gets Hessian-vector products of
    /// `loss` at the current parameters.
    ///
    /// Fails, changing nothing, when a trained parameter got no gradient
    /// ([`ModuleError::NoGradient`]), when the model's tensors are not the
    /// ones the optimizer was set up for, and for an optimizer that wants
    /// the gradient at other parameters than the current ones (look-ahead
    /// points, schedule-free's interpolation, SAM): a loss already computed
    /// cannot give it; [`ModuleOptimizer::step_with`] can.
    pub fn backward_step(&mut self, model: &mut dyn Module, loss: &Var) -> Result<()> {
        self.check_model(model)?;
        let gradients = self.backward(model, loss)?;
        let current = tensor_values(model);
        self.refuse_queries(&current)?;
        self.finish_step(model, &current, gradients)
    }

    /// One step for any optimizer: `loss_of(model)` computes the loss (a
    /// forward pass of the model, in training mode), at the parameters the
    /// optimizer asks for when it asks ([`TaskOptimizer::query_at_params`]),
    /// which the model holds only during that call; the update is then
    /// added to the current parameters, as the task's trainer does. A
    /// forward pass at other parameters does not keep its BatchNorm
    /// statistics. Returns the loss.
    ///
    /// ```
    /// use ferrograd::autograd::Var;
    /// use ferrograd::engine::{DType, Rng, Tensor};
    /// use ferrograd::module::{Linear, Module, ModuleOptimizer};
    /// use ferrograd::nn::mse;
    ///
    /// let mut model = Linear::new(1, 1, DType::F64, &mut Rng::new(0))?;
    /// // SAM takes every second gradient at a perturbed point.
    /// let mut opt = ModuleOptimizer::new("sam_adam", &[("lr", 0.05)], &model, 0)?;
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f64, 2.0], [2, 1])?);
    /// let y = Var::constant(Tensor::from_vec(vec![2.0f64, 4.0], [2, 1])?);
    /// let loss = |m: &mut dyn Module| Ok(mse(&m.forward(&x)?, &y)?);
    /// let first = opt.step_with(&mut model, loss)?.value().to_scalar()?;
    /// for _ in 0..300 {
    ///     opt.step_with(&mut model, loss)?;
    /// }
    /// let last = mse(&model.forward(&x)?, &y)?.value().to_scalar()?;
    /// assert!(last < 0.01 * first, "{first} -> {last}");
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn step_with(
        &mut self,
        model: &mut dyn Module,
        mut loss_of: impl FnMut(&mut dyn Module) -> Result<Var>,
    ) -> Result<Var> {
        self.check_model(model)?;
        let current = tensor_values(model);
        let Some(query) = self.optimizer.query_at_params(&current, &self.ctx)? else {
            let loss = loss_of(model)?;
            let gradients = self.backward(model, &loss)?;
            self.finish_step(model, &current, gradients)?;
            return Ok(loss);
        };
        if query.len() != current.len() || query.iter().zip(&current).any(|(q, c)| q.shape() != c.shape()) {
            return Err(crate::engine::Error::invalid(
                "ModuleOptimizer::step_with",
                format!(
                    "{} asked for the gradient at {} tensors that do not match the model's {}",
                    self.optimizer.name(),
                    query.len(),
                    current.len()
                ),
            )
            .into());
        }
        set_tensor_values(model, &query);
        let at_query = loss_of(model).and_then(|loss| Ok((self.backward(model, &loss)?, loss)));
        set_tensor_values(model, &current);
        let (gradients, loss) = at_query?;
        self.finish_step(model, &current, gradients)?;
        Ok(loss)
    }

    /// The gradients of `loss` for every tensor of `model` (see
    /// [`gradients_by_tensor`]), the backward pass recorded when the
    /// optimizer will ask for Hessian-vector products.
    fn backward(&self, model: &dyn Module, loss: &Var) -> Result<StepGradients> {
        let grads = loss.backward_with(self.optimizer.uses_curvature())?;
        let (gradients, trained) = gradients_by_tensor(model, &grads)?;
        Ok(StepGradients {
            grads,
            gradients,
            trained,
        })
    }

    /// The optimizer's step from `current` with `gradients`, its updates
    /// added to `model`'s trained parameters, and the step counted.
    fn finish_step(&mut self, model: &mut dyn Module, current: &[Tensor], gradients: StepGradients) -> Result<()> {
        let updates = if self.optimizer.uses_curvature() {
            let mut hook = LossCurvature {
                grads: &gradients.grads,
                trained: gradients.trained,
            };
            self.optimizer
                .step_with_curvature(current, &gradients.gradients, &mut hook, &self.ctx)?
        } else {
            self.optimizer.step(current, &gradients.gradients, &self.ctx)?
        };
        if updates.len() != current.len() {
            return Err(crate::engine::Error::invalid(
                "ModuleOptimizer::step",
                format!(
                    "{} returned {} updates for {} tensors; a TaskOptimizer returns one per tensor",
                    self.optimizer.name(),
                    updates.len(),
                    current.len()
                ),
            )
            .into());
        }
        apply_updates(model, &updates)?;
        self.ctx.step += 1;
        Ok(())
    }

    /// Ends an epoch: the next steps belong to the next one, and see this
    /// epoch's mean training loss and, if there is one, validation loss.
    pub fn end_epoch(&mut self, train_loss: f64, val_loss: Option<f64>) {
        self.ctx.epoch += 1;
        self.ctx.train_loss = Some(train_loss);
        self.ctx.val_loss = val_loss;
    }

    /// Saves the optimizer into `dir` (created if missing): its state and
    /// hyperparameters (`optimizer.json`, `optimizer.safetensors`) and the
    /// model's tensor names with the step context
    /// ([`MODULE_OPTIMIZER_FILE`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let name = self.optimizer.name().to_string();
        crate::io::save_optimizer_state(dir, &name, &self.hyperparams, &self.optimizer.state())?;
        let saved = SavedContext {
            tensors: self.names.clone(),
            epoch: self.ctx.epoch,
            step: self.ctx.step,
            train_loss: self.ctx.train_loss,
            val_loss: self.ctx.val_loss,
            steps_per_epoch: self.ctx.steps_per_epoch,
        };
        let json = serde_json::to_vec_pretty(&saved).expect("a context serialises");
        crate::datasets::atomic::write_atomic(&dir.join(MODULE_OPTIMIZER_FILE), &json)?;
        Ok(())
    }

    /// Restores what [`ModuleOptimizer::save`] wrote into `dir`, to continue
    /// exactly where the saved optimizer stopped. Fails, changing nothing,
    /// when the state is another optimizer's, or was saved for a model
    /// whose tensors have other names ([`ModuleError::MissingTensor`],
    /// [`ModuleError::UnexpectedTensor`]) or other shapes.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join(MODULE_OPTIMIZER_FILE);
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
        let saved: SavedContext = serde_json::from_slice(&text)
            .map_err(|e| Error::format(&path, format!("not a saved ModuleOptimizer context: {e}")))?;
        check_same_names(&self.names, &saved.tensors)?;
        let (_, state) = crate::io::load_optimizer_state_for(dir, self.optimizer.name())?;
        self.optimizer.load_state(&state)?;
        self.ctx = StepContext {
            epoch: saved.epoch,
            step: saved.step,
            train_loss: saved.train_loss,
            val_loss: saved.val_loss,
            steps_per_epoch: saved.steps_per_epoch,
        };
        Ok(())
    }

    /// Fails unless `model` has the tensors the optimizer was set up for.
    fn check_model(&self, model: &dyn Module) -> Result<()> {
        let actual = tensor_names(model);
        if actual != self.names {
            return Err(ModuleError::ModelChanged {
                expected: self.names.clone(),
                actual,
            }
            .into());
        }
        Ok(())
    }

    /// Fails for an optimizer that asks for the gradient elsewhere.
    fn refuse_queries(&mut self, params: &[Tensor]) -> Result<()> {
        if self.optimizer.query_at_params(params, &self.ctx)?.is_some() {
            return Err(crate::engine::Error::invalid(
                "ModuleOptimizer::backward_step",
                format!(
                    "{} evaluates the gradient at other parameters than the current ones, which a loss \
                     already computed cannot give; use ModuleOptimizer::step_with, which computes the loss there",
                    self.optimizer.name()
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// What one backward pass gives a step: the recorded gradients (for
/// Hessian-vector products), one gradient per tensor of the model, and the
/// `Var` of each trained parameter.
struct StepGradients {
    grads: Gradients,
    gradients: Vec<Tensor>,
    trained: Vec<Option<Var>>,
}

/// The gradient in `grads` of every tensor of `model`, in visiting order
/// (zeros for buffers and frozen parameters), and the `Var` of each trained
/// parameter (`None` for the others); or the error naming the first
/// trained parameter the loss did not reach.
fn gradients_by_tensor(model: &dyn Module, grads: &Gradients) -> Result<(Vec<Tensor>, Vec<Option<Var>>)> {
    let (mut gradients, mut trained) = (Vec::new(), Vec::new());
    let mut missing = None;
    let mut failure = None;
    model.visit(&mut |name, slot| {
        let var = match slot {
            Slot::Parameter(p) if p.is_trained() => Some(p.var().clone()),
            _ => None,
        };
        let grad = var.as_ref().and_then(|v| grads.get(v)).cloned();
        if var.is_some() && grad.is_none() && missing.is_none() {
            missing = Some(name.to_string());
        }
        match grad.map_or_else(|| slot.value().zeros_like(), Ok) {
            Ok(g) => gradients.push(g),
            Err(e) => failure = failure.take().or(Some(e)),
        }
        trained.push(var);
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    match missing {
        Some(name) => Err(ModuleError::NoGradient { name }.into()),
        None => Ok((gradients, trained)),
    }
}

/// The values of `model`'s tensors, in visiting order (shared, not copied).
fn tensor_values(model: &dyn Module) -> Vec<Tensor> {
    model.state_dict().into_iter().map(|(_, t)| t).collect()
}

/// Sets every tensor of `model` to `values` (in visiting order, shapes
/// checked by the caller).
fn set_tensor_values(model: &mut dyn Module, values: &[Tensor]) {
    let mut values = values.iter();
    model.visit_mut(&mut |_, mut slot| {
        if let Some(v) = values.next() {
            slot.set_value(v.clone());
        }
    });
}

/// Hessian-vector products of the loss a step back-propagated (with its
/// backward pass recorded), for optimizers that use curvature: reverse over
/// reverse, as the task's trainer does.
struct LossCurvature<'a> {
    grads: &'a Gradients,
    trained: Vec<Option<Var>>,
}

impl Curvature for LossCurvature<'_> {
    fn hvp(&mut self, v: &[Tensor]) -> crate::engine::Result<Vec<Tensor>> {
        if v.len() != self.trained.len() {
            return Err(crate::engine::Error::invalid(
                "hvp",
                format!(
                    "got {} direction tensors for a model of {}",
                    v.len(),
                    self.trained.len()
                ),
            ));
        }
        let _recording = set_grad_enabled(true);
        let mut directional: Option<Var> = None;
        for (var, direction) in self.trained.iter().zip(v) {
            let Some(g) = var.as_ref().and_then(|var| self.grads.get_var(var)) else {
                continue;
            };
            let term = g.mul(&Var::constant(direction.clone()))?.sum_all()?;
            directional = Some(match directional {
                Some(total) => total.add(&term)?,
                None => term,
            });
        }
        let Some(directional) = directional else {
            return v
                .iter()
                .map(Tensor::zeros_like)
                .collect::<std::result::Result<Vec<_>, _>>();
        };
        let second = directional.backward()?;
        self.trained
            .iter()
            .zip(v)
            .map(|(var, d)| match var.as_ref().and_then(|var| second.get(var)) {
                Some(g) => Ok(g.clone()),
                None => d.zeros_like(),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
    }
}

/// The names of `model`'s tensors, in visiting order.
fn tensor_names(model: &dyn Module) -> Vec<String> {
    model.state_dict().into_iter().map(|(name, _)| name).collect()
}

/// Adds `updates[i]` to tensor `i` of `model` where it is a trained
/// parameter; computes every sum before changing any, so an error changes
/// nothing.
fn apply_updates(model: &mut dyn Module, updates: &[Tensor]) -> Result<()> {
    let mut sums = Vec::with_capacity(updates.len());
    let mut index = 0;
    model.visit(&mut |_, slot| {
        sums.push(slot.is_trained().then(|| slot.value().add(&updates[index])));
        index += 1;
    });
    let mut sums = sums
        .into_iter()
        .map(Option::transpose)
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter();
    model.visit_mut(&mut |_, mut slot| {
        if let Some(Some(next)) = sums.next() {
            slot.set_value(next);
        }
    });
    Ok(())
}

/// Fails, naming the first difference, unless the saved names are the model's.
fn check_same_names(own: &[String], saved: &[String]) -> Result<()> {
    if let Some(name) = own.iter().find(|n| !saved.contains(n)) {
        return Err(ModuleError::MissingTensor { name: name.clone() }.into());
    }
    if let Some(name) = saved.iter().find(|n| !own.contains(n)) {
        return Err(ModuleError::UnexpectedTensor { name: name.clone() }.into());
    }
    if own != saved {
        return Err(ModuleError::ModelChanged {
            expected: saved.to_vec(),
            actual: own.to_vec(),
        }
        .into());
    }
    Ok(())
}
