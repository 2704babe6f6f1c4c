//! Tests of the modules, their state dicts and the module optimizer. Expected
//! values come from plain loops over `Vec<f64>`, never from the code under test.

use super::*;
use crate::engine::{DType, Rng};
use crate::nn::{mse, BN_EPS};
use proptest::prelude::*;

/// `[rows, cols]` of numbers that vary with the position and `salt`.
fn table(rows: usize, cols: usize, salt: f64) -> Vec<f64> {
    (0..rows * cols)
        .map(|i| ((i as f64 + 1.0) * 0.731 + salt).sin())
        .collect()
}

fn tensor(values: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), dims.to_vec()).unwrap()
}

/// `x W^T + b` by loops: `x [n, k]`, `w [m, k]`, `b [m]`.
fn affine_by_hand(x: &[f64], w: &[f64], b: &[f64], k: usize) -> Vec<f64> {
    let m = b.len();
    x.chunks(k)
        .flat_map(|row| (0..m).map(move |j| b[j] + (0..k).map(|i| w[j * k + i] * row[i]).sum::<f64>()))
        .collect()
}

/// The model of most tests: 3 -> 4, BatchNorm, ReLU, 4 -> 2.
fn small_model(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .append(Linear::new(3, 4, DType::F64, &mut rng).unwrap())
        .append(BatchNorm1d::new(4, DType::F64).unwrap())
        .append(Relu)
        .append(Linear::new(4, 2, DType::F64, &mut rng).unwrap())
}

fn names(model: &dyn Module) -> Vec<String> {
    model.state_dict().into_iter().map(|(n, _)| n).collect()
}

#[test]
fn a_sequential_names_its_tensors_as_pytorch_does() {
    let model = small_model(0);
    assert_eq!(
        names(&model),
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "3.weight",
            "3.bias"
        ]
    );
    assert!(Sequential::default().is_training() && Sequential::default().is_empty());
    let nested = Sequential::new().append(Flatten).append(small_model(0));
    assert_eq!(names(&nested)[0], "1.0.weight");
    let params: Vec<String> = model.parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        params,
        ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    );
}

#[test]
fn linear_draws_the_same_initial_weights_as_the_nn_layer() {
    let module = Linear::new(5, 3, DType::F32, &mut Rng::new(9)).unwrap();
    let plain = crate::nn::Linear::new(5, 3, DType::F32, &mut Rng::new(9)).unwrap();
    assert_eq!(
        module.weight().value().to_vec::<f32>().unwrap(),
        plain.weight.to_vec::<f32>().unwrap()
    );
    assert_eq!(
        module.bias().unwrap().value().to_vec::<f32>().unwrap(),
        plain.bias.to_vec::<f32>().unwrap()
    );
}

#[test]
fn the_layout_numbers_layers_by_kind_and_trains_parameters_only() {
    let mut model = small_model(0);
    let layout = model.layout().unwrap();
    assert_eq!(
        layout.roles().unwrap(),
        [
            Role::Weight(0),
            Role::Bias(0),
            Role::BnScale(0),
            Role::BnShift(0),
            Role::RunningMean(0),
            Role::RunningVar(0),
            Role::Weight(1),
            Role::Bias(1)
        ]
    );
    assert_eq!(layout.trained(), [true, true, true, true, false, false, true, true]);
    assert!(layout.is_output_layer(1));
    model.visit_mut(&mut |name, slot| {
        if let SlotMut::Parameter(p) = slot {
            if name.starts_with("3.") {
                p.set_trained(false);
            }
        }
    });
    assert_eq!(
        model.layout().unwrap().trained(),
        [true, true, true, true, false, false, false, false]
    );
}

#[test]
fn a_wrong_input_shape_names_the_layer_and_both_shapes() {
    let mut model = small_model(0);
    let x = Var::constant(Tensor::zeros([5, 7], DType::F64).unwrap());
    let err = model.forward(&x).unwrap_err();
    match &err {
        crate::Error::Module(ModuleError::InputShape {
            layer,
            expected,
            actual,
        }) => {
            assert_eq!(layer, "layer 0 (Linear(3 -> 4))");
            assert_eq!(expected, "[batch, 3]");
            assert_eq!(actual.dims(), [5, 7]);
        }
        other => panic!("expected an input-shape error, got {other:?}"),
    }
    assert!(err.to_string().contains("[5, 7]"), "{err}");
    let mut bn = BatchNorm1d::new(4, DType::F64).unwrap();
    let one = Var::constant(Tensor::zeros([1, 4], DType::F64).unwrap());
    assert!(bn.forward(&one).unwrap_err().to_string().contains("batch >= 2"));
}

