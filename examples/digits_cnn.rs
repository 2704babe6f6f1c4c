//! Handwritten digits with a small convolutional network: the 8x8 images
//! of `examples/digits.rs` go through a 3x3 convolution (32 channels, padded
//! to keep 8x8), ReLU, 2x2 max pooling and one Linear layer to the ten
//! classes, trained with softmax cross-entropy and AdamW. It prints the test
//! accuracy and the training time.
//!
//! ```text
//! cargo run --release --example digits_cnn             # 20 epochs
//! cargo run --release --example digits_cnn -- --quick  # 10 epochs
//! cargo run --release --example digits_cnn -- --bench  # one JSON line (bench/compare-general.sh)
//! cargo run --release --example digits_cnn -- --epochs 5
//! ```
//!
//! The data and its split are those of `examples/digits.rs` (see
//! `examples/data/README.md`). The network is PyTorch's
//! `Sequential(Unflatten(1, (1, 8, 8)), Conv2d(1, 32, 3, padding=1), ReLU(),
//! MaxPool2d(2), Flatten(), Linear(512, 10))`; `bench/torch_cnn.py` trains
//! that one for the timing comparison.

use ferrograd::autograd::Conv2dParams;
use ferrograd::autograd::Var;
use ferrograd::data::DataLoader;
use ferrograd::datasets::{load_csv, streams, train_val_split, Matrix};
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{Conv2d, Flatten, Linear, MaxPool2d, Module, ModuleOptimizer, Relu, Sequential};
use ferrograd::nn::cross_entropy;
use std::path::PathBuf;
use std::time::Instant;

const CLASSES: usize = 10;

/// The settings of one run.
struct Config {
    epochs: usize,
    channels: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
}

impl Config {
    fn full() -> Config {
        Config {
            epochs: 20,
            channels: 32,
            batch_size: 32,
            lr: 2e-3,
            seed: 0,
        }
    }

    fn quick() -> Config {
        Config {
            epochs: 10,
            ..Config::full()
        }
    }
}

/// What one run measured.
struct Outcome {
    accuracy: f64,
    train_seconds: f64,
}

/// `[batch, 64]` rows as `[batch, 1, 8, 8]` images (PyTorch's `nn.Unflatten`).
struct AsImages;

impl Module for AsImages {
    fn forward(&mut self, x: &Var) -> ferrograd::Result<Var> {
        Ok(x.reshape([x.dims()[0], 1, 8, 8])?)
    }
}

/// The images (pixels standardised) and their labels (as a tensor too, for
/// the data loader).
struct Images {
    pixels: Tensor,
    labels: Vec<usize>,
    targets: Tensor,
}

