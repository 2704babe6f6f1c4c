//! Tests of the layers of issue 21: LayerNorm, Dropout, Embedding,
//! BatchNorm2d, BatchNorm options and Linear without a bias. Expected
//! values come from plain loops over `Vec<f64>`, never from the code under
//! test.

use super::*;
use crate::engine::{DType, Rng};

/// Numbers that vary with the position and `salt`.
fn values(n: usize, salt: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 1.0) * 0.731 + salt).sin() * 2.0).collect()
}

fn constant(values: &[f64], dims: &[usize]) -> Var {
    Var::constant(Tensor::from_vec(values.to_vec(), dims.to_vec()).unwrap())
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-10, "{what}[{i}]: {g} vs {w}");
    }
}

/// `(v - mean) / sqrt(biased var + eps)` of one group.
fn normalise_group(v: &[f64], eps: f64) -> Vec<f64> {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    v.iter().map(|x| (x - mean) / (var + eps).sqrt()).collect()
}

fn input_shape_error(err: crate::Error) -> (String, String, Vec<usize>) {
    match err {
        crate::Error::Module(ModuleError::InputShape {
            layer,
            expected,
            actual,
        }) => (layer, expected, actual.dims().to_vec()),
        other => panic!("expected an input-shape error, got {other:?}"),
    }
}

#[test]
fn layer_norm_normalises_each_trailing_group_then_scales_and_shifts() {
    let (n, groups, width) = (2, 3, 4);
    let x = values(n * groups * width, 0.2);
    let mut layer = LayerNorm::new(&[groups, width], DType::F64).unwrap();
    let (weight, bias) = (values(groups * width, 1.0), values(groups * width, 2.0));
    layer
        .load_state_dict(&[
            (
                "weight".into(),
                Tensor::from_vec(weight.clone(), [groups, width]).unwrap(),
            ),
            ("bias".into(), Tensor::from_vec(bias.clone(), [groups, width]).unwrap()),
        ])
        .unwrap();
    let y = layer.forward(&constant(&x, &[n, groups, width])).unwrap();
    assert_eq!(y.dims(), [n, groups, width]);
    let want: Vec<f64> = x
        .chunks(groups * width)
        .flat_map(|sample| normalise_group(sample, 1e-5))
        .enumerate()
        .map(|(i, v)| v * weight[i % (groups * width)] + bias[i % (groups * width)])
        .collect();
    assert_close(&y.value().to_vec::<f64>().unwrap(), &want, "layer norm");

    let mut plain = LayerNorm::with_options(&[width], 0.1, false, DType::F64).unwrap();
    assert!(plain.state_dict().is_empty());
    let y = plain.forward(&constant(&x, &[n * groups, width])).unwrap();
    let want: Vec<f64> = x.chunks(width).flat_map(|g| normalise_group(g, 0.1)).collect();
    assert_close(&y.value().to_vec::<f64>().unwrap(), &want, "layer norm without affine");
}

#[test]
fn layer_norm_refuses_a_wrong_trailing_shape_and_bad_options() {
    let mut layer = LayerNorm::new(&[4], DType::F64).unwrap();
    let (layer_name, expected, actual) = input_shape_error(layer.forward(&constant(&[0.0; 6], &[2, 3])).unwrap_err());
    assert_eq!(
        (layer_name.as_str(), expected.as_str(), actual),
        ("LayerNorm([4])", "[..., 4]", vec![2, 3])
    );
    assert!(LayerNorm::new(&[], DType::F64).is_err());
    let err = LayerNorm::with_options(&[4], -1.0, true, DType::F64).unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::Module(ModuleError::InvalidOption { option: "eps", .. })
        ),
        "{err}"
    );
}

/// Per-channel statistics of `[n, c, h, w]` values, by loops: the values
/// of channel `j`.
fn channel(x: &[f64], dims: [usize; 4], j: usize) -> Vec<f64> {
    let [n, c, h, w] = dims;
    (0..n)
        .flat_map(|b| (0..h * w).map(move |p| x[(b * c + j) * h * w + p]))
        .collect()
}