#[test]
fn batchnorm_trains_on_batch_statistics_and_evaluates_on_running_ones() {
    let (n, f) = (6, 3);
    let x = table(n, f, 0.3);
    let mut bn = BatchNorm1d::new(f, DType::F64).unwrap();
    let scale = [0.5, 1.5, -1.0];
    let shift = [0.1, 0.0, 2.0];
    bn.load_state_dict(&[
        ("weight".into(), tensor(&scale, &[f])),
        ("bias".into(), tensor(&shift, &[f])),
        ("running_mean".into(), tensor(&[0.0; 3], &[f])),
        ("running_var".into(), tensor(&[1.0; 3], &[f])),
    ])
    .unwrap();
    let y = bn
        .forward(&Var::constant(tensor(&x, &[n, f])))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let (mean_buffer, var_buffer) = bn.running_stats().unwrap();
    let (means, vars) = (
        mean_buffer.value().to_vec::<f64>().unwrap(),
        var_buffer.value().to_vec::<f64>().unwrap(),
    );
    for j in 0..f {
        let col: Vec<f64> = x.iter().skip(j).step_by(f).copied().collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let biased = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let unbiased = biased * n as f64 / (n - 1) as f64;
        assert!((means[j] - 0.1 * mean).abs() < 1e-12);
        assert!((vars[j] - (0.9 + 0.1 * unbiased)).abs() < 1e-12);
        for (i, v) in col.iter().enumerate() {
            let want = (v - mean) / (biased + BN_EPS).sqrt() * scale[j] + shift[j];
            assert!((y[i * f + j] - want).abs() < 1e-12);
        }
    }
    bn.eval();
    let y = bn
        .forward(&Var::constant(tensor(&x, &[n, f])))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    for (i, v) in x.iter().enumerate() {
        let j = i % f;
        let want = (v - means[j]) / (vars[j] + BN_EPS).sqrt() * scale[j] + shift[j];
        assert!((y[i] - want).abs() < 1e-12);
    }
    assert_eq!(
        bn.running_stats().unwrap().0.value().to_vec::<f64>().unwrap(),
        means,
        "eval leaves the statistics"
    );
}

#[test]
fn predict_evaluates_and_restores_the_mode() {
    let mut model = small_model(1);
    let x = tensor(&table(4, 3, 0.0), &[4, 3]);
    let before = model.state_dict();
    let out = model.predict(&x).unwrap();
    assert_eq!(out.dims(), [4, 2]);
    assert!(model.is_training());
    for ((_, a), (_, b)) in before.iter().zip(model.state_dict()) {
        assert!(a.same_storage(&b), "predict changed a tensor");
    }
    model.eval();
    assert!(!model.is_training());
    model.predict(&x).unwrap();
    assert!(!model.is_training());
}

#[test]
fn load_state_dict_refuses_missing_unexpected_and_misshapen_tensors_and_changes_nothing() {
    let mut model = small_model(0);
    let good = small_model(5).state_dict();
    let original = model.state_dict();

    let missing: Vec<_> = good.iter().filter(|(n, _)| n != "1.running_var").cloned().collect();
    let err = model.load_state_dict(&missing).unwrap_err();
    assert!(matches!(&err, crate::Error::Module(ModuleError::MissingTensor { name }) if name == "1.running_var"));

    let mut extra = good.clone();
    extra.push(("4.weight".into(), Tensor::zeros([1], DType::F64).unwrap()));
    let err = model.load_state_dict(&extra).unwrap_err();
    assert!(matches!(&err, crate::Error::Module(ModuleError::UnexpectedTensor { name }) if name == "4.weight"));

    let mut wrong = good.clone();
    wrong[0].1 = Tensor::zeros([4, 2], DType::F64).unwrap();
    let err = model.load_state_dict(&wrong).unwrap_err().to_string();
    assert!(
        err.contains("\"0.weight\"") && err.contains("[4, 2]") && err.contains("[4, 3]"),
        "{err}"
    );

    for ((_, a), (_, b)) in original.iter().zip(model.state_dict()) {
        assert!(a.same_storage(&b), "a refused load changed the model");
    }
    model.load_state_dict(&good).unwrap();
    for ((_, a), (_, b)) in good.iter().zip(model.state_dict()) {
        assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    }
}

