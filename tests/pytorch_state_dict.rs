//! A state dict saved by PyTorch for an `nn.Sequential` loads into the
//! equivalent ferrograd `Sequential` and predicts PyTorch's outputs. The
//! fixtures were written once by `tests/fixtures/pytorch/make_sequential.py`
//! (Linear, BatchNorm1d) and `make_layers.py` (Embedding, LayerNorm,
//! BatchNorm2d); PyTorch is not needed to run this test.

use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{BatchNorm1d, BatchNorm2d, Embedding, Flatten, LayerNorm, Linear, Module, Relu, Sequential};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// PyTorch's `Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Linear(8, 3))`,
/// with other initial weights (the load must replace every one).
fn equivalent_model() -> Sequential {
    let mut rng = Rng::new(0);
    Sequential::new()
        .append(Linear::new(4, 8, DType::F32, &mut rng).unwrap())
        .append(BatchNorm1d::new(8, DType::F32).unwrap())
        .append(Relu)
        .append(Linear::new(8, 3, DType::F32, &mut rng).unwrap())
}

/// The script's input: `x[i][j] = sin(0.37 (i cols + j + 1))`.
fn fixed_input(rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols).map(|k| (0.37 * (k + 1) as f64).sin()).collect()
}

#[test]
fn a_pytorch_state_dict_loads_and_predicts_pytorchs_outputs() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("sequential.json")).unwrap()).unwrap();
    let numbers = |key: &str| -> Vec<f64> {
        expected[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let input = fixed_input(5, 4);
    for (ours, theirs) in input.iter().zip(numbers("input")) {
        assert!(
            approx::abs_diff_eq!(*ours, theirs, epsilon = 1e-6),
            "the input formula differs from the script's"
        );
    }

    let mut model = equivalent_model();
    model.load(&fixture("sequential.safetensors")).unwrap();
    let x = Tensor::from_f64_slice(&input, [5, 4], DType::F32).unwrap();
    let y = model.predict(&x).unwrap();
    assert_eq!(y.dims(), [5, 3]);
    let want = numbers("output");
    // float32 on both sides: the outputs (below 0.5) agreed within 1e-6 when
    // this test was written; 1e-5 leaves room for another summation order
    // in the matrix product.
    for (i, (got, want)) in y.to_vec::<f32>().unwrap().iter().zip(&want).enumerate() {
        assert!(
            approx::abs_diff_eq!(f64::from(*got), want, epsilon = 1e-5),
            "output {i}: ferrograd {got}, PyTorch {want}"
        );
    }
}

/// The file is PyTorch's whole state dict: ferrograd's names, plus the
/// int64 `num_batches_tracked` that `Module::load` skips.
#[test]
fn the_pytorch_state_dict_has_ferrograds_names_and_a_batch_counter() {
    let bytes = std::fs::read(fixture("sequential.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut theirs: Vec<String> = file.names().into_iter().cloned().collect();
    theirs.sort();
    let mut ours: Vec<String> = equivalent_model()
        .state_dict()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    ours.push("1.num_batches_tracked".into());
    ours.sort();
    assert_eq!(theirs, ours);
    let counter = file.tensor("1.num_batches_tracked").unwrap();
    assert_eq!(counter.dtype(), safetensors::Dtype::I64);
    assert_eq!(
        i64::from_le_bytes(counter.data().try_into().unwrap()),
        3,
        "three training batches"
    );
}

/// The numbers under `key` in a fixture's JSON.
fn fixture_numbers(json: &serde_json::Value, key: &str) -> Vec<f64> {
    json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// PyTorch's `Sequential(Embedding(10, 4), LayerNorm([4]), BatchNorm2d(2),
/// Flatten(), Linear(24, 3))`, with other initial weights.
fn layers_model() -> Sequential {
    let mut rng = Rng::new(1);
    Sequential::new()
        .append(Embedding::new(10, 4, DType::F32, &mut rng).unwrap())
        .append(LayerNorm::new(&[4], DType::F32).unwrap())
        .append(BatchNorm2d::new(2, DType::F32).unwrap())
        .append(Flatten)
        .append(Linear::new(24, 3, DType::F32, &mut rng).unwrap())
}

/// Embedding, LayerNorm and BatchNorm2d saved by PyTorch (the
/// `make_layers.py` fixture) predict PyTorch's outputs here.
#[test]
fn a_pytorch_state_dict_with_embedding_layer_norm_and_batchnorm2d_predicts_pytorchs_outputs() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("layers.json")).unwrap()).unwrap();
    let indices: Vec<f64> = (0..30).map(|k| ((7 * k + 3) % 10) as f64).collect();
    assert_eq!(
        indices,
        fixture_numbers(&expected, "input"),
        "the index formula differs from the script's"
    );

    let mut model = layers_model();
    model.load(&fixture("layers.safetensors")).unwrap();
    let x = Tensor::from_f64_slice(&indices, [5, 2, 3], DType::F32).unwrap();
    let y = model.predict(&x).unwrap();
    assert_eq!(y.dims(), [5, 3]);
    // float32 on both sides, outputs of order 1: as the first fixture.
    for (i, (got, want)) in y
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .zip(fixture_numbers(&expected, "output"))
        .enumerate()
    {
        assert!(
            approx::abs_diff_eq!(f64::from(*got), want, epsilon = 1e-5),
            "output {i}: ferrograd {got}, PyTorch {want}"
        );
    }
    let mut names: Vec<String> = model.state_dict().into_iter().map(|(name, _)| name).collect();
    names.push("2.num_batches_tracked".into());
    names.sort();
    let bytes = std::fs::read(fixture("layers.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut theirs: Vec<String> = file.names().into_iter().cloned().collect();
    theirs.sort();
    assert_eq!(theirs, names);
}

/// Asserts `got` (float32) matches PyTorch's `want` within float32 room.
fn assert_matches_pytorch(what: &str, got: &Tensor, want: &[f64]) {
    let got = got.to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (got, want)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::abs_diff_eq!(f64::from(*got), want, epsilon = 1e-5),
            "{what} {i}: ferrograd {got}, PyTorch {want}"
        );
    }
}

/// The benchmark's model is a composition of modules: as a `Module` it has
/// the state dict of PyTorch's `Sequential(Linear, ReLU, BatchNorm1d, ...,
/// Linear)`, loads the `make_mlp.py` fixture by name, and predicts
/// PyTorch's outputs in both modes, its running statistics moving as
/// PyTorch's do.
#[test]
fn the_task_mlp_loads_a_pytorch_sequential_and_computes_its_outputs_in_both_modes() {
    use ferrograd::autograd::{no_grad, Var};
    use ferrograd::nn::{Activation, Mlp};
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("mlp.json")).unwrap()).unwrap();
    let input = fixed_input(5, 4);
    let x = Tensor::from_f64_slice(&input, [5, 4], DType::F32).unwrap();

    let mut model = Mlp::new(&[4, 8, 6, 2], Activation::Relu, 0, DType::F32, &mut Rng::new(3)).unwrap();
    let mut names: Vec<String> = model.state_dict().into_iter().map(|(name, _)| name).collect();
    names.extend(["2.num_batches_tracked".into(), "5.num_batches_tracked".into()]);
    names.sort();
    let bytes = std::fs::read(fixture("mlp.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut theirs: Vec<String> = file.names().into_iter().cloned().collect();
    theirs.sort();
    assert_eq!(theirs, names);

    model.load(&fixture("mlp.safetensors")).unwrap();
    let eval = Mlp::predict(&model, &x).unwrap();
    assert_matches_pytorch("eval output", &eval, &fixture_numbers(&expected, "eval_output"));

    model.train();
    let train = no_grad(|| Module::forward(&mut model, &Var::constant(x.clone()))).unwrap();
    assert_matches_pytorch(
        "train output",
        train.value(),
        &fixture_numbers(&expected, "train_output"),
    );
    let after = &expected["running_after_train_pass"];
    for (name, tensor) in model.state_dict() {
        if name.contains("running") {
            assert_matches_pytorch(&name, &tensor, &fixture_numbers(after, &name));
        }
    }
}
