//! Learning-rate schedules against values worked out by hand from the
//! PyTorch / Hugging Face definitions (with `s = count - 1` steps completed,
//! the value those schedulers hold when step `count` is taken).

use ferrograd_optim::schedule::{
    Constant, DecayShape, Exponential, LinearWarmup, OneCycle, ReduceOnPlateau, Schedule, StepDecay, WarmupCosine,
    WarmupStableDecay,
};
use ferrograd_optim::{OptimizerState, StepContext};
use std::f64::consts::FRAC_1_SQRT_2;

/// The rate at `s` completed steps (`count = s + 1`).
fn at(schedule: &mut impl Schedule, s: u64) -> f64 {
    schedule.lr(s + 1, &StepContext::default())
}

fn close(got: f64, want: f64) {
    assert!(
        approx::abs_diff_eq!(got, want, epsilon = 1e-14 * want.abs().max(1e-300) + 1e-300),
        "got {got}, want {want}"
    );
}

#[test]
fn constant() {
    let mut c = Constant(0.3);
    assert_eq!(at(&mut c, 0), 0.3);
    assert_eq!(at(&mut c, 1000), 0.3);
}

#[test]
fn linear_warmup() {
    let mut w = LinearWarmup {
        base_lr: 0.1,
        warmup_steps: 4,
    };
    // 0.1 * s / 4 while s < 4.
    for (s, want) in [(0, 0.0), (1, 0.025), (2, 0.05), (3, 0.075), (4, 0.1), (100, 0.1)] {
        close(at(&mut w, s), want);
    }
    let mut none = LinearWarmup {
        base_lr: 0.1,
        warmup_steps: 0,
    };
    assert_eq!(at(&mut none, 0), 0.1);
}

#[test]
fn warmup_cosine() {
    let mut c = WarmupCosine::new(1.0, 10, 110);
    // Warmup: s / 10.
    close(at(&mut c, 0), 0.0);
    close(at(&mut c, 5), 0.5);
    // Cosine over the 100 steps after the warmup: 0.5 (1 + cos(pi p)).
    close(at(&mut c, 10), 1.0);
    close(at(&mut c, 35), 0.5 * (1.0 + FRAC_1_SQRT_2)); // p = 1/4
    close(at(&mut c, 60), 0.5); // p = 1/2
    close(at(&mut c, 85), 0.5 * (1.0 - FRAC_1_SQRT_2)); // p = 3/4
    assert!(at(&mut c, 110).abs() < 1e-16);
    assert!(at(&mut c, 500).abs() < 1e-16, "stays at min_lr after total_steps");
    // With a floor: 0.1 + 0.9 * factor; the warmup still starts from 0.
    c.min_lr = 0.1;
    close(at(&mut c, 60), 0.55);
    close(at(&mut c, 110), 0.1);
    close(at(&mut c, 5), 0.5);
    // The rate never increases after the warmup.
    let lrs: Vec<f64> = (10..=120).map(|s| at(&mut c, s)).collect();
    assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
}

#[test]
fn step_decay_as_step_lr() {
    let mut d = StepDecay {
        base_lr: 1.0,
        step_size: 3,
        gamma: 0.5,
    };
    for (s, want) in [(0, 1.0), (2, 1.0), (3, 0.5), (5, 0.5), (6, 0.25), (9, 0.125)] {
        close(at(&mut d, s), want);
    }
}

#[test]
fn exponential() {
    let mut e = Exponential {
        base_lr: 2.0,
        gamma: 0.9,
    };
    close(at(&mut e, 0), 2.0);
    close(at(&mut e, 1), 1.8);
    close(at(&mut e, 2), 1.62);
    close(at(&mut e, 10), 2.0 * 0.3486784401); // 0.9^10
}