#[test]
fn a_saved_model_loads_into_a_fresh_one_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut trained = small_model(3);
    let x = tensor(&table(8, 3, 1.0), &[8, 3]);
    trained.forward(&Var::constant(x.clone())).unwrap(); // moves the running statistics
    trained.save(&path).unwrap();
    let mut fresh = small_model(4);
    fresh.load(&path).unwrap();
    assert_eq!(
        fresh.predict(&x).unwrap().to_vec::<f64>().unwrap(),
        trained.predict(&x).unwrap().to_vec::<f64>().unwrap()
    );
}

/// A file as PyTorch writes a BatchNorm's state dict, with its int64
/// `num_batches_tracked` counter, loads: the counter is skipped.
#[test]
fn pytorch_batch_counters_are_skipped_when_loading_a_file() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (weight, bias) = (f32_bytes(&[2.0, 3.0]), f32_bytes(&[0.5, -0.5]));
    let (mean, var) = (f32_bytes(&[1.0, -1.0]), f32_bytes(&[4.0, 9.0]));
    let counter = 7i64.to_le_bytes().to_vec();
    let views = [
        ("1.weight", Dtype::F32, vec![2], &weight),
        ("1.bias", Dtype::F32, vec![2], &bias),
        ("1.running_mean", Dtype::F32, vec![2], &mean),
        ("1.running_var", Dtype::F32, vec![2], &var),
        ("1.num_batches_tracked", Dtype::I64, vec![], &counter),
    ]
    .map(|(name, dtype, shape, data)| (name, TensorView::new(dtype, shape, data).unwrap()));
    std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
    let mut model = Sequential::new()
        .append(Flatten)
        .append(BatchNorm1d::new(2, DType::F32).unwrap());
    model.load(&path).unwrap();
    model.eval();
    let y = model
        .predict(&Tensor::from_vec(vec![3.0f32, 2.0], [1, 2]).unwrap())
        .unwrap();
    // (3 - 1) / sqrt(4 + eps) * 2 + 0.5 and (2 + 1) / sqrt(9 + eps) * 3 - 0.5
    let want = [
        2.0 / (4.0 + BN_EPS).sqrt() * 2.0 + 0.5,
        3.0 / (9.0 + BN_EPS).sqrt() * 3.0 - 0.5,
    ];
    for (a, w) in y.to_vec::<f32>().unwrap().iter().zip(want) {
        assert!((f64::from(*a) - w).abs() < 1e-5, "{a} vs {w}");
    }
}

/// One SGD step on `mse(Linear(x), y)` moves `W` by `-lr dL/dW`, the
/// gradient worked out by hand; a second step is taken from the new weights.
#[test]
fn an_sgd_step_subtracts_the_learning_rate_times_the_gradient() {
    let (n, k) = (4, 2);
    let mut model = Linear::new(k, 1, DType::F64, &mut Rng::new(2)).unwrap();
    let mut opt = ModuleOptimizer::new("sgd", &[("lr", 0.05)], &model, 0).unwrap();
    let (x, y) = (table(n, k, 0.2), table(n, 1, 2.0));
    let w = model.weight().value().to_vec::<f64>().unwrap();
    let b = model.bias().unwrap().value().to_vec::<f64>().unwrap();
    let pred = affine_by_hand(&x, &w, &b, k);
    // L = mean (p - y)^2: dL/dp_i = 2 (p_i - y_i) / n.
    let dp: Vec<f64> = pred.iter().zip(&y).map(|(p, t)| 2.0 * (p - t) / n as f64).collect();
    let dw: Vec<f64> = (0..k).map(|i| (0..n).map(|r| dp[r] * x[r * k + i]).sum()).collect();
    let db: f64 = dp.iter().sum();

    let loss = mse(
        &model.forward(&Var::constant(tensor(&x, &[n, k]))).unwrap(),
        &Var::constant(tensor(&y, &[n, 1])),
    )
    .unwrap();
    opt.backward_step(&mut model, &loss).unwrap();

    let w_new = model.weight().value().to_vec::<f64>().unwrap();
    for i in 0..k {
        assert!((w_new[i] - (w[i] - 0.05 * dw[i])).abs() < 1e-12);
    }
    assert!((model.bias().unwrap().value().to_vec::<f64>().unwrap()[0] - (b[0] - 0.05 * db)).abs() < 1e-12);
    assert_eq!(opt.context().step, 1);
    opt.end_epoch(0.5, Some(0.7));
    assert_eq!(
        (opt.context().epoch, opt.context().train_loss, opt.context().val_loss),
        (1, Some(0.5), Some(0.7))
    );
}

