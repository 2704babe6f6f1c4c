//! Bad input to the trainer and the model is a typed error that says what
//! was wrong, never a panic, a NaN passed on, or a silent no-op.

use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::{Activation, Mlp, Role};
use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{SplitTensors, TaskConfig, TaskData, Trainer};

fn small_config() -> TaskConfig {
    let mut config = TaskConfig {
        n_hidden: 1,
        max_epochs: 1,
        batch_size: 16,
        dtype: DType::F64,
        ..TaskConfig::default()
    };
    config.data.n_train = 64;
    config.data.n_val = 16;
    config.data.n_test = 16;
    config
}

fn adam() -> Box<dyn ferrograd::optim::TaskOptimizer> {
    let info = catalog::lookup("clipped_adam").unwrap();
    (info.build)(&HyperParams::defaults(info)).unwrap()
}

fn trainer() -> Trainer {
    Trainer::new(small_config(), adam()).unwrap()
}

/// The error's text, which must exist and mention every one of `words`.
fn error_text<T, E: std::fmt::Display>(result: Result<T, E>, words: &[&str]) -> String {
    let Err(e) = result else {
        panic!("expected an error mentioning {words:?}");
    };
    let text = e.to_string();
    for word in words {
        assert!(text.contains(word), "{text:?} does not mention {word:?}");
    }
    text
}

#[test]
fn a_step_on_an_empty_or_one_row_batch_is_an_error_naming_batchnorm() {
    let mut t = trainer();
    error_text(t.step_on(&[]), &["0 row", "BatchNorm"]);
    error_text(t.step_on(&[3]), &["1 row", "BatchNorm"]);
    assert!(t.step_on(&[3, 4]).unwrap().is_finite());
}

#[test]
fn a_step_on_a_row_past_the_split_is_an_error_not_a_panic() {
    let mut t = trainer();
    error_text(t.step_on(&[0, 64]), &["row 64", "64 rows"]);
    error_text(t.step_on(&[usize::MAX, 1]), &["past the training split"]);
}

#[test]
fn a_split_that_leaves_a_one_row_last_batch_is_refused_before_training() {
    let mut config = small_config();
    config.data.n_train = 65; // 4 batches of 16, then one row
    error_text(
        Trainer::new(config.clone(), adam()),
        &["65 training rows", "one row", "batch size"],
    );
    config.data.n_train = 66; // a last batch of two rows trains
    let mut t = Trainer::new(config, adam()).unwrap();
    assert!(t.run_epoch().unwrap().train_loss.is_finite());
}

#[test]
fn splits_whose_columns_differ_are_refused() {
    let config = small_config();
    let mut data = TaskData::generate(&config).unwrap();
    let rows = data.val.len();
    data.val.inputs = Tensor::zeros([rows, 3], DType::F64).unwrap();
    error_text(
        Trainer::with_data(config.clone(), data, adam()),
        &["validation split", "columns"],
    );
    let mut data = TaskData::generate(&config).unwrap();
    data.test.targets = Tensor::zeros([data.test.len(), 5], DType::F64).unwrap();
    data.test.clean = data.test.targets.clone();
    error_text(Trainer::with_data(config, data, adam()), &["test split", "columns"]);
}

#[test]
fn splits_that_are_empty_ragged_or_not_tables_are_refused() {
    let config = small_config();
    let base = TaskData::generate(&config).unwrap();
    let empty = SplitTensors {
        inputs: Tensor::zeros([0, 1], DType::F64).unwrap(),
        targets: Tensor::zeros([0, 1], DType::F64).unwrap(),
        clean: Tensor::zeros([0, 1], DType::F64).unwrap(),
    };
    let mut data = base.clone();
    data.test = empty;
    error_text(
        Trainer::with_data(config.clone(), data, adam()),
        &["test split is empty"],
    );
    let mut data = base.clone();
    data.train.targets = data.train.targets.narrow(0, 0, 10).unwrap();
    error_text(
        Trainer::with_data(config.clone(), data, adam()),
        &["train split", "rows of targets"],
    );
    let mut data = base;
    data.train.inputs = Tensor::zeros([64], DType::F64).unwrap();
    error_text(Trainer::with_data(config, data, adam()), &["[rows, columns]"]);
}

fn mlp() -> Mlp {
    Mlp::new(&[1, 8, 8, 1], Activation::Relu, 1, DType::F64, &mut Rng::new(7)).unwrap()
}

#[test]
fn freezing_more_layers_than_the_model_has_is_refused_and_freezing_all_trains_nothing() {
    let too_many = Mlp::new(&[1, 8, 8, 1], Activation::Relu, 10, DType::F64, &mut Rng::new(7));
    error_text(too_many, &["cannot freeze 10 of 3"]);
    let mut model = Mlp::new(&[1, 8, 8, 1], Activation::Relu, 3, DType::F64, &mut Rng::new(7)).unwrap();
    assert_eq!(model.frozen(), 3);
    assert_eq!(model.trainable_count(), 0);
    assert!(!model.is_trainable(Role::Weight(0)));
    let (indices, tensors) = model.trainable_tensors_mut();
    assert!(indices.is_empty() && tensors.is_empty());
}

#[test]
fn a_forward_with_the_wrong_number_of_vars_is_an_error() {
    let model = mlp();
    let x = ferrograd::autograd::Var::constant(Tensor::zeros([4, 1], DType::F64).unwrap());
    let mut vars = model.vars();
    vars.pop();
    error_text(
        model.functional_forward(&x, &vars, true),
        &["vars", &model.tensor_count().to_string()],
    );
    error_text(model.functional_forward(&x, &[], false), &["got 0 vars"]);
}

#[test]
fn running_statistics_of_the_wrong_count_or_shape_are_refused_and_nothing_changes() {
    let mut model = mlp();
    let before = model.tensors();
    let one = Tensor::ones([8], DType::F64).unwrap();
    error_text(
        model.set_running_stats(vec![one.clone()]),
        &["got 1 tensors", "2 BatchNorms"],
    );
    let wrong = Tensor::ones([3], DType::F64).unwrap();
    let stats = vec![one.clone(), one.clone(), one.clone(), wrong];
    assert!(model.set_running_stats(stats).is_err());
    let after = model.tensors();
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_vec::<f64>().unwrap() == b.to_vec::<f64>().unwrap()));
    model.set_running_stats(vec![one.clone(); 4]).unwrap();
    assert_eq!(model.tensor(Role::RunningVar(1)).to_vec::<f64>().unwrap(), vec![1.0; 8]);
}

#[test]
fn a_loss_of_mismatched_shapes_is_an_error_not_a_broadcast() {
    use ferrograd::autograd::Var;
    let prediction = Var::constant(Tensor::zeros([4, 1], DType::F64).unwrap());
    let target = Var::constant(Tensor::ones([4], DType::F64).unwrap());
    error_text(ferrograd::nn::mse(&prediction, &target), &["mse", "same shape"]);
    error_text(ferrograd::nn::sse(&prediction, &target), &["sse", "[4, 1]"]);
    let target = Var::constant(Tensor::ones([4, 1], DType::F64).unwrap());
    let loss = ferrograd::nn::mse(&prediction, &target).unwrap();
    assert_eq!(loss.value().to_scalar().unwrap(), 1.0);
}
