//! A model trained in PyTorch, used here: PyTorch's saved `state_dict`
//! loads into the equivalent ferrograd `Sequential` by name, and the two
//! predict the same outputs.
//!
//! The PyTorch side is the fixture `tests/fixtures/pytorch/sequential.*`,
//! written once by `make_sequential.py` there:
//!
//! ```python
//! model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
//! # ... three training-mode batches, then model.eval()
//! save_file(model.state_dict(), "sequential.safetensors")  # plus the outputs, as JSON
//! ```
//!
//! Run: `cargo run --example pytorch_interop`. PyTorch is not needed.

use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{BatchNorm1d, Linear, Module, Relu, Sequential};
use std::path::{Path, PathBuf};

/// The PyTorch model's outputs next to ferrograd's, row-major.
struct Comparison {
    ours: Vec<f64>,
    pytorch: Vec<f64>,
}

impl Comparison {
    /// The largest absolute difference between the two.
    fn max_difference(&self) -> f64 {
        self.ours
            .iter()
            .zip(&self.pytorch)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch")
}

/// `nn.Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Linear(8, 3))`,
/// layer for layer: the same structure gives the same state-dict names
/// (`0.weight`, `1.running_mean`, `3.bias`, ...). Its own initial weights
/// do not matter; loading replaces every tensor.
fn same_architecture() -> ferrograd::Result<Sequential> {
    let mut rng = Rng::new(0);
    Ok(Sequential::new()
        .append(Linear::new(4, 8, DType::F32, &mut rng)?)
        .append(BatchNorm1d::new(8, DType::F32)?)
        .append(Relu)
        .append(Linear::new(8, 3, DType::F32, &mut rng)?))
}

fn run() -> Result<Comparison, Box<dyn std::error::Error>> {
    let mut model = same_architecture()?;
    model.load(&fixtures().join("sequential.safetensors"))?;

    // The script's input and outputs, as it wrote them.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("sequential.json"))?)?;
    let numbers = |key: &str| -> Vec<f64> {
        expected[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_f64())
            .collect()
    };
    let input = Tensor::from_f64_slice(&numbers("input"), [5, 4], DType::F32)?;
    let ours = model.predict(&input)?.to_vec_f64()?; // eval mode: running statistics
    Ok(Comparison {
        ours,
        pytorch: numbers("output"),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let comparison = run()?;
    println!("   ferrograd     PyTorch");
    for (ours, theirs) in comparison.ours.iter().zip(&comparison.pytorch) {
        println!("{ours:>12.6} {theirs:>11.6}");
    }
    println!("largest difference: {:.2e}", comparison.max_difference());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pytorchs_weights_predict_pytorchs_outputs() {
        let comparison = super::run().unwrap();
        assert_eq!(comparison.ours.len(), 15);
        assert_eq!(comparison.pytorch.len(), 15);
        // float32 on both sides; another summation order in the products
        // moves the last digits only.
        assert!(comparison.max_difference() < 1e-5, "{}", comparison.max_difference());
    }
}
