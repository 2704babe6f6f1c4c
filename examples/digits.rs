//! Handwritten digits: a 64-128-10 MLP classifies 8x8 images of digits with
//! softmax cross-entropy and AdamW, then prints its test accuracy and
//! confusion matrix. The model is a `module::Sequential`, trained by a
//! `module::ModuleOptimizer` on a `data::DataLoader`'s shuffled batches:
//! the model and its loop take 20 lines of `run`.
//!
//! ```text
//! cargo run --release --example digits            # 30 epochs
//! cargo run --release --example digits -- --quick # 15 epochs
//! ```
//!
//! The data is `examples/data/digits.csv`: the 1,797 images of the UCI
//! "Optical Recognition of Handwritten Digits" test set (Alpaydin and Kaynak,
//! 1998; CC BY 4.0) as scikit-learn ships them, 64 pixel columns with values
//! 0..16 and a `digit` column (see `examples/data/README.md`). A fixed random
//! quarter of the images is held out as the test set; pixels are standardised
//! with the training images' per-pixel mean and standard deviation.

use ferrograd::autograd::Var;
use ferrograd::data::DataLoader;
use ferrograd::datasets::{load_csv, streams, train_val_split, Matrix};
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{Linear, Module, ModuleOptimizer, Relu, Sequential};
use ferrograd::nn::cross_entropy;
use std::path::PathBuf;

const CLASSES: usize = 10;

/// The settings of one run.
struct Config {
    epochs: usize,
    hidden: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
}

impl Config {
    fn full() -> Config {
        Config {
            epochs: 30,
            hidden: 128,
            batch_size: 64,
            lr: 2e-3,
            seed: 0,
        }
    }

    fn quick() -> Config {
        Config {
            epochs: 15,
            ..Config::full()
        }
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

fn print_confusion(counts: &[[usize; CLASSES]; CLASSES]) {
    println!("confusion matrix (rows: true digit, columns: predicted)");
    println!("     {}", (0..CLASSES).map(|c| format!("{c:>4}")).collect::<String>());
    for (t, row) in counts.iter().enumerate() {
        let cells: String = row
            .iter()
            .map(|&n| if n == 0 { "   .".to_string() } else { format!("{n:>4}") })
            .collect();
        println!("{t:>4} {cells}");
    }
}

fn run(config: &Config) -> ferrograd::Result<f64> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv");
    let table = load_csv(&path, &["digit".into()])?;
    let n = table.inputs.rows();
    // A fixed split: the same quarter of the images is the test set every run.
    let split = train_val_split(n, 0.25, &mut Rng::derived(0, streams::VAL_SPLIT))?;
    let train_pixels = table.inputs.select_rows(&split.train);
    let scaler = Scaler::fit(&train_pixels); // statistics of the training images only
    let train = scaler.images(&train_pixels, &table.targets.select_rows(&split.train))?;
    let test = scaler.images(
        &table.inputs.select_rows(&split.val),
        &table.targets.select_rows(&split.val),
    )?;
    println!(
        "{n} images of {} pixels: {} to train, {} to test",
        table.inputs.cols(),
        train.labels.len(),
        test.labels.len()
    );

    // The model and its training loop: a 64-h-10 MLP, AdamW, shuffled mini-batches.
    let mut rng = Rng::derived(config.seed, streams::MODEL_INIT);
    let mut model = Sequential::new()
        .append(Linear::new(64, config.hidden, DType::F32, &mut rng)?)
        .append(Relu)
        .append(Linear::new(config.hidden, CLASSES, DType::F32, &mut rng)?);
    let mut opt = ModuleOptimizer::new("adamw", &[("lr", config.lr)], &model, config.seed)?;
    let mut loader =
        DataLoader::new(train.pixels.clone(), train.targets.clone(), config.batch_size)?.shuffle(config.seed);
    println!("epoch  train loss  test accuracy");
    for epoch in 0..config.epochs {
        let (mut total, mut seen) = (0.0, 0);
        for batch in loader.epoch()? {
            let loss = cross_entropy(
                &model.forward(&Var::constant(batch.features.clone()))?,
                &batch.classes()?,
            )?;
            opt.backward_step(&mut model, &loss)?;
            total += loss.value().to_scalar()? * batch.len() as f64;
            seen += batch.len();
        }
        opt.end_epoch(total / seen as f64, None);
        if epoch % 5 == 4 || epoch == 0 || epoch + 1 == config.epochs {
            let acc = accuracy(&confusion(&test.labels, &predict(&mut model, &test.pixels)?));
            println!("{epoch:>5}  {:>10.4}  {:>12.2}%", total / seen as f64, 100.0 * acc);
        }
    }

    let counts = confusion(&test.labels, &predict(&mut model, &test.pixels)?);
    print_confusion(&counts);
    let acc = accuracy(&counts);
    println!(
        "test accuracy {:.2}% ({} of {})",
        100.0 * acc,
        (0..CLASSES).map(|i| counts[i][i]).sum::<usize>(),
        test.labels.len()
    );
    Ok(acc)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    run(&if quick { Config::quick() } else { Config::full() })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reaches_96_percent_test_accuracy() {
        let started = std::time::Instant::now();
        let acc = super::run(&super::Config::quick()).unwrap();
        assert!(acc >= 0.96, "test accuracy {acc}");
        assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
    }
}
