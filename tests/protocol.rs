//! The training protocol of docs/task.md section 3, checked with scripted
//! optimizers whose behaviour is known in advance.

use ferrograd::engine::{Result, Tensor};
use ferrograd::optim::ModelLayout;
use ferrograd::optim::{catalog, HyperParams, OptimizerState, StepContext, TaskOptimizer};
use ferrograd::train::{TaskConfig, Trainer};
use std::sync::{Arc, Mutex};

/// What a scripted optimizer saw at each call.
#[derive(Default)]
struct Log {
    contexts: Vec<StepContext>,
    params_seen: Vec<Vec<Tensor>>,
    grads_seen: Vec<Vec<Tensor>>,
}

/// Returns `update_value` for every element of every tensor, optionally
/// asks for the gradient at params shifted by `query_shift`.
struct Scripted {
    update_value: f64,
    query_shift: Option<f64>,
    log: Arc<Mutex<Log>>,
}

impl TaskOptimizer for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn init_state(&mut self, _seed: u64, _layout: &ModelLayout) -> Result<()> {
        Ok(())
    }
    fn query_at_params(&mut self, params: &[Tensor], _ctx: &StepContext) -> Result<Option<Vec<Tensor>>> {
        Ok(self
            .query_shift
            .map(|s| params.iter().map(|p| p.add_scalar(s).unwrap()).collect()))
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor], ctx: &StepContext) -> Result<Vec<Tensor>> {
        let mut log = self.log.lock().unwrap();
        log.contexts.push(ctx.clone());
        log.params_seen.push(params.to_vec());
        log.grads_seen.push(grads.to_vec());
        Ok(params
            .iter()
            .map(|p| Tensor::full(p.shape().clone(), self.update_value, p.dtype()).unwrap())
            .collect())
    }
    fn state(&self) -> OptimizerState {
        OptimizerState::default()
    }
    fn load_state(&mut self, _state: &OptimizerState) -> Result<()> {
        Ok(())
    }
}

fn quick_config(epochs: usize) -> TaskConfig {
    TaskConfig {
        n_hidden: 2,
        max_epochs: epochs,
        ..TaskConfig::default()
    }
}

fn scripted(update_value: f64, query_shift: Option<f64>) -> (Box<dyn TaskOptimizer>, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    (
        Box::new(Scripted {
            update_value,
            query_shift,
            log: log.clone(),
        }),
        log,
    )
}

#[test]
fn updates_are_added_to_trainable_tensors_only() {
    let (opt, _) = scripted(0.001, None);
    let mut trainer = Trainer::new(quick_config(1), opt).unwrap();
    let before = trainer.model.clone();
    trainer.run_epoch().unwrap();
    let steps = 8.0; // 1000 samples in batches of 128
    for role in before.roles() {
        let (b, a) = (
            before.tensor(role).to_vec::<f64>().unwrap(),
            trainer.model.tensor(role).to_vec::<f64>().unwrap(),
        );
        if before.is_trainable(role) {
            for (x, y) in b.iter().zip(&a) {
                assert!(
                    approx::abs_diff_eq!(y - x, steps * 0.001, epsilon = 1e-5),
                    "{role:?}: {x} -> {y}"
                );
            }
        } else if !matches!(
            role,
            ferrograd::nn::Role::RunningMean(_) | ferrograd::nn::Role::RunningVar(_)
        ) {
            assert_eq!(a, b, "frozen tensor {role:?} changed");
        }
    }
}

#[test]
fn frozen_tensors_get_zero_gradients_and_never_change() {
    let (opt, log) = scripted(0.0, None);
    let mut trainer = Trainer::new(quick_config(2), opt).unwrap();
    let first = trainer.model.clone();
    trainer.run_epoch().unwrap();
    trainer.run_epoch().unwrap();
    let log = log.lock().unwrap();
    let roles = first.roles();
    for grads in &log.grads_seen {
        assert_eq!(grads.len(), roles.len(), "the optimizer sees every tensor");
        for (role, g) in roles.iter().zip(grads) {
            let all_zero = g.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0);
            assert_eq!(all_zero, !first.is_trainable(*role), "{role:?}");
        }
    }
    for role in roles.iter().filter(|r| !first.is_trainable(**r)) {
        if let ferrograd::nn::Role::RunningMean(i) | ferrograd::nn::Role::RunningVar(i) = role {
            // The last BatchNorm is frozen but its running statistics still track batches.
            let _ = i;
            continue;
        }
        assert_eq!(
            first.tensor(*role).to_vec::<f64>().unwrap(),
            trainer.model.tensor(*role).to_vec::<f64>().unwrap()
        );
    }
}