/// Per-pixel mean and standard deviation of the training images, for
/// standardising every image the same way (constant pixels keep scale 1).
struct Scaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaler {
    fn fit(pixels: &Matrix) -> Scaler {
        let n = pixels.rows() as f64;
        let mean: Vec<f64> = (0..pixels.cols())
            .map(|c| pixels.iter_rows().map(|r| r[c]).sum::<f64>() / n)
            .collect();
        let std = (0..pixels.cols())
            .map(|c| {
                let var = pixels.iter_rows().map(|r| (r[c] - mean[c]).powi(2)).sum::<f64>() / n;
                if var > 0.0 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { mean, std }
    }

    fn images(&self, pixels: &Matrix, labels: &Matrix) -> ferrograd::Result<Images> {
        let scaled: Vec<f64> = pixels
            .iter_rows()
            .flat_map(|r| r.iter().enumerate().map(|(c, p)| (p - self.mean[c]) / self.std[c]))
            .collect();
        let labels: Vec<usize> = labels.iter_rows().map(|r| r[0] as usize).collect();
        let targets: Vec<f64> = labels.iter().map(|&l| l as f64).collect();
        Ok(Images {
            pixels: Tensor::from_f64_slice(&scaled, [pixels.rows(), pixels.cols()], DType::F32)?,
            targets: Tensor::from_f64_slice(&targets, [labels.len()], DType::F32)?,
            labels,
        })
    }
}

/// Predicted classes (evaluation mode, without recording a tape).
fn predict(model: &mut Sequential, pixels: &Tensor) -> ferrograd::Result<Vec<usize>> {
    Ok(model.predict(pixels)?.argmax(-1)?)
}

/// `counts[true][predicted]`.
fn confusion(labels: &[usize], predicted: &[usize]) -> [[usize; CLASSES]; CLASSES] {
    let mut counts = [[0; CLASSES]; CLASSES];
    for (&t, &p) in labels.iter().zip(predicted) {
        counts[t][p] += 1;
    }
    counts
}

fn accuracy(counts: &[[usize; CLASSES]; CLASSES]) -> f64 {
    let right: usize = (0..CLASSES).map(|i| counts[i][i]).sum();
    let all: usize = counts.iter().flatten().sum();
    right as f64 / all as f64
}

/// The network: conv 3x3 (padding 1) -> ReLU -> max pool 2x2 -> Linear.
fn network(config: &Config) -> ferrograd::Result<Sequential> {
    let mut rng = Rng::derived(config.seed, streams::MODEL_INIT);
    let same = Conv2dParams {
        padding: (1, 1),
        ..Conv2dParams::default()
    };
    let c = config.channels;
    Ok(Sequential::new()
        .append(AsImages)
        .append(Conv2d::with_params(1, c, (3, 3), same, true, DType::F32, &mut rng)?)
        .append(Relu)
        .append(MaxPool2d::new((2, 2)))
        .append(Flatten)
        .append(Linear::new(c * 4 * 4, CLASSES, DType::F32, &mut rng)?))
}

fn run(config: &Config, verbose: bool) -> ferrograd::Result<Outcome> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv");
    let table = load_csv(&path, &["digit".into()])?;
    let split = train_val_split(table.inputs.rows(), 0.25, &mut Rng::derived(0, streams::VAL_SPLIT))?;
    let train_pixels = table.inputs.select_rows(&split.train);
    let scaler = Scaler::fit(&train_pixels);
    let train = scaler.images(&train_pixels, &table.targets.select_rows(&split.train))?;
    let test = scaler.images(
        &table.inputs.select_rows(&split.val),
        &table.targets.select_rows(&split.val),
    )?;

    let mut model = network(config)?;
    let mut opt = ModuleOptimizer::new("adamw", &[("lr", config.lr)], &model, config.seed)?;
    let mut loader =
        DataLoader::new(train.pixels.clone(), train.targets.clone(), config.batch_size)?.shuffle(config.seed);
    let started = Instant::now();
    for epoch in 0..config.epochs {
        let (mut total, mut seen) = (0.0, 0);
        for batch in loader.epoch()? {
            let logits = model.forward(&Var::constant(batch.features.clone()))?;
            let loss = cross_entropy(&logits, &batch.classes()?)?;
            opt.backward_step(&mut model, &loss)?;
            total += loss.value().to_scalar()? * batch.len() as f64;
            seen += batch.len();
        }
        opt.end_epoch(total / seen as f64, None);
        if verbose {
            println!("epoch {epoch:>3}  train loss {:.4}", total / seen as f64);
        }
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let accuracy = accuracy(&confusion(&test.labels, &predict(&mut model, &test.pixels)?));
    Ok(Outcome {
        accuracy,
        train_seconds,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let mut config = if has("--quick") {
        Config::quick()
    } else {
        Config::full()
    };
    if let Some(at) = args.iter().position(|a| a == "--epochs") {
        config.epochs = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--epochs takes a number")?;
    }
    let bench = has("--bench");
    let outcome = run(&config, !bench)?;
    if bench {
        println!(
            "{{\"framework\": \"ferrograd\", \"epochs\": {}, \"batch\": {}, \"train_seconds\": {:.4}, \"test_accuracy\": {:.4}}}",
            config.epochs, config.batch_size, outcome.train_seconds, outcome.accuracy
        );
    } else {
        println!(
            "test accuracy {:.2}% after {} epochs; training took {:.2} s",
            100.0 * outcome.accuracy,
            config.epochs,
            outcome.train_seconds
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reaches_97_percent_test_accuracy() {
        // The full 20 epochs (98.2% here; 10 epochs reach 97.3%, too close).
        let outcome = super::run(&super::Config::full(), false).unwrap();
        assert!(outcome.accuracy >= 0.97, "test accuracy {}", outcome.accuracy);
    }
}
