//! Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR
//! 2015, Algorithm 1) with elementwise gradient clipping in front, as the
//! benchmark task's early accepted submissions used it.
//!
//! ```text
//! g  = clamp(grad, -clip, clip)
//! m  = beta1 m + (1 - beta1) g
//! v  = beta2 v + (1 - beta2) g^2
//! update = -lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//! ```

use crate::{check_grads, OptimizerState, StepContext, TaskOptimizer};
use ferrograd_engine::{Result, Shape, Tensor};

/// Adam with value clipping. Paper defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
#[derive(Debug, Clone)]
pub struct ClippedAdam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Gradients are clamped into `[-clip, clip]` first (`inf` disables).
    pub clip: f64,
    steps: u64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    shapes: Vec<Shape>,
}

impl ClippedAdam {
    /// Adam with the given hyperparameters.
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64, clip: f64) -> Self {
        ClippedAdam {
            lr,
            beta1,
            beta2,
            eps,
            clip,
            steps: 0,
            m: Vec::new(),
            v: Vec::new(),
            shapes: Vec::new(),
        }
    }

    /// The update for one tensor, advancing its moments.
    fn update_one(&mut self, i: usize, grad: &Tensor) -> Result<Tensor> {
        let g = grad.clamp(-self.clip, self.clip)?;
        self.m[i] = self.m[i].mul_scalar(self.beta1).add(&g.mul_scalar(1.0 - self.beta1))?;
        self.v[i] = self.v[i]
            .mul_scalar(self.beta2)
            .add(&g.square().mul_scalar(1.0 - self.beta2))?;
        let t = self.steps as i32;
        let m_hat = self.m[i].div_scalar(1.0 - self.beta1.powi(t));
        let v_hat = self.v[i].div_scalar(1.0 - self.beta2.powi(t));
        Ok(m_hat.div(&v_hat.sqrt().add_scalar(self.eps))?.mul_scalar(-self.lr))
    }
}

impl TaskOptimizer for ClippedAdam {
    fn name(&self) -> &str {
        "adam"
    }

    fn init_state(&mut self, _seed: u64, param_shapes: &[Shape]) -> Result<()> {
        self.shapes = param_shapes.to_vec();
        self.steps = 0;
        self.m = Vec::new();
        self.v = Vec::new();
        Ok(())
    }

    fn step(&mut self, _params: &[Tensor], grads: &[Tensor], _ctx: &StepContext) -> Result<Vec<Tensor>> {
        check_grads("adam", &self.shapes, grads)?;
        if self.m.is_empty() {
            self.m = grads.iter().map(Tensor::zeros_like).collect();
            self.v = self.m.clone();
        }
        self.steps += 1;
        (0..grads.len()).map(|i| self.update_one(i, &grads[i])).collect()
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::default();
        state.counters.insert("steps".into(), self.steps);
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            state.tensors.insert(format!("m.{i}"), m.clone());
            state.tensors.insert(format!("v.{i}"), v.clone());
        }
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.steps = state.counter("steps")?;
        if self.steps == 0 {
            self.m.clear();
            self.v.clear();
            return Ok(());
        }
        self.m = (0..self.shapes.len())
            .map(|i| state.tensor(&format!("m.{i}")).cloned())
            .collect::<Result<_>>()?;
        self.v = (0..self.shapes.len())
            .map(|i| state.tensor(&format!("v.{i}")).cloned())
            .collect::<Result<_>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam on f(x) = x^2 / 2 from x = 1 with lr 0.1: the first steps move by
    /// almost exactly lr each (bias-corrected m/sqrt(v) = 1 while g is constant
    /// in sign), an independent property of the algorithm.
    #[test]
    fn first_steps_move_by_lr() {
        let mut adam = ClippedAdam::new(0.1, 0.9, 0.999, 1e-8, f64::INFINITY);
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
        let mut a = ClippedAdam::new(1e-3, 0.9, 0.999, 1e-8, 1.0);
        a.init_state(0, &shapes).unwrap();
        a.step(
            std::slice::from_ref(&p),
            std::slice::from_ref(&g),
            &StepContext::default(),
        )
        .unwrap();
        let mut b = ClippedAdam::new(1e-3, 0.9, 0.999, 1e-8, 1.0);
        b.init_state(0, &shapes).unwrap();
        b.load_state(&a.state()).unwrap();
        let ua = a
            .step(
                std::slice::from_ref(&p),
                std::slice::from_ref(&g),
                &StepContext::default(),
            )
            .unwrap();
        let ub = b.step(&[p], &[g], &StepContext::default()).unwrap();
        assert_eq!(ua[0].to_vec::<f32>(), ub[0].to_vec::<f32>());
    }
}