#[test]
fn batchnorm2d_uses_each_channels_batch_and_spatial_statistics() {
    let dims = [3, 2, 2, 3];
    let [_, c, h, w] = dims;
    let x = values(dims.iter().product(), 0.4);
    let mut bn = BatchNorm2d::new(c, DType::F64).unwrap();
    let y = bn
        .forward(&constant(&x, &dims))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let (mean_buffer, var_buffer) = bn.running_stats().unwrap();
    let (running_mean, running_var) = (
        mean_buffer.value().to_vec::<f64>().unwrap(),
        var_buffer.value().to_vec::<f64>().unwrap(),
    );
    for j in 0..c {
        let values = channel(&x, dims, j);
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let unbiased = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
        assert!((running_mean[j] - 0.1 * mean).abs() < 1e-12);
        assert!((running_var[j] - (0.9 + 0.1 * unbiased)).abs() < 1e-12);
        assert_close(&channel(&y, dims, j), &normalise_group(&values, 1e-5), "train");
    }
    bn.eval();
    let y = bn
        .forward(&constant(&x, &dims))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    for (i, v) in x.iter().enumerate() {
        let j = (i / (h * w)) % c;
        let want = (v - running_mean[j]) / (running_var[j] + 1e-5).sqrt();
        assert!((y[i] - want).abs() < 1e-12, "eval [{i}]");
    }
    let names: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias", "running_mean", "running_var"]);
}

#[test]
fn batchnorm2d_refuses_wrong_ranks_channels_and_single_values() {
    let mut bn = BatchNorm2d::new(3, DType::F64).unwrap();
    for dims in [vec![2, 3], vec![2, 4, 2, 2], vec![2, 3, 2, 2, 1]] {
        let x = Var::constant(Tensor::zeros(dims.clone(), DType::F64).unwrap());
        let (layer, expected, actual) = input_shape_error(bn.forward(&x).unwrap_err());
        assert_eq!(
            (layer.as_str(), expected.as_str()),
            ("BatchNorm2d(3)", "[batch, 3, height, width]")
        );
        assert_eq!(actual, dims);
    }
    let one = Var::constant(Tensor::zeros([1, 3, 1, 1], DType::F64).unwrap());
    let (_, expected, _) = input_shape_error(bn.forward(&one).unwrap_err());
    assert!(expected.contains(">= 2 in training mode"), "{expected}");
    bn.eval();
    assert!(bn.forward(&one).is_ok(), "evaluation mode takes a single value");
}