#[test]
fn frozen_parameters_and_buffers_are_left_alone() {
    let mut model = small_model(0);
    model.visit_mut(&mut |name, slot| {
        if let SlotMut::Parameter(p) = slot {
            if name.starts_with("0.") {
                p.set_trained(false);
            }
        }
    });
    let mut opt = ModuleOptimizer::new("adam", &[("lr", 0.1)], &model, 0).unwrap();
    let before = model.state_dict();
    let x = Var::constant(tensor(&table(6, 3, 0.5), &[6, 3]));
    let loss = model.forward(&x).unwrap().square().unwrap().mean_all().unwrap();
    let after_forward = model.state_dict();
    opt.backward_step(&mut model, &loss).unwrap();
    let after = model.state_dict();
    for i in 0..after.len() {
        let name = &after[i].0;
        let moved = before[i].1.to_vec::<f64>().unwrap() != after[i].1.to_vec::<f64>().unwrap();
        let is_stat = name.contains("running");
        let by_forward = after_forward[i].1.to_vec::<f64>().unwrap() == after[i].1.to_vec::<f64>().unwrap();
        match name.as_str() {
            n if n.starts_with("0.") => assert!(!moved, "{n} is frozen"),
            n if is_stat => assert!(by_forward, "{n}: the optimizer changed a buffer"),
            n => assert!(moved, "{n} is trained but did not move"),
        }
    }
}

#[test]
fn a_loss_from_another_model_is_a_typed_error() {
    let mut model = small_model(0);
    let mut other = small_model(1);
    let mut opt = ModuleOptimizer::new("sgd", &[], &model, 0).unwrap();
    let x = Var::constant(tensor(&table(4, 3, 0.0), &[4, 3]));
    let loss = other.forward(&x).unwrap().sum_all().unwrap();
    let err = opt.backward_step(&mut model, &loss).unwrap_err();
    assert!(matches!(&err, crate::Error::Module(ModuleError::NoGradient { name }) if name == "0.weight"));
    let mut bigger = small_model(0).append(Linear::new(2, 1, DType::F64, &mut Rng::new(0)).unwrap());
    let loss = bigger.forward(&x).unwrap().sum_all().unwrap();
    let err = opt.backward_step(&mut bigger, &loss).unwrap_err();
    assert!(err.to_string().contains("build a new ModuleOptimizer"), "{err}");
}

/// Trains `model` with `opt` for `steps` steps on a fixed batch.
fn train_steps(model: &mut Sequential, opt: &mut ModuleOptimizer, steps: usize) {
    let x = Var::constant(tensor(&table(6, 3, 0.9), &[6, 3]));
    let y = Var::constant(tensor(&table(6, 2, 1.7), &[6, 2]));
    for _ in 0..steps {
        let loss = mse(&model.forward(&x).unwrap(), &y).unwrap();
        opt.backward_step(model, &loss).unwrap();
    }
}

#[test]
fn a_saved_optimizer_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = small_model(0);
    let mut opt = ModuleOptimizer::new("adamw", &[("lr", 0.01)], &model, 0).unwrap();
    train_steps(&mut model, &mut opt, 3);
    opt.end_epoch(1.0, None);
    opt.save(dir.path()).unwrap();
    model.save(&dir.path().join("model.safetensors")).unwrap();
    train_steps(&mut model, &mut opt, 2);

    let mut resumed = small_model(7);
    resumed.load(&dir.path().join("model.safetensors")).unwrap();
    let mut resumed_opt = ModuleOptimizer::new("adamw", &[("lr", 0.01)], &resumed, 0).unwrap();
    resumed_opt.load(dir.path()).unwrap();
    assert_eq!(resumed_opt.context().epoch, 1);
    train_steps(&mut resumed, &mut resumed_opt, 2);
    for ((name, a), (_, b)) in model.state_dict().iter().zip(resumed.state_dict()) {
        assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap(), "{name}");
    }

    let other = Sequential::new().append(Linear::new(3, 4, DType::F64, &mut Rng::new(0)).unwrap());
    let mut wrong = ModuleOptimizer::new("adamw", &[], &other, 0).unwrap();
    let err = wrong.load(dir.path()).unwrap_err();
    assert!(matches!(&err, crate::Error::Module(ModuleError::UnexpectedTensor { name }) if name == "1.weight"));
    let mut sgd = ModuleOptimizer::new("sgd", &[], &model, 0).unwrap();
    assert!(sgd.load(dir.path()).unwrap_err().to_string().contains("adamw"));
}

