//! XOR: the smallest problem a linear model cannot solve. A 2-8-1 MLP with a
//! tanh hidden layer learns it with plain full-batch gradient descent written
//! out by hand (`p -= lr * grad`), printing the loss curve.
//!
//! ```text
//! cargo run --release --example xor
//! ```
//!
//! The curve first sits near 0.25, the loss of predicting 0.5 everywhere
//! (the best any linear model can do on XOR), until the hidden units break
//! symmetry; then it falls by orders of magnitude.
//!
//! The layers are [`ferrograd::nn::Linear`]: the tensors live in the layer,
//! and each forward pass wraps them in fresh parameter `Var`s, so `backward`
//! returns exactly their gradients.

use ferrograd::autograd::Var;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::Linear;

const INPUTS: [f64; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
const TARGETS: [f64; 4] = [0.0, 1.0, 1.0, 0.0];

/// The settings of one run.
struct Config {
    hidden: usize,
    epochs: usize,
    lr: f64,
    seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hidden: 8,
            epochs: 1000,
            lr: 0.1,
            seed: 0,
        }
    }
}

/// The loss after every epoch and the final predictions.
struct Outcome {
    losses: Vec<f64>,
    predictions: Vec<f64>,
}

fn forward(x: &Var, layers: &[Var; 4]) -> ferrograd::Result<Var> {
    let [w1, b1, w2, b2] = layers;
    let hidden = Linear::forward(x, w1, b1)?.tanh()?;
    Ok(Linear::forward(&hidden, w2, b2)?)
}

fn run(config: &Config) -> ferrograd::Result<Outcome> {
    let mut rng = Rng::new(config.seed);
    let first = Linear::new(2, config.hidden, DType::F64, &mut rng)?;
    let second = Linear::new(config.hidden, 1, DType::F64, &mut rng)?;
    // The model is just these four tensors: W1 [h, 2], b1 [h], W2 [1, h], b2 [1].
    let mut params = [first.weight, first.bias, second.weight, second.bias];

    let x = Var::constant(Tensor::from_vec(INPUTS.to_vec(), [4, 2])?);
    let y = Var::constant(Tensor::from_vec(TARGETS.to_vec(), [4, 1])?);
    let mut losses = Vec::with_capacity(config.epochs);
    println!("epoch       loss");
    for epoch in 0..config.epochs {
        let vars = params.clone().map(Var::parameter);
        let loss = forward(&x, &vars)?.sub(&y)?.square()?.mean_all()?;
        // One gradient per parameter, or an error naming one that got none.
        let grads = loss.gradients_of(&vars)?;
        // Gradient descent: plain tensor arithmetic, nothing is recorded.
        for (p, g) in params.iter_mut().zip(&grads) {
            *p = p.sub(&g.mul_scalar(config.lr)?)?;
        }
        losses.push(loss.value().to_scalar()?);
        if epoch % (config.epochs / 10).max(1) == 0 || epoch + 1 == config.epochs {
            println!("{epoch:>5}  {:>9.3e}", losses[epoch]);
        }
    }

    let vars = params.map(Var::constant);
    let predictions = forward(&x, &vars)?.value().to_vec::<f64>()?;
    for (i, p) in predictions.iter().enumerate() {
        let (a, b) = (INPUTS[2 * i], INPUTS[2 * i + 1]);
        println!("{a} xor {b} = {p:.3}  (target {})", TARGETS[i]);
    }
    Ok(Outcome { losses, predictions })
}

/// Whether every prediction rounds to its target.
fn all_right(predictions: &[f64]) -> bool {
    predictions.iter().zip(TARGETS).all(|(p, t)| (p - t).abs() < 0.5)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = run(&Config::default())?;
    let last = out.losses.last().copied().unwrap_or(f64::NAN);
    println!("final loss {last:.3e}; all four right: {}", all_right(&out.predictions));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn learns_xor() {
        let out = super::run(&super::Config::default()).unwrap();
        let last = *out.losses.last().unwrap();
        assert!(last < 0.05, "final loss {last}");
        assert!(super::all_right(&out.predictions), "{:?}", out.predictions);
        assert!(last < out.losses[0] / 10.0);
    }
}