#[test]
fn batchnorm_options_drop_tensors_and_change_the_running_blend() {
    let options = BatchNormOptions {
        eps: 0.5,
        momentum: 0.3,
        affine: false,
        track_running_stats: true,
    };
    let (n, f) = (4, 2);
    let x = values(n * f, 0.9);
    let mut bn = BatchNorm1d::with_options(f, options, DType::F64).unwrap();
    let names: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["running_mean", "running_var"]);
    let y = bn
        .forward(&constant(&x, &[n, f]))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let running = bn.running_stats().unwrap().0.value().to_vec::<f64>().unwrap();
    for (j, running_mean) in running.iter().enumerate() {
        let col: Vec<f64> = x.iter().skip(j).step_by(f).copied().collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        assert!((running_mean - 0.3 * mean).abs() < 1e-12);
        let got: Vec<f64> = y.iter().skip(j).step_by(f).copied().collect();
        assert_close(&got, &normalise_group(&col, 0.5), "eps 0.5");
    }

    let untracked = BatchNormOptions {
        track_running_stats: false,
        ..BatchNormOptions::default()
    };
    let mut bn = BatchNorm1d::with_options(f, untracked, DType::F64).unwrap();
    assert!(bn.running_stats().is_none());
    bn.eval();
    let y = bn
        .forward(&constant(&x, &[n, f]))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let col: Vec<f64> = x.iter().step_by(f).copied().collect();
    let got: Vec<f64> = y.iter().step_by(f).copied().collect();
    assert_close(&got, &normalise_group(&col, 1e-5), "untracked eval uses the batch");

    for (eps, momentum) in [(-1.0, 0.1), (f64::NAN, 0.1), (1e-5, 1.5), (1e-5, f64::NAN)] {
        let bad = BatchNormOptions {
            eps,
            momentum,
            ..BatchNormOptions::default()
        };
        let err = BatchNorm2d::with_options(3, bad, DType::F64).unwrap_err();
        assert!(
            matches!(err, crate::Error::Module(ModuleError::InvalidOption { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("BatchNorm2d(3)"), "{err}");
    }
}

#[test]
fn batchnorm1d_takes_a_sequence_input_per_channel() {
    let dims = [2, 3, 4];
    let x = values(24, 0.1);
    let mut bn = BatchNorm1d::new(3, DType::F64).unwrap();
    let y = bn
        .forward(&constant(&x, &dims))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let as_image = [2, 3, 1, 4];
    for j in 0..3 {
        assert_close(
            &channel(&y, as_image, j),
            &normalise_group(&channel(&x, as_image, j), 1e-5),
            "sequence",
        );
    }
}

#[test]
fn linear_without_bias_is_x_times_w_transposed() {
    let mut layer = Linear::with_bias(3, 2, false, DType::F64, &mut Rng::new(4)).unwrap();
    let with = Linear::new(3, 2, DType::F64, &mut Rng::new(4)).unwrap();
    assert_eq!(
        layer.weight().value().to_vec::<f64>().unwrap(),
        with.weight().value().to_vec::<f64>().unwrap()
    );
    assert!(layer.bias().is_none());
    let names: Vec<String> = layer.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight"]);
    let w = layer.weight().value().to_vec::<f64>().unwrap();
    let x = values(6, 0.0);
    let y = layer
        .forward(&constant(&x, &[2, 3]))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let want: Vec<f64> = x
        .chunks(3)
        .flat_map(|row| {
            (0..2)
                .map(|o| (0..3).map(|i| w[o * 3 + i] * row[i]).sum::<f64>())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_close(&y, &want, "no bias");
    assert_eq!(layer.to_string(), "Linear(3 -> 2, no bias)");
}

#[test]
fn dropout_zeroes_about_p_of_the_elements_and_scales_the_rest() {
    let (n, p) = (20_000, 0.3);
    let x = values(n, 0.5);
    let mut layer = Dropout::new(p, Rng::new(11)).unwrap();
    let y = layer
        .forward(&constant(&x, &[n]))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let mut dropped = 0;
    for (a, b) in x.iter().zip(&y) {
        if *b == 0.0 {
            dropped += 1;
        } else {
            assert!((b - a / (1.0 - p)).abs() < 1e-12, "{b} vs {a} / 0.7");
        }
    }
    // Binomial(20000, 0.3): standard deviation about 65.
    assert!((dropped as f64 - p * n as f64).abs() < 5.0 * 65.0, "dropped {dropped}");
    let again = Dropout::new(p, Rng::new(11))
        .unwrap()
        .forward(&constant(&x, &[n]))
        .unwrap();
    assert_eq!(again.value().to_vec::<f64>().unwrap(), y, "same seed, same mask");
    let next = layer
        .forward(&constant(&x, &[n]))
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    assert_ne!(next, y, "each pass draws a new mask");
    layer.eval();
    assert_eq!(
        layer
            .forward(&constant(&x, &[n]))
            .unwrap()
            .value()
            .to_vec::<f64>()
            .unwrap(),
        x
    );
    for bad in [-0.1, 1.1, f64::NAN] {
        let err = Dropout::new(bad, Rng::new(0)).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::Module(ModuleError::InvalidOption { option: "p", .. })
            ),
            "{err}"
        );
    }
}

#[test]
fn embedding_picks_rows_and_sums_the_gradients_of_repeated_rows() {
    let (rows, dim) = (5, 3);
    let mut layer = Embedding::new(rows, dim, DType::F64, &mut Rng::new(3)).unwrap();
    let table = layer.weight().value().to_vec::<f64>().unwrap();
    let indices = [4.0, 1.0, 1.0, 0.0, 4.0, 4.0];
    let y = layer.forward(&constant(&indices, &[2, 3])).unwrap();
    assert_eq!(y.dims(), [2, 3, dim]);
    let want: Vec<f64> = indices
        .iter()
        .flat_map(|&i| table[i as usize * dim..(i as usize + 1) * dim].to_vec())
        .collect();
    assert_close(&y.value().to_vec::<f64>().unwrap(), &want, "lookup");

    let weights = values(indices.len() * dim, 0.7);
    let loss = y.mul(&constant(&weights, &[2, 3, dim])).unwrap().sum_all();
    let grads = loss.unwrap().backward().unwrap();
    let grad = grads.get(layer.weight().var()).unwrap().to_vec::<f64>().unwrap();
    let mut want = vec![0.0; rows * dim];
    for (k, &i) in indices.iter().enumerate() {
        for d in 0..dim {
            want[i as usize * dim + d] += weights[k * dim + d];
        }
    }
    assert_close(&grad, &want, "gradient");
}

#[test]
fn embedding_refuses_indices_that_name_no_row() {
    let mut layer = Embedding::new(4, 2, DType::F64, &mut Rng::new(0)).unwrap();
    for bad in [4.0, -1.0, 1.5, f64::NAN, f64::INFINITY] {
        let err = layer.forward(&constant(&[0.0, bad], &[2])).unwrap_err();
        match &err {
            crate::Error::Module(ModuleError::InputIndex { layer, rows, .. }) => {
                assert_eq!((layer.as_str(), *rows), ("Embedding(4, 2)", 4));
            }
            other => panic!("index {bad}: expected an index error, got {other:?}"),
        }
    }
    assert!(layer.lookup(&[7], &[1]).is_err());
    let names: Vec<(String, Vec<usize>)> = layer
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect();
    assert_eq!(names, [("weight".to_string(), vec![4, 2])]);
}
