//! `anneal` under the task's protocol: it settles at its horizon, so the
//! model and the validation loss stop changing there and the patience rule
//! ends the run exactly 50 epochs after the best epoch; and it is
//! deterministic.

use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{Summary, TaskConfig, Trainer};

const HORIZON: usize = 15;

fn run(seed: u64) -> (Summary, Vec<f64>) {
    let info = catalog::lookup("anneal").unwrap();
    let h = HyperParams::defaults(info)
        .with("horizon", HORIZON as f64)
        .unwrap()
        .with("warmup", 2.0)
        .unwrap();
    let config = TaskConfig {
        n_hidden: 3,
        seed,
        ..TaskConfig::default()
    };
    let mut trainer = Trainer::new(config, (info.build)(&h).unwrap()).unwrap();
    let mut val = Vec::new();
    let summary = trainer.run(|m| val.push(m.val_loss)).unwrap();
    (summary, val)
}

#[test]
fn anneal_settles_at_its_horizon_and_the_run_ends_patience_epochs_after_the_best() {
    let (summary, val) = run(3);
    let patience = TaskConfig::default().patience;
    assert!(summary.best_epoch < HORIZON, "best epoch {}", summary.best_epoch);
    assert_eq!(summary.epochs, summary.best_epoch + 1 + patience);
    assert_eq!(val.len(), summary.epochs);
    // From the horizon on, nothing moves: not the weights, not the
    // BatchNorm running statistics, so every validation loss is the same.
    let settled = &val[HORIZON..];
    assert!(
        settled.iter().all(|v| v.to_bits() == settled[0].to_bits()),
        "{settled:?}"
    );
    assert!(val[HORIZON - 1] < val[0], "it trained before settling: {val:?}");
    let (again, val_again) = run(3);
    assert_eq!(val, val_again, "same seed, same numbers");
    assert_eq!(summary.quality, again.quality);
}
