//! The task's score (`TIG_TASK.md` section 4).
//!
//! ```text
//! eps2    = (4 / N_test) * sum over all test elements of (y - f)^2
//! L       = mean over all test elements of (prediction - y)^2
//! quality = round(clamp((eps2 - L) / eps2, -10, 10) * 1_000_000)
//! ```

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
    let n_test = targets.dims()[0] as f64;
    let noise = targets
        .to_vec_f64()
        .iter()
        .zip(clean.to_vec_f64())
        .map(|(y, f)| (y - f) * (y - f))
        .sum::<f64>();
    let eps2 = 4.0 / n_test * noise;
    let p = prediction.to_vec_f64();
    let test_loss = p
        .iter()
        .zip(targets.to_vec_f64())
        .map(|(p, y)| (p - y) * (p - y))
        .sum::<f64>()
        / p.len() as f64;
    Ok(Score {
        eps2,
        test_loss,
        quality: quality(eps2, test_loss),
    })
}

/// `round(clamp((eps2 - loss) / eps2, -10, 10) * 1e6)`.
pub fn quality(eps2: f64, loss: f64) -> i64 {
    (((eps2 - loss) / eps2).clamp(-10.0, 10.0) * 1_000_000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
