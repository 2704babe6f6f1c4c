//! Deep graphs must cost memory, not stack: a chain of ten million recorded
//! ops is built, differentiated and dropped on a thread with 2 MiB of stack,
//! where any walk or drop that recursed once per op would overflow and abort
//! the test binary (a recursive drop overflowed at about 25,000 ops there).
use ferrograd_autograd::Var;
use ferrograd_engine::{DType, Tensor};
use std::time::Instant;

/// The chain length the robustness issue asks for (about 3.3 GB while alive:
/// some 330 bytes per recorded op, measured).
const LONGEST: usize = 10_000_000;

/// The depth of the other deep-graph tests, which check sharing and second
/// order rather than sheer length.
const DEPTH: usize = 1_000_000;

/// The stack of an ordinary spawned thread.
const SMALL_STACK: usize = 2 << 20;

/// Runs `work` on a fresh thread with [`SMALL_STACK`] bytes of stack.
fn on_a_small_stack(work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap();
}

/// A scalar `f64` leaf that requires a gradient.
fn scalar_parameter(value: f64) -> Var {
    Var::parameter(Tensor::scalar(value, DType::F64))
}

/// `x + 1 + 1 + ... ` with `depth` recorded `add_scalar` ops.
fn add_one_chain(x: &Var, depth: usize) -> Var {
    let mut y = x.clone();
    for _ in 0..depth {
        y = y.add_scalar(1.0).unwrap();
    }
    y
}

/// The value of a one-element `Var`.
fn value_of(v: &Var) -> f64 {
    v.value().to_scalar().unwrap()
}

#[test]
fn a_ten_million_op_chain_runs_backward_and_drops_on_a_2_mib_stack() {
    on_a_small_stack(|| {
        let start = Instant::now();
        let x = scalar_parameter(0.5);
        let y = add_one_chain(&x, LONGEST);
        assert_eq!(value_of(&y), 0.5 + LONGEST as f64);
        let grads = y.backward().unwrap();
        assert_eq!(grads.get(&x).unwrap().to_scalar().unwrap(), 1.0);
        drop(grads);
        drop(y);
        // The leaf outlives the chain and is still whole.
        assert_eq!(value_of(&x), 0.5);
        eprintln!("{LONGEST}-op chain: build + backward + drop in {:?}", start.elapsed());
    });
}

#[test]
fn a_million_op_chain_drops_without_backward_on_a_2_mib_stack() {
    on_a_small_stack(|| {
        let x = scalar_parameter(-2.0);
        let y = add_one_chain(&x, DEPTH);
        assert_eq!(value_of(&y), DEPTH as f64 - 2.0);
        drop(y);
        drop(x);
    });
}

/// A deep trunk used by two branches: dropping one branch must leave the
/// trunk alive for the other, and both must still differentiate correctly.
#[test]
fn a_deep_shared_trunk_survives_until_its_last_user_goes() {
    let depth = DEPTH / 4;
    let x = scalar_parameter(1.5);
    let trunk = add_one_chain(&x, depth);
    let doubled = trunk.mul_scalar(2.0).unwrap();
    let tripled = trunk.mul_scalar(3.0).unwrap();
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

/// A chain whose every link carries a forward-mode tangent: each tangent is
/// a `Var` with a graph of its own that reaches back into the chain
/// (`t_i = t_{i-1} * cos(y_{i-1})` for `y_i = sin(y_{i-1})`), so freeing the
/// chain must not nest a drop per link through the tangents either.
#[test]
fn a_million_op_chain_carrying_tangents_drops_on_a_2_mib_stack() {
    on_a_small_stack(|| {
        let tangent = Var::constant(Tensor::scalar(3.0, DType::F64));
        let x = scalar_parameter(0.0).with_tangent(&tangent).unwrap();
        let mut y = x.clone();
        for _ in 0..DEPTH {
            y = y.sin().unwrap();
        }
        // sin(0) = 0 and cos(0) = 1 all the way: the tangent stays 3.
        assert_eq!(value_of(&y), 0.0);
        assert_eq!(value_of(y.tangent().unwrap()), 3.0);
        drop(y);
        drop(x);
    });
}