proptest! {
    /// A Linear module's output is `x W^T + b` by loops, for any widths.
    #[test]
    fn linear_forward_is_the_affine_map(n in 1usize..5, k in 1usize..6, m in 1usize..5, seed in 0u64..100) {
        let mut layer = Linear::new(k, m, DType::F64, &mut Rng::new(seed)).unwrap();
        let b = table(1, m, seed as f64);
        layer.load_state_dict(&[("weight".into(), layer.weight().value().clone()), ("bias".into(), tensor(&b, &[m]))]).unwrap();
        let x = table(n, k, 0.1 * seed as f64);
        let y = layer.forward(&Var::constant(tensor(&x, &[n, k]))).unwrap().value().to_vec::<f64>().unwrap();
        let want = affine_by_hand(&x, &layer.weight().value().to_vec::<f64>()?, &b, k);
        for (a, w) in y.iter().zip(&want) {
            prop_assert!((a - w).abs() < 1e-12, "{} vs {}", a, w);
        }
    }

    /// Flatten keeps the batch axis and every value in row-major order.
    #[test]
    fn flatten_keeps_the_values_in_order(dims in proptest::collection::vec(1usize..4, 1..5)) {
        let numel: usize = dims.iter().product();
        let values = table(1, numel, 0.0);
        let y = Flatten.forward(&Var::constant(tensor(&values, &dims))).unwrap();
        prop_assert_eq!(y.dims(), &[dims[0], numel / dims[0]][..]);
        prop_assert_eq!(y.value().to_vec::<f64>().unwrap(), values);
    }
}

/// The model of the catalog tests: one input, the task's shape, which
/// some optimizers (anneal's kink spreading) need.
fn one_input_model() -> Sequential {
    let mut rng = Rng::new(0);
    Sequential::new()
        .append(Linear::new(1, 4, DType::F64, &mut rng).unwrap())
        .append(Relu)
        .append(BatchNorm1d::new(4, DType::F64).unwrap())
        .append(Linear::new(4, 2, DType::F64, &mut rng).unwrap())
}

/// The squared output of `model` on a fixed batch of 6.
fn output_energy(model: &mut dyn Module) -> crate::Result<Var> {
    let x = Var::constant(tensor(&table(6, 1, 0.4), &[6, 1]));
    Ok(model.forward(&x)?.square()?.mean_all()?)
}

/// Every catalog optimizer trains a module through `step_with` (the
/// parameters move and stay finite, the buffers keep the values of the
/// last forward pass at the current parameters), and through
/// `backward_step` too unless it wants the gradient elsewhere, which it
/// then says, pointing to `step_with`.
#[test]
fn every_catalog_optimizer_steps_a_module() {
    let mut refused = Vec::new();
    for info in crate::optim::catalog::all() {
        let mut model = one_input_model();
        let mut opt = ModuleOptimizer::new(info.name, &[], &model, 0).unwrap();
        let before = model.state_dict();
        for _ in 0..3 {
            opt.step_with(&mut model, output_energy)
                .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        }
        let after = model.state_dict();
        for (name, t) in &after {
            assert!(
                t.to_vec::<f64>().unwrap().iter().all(|v| v.is_finite()),
                "{}: {name}",
                info.name
            );
        }
        assert_ne!(
            before[0].1.to_vec::<f64>().unwrap(),
            after[0].1.to_vec::<f64>().unwrap(),
            "{}",
            info.name
        );

        let mut model = one_input_model();
        let mut opt = ModuleOptimizer::new(info.name, &[], &model, 0).unwrap();
        for _ in 0..3 {
            let loss = output_energy(&mut model).unwrap();
            if let Err(e) = opt.backward_step(&mut model, &loss) {
                let message = e.to_string();
                assert!(
                    message.contains("use ModuleOptimizer::step_with"),
                    "{}: {message}",
                    info.name
                );
                refused.push(info.name);
                break;
            }
        }
    }
    // SAM takes every second gradient at a perturbed point.
    assert!(refused.contains(&"sam_adam"), "refused: {refused:?}");
    assert!(
        !refused.contains(&"adam") && !refused.contains(&"sophia"),
        "{refused:?}"
    );
    eprintln!("REFUSED {refused:?}");
}

/// The running statistics of `model`'s BatchNorms.
fn running_stats(model: &dyn Module) -> Vec<Vec<f64>> {
    model
        .state_dict()
        .iter()
        .filter(|(name, _)| name.contains("running"))
        .map(|(_, t)| t.to_vec::<f64>().unwrap())
        .collect()
}

