//! softmax and log_softmax along one axis, computed stably.

use crate::{Result, Tensor};

impl Tensor {
    /// `exp(x) / sum(exp(x))` along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        let _a = self.shape().axis("softmax", axis)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::softmax(self, _a, false);
        }
        let shifted = self.sub(&self.max(Some(&[axis]), true)?)?;
        let e = shifted.exp()?;
        e.div(&e.sum(Some(&[axis]), true)?)
    }

    /// `x - logsumexp(x)` along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        let _a = self.shape().axis("log_softmax", axis)?;
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::softmax(self, _a, true);
        }
        self.sub(&self.logsumexp(Some(&[axis]), true)?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn softmax_rows_sum_to_one_and_match_log_softmax() {
        let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, -1.0, 0.0, 500.0], [2, 3]).unwrap();
        let s = a.softmax(-1).unwrap();
        let rows = s.sum(Some(&[1]), false).unwrap().to_vec::<f64>().unwrap();
        assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-12));
        let ls = a.log_softmax(1).unwrap().exp().unwrap().to_vec::<f64>().unwrap();
        for (x, y) in ls.iter().zip(s.to_vec::<f64>().unwrap()) {
            assert!((x - y).abs() < 1e-12);
        }
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        assert!((s.get(&[0, 2]).unwrap() - e[2] / e.iter().sum::<f64>()).abs() < 1e-12);
    }
}
