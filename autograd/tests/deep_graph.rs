//! Deep graphs must cost memory, not stack: a chain of a million recorded
//! ops is built, differentiated and dropped on an ordinary test thread
//! (2 MiB of stack), where any walk or drop that recursed once per op
//! would overflow and abort the test binary.
use ferrograd_autograd::Var;
use ferrograd_engine::{DType, Tensor};
use std::time::Instant;

/// The chain length the issue asks for.
const DEPTH: usize = 1_000_000;

/// A scalar `f64` leaf that requires a gradient.
fn scalar_parameter(value: f64) -> Var {
    Var::parameter(Tensor::scalar(value, DType::F64))
}

/// `x + 1 + 1 + ... ` with `depth` recorded `add_scalar` ops.
fn add_one_chain(x: &Var, depth: usize) -> Var {
    let mut y = x.clone();
    for _ in 0..depth {
        y = y.add_scalar(1.0);
    }
    y
}

/// The value of a one-element `Var`.
fn value_of(v: &Var) -> f64 {
    v.value().to_scalar().unwrap()
}

#[test]
fn a_million_op_chain_runs_backward_and_drops() {
    let start = Instant::now();
    let x = scalar_parameter(0.5);
    let y = add_one_chain(&x, DEPTH);
    assert_eq!(value_of(&y), 0.5 + DEPTH as f64);
    let grads = y.backward().unwrap();
    assert_eq!(grads.get(&x).unwrap().to_scalar().unwrap(), 1.0);
    drop(grads);
    drop(y);
    // The leaf outlives the chain and is still whole.
    assert_eq!(value_of(&x), 0.5);
    eprintln!("{DEPTH}-op chain: build + backward + drop in {:?}", start.elapsed());
}

#[test]
fn a_million_op_chain_drops_without_backward() {
    let x = scalar_parameter(-2.0);
    let y = add_one_chain(&x, DEPTH);
    assert_eq!(value_of(&y), DEPTH as f64 - 2.0);
    drop(y);
    drop(x);
}

/// A deep trunk used by two branches: dropping one branch must leave the
/// trunk alive for the other, and both must still differentiate correctly.
#[test]
fn a_deep_shared_trunk_survives_until_its_last_user_goes() {
    let depth = DEPTH / 4;
    let x = scalar_parameter(1.5);
    let trunk = add_one_chain(&x, depth);
    let doubled = trunk.mul_scalar(2.0);
    let tripled = trunk.mul_scalar(3.0);
    drop(trunk);

    let both = doubled.add(&tripled).unwrap();
    assert_eq!(grad_of(&both, &x), 5.0);
    drop(both);

    drop(doubled);
    // `tripled` alone now holds the trunk.
    assert_eq!(value_of(&tripled), 3.0 * (1.5 + depth as f64));
    assert_eq!(grad_of(&tripled, &x), 3.0);
    drop(tripled);
    assert_eq!(value_of(&x), 1.5);
}

/// `d out / d x` as a plain number.
fn grad_of(out: &Var, x: &Var) -> f64 {
    out.backward().unwrap().get(x).unwrap().to_scalar().unwrap()
}

/// The second-order graph (`create_graph`) of a deep chain is itself deep:
/// with `y = x^(n+1)` built as `n` multiplications by `x` at `x = 1`,
/// `dy/dx = n + 1` and `d2y/dx2 = n (n + 1)`, exact in f64.
#[test]
fn a_deep_second_order_graph_differentiates_and_drops() {
    let depth = DEPTH / 10;
    let x = scalar_parameter(1.0);
    let mut y = x.clone();
    for _ in 0..depth {
        y = y.mul(&x).unwrap();
    }
    let first = y.backward_with(true).unwrap();
    let dy_dx = first.get_var(&x).unwrap().clone();
    drop(first);
    drop(y);
    let n = depth as f64;
    assert_eq!(value_of(&dy_dx), n + 1.0);
    assert_eq!(grad_of(&dy_dx, &x), n * (n + 1.0));
    drop(dy_dx);
}
