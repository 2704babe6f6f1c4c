//! The task's score (`docs/task.md` section 4).
//!
//! ```text
//! eps2    = (4 / N_test) * sum over all test elements of (y - f)^2
//! L       = mean over all test elements of (prediction - y)^2
//! quality = round(clamp((eps2 - L) / eps2, -10, 10) * 1_000_000)
//! ```

use crate::datasets::rff::Split;
use crate::engine::{Error, Result, Tensor};

/// The task's score of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The threshold from the realised noise.
    pub eps2: f64,
    /// Test MSE against the noisy targets.
    pub test_loss: f64,
    /// The quality, an integer (1,000,000 is a perfect fit of the noisy
    /// targets; a perfect predictor of `f` scores about 875,000).
    pub quality: i64,
}

/// Scores `prediction` against the noisy `targets` and noise-free `clean` values.
pub fn score(prediction: &Tensor, targets: &Tensor, clean: &Tensor) -> Result<Score> {
    if prediction.shape() != targets.shape() || targets.shape() != clean.shape() || targets.rank() != 2 {
        return Err(Error::ShapeMismatch {
            op: "score",
            lhs: prediction.shape().clone(),
            rhs: targets.shape().clone(),
            hint: "prediction, targets and clean values must all be [n_test, outputs]",
        });
    }
    Ok(score_values(
        &prediction.to_vec_f64()?,
        &targets.to_vec_f64()?,
        &clean.to_vec_f64()?,
        targets.dims()[0],
    ))
}

/// The score of flat, equally long value lists holding `n_test` samples.
fn score_values(prediction: &[f64], targets: &[f64], clean: &[f64], n_test: usize) -> Score {
    let noise = targets.iter().zip(clean).map(|(y, f)| (y - f) * (y - f)).sum::<f64>();
    let eps2 = 4.0 / n_test as f64 * noise;
    let test_loss = prediction
        .iter()
        .zip(targets)
        .map(|(p, y)| (p - y) * (p - y))
        .sum::<f64>()
        / prediction.len() as f64;
    Score {
        eps2,
        test_loss,
        quality: quality(eps2, test_loss),
    }
}

/// An instance's *zero-mean ceiling*: the score on `test` of `f(x) - mean(f)`,
/// the mean taken per output over the `train` split's inputs.
///
/// The task's model cannot represent a constant offset (its last BatchNorm
/// and output layer are frozen), so with BatchNorm statistics that match its
/// weights its output has zero mean over the training inputs
/// (`tests/task_offset.rs`), and this is the best it can score. A kept model
/// scores above it only through running statistics that lag its weights
/// (`docs/champion.md`, "What the score measures").
pub fn zero_mean_ceiling(train: &Split, test: &Split) -> Score {
    let train = &train.clean;
    let means: Vec<f64> = (0..train.cols())
        .map(|c| train.iter_rows().map(|row| row[c]).sum::<f64>() / train.rows() as f64)
        .collect();
    let prediction: Vec<f64> = test
        .clean
        .iter_rows()
        .flat_map(|row| row.iter().zip(&means).map(|(f, m)| f - m))
        .collect();
    score_values(&prediction, test.targets.data(), test.clean.data(), test.len())
}

/// `round(clamp((eps2 - loss) / eps2, -10, 10) * 1e6)`.
pub fn quality(eps2: f64, loss: f64) -> i64 {
    (((eps2 - loss) / eps2).clamp(-10.0, 10.0) * 1_000_000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::Matrix;

    #[test]
    fn hand_made_numbers() {
        // 2 test samples, 1 output: noise (y - f) = 0.1 and -0.3 → sum 0.1;
        // eps2 = 4/2 * 0.1 = 0.2. Predictions miss y by 0.2 and 0.4 → L = 0.1.
        let y = Tensor::from_vec(vec![1.0f64, 2.0], [2, 1]).unwrap();
        let f = Tensor::from_vec(vec![0.9f64, 2.3], [2, 1]).unwrap();
        let p = Tensor::from_vec(vec![1.2f64, 1.6], [2, 1]).unwrap();
        let s = score(&p, &y, &f).unwrap();
        assert!((s.eps2 - 0.2).abs() < 1e-12);
        assert!((s.test_loss - 0.1).abs() < 1e-12);
        assert_eq!(s.quality, 500_000);
        assert_eq!(quality(0.2, 5.0), -10_000_000);
        assert_eq!(quality(0.32, 0.04), 875_000);
    }

    fn split(clean: &[f64], targets: &[f64]) -> Split {
        let rows = clean.len() / 2;
        let matrix = |values: &[f64]| Matrix::new(rows, 2, values.to_vec()).unwrap();
        Split {
            inputs: Matrix::zeros(rows, 1).unwrap(),
            targets: matrix(targets),
            clean: matrix(clean),
        }
    }

    #[test]
    fn the_zero_mean_ceiling_subtracts_each_outputs_training_mean() {
        // Two outputs. Training means of f: (0.1 + 0.3) / 2 = 0.2 and
        // (-1 - 3) / 2 = -2. Test f rows (1.0, -2), (0.2, -2), so the
        // predictions are (0.8, 0) and (0.0, 0). Noise only on output 0:
        // 0.1^2 + 0.3^2 = 0.1, eps2 = 4/2 * 0.1 = 0.2. Squared errors against
        // the targets (1.1, -2), (-0.1, -2): 0.09, 4, 0.01, 4 → L = 2.025.
        let train = split(&[0.1, -1.0, 0.3, -3.0], &[0.0; 4]);
        let test = split(&[1.0, -2.0, 0.2, -2.0], &[1.1, -2.0, -0.1, -2.0]);
        let s = zero_mean_ceiling(&train, &test);
        assert!((s.eps2 - 0.2).abs() < 1e-12);
        assert!((s.test_loss - 2.025).abs() < 1e-12);
        assert_eq!(s.quality, -9_125_000);
    }
}
