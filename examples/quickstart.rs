//! Quickstart: a tensor, a function of it, `backward`, the gradients, and a
//! gradient check that proves them.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! The function is a one-parameter-vector least-squares loss,
//! `L(w) = mean((X w - t)^2)`, whose gradient we also know by hand:
//! `dL/dw = 2/n X^T (X w - t)`. Reverse mode must agree with that formula,
//! and with central finite differences (the gradient check).

use ferrograd::autograd::{gradcheck, GradcheckOptions, GradcheckReport, Var};
use ferrograd::engine::{DType, Tensor};

/// What the quickstart computed, for the test at the bottom.
struct Outcome {
    loss: f64,
    grad: Vec<f64>,
    by_hand: Vec<f64>,
    check: GradcheckReport,
}

fn run() -> ferrograd::Result<Outcome> {
    // 1. Tensors: row-major data plus a shape. Ops broadcast like NumPy.
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2])?;
    let t = Tensor::from_vec(vec![1.0f64, 0.0, -1.0], [3, 1])?;
    let shift = Tensor::from_vec(vec![10.0f64, 20.0], [2])?;
    println!("x =\n{x}");
    println!(
        "x + [10, 20] (the [2] row broadcasts over the 3 rows) =\n{}",
        x.add(&shift)?
    );

    // 2. Vars: a parameter gets a gradient, a constant does not.
    let w = Var::parameter(Tensor::from_vec(vec![0.5f64, -0.25], [2, 1])?);
    let (xv, tv) = (Var::constant(x.clone()), Var::constant(t.clone()));

    // 3. A function: every op on Vars is recorded on the tape.
    let loss = xv.matmul(&w)?.sub(&tv)?.square()?.mean_all()?;
    println!("loss = mean((x w - t)^2) = {:.6}", loss.value().to_scalar()?);

    // 4. backward: one reverse sweep gives the gradient of every parameter.
    let grads = loss.backward()?;
    let grad = grads.get(&w).expect("w is a parameter").to_vec::<f64>()?;
    println!("dloss/dw (reverse mode)      = {grad:?}");

    // The same gradient by hand: 2/n X^T (X w - t).
    let residual = x.matmul(w.value())?.sub(&t)?;
    let by_hand = x.t()?.matmul(&residual)?.mul_scalar(2.0 / 3.0)?.to_vec::<f64>()?;
    println!("dloss/dw (by hand, 2/n X^T r) = {by_hand:?}");

    // 5. gradcheck: compares backward with central finite differences in f64.
    let check = gradcheck(
        |v| v[0].matmul(&v[1])?.sub(&v[2])?.square()?.mean_all(),
        &[x, w.value().clone(), t.to_dtype(DType::F64)?],
        &GradcheckOptions::default(),
    )?;
    println!("gradcheck: {check}");

    Ok(Outcome {
        loss: loss.value().to_scalar()?,
        grad,
        by_hand,
        check,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = run()?;
    let agree = out.grad.iter().zip(&out.by_hand).all(|(a, b)| (a - b).abs() < 1e-12);
    println!("loss {:.4}; reverse mode matches the hand formula: {agree}", out.loss);
    if !agree || !out.check.passed {
        return Err("the gradients disagree (see above)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn gradients_match_the_hand_formula_and_the_gradcheck() {
        let out = super::run().unwrap();
        // x w = [0, 0.5, 1]; residuals [-1, 0.5, 2]; mean of squares 5.25 / 3.
        assert!((out.loss - 1.75).abs() < 1e-12, "{}", out.loss);
        for (a, b) in out.grad.iter().zip(&out.by_hand) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(out.check.passed, "{}", out.check);
    }
}
