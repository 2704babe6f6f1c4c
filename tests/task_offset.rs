//! The fact behind `docs/champion.md`, "What the score measures": the
//! task's model cannot represent a constant offset. Its last BatchNorm and
//! the output layer are frozen at their initial values (scale 1, shift 0,
//! bias 0), so with BatchNorm statistics of the inputs themselves
//! ([`Mlp::recalibrated`]) its output has zero mean over those inputs,
//! whatever the trainable tensors hold. Only running statistics that differ
//! from the inputs' own can move that mean.
//!
//! Zero up to a term of order `1/n` for `n` inputs: training mode
//! normalises with the biased variance, the running variance (as in
//! PyTorch) is the unbiased one, so in inference mode every hidden
//! BatchNorm scales its output by `sqrt(1 - 1/n)` and, through the next
//! layer's biases and ReLUs, the last one sees a slightly different mean.
//! Over cases and sizes `|mean| * n / max|output|` stayed below 1.9.

use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::Mlp;
use proptest::prelude::*;

/// The task's model with every trainable tensor moved by uniform noise of
/// size `spread` (weights, biases, BatchNorm scales and shifts alike).
fn trained_looking_model(n_hidden: usize, seed: u64, spread: f64) -> Mlp {
    let mut rng = Rng::new(seed);
    let mut model = Mlp::task(1, 2, n_hidden, DType::F32, &mut rng).unwrap();
    for i in 0..model.tensor_count() {
        let role = model.role(i);
        if !model.is_trainable(role) {
            continue;
        }
        let tensor = model.tensor_mut(role);
        let noise = Tensor::rand_uniform(tensor.shape().clone(), -spread, spread, DType::F32, &mut rng).unwrap();
        *tensor = tensor.add(&noise).unwrap();
    }
    model
}

/// The task's training-set size.
const ROWS: usize = 1000;

/// The `1/n` term of the module documentation, with a margin of 2.
fn mean_bound(largest_output: f64) -> f64 {
    4.0 * largest_output / ROWS as f64
}

/// Column means of `[rows, 2]` predictions, and the largest magnitude.
fn column_means(prediction: &Tensor) -> ([f64; 2], f64) {
    let values = prediction.to_vec::<f32>().unwrap();
    let rows = values.len() / 2;
    let mut means = [0.0; 2];
    for (i, v) in values.iter().enumerate() {
        means[i % 2] += *v as f64 / rows as f64;
    }
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    (means, largest)
}

fn inputs(rows: usize, seed: u64) -> Tensor {
    Tensor::rand_uniform([rows, 1], -1.0, 1.0, DType::F32, &mut Rng::new(seed ^ 0x5eed)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn with_its_own_statistics_the_task_model_predicts_zero_mean(
        n_hidden in 2usize..5,
        seed in 0u64..1_000_000,
        spread in 0.01f64..0.5,
    ) {
        let model = trained_looking_model(n_hidden, seed, spread);
        let x = inputs(ROWS, seed);
        let prediction = model.recalibrated(&x).unwrap().predict(&x).unwrap();
        let (means, largest) = column_means(&prediction);
        prop_assert!(largest > 1e-3, "a degenerate model predicts ~0 everywhere ({largest})");
        for mean in means {
            prop_assert!(mean.abs() <= mean_bound(largest), "mean {mean}, largest output {largest}");
        }
    }
}

#[test]
fn stale_running_statistics_do_move_the_mean() {
    // The running statistics a model starts with (mean 0, variance 1) are
    // not those of its inputs; the same model then has an offset.
    let model = trained_looking_model(3, 11, 0.2);
    let x = inputs(ROWS, 11);
    let (stale, stale_largest) = column_means(&model.predict(&x).unwrap());
    let (own, own_largest) = column_means(&model.recalibrated(&x).unwrap().predict(&x).unwrap());
    let worst = |m: [f64; 2]| m[0].abs().max(m[1].abs());
    assert!(
        worst(stale) > 10.0 * mean_bound(stale_largest),
        "stale means {stale:?}, largest {stale_largest}"
    );
    assert!(worst(own) <= mean_bound(own_largest), "recalibrated means {own:?}");
}