/// With a query (SAM's perturbed point, from its second step on),
/// `step_with` evaluates the loss at the queried point, then puts the
/// model back at its current parameters plus the update, with the BatchNorm
/// statistics of the current parameters.
#[test]
fn a_queried_step_evaluates_elsewhere_and_keeps_the_current_statistics() {
    let mut model = one_input_model();
    let mut opt = ModuleOptimizer::new("sam_adam", &[], &model, 0).unwrap();
    let mut queried_steps = 0;
    for _ in 0..3 {
        output_energy(&mut model).unwrap(); // statistics of the current parameters
        let (weight, stats) = (model.state_dict()[0].1.to_vec::<f64>().unwrap(), running_stats(&model));
        let mut seen = Vec::new();
        opt.step_with(&mut model, |m| {
            seen.push(m.state_dict()[0].1.to_vec::<f64>().unwrap());
            output_energy(m)
        })
        .unwrap();
        assert_eq!(seen.len(), 1, "one loss evaluation per step");
        if seen[0] != weight {
            queried_steps += 1;
            assert_eq!(
                running_stats(&model),
                stats,
                "the queried forward pass kept its statistics"
            );
            assert_ne!(
                model.state_dict()[0].1.to_vec::<f64>().unwrap(),
                seen[0],
                "left at the queried point"
            );
        }
    }
    assert!(queried_steps >= 1, "SAM never asked for another point");
}

/// The benchmark's `Mlp` is a module like any other: the module optimizer
/// trains it by name, leaves its frozen layers alone and moves its running
/// statistics. The task's own trainer takes the same step through
/// `Mlp::functional_forward`: both end at the same tensors, bit for bit.
#[test]
fn the_module_optimizer_trains_the_task_mlp_as_the_tasks_trainer_steps_it() {
    use crate::nn::{sse, Mlp, Role};
    let mut model = Mlp::task(3, 1, 2, DType::F64, &mut Rng::new(8)).unwrap();
    let x = Var::constant(tensor(&table(16, 3, 0.2), &[16, 3]));
    let y = Var::constant(tensor(&table(16, 1, 0.9), &[16, 1]));
    let mut opt = ModuleOptimizer::new("adam", &[("lr", 1e-2)], &model, 0).unwrap();
    let mut by_hand = model.clone();
    let info = crate::optim::catalog::lookup("adam").unwrap();
    let mut settings = crate::optim::HyperParams::defaults(info);
    settings.set("lr", 1e-2).unwrap();
    let mut hand_opt = (info.build)(&settings).unwrap();
    hand_opt.init_state(0, &by_hand.layout()).unwrap();
    let frozen_before = model.tensor(Role::Weight(2)).to_vec::<f64>().unwrap();
    let first = sse(&Module::forward(&mut model.clone(), &x).unwrap(), &y)
        .unwrap()
        .value()
        .to_scalar()
        .unwrap();
    for _ in 0..20 {
        let ctx = opt.context().clone();
        let loss = sse(&Module::forward(&mut model, &x).unwrap(), &y).unwrap();
        opt.backward_step(&mut model, &loss).unwrap();

        let vars = by_hand.vars();
        let (prediction, stats) = by_hand.functional_forward(&x, &vars, true).unwrap();
        let grads = sse(&prediction, &y).unwrap().backward().unwrap();
        let grads: Vec<Tensor> = vars.iter().map(|v| grads.get_or_zeros(v).unwrap()).collect();
        let updates = hand_opt.step(&by_hand.tensors(), &grads, &ctx).unwrap();
        let (indices, trained) = by_hand.trainable_tensors_mut();
        for (i, t) in indices.into_iter().zip(trained) {
            t.add_assign(&updates[i]).unwrap();
        }
        by_hand.set_running_stats(stats).unwrap();
    }
    let last = sse(&Module::forward(&mut model.clone(), &x).unwrap(), &y)
        .unwrap()
        .value()
        .to_scalar()
        .unwrap();
    assert!(last < 0.5 * first, "{first} -> {last}");
    assert_eq!(model.tensor(Role::Weight(2)).to_vec::<f64>().unwrap(), frozen_before);
    assert_ne!(
        model.tensor(Role::RunningMean(0)).to_vec::<f64>().unwrap(),
        vec![0.0; 256]
    );
    for (a, b) in model.tensors().iter().zip(by_hand.tensors()) {
        assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    }
}
