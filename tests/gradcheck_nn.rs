//! Gradient checks of the nn layers (f64, central differences): BatchNorm in
//! training and inference mode, Linear, and the losses.

use ferrograd::autograd::{gradcheck, GradcheckOptions, Var};
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::{cross_entropy, mse, sse, BatchNorm1d, Linear};
use proptest::prelude::*;

fn normal(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, DType::F64, rng).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Training mode: gradients w.r.t. the input (through the batch mean and
    /// variance), the scale and the shift.
    #[test]
    fn batchnorm_training_mode(batch in 2usize..7, features in 1usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let bn = BatchNorm1d::new(features, DType::F64).unwrap();
        let inputs = [normal(&[batch, features], &mut rng), normal(&[features], &mut rng), normal(&[features], &mut rng)];
        let report = gradcheck(|v| Ok(bn.forward_train(&v[0], &v[1], &v[2])?.0), &inputs, &GradcheckOptions { seed, ..Default::default() }).unwrap();
        prop_assert!(report.passed, "{}", report);
    }

    /// Inference mode with non-trivial running statistics.
    #[test]
    fn batchnorm_inference_mode(batch in 1usize..7, features in 1usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut bn = BatchNorm1d::new(features, DType::F64).unwrap();
        bn.running_mean = normal(&[features], &mut rng);
        bn.running_var = Tensor::rand_uniform([features], 0.5, 2.0, DType::F64, &mut rng).unwrap();
        let inputs = [normal(&[batch, features], &mut rng), normal(&[features], &mut rng), normal(&[features], &mut rng)];
        let report = gradcheck(|v| bn.forward_eval(&v[0], &v[1], &v[2]), &inputs, &GradcheckOptions { seed, ..Default::default() }).unwrap();
        prop_assert!(report.passed, "{}", report);
    }

    /// Linear: `x W^T + b` w.r.t. x, W and b.
    #[test]
    fn linear_layer(batch in 1usize..5, fan_in in 1usize..5, fan_out in 1usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let inputs = [normal(&[batch, fan_in], &mut rng), normal(&[fan_out, fan_in], &mut rng), normal(&[fan_out], &mut rng)];
        let report = gradcheck(|v| Linear::forward(&v[0], &v[1], &v[2]), &inputs, &GradcheckOptions { seed, ..Default::default() }).unwrap();
        prop_assert!(report.passed, "{}", report);
    }

    /// MSE, SSE and softmax cross-entropy.
    #[test]
    fn losses(n in 1usize..6, classes in 2usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let pair = [normal(&[n, classes], &mut rng), normal(&[n, classes], &mut rng)];
        let opts = GradcheckOptions { seed, ..Default::default() };
        prop_assert!(gradcheck(|v| mse(&v[0], &v[1]), &pair, &opts).unwrap().passed);
        prop_assert!(gradcheck(|v| sse(&v[0], &v[1]), &pair, &opts).unwrap().passed);
        let labels: Vec<usize> = (0..n).map(|_| rng.below(classes)).collect();
        prop_assert!(gradcheck(|v| cross_entropy(&v[0], &labels), &pair[..1], &opts).unwrap().passed);
    }
}

/// The whole task model in training mode, small widths, gradients w.r.t.
/// every trainable tensor match finite differences.
#[test]
fn small_task_model_end_to_end() {
    use ferrograd::nn::{Activation, Mlp};
    let mut rng = Rng::new(11);
    let model = Mlp::new(&[2, 5, 4, 3], Activation::Relu, 1, DType::F64, &mut rng).unwrap();
    let x = Var::constant(normal(&[6, 2], &mut rng));
    let y = Var::constant(normal(&[6, 3], &mut rng));
    let roles = model.roles();
    let trainable: Vec<usize> = (0..roles.len()).filter(|&i| model.is_trainable(roles[i])).collect();
    let inputs: Vec<Tensor> = trainable.iter().map(|&i| model.tensor(roles[i]).clone()).collect();
    let report = gradcheck(
        |v| {
            let mut vars = model.vars();
            for (slot, var) in trainable.iter().zip(v) {
                vars[*slot] = var.clone();
            }
            sse(&model.functional_forward(&x, &vars, true)?.0, &y)
        },
        &inputs,
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert!(report.passed, "{report}");
    assert!(report.checked > 40);
}
