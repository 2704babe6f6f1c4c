//! Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR
//! 2015) with elementwise gradient clipping in front, as the benchmark task's
//! early accepted submissions used it:
//!
//! ```text
//! g  = clamp(grad, -clip, clip)
//! m  = beta1 m + (1 - beta1) g
//! v  = beta2 v + (1 - beta2) g^2
//! update = -lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//! ```
//!
//! The moment arithmetic lives in the `update` method of [`crate::basic::ScaleByAdam`].

use crate::basic::{ClipByValue, ScaleByAdam, ScaleByLr};
use crate::chain;
use crate::schedule::Constant;
use crate::transform::ChainOptimizer;

/// Adam with value clipping (`clip = f64::INFINITY` disables it).
/// Paper defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
pub fn clipped_adam(lr: f64, beta1: f64, beta2: f64, eps: f64, clip: f64) -> ChainOptimizer {
    ChainOptimizer::new(
        "adam",
        chain![
            ClipByValue { limit: clip },
            ScaleByAdam::new(beta1, beta2, eps, false),
            ScaleByLr::new(Constant(lr))
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StepContext, TaskOptimizer};
    use ferrograd_engine::{Shape, Tensor};

    /// Adam on f(x) = x^2 / 2 from x = 1 with lr 0.1: the first steps move by
    /// almost exactly lr each (bias-corrected m/sqrt(v) = 1 while g is constant
    /// in sign), an independent property of the algorithm.
    #[test]
    fn first_steps_move_by_lr() {
        let mut adam = clipped_adam(0.1, 0.9, 0.999, 1e-8, f64::INFINITY);
        adam.init_state(0, &[Shape::new([1])]).unwrap();
        let mut x = 1.0f64;
        for _ in 0..3 {
            let p = Tensor::from_vec(vec![x], [1]).unwrap();
            let u = adam
                .step(
                    std::slice::from_ref(&p),
                    std::slice::from_ref(&p),
                    &StepContext::default(),
                )
                .unwrap();
            let dx = u[0].to_scalar().unwrap();
            assert!((dx + 0.1).abs() < 2e-3, "{dx}");
            x += dx;
        }
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let shapes = [Shape::new([3])];
        let g = Tensor::from_vec(vec![0.3f32, -2.0, 0.1], [3]).unwrap();
        let p = g.zeros_like();
        let ctx = StepContext::default();
        let mut a = clipped_adam(1e-3, 0.9, 0.999, 1e-8, 1.0);
        a.init_state(0, &shapes).unwrap();
        a.step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        let mut b = clipped_adam(1e-3, 0.9, 0.999, 1e-8, 1.0);
        b.init_state(0, &shapes).unwrap();
        b.load_state(&a.state()).unwrap();
        let ua = a
            .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        let ub = b
            .step(std::slice::from_ref(&p), std::slice::from_ref(&g), &ctx)
            .unwrap();
        assert_eq!(ua[0].to_vec::<f32>(), ub[0].to_vec::<f32>());
    }
}