#[test]
fn one_cycle_with_torch_defaults() {
    // max_lr 1, T = 100: initial = 1/25 = 0.04, min = 0.04 / 1e4 = 4e-6,
    // phase 1 ends at 0.3 * 100 - 1 = 29, phase 2 at 99.
    let mut o = OneCycle::new(1.0, 100);
    close(at(&mut o, 0), 0.04);
    // Phase 1 at p = 10/29: 1 + (0.04 - 1) / 2 (cos(10 pi / 29) + 1).
    close(at(&mut o, 10), 0.29516394846410077);
    close(at(&mut o, 29), 1.0);
    // Phase 2 at p = (64 - 29) / (99 - 29) = 1/2: half way from 1 to 4e-6.
    close(at(&mut o, 64), 0.500002);
    close(at(&mut o, 99), 4e-6);
    close(at(&mut o, 150), 4e-6);
    // Linear annealing: 0.04 + 0.96 * 10/29 in phase 1.
    o.anneal = DecayShape::Linear;
    close(at(&mut o, 10), 0.04 + 0.96 * 10.0 / 29.0);
    close(at(&mut o, 64), 0.500002);
    // Three phases: 0.04 -> 1 up to 29, 1 -> 0.04 up to 58, 0.04 -> 4e-6 up to 99.
    let mut three = OneCycle {
        three_phase: true,
        ..OneCycle::new(1.0, 100)
    };
    close(at(&mut three, 29), 1.0);
    close(at(&mut three, 58), 0.04);
    close(
        at(&mut three, 43),
        0.5 * (1.0 + 0.04) + 0.5 * (1.0 - 0.04) * (std::f64::consts::PI * 14.0 / 29.0).cos(),
    );
    close(at(&mut three, 99), 4e-6);
}

#[test]
fn warmup_stable_decay() {
    // 10 warmup steps, then flat, then the last 20 of 100 steps decay.
    let mut w = WarmupStableDecay {
        base_lr: 1.0,
        warmup_steps: 10,
        total_steps: 100,
        decay_fraction: 0.2,
        min_lr: 0.0,
        decay: DecayShape::Linear,
    };
    for (s, want) in [
        (0, 0.0),
        (5, 0.5),
        (10, 1.0),
        (50, 1.0),
        (79, 1.0),
        (80, 1.0),
        (90, 0.5),
        (99, 0.05),
    ] {
        close(at(&mut w, s), want);
    }
    assert_eq!(at(&mut w, 100), 0.0);
    w.decay = DecayShape::Cosine;
    close(at(&mut w, 85), 0.5 * (1.0 + FRAC_1_SQRT_2));
    close(at(&mut w, 90), 0.5);
    w.decay = DecayShape::OneMinusSqrt;
    close(at(&mut w, 85), 0.5); // 1 - sqrt(1/4)
                                // A floor of 0.1: r = 0.1, lr = 0.1 + 0.9 * factor (the warmup too, as HF).
    w.decay = DecayShape::Linear;
    w.min_lr = 0.1;
    close(at(&mut w, 0), 0.1);
    close(at(&mut w, 5), 0.55);
    close(at(&mut w, 90), 0.55);
    close(at(&mut w, 100), 0.1);
}

/// The rates of `schedule` over `epochs` epochs of `steps` steps, with the
/// validation losses `val[e]` seen from epoch `e + 1` on (none in epoch 0).
fn run_epochs(schedule: &mut impl Schedule, val: &[f64], steps: usize) -> Vec<f64> {
    let mut count = 0;
    let mut out = Vec::new();
    for epoch in 0..=val.len() {
        let ctx = StepContext {
            epoch,
            step: count as usize,
            train_loss: None,
            val_loss: epoch.checked_sub(1).map(|e| val[e]),
            steps_per_epoch: Some(steps),
        };
        let mut rates = Vec::new();
        for _ in 0..steps {
            count += 1;
            rates.push(schedule.lr(count, &ctx));
        }
        assert!(
            rates.iter().all(|&r| r == rates[0]),
            "the rate changed within epoch {epoch}"
        );
        out.push(rates[0]);
    }
    out
}

#[test]
fn reduce_on_plateau_with_torch_defaults() {
    // Best 1.0 after epoch 0; then 11 epochs of no relative improvement
    // above 1e-4 (0.99995 is only 5e-5 better) make 11 bad epochs > patience
    // 10: the rate drops by 10 in the epoch after the 11th.
    let mut val = vec![1.0];
    val.extend([0.99995; 11]);
    val.push(0.5); // a real improvement: best 0.5, counting restarts
    val.extend([0.5; 10]);
    let mut p = ReduceOnPlateau::new(2.0);
    let lrs = run_epochs(&mut p, &val, 8);
    assert_eq!(lrs.len(), 24);
    // Epoch e sees val[e - 1]; epochs 0..=11 keep 2.0, epoch 12 has seen 11 bad ones.
    assert!(lrs[..12].iter().all(|&r| r == 2.0), "{lrs:?}");
    close(lrs[12], 0.2);
    assert!(
        lrs[13..].iter().all(|&r| approx::abs_diff_eq!(r, 0.2, epsilon = 1e-15)),
        "{lrs:?}"
    );
    assert_eq!(p.reductions(), 1);
    assert_eq!(p.best(), 0.5);
}

