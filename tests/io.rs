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
        let bits = |x: &Tensor| x.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
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
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
    let mut deeper = Mlp::task(1, 2, 4, DType::F32, &mut Rng::new(6)).unwrap();
    let err = load_model(&mut deeper, &path).unwrap_err().to_string();
    assert!(err.contains("n_hidden") || err.contains("n-hidden"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_bytes_are_errors_not_panics() {
    let good = to_safetensors_bytes(&[("w".into(), Tensor::ones([2, 2], DType::F32).unwrap())], None).unwrap();
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

/// Safetensors bytes written by hand: `entries` are (name, f32 values) laid
/// out in that order, with `metadata` in the header.
fn handwritten_safetensors(entries: &[(&str, &[f32])], metadata: Option<&str>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, values) in entries {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let info = serde_json::json!({"dtype": "F32", "shape": [values.len()], "data_offsets": [start, data.len()]});
        header.insert(name.to_string(), info);
    }
    if let Some(order) = metadata {
        let meta = serde_json::json!({ ferrograd::io::TENSOR_ORDER_KEY: order });
        header.insert("__metadata__".to_string(), meta);
    }
    let text = serde_json::to_vec(&header).unwrap();
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend(text);
    bytes.extend(data);
    bytes
}

fn names(tensors: &[(String, Tensor)]) -> Vec<&str> {
    tensors.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn tensors_load_in_the_order_they_were_saved() {
    // Not sorted by name, and mixed dtypes (writers lay data out by dtype).
    let tensors = vec![
        ("w2".to_string(), Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap()),
        ("b".to_string(), Tensor::scalar(3.0, DType::F64)),
        ("a".to_string(), Tensor::from_vec(vec![4.0f32, 5.0], [2]).unwrap()),
    ];
    let bytes = to_safetensors_bytes(&tensors, None).unwrap();
    let (back, metadata) = from_safetensors_bytes(&bytes, Path::new("t")).unwrap();
    assert_eq!(names(&back), ["w2", "b", "a"]);
    // Two tensors of one shape come back where they were, not swapped.
    assert_eq!(back[0].1.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(back[2].1.to_vec::<f32>().unwrap(), vec![4.0, 5.0]);
    assert!(
        metadata.is_empty(),
        "the order key is the reader's business: {metadata:?}"
    );
}

#[test]
fn a_file_from_another_writer_loads_in_data_order() {
    let bytes = handwritten_safetensors(&[("second", &[2.0]), ("first", &[1.0])], None);
    let (back, _) = from_safetensors_bytes(&bytes, Path::new("t")).unwrap();
    assert_eq!(names(&back), ["second", "first"]);
    assert_eq!(back[0].1.to_vec::<f32>().unwrap(), vec![2.0]);
}

#[test]
fn an_order_that_does_not_match_the_tensors_is_refused() {
    for order in [r#"["x","y","y"]"#, r#"["x"]"#, "not json"] {
        let bytes = handwritten_safetensors(&[("x", &[1.0]), ("y", &[2.0])], Some(order));
        let err = from_safetensors_bytes(&bytes, Path::new("t")).unwrap_err().to_string();
        assert!(err.contains(ferrograd::io::TENSOR_ORDER_KEY), "{order}: {err}");
    }
}
