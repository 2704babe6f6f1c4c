//! Saved models: safetensors round trips and malformed files.

use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::io::{from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes};
use ferrograd::nn::Mlp;
use ferrograd::train::{load_model, save_model};
use std::path::Path;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-io-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn named_tensors_round_trip_bit_exactly() {
    let mut rng = Rng::new(2);
    let tensors = vec![
        (
            "a".to_string(),
            Tensor::rand_normal([3, 4], 0.0, 1.0, DType::F32, &mut rng).unwrap(),
        ),
        (
            "b.c".to_string(),
            Tensor::rand_normal([5], 0.0, 1.0, DType::F64, &mut rng).unwrap(),
        ),
        ("scalar".to_string(), Tensor::scalar(-0.0, DType::F64)),
    ];
    let dir = temp_dir("roundtrip");
    let path = dir.join("t.safetensors");
    save_safetensors(&path, &tensors, None).unwrap();
    let (back, _) = load_safetensors(&path).unwrap();
    assert_eq!(back.len(), 3);
    for (name, t) in &tensors {
        let (_, b) = back.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(b.dims(), t.dims());
        assert_eq!(b.dtype(), t.dtype());
        let bits = |x: &Tensor| x.to_vec_f64().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(b), bits(t));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_model_round_trips_and_a_wrong_architecture_is_refused() {
    let model = Mlp::task(1, 2, 3, DType::F32, &mut Rng::new(5)).unwrap();
    let dir = temp_dir("model");
    let path = dir.join("model.safetensors");
    save_model(&model, &path).unwrap();
    let mut other = Mlp::task(1, 2, 3, DType::F32, &mut Rng::new(6)).unwrap();
    load_model(&mut other, &path).unwrap();
    for (a, b) in model.tensors().iter().zip(other.tensors()) {
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
    }
    let mut deeper = Mlp::task(1, 2, 4, DType::F32, &mut Rng::new(6)).unwrap();
    let err = load_model(&mut deeper, &path).unwrap_err().to_string();
    assert!(err.contains("n_hidden") || err.contains("n-hidden"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_bytes_are_errors_not_panics() {
    let good = to_safetensors_bytes(&[("w".into(), Tensor::ones([2, 2], DType::F32))], None).unwrap();
    let origin = Path::new("x.safetensors");
    assert!(from_safetensors_bytes(&good, origin).is_ok());
    for cut in [0, 1, 7, 8, 9, good.len() / 2, good.len() - 1] {
        assert!(
            from_safetensors_bytes(&good[..cut], origin).is_err(),
            "truncated at {cut}"
        );
    }
    let mut bad_header = good.clone();
    bad_header[8] = b'!';
    let err = from_safetensors_bytes(&bad_header, origin).unwrap_err().to_string();
    assert!(err.contains("x.safetensors"), "{err}");
    assert!(load_safetensors(Path::new("/nonexistent/m.safetensors"))
        .unwrap_err()
        .to_string()
        .contains("cannot read"));
}