#[test]
fn reduce_on_plateau_cooldown_and_floor() {
    // patience 0, cooldown 2, factor 0.5; the loss never improves after epoch 1.
    // torch: e1 best; e2 bad -> reduce, cooldown 2; e3, e4 in cooldown; e5
    // reduce; e6, e7 cooldown; e8 reduce.
    let mut p = ReduceOnPlateau::new(1.0).with(0.5, 0);
    p.cooldown = 2;
    let lrs = run_epochs(&mut p, &[1.0; 8], 3);
    assert_eq!(lrs, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]);

    // min_lr 0.05, factor 0.1: 1 -> 0.1 -> 0.05 (floored), then no change.
    let mut p = ReduceOnPlateau::new(1.0).with(0.1, 0);
    p.min_lr = 0.05;
    let lrs = run_epochs(&mut p, &[1.0; 5], 2);
    close(lrs[2], 0.1);
    close(lrs[3], 0.05);
    close(lrs[5], 0.05);
    assert_eq!(p.reductions(), 2);
}

#[test]
fn reduce_on_plateau_scales_an_inner_schedule() {
    // Warmup-cosine (peak 1 at s = 2, zero at s = 12) with one reduction by 0.5
    // once the loss stalls (patience 0): epochs of 2 steps.
    let mut p = ReduceOnPlateau::wrap(WarmupCosine::new(1.0, 2, 12)).with(0.5, 0);
    let mut count = 0;
    let mut lrs = Vec::new();
    for (epoch, val) in [None, Some(1.0), Some(1.0)].into_iter().enumerate() {
        let ctx = StepContext {
            epoch,
            val_loss: val,
            ..StepContext::default()
        };
        for _ in 0..2 {
            count += 1;
            lrs.push(p.lr(count, &ctx));
        }
    }
    let cosine = |s: f64| 0.5 * (1.0 + (std::f64::consts::PI * (s - 2.0) / 10.0).cos());
    close(lrs[0], 0.0);
    close(lrs[1], 0.5);
    close(lrs[2], 1.0);
    close(lrs[3], cosine(3.0));
    close(lrs[4], 0.5 * cosine(4.0));
    close(lrs[5], 0.5 * cosine(5.0));
}

#[test]
fn reduce_on_plateau_state_round_trips_mid_epoch() {
    let val = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8];
    let steps = 4;
    let make = || ReduceOnPlateau::new(1.0).with(0.5, 1);
    let mut whole = make();
    let reference = run_epochs(&mut whole, &val, steps);
    assert!(
        reference.last().unwrap() < &1.0,
        "the test must exercise a reduction: {reference:?}"
    );

    // Run to the middle of epoch 5, save, load into a fresh schedule, finish.
    let mut first = make();
    let mut state = OptimizerState::default();
    let mut count = 0;
    let mut resumed = Vec::new();
    for epoch in 0..=val.len() {
        let ctx = StepContext {
            epoch,
            val_loss: epoch.checked_sub(1).map(|e| val[e]),
            ..StepContext::default()
        };
        for k in 0..steps {
            count += 1;
            if epoch == 5 && k == 2 {
                first.save("7.", &mut state);
                first = make();
                first.load("7.", &state).unwrap();
            }
            let lr = first.lr(count, &ctx);
            if k == 0 {
                resumed.push(lr);
            } else {
                assert_eq!(lr, resumed[epoch], "the rate changed within epoch {epoch}");
            }
        }
    }
    assert_eq!(resumed, reference);
    assert!(state.counters.keys().all(|k| k.starts_with("7.plateau.")));
    assert!(make().load("", &state).is_err(), "a missing state is an error");
}