#[test]
fn previous_epoch_losses_reach_the_optimizer() {
    let (opt, log) = scripted(0.0, None);
    let mut trainer = Trainer::new(quick_config(2), opt).unwrap();
    let m0 = trainer.run_epoch().unwrap();
    trainer.run_epoch().unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.contexts.len(), 16);
    for (i, ctx) in log.contexts.iter().enumerate() {
        assert_eq!(ctx.step, i);
        assert_eq!(ctx.epoch, i / 8);
        if i < 8 {
            assert_eq!((ctx.train_loss, ctx.val_loss), (None, None));
        } else {
            assert_eq!((ctx.train_loss, ctx.val_loss), (Some(m0.train_loss), Some(m0.val_loss)));
        }
    }
}

#[test]
fn query_at_params_gradients_come_from_the_probe_and_the_model_is_restored() {
    // Optimizer A asks for gradients at params + 0.05 and never moves.
    let (opt, log) = scripted(0.0, Some(0.05));
    let mut trainer = Trainer::new(quick_config(1), opt).unwrap();
    let before = trainer.model.clone();
    trainer.run_epoch().unwrap();
    // Params and running statistics are exactly restored (the update is 0).
    for role in before.roles() {
        assert_eq!(
            before.tensor(role).to_vec::<f64>().unwrap(),
            trainer.model.tensor(role).to_vec::<f64>().unwrap(),
            "{role:?} not restored"
        );
    }
    // The params passed to step are the current ones, not the probe's.
    let log = log.lock().unwrap();
    for (p, q) in log.params_seen[0].iter().zip(before.tensors()) {
        assert_eq!(p.to_vec::<f64>().unwrap(), q.to_vec::<f64>().unwrap());
    }
    // The first gradient equals the gradient computed directly at the shifted
    // params, and differs from the gradient at the current params.
    let (plain, plain_log) = scripted(0.0, None);
    let mut reference = Trainer::new(quick_config(1), plain).unwrap();
    let shifted: Vec<Tensor> = before.tensors().iter().map(|t| t.add_scalar(0.05).unwrap()).collect();
    let (unshifted_opt, unshifted_log) = scripted(0.0, None);
    let mut unshifted = Trainer::new(quick_config(1), unshifted_opt).unwrap();
    reference.model.set_tensors(&shifted).unwrap();
    reference.run_epoch().unwrap();
    unshifted.run_epoch().unwrap();
    let probe_grads = &log.grads_seen[0];
    let direct = &plain_log.lock().unwrap().grads_seen[0];
    let current = &unshifted_log.lock().unwrap().grads_seen[0];
    let w0 = 0;
    assert_eq!(
        probe_grads[w0].to_vec::<f64>().unwrap(),
        direct[w0].to_vec::<f64>().unwrap()
    );
    assert_ne!(
        probe_grads[w0].to_vec::<f64>().unwrap(),
        current[w0].to_vec::<f64>().unwrap()
    );
}

#[test]
fn same_seed_same_numbers_different_seed_different_numbers() {
    let run = |seed: u64| {
        let info = catalog::lookup("clipped_adam").unwrap();
        let opt = (info.build)(&HyperParams::defaults(info)).unwrap();
        let mut t = Trainer::new(
            TaskConfig {
                seed,
                ..quick_config(3)
            },
            opt,
        )
        .unwrap();
        let losses: Vec<(u64, u64)> = (0..3)
            .map(|_| t.run_epoch().unwrap())
            .map(|m| (m.train_loss.to_bits(), m.val_loss.to_bits()))
            .collect();
        (
            losses,
            t.model
                .tensors()
                .iter()
                .map(|x| x.to_vec::<f32>().unwrap())
                .collect::<Vec<_>>(),
        )
    };
    let (a, b, c) = (run(3), run(3), run(4));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}

#[test]
fn a_non_finite_loss_stops_with_the_epoch_and_step() {
    let (opt, _) = scripted(f64::NAN, None);
    let mut trainer = Trainer::new(quick_config(3), opt).unwrap();
    let err = trainer
        .run_epoch()
        .err()
        .or_else(|| trainer.run_epoch().err())
        .expect("the loss must blow up");
    let message = err.to_string();
    assert!(message.contains("epoch") && message.contains("step"), "{message}");
    assert!(
        trainer.best_model.tensors().iter().all(|t| t.all_finite().unwrap()),
        "the kept model stays intact"
    );
}
