//! A new differentiable function, proved with `gradcheck`.
//!
//! ```text
//! cargo run --release --example custom_op
//! ```
//!
//! Most new functions need no new op: compose existing `Var` ops and reverse
//! mode differentiates the composition for free. What can go wrong is the
//! composition itself, and the gradient check is the referee. This example
//! writes `softplus(x) = log(1 + e^x)` three ways:
//!
//! 1. `naive`: `log(1 + exp(x))`, exact gradients but `exp` overflows to
//!    infinity for x > 709 (f64) or x > 88 (f32);
//! 2. `stable`: `relu(x) + log(1 + exp(-|x|))`, never overflows, but its tape
//!    runs through two kinks at 0: `relu'(0)` and `|x|'(0)` are both taken as 0,
//!    so the composed gradient at exactly x = 0 is 0 instead of 1/2;
//! 3. `safe`: two smooth branches joined with `where`, each branch fed an
//!    input that cannot overflow, so both value and gradient are right
//!    everywhere (the "double where" trick).
//!
//! It also writes a Huber loss the same way.
//!
//! # A primitive op in your own crate
//!
//! When a function cannot be composed (or the composition is too slow), it
//! becomes a primitive: implement `PrimitiveOp` (a forward kernel on
//! tensors, a backward rule, and optionally a forward rule) and call
//! `Var::apply_primitive`. This example writes `log(cosh(x))` as one
//! primitive, gives it an `OpEntry` (its input domain), and puts it through
//! the suite every built-in op gets: `op_suite!` at the bottom of this file
//! expands to its four tests. It also plants a mistake: a forward rule off
//! by one part in a million, far below what finite differences can see,
//! which the suite's dot-product test (forward rule against backward rule,
//! exact to rounding) catches.
//!
//! # Where a new *built-in* primitive op would go
//!
//! Built-in ops form an enum in `ferrograd-autograd`, so one is added inside
//! the workspace, one fact in one place each:
//!
//! 1. the forward kernel in the engine: a `UnaryOp` variant and its formula in
//!    `engine/src/ops/elementwise.rs` (and a `Tensor` method), tested against
//!    hand-computed values;
//! 2. an `OpKind` in the `op_kinds!` list of `autograd/src/op.rs` (an `Op`
//!    variant too if the op carries data, like `LeakyRelu(slope)`);
//! 3. the `Var` method in `autograd/src/forward.rs` (for a plain unary op, one
//!    line in `unary_vars!` and one in `engine_unary`);
//! 4. the backward rule: one `match` arm in `autograd/src/backward.rs`,
//!    written with `Var` ops so it stays differentiable, and the forward
//!    rule (its JVP) in `autograd/src/jvp.rs`;
//! 5. a registry entry in `autograd/src/registry.rs` with the input domain its
//!    gradient check draws from (a test fails while any `OpKind` lacks one,
//!    and `ferrograd gradcheck` then checks it with every other op);
//! 6. later, its CUDA kernel in `ptx/`, tested against the CPU kernel.

use ferrograd::autograd::registry::{real, Case, OpEntry};
use ferrograd::autograd::suite::{check_entry_in, Mode, Order};
use ferrograd::autograd::{gradcheck, GradcheckOptions, GradcheckReport, OpKind, PrimitiveOp, Var};
use ferrograd::engine::{Result, Rng, Tensor, UnaryOp};
use std::sync::Arc;

/// A differentiable function of one `Var`.
type VarFn = fn(&Var) -> Result<Var>;

/// `log(1 + e^x)`, straight from the definition.
fn softplus_naive(x: &Var) -> Result<Var> {
    x.exp()?.add_scalar(1.0)?.log()
}

/// `max(x, 0) + log(1 + e^-|x|)`: the textbook stable form.
fn softplus_stable(x: &Var) -> Result<Var> {
    x.relu()?.add(&x.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?)
}

/// `x > 0 ? x + log(1 + e^-x) : log(1 + e^x)`, each branch fed an input
/// clamped to its own side of 0. `where` routes the gradient to the chosen
/// branch, but it multiplies the other branch's gradient by 0, and `0 * inf`
/// is NaN: without the inner `where`s, a large x would overflow the unused
/// branch's `exp(x)` and poison the gradient.
fn softplus_safe(x: &Var) -> Result<Var> {
    let positive = x.value().gt_scalar(0.0)?; // a constant 1/0 mask
    let zero = Var::constant(x.value().zeros_like()?);
    let x_pos = Var::where_mask(&positive, x, &zero)?; // x where x > 0, else 0
    let x_neg = Var::where_mask(&positive, &zero, x)?; // x where x <= 0, else 0
    let right = x_pos.add(&x_pos.neg()?.exp()?.add_scalar(1.0)?.log()?)?;
    let left = x_neg.exp()?.add_scalar(1.0)?.log()?;
    Var::where_mask(&positive, &right, &left)
}

/// Huber loss of residuals `r`: `r^2 / 2` for `|r| <= delta`, else
/// `delta (|r| - delta / 2)`. Its derivative is continuous (it is `r` clipped
/// to `[-delta, delta]`), so the gradient check passes even at `|r| = delta`.
fn huber(r: &Var, delta: f64) -> Result<Var> {
    let outside = r.value().abs()?.gt_scalar(delta)?;
    let quadratic = r.square()?.mul_scalar(0.5)?;
    let linear = r.abs()?.sub_scalar(0.5 * delta)?.mul_scalar(delta)?;
    Var::where_mask(&outside, &linear, &quadratic)
}

/// `log(cosh(x))` as one primitive op. Its derivative is `tanh(x)`; the
/// forward rule multiplies the tangent by `jvp_scale * tanh(x)`, so any
/// scale but 1 is a wrong rule.
#[derive(Debug)]
struct LogCosh {
    jvp_scale: f64,
}

impl PrimitiveOp for LogCosh {
    fn name(&self) -> &'static str {
        "log_cosh"
    }

    /// `|x| + log(1 + e^(-2|x|)) - log 2`: no overflow for large `|x|`.
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let magnitude = inputs[0].unary(UnaryOp::Abs)?;
        let tail = magnitude
            .mul_scalar(-2.0)?
            .unary(UnaryOp::Exp)?
            .add_scalar(1.0)?
            .unary(UnaryOp::Log)?;
        magnitude.add(&tail.add_scalar(-std::f64::consts::LN_2)?)
    }

    fn backward(&self, inputs: &[Var], _out: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        Ok(vec![Some(grad.mul(&inputs[0].tanh()?)?)])
    }

    fn jvp(&self, inputs: &[Var], _out: &Var, tangents: &[Option<Var>]) -> Option<Result<Option<Var>>> {
        let slope = match inputs[0].tanh().and_then(|t| t.mul_scalar(self.jvp_scale)) {
            Ok(slope) => slope,
            Err(e) => return Some(Err(e)),
        };
        Some(tangents[0].as_ref().map(|t| t.mul(&slope)).transpose())
    }
}

/// The registry entry of a `LogCosh` primitive: standard normal inputs of
/// the suite's random shapes.
fn log_cosh_entry(name: &'static str, build: fn(&[usize], &mut Rng) -> Case) -> OpEntry {
    OpEntry {
        name,
        kind: OpKind::Custom,
        build,
        tolerance: None,
        cross_mode_tolerance: None,
    }
}

/// `log_cosh`, right.
fn right_log_cosh() -> OpEntry {
    log_cosh_entry("log_cosh", |dims, rng| Case {
        inputs: vec![real(dims, rng)],
        apply: Box::new(|v| Var::apply_primitive(Arc::new(LogCosh { jvp_scale: 1.0 }), v)),
    })
}

/// `log_cosh` with the planted mistake: its forward rule is 1e-6 too steep.
fn wrong_log_cosh() -> OpEntry {
    log_cosh_entry("log_cosh_wrong_jvp", |dims, rng| Case {
        inputs: vec![real(dims, rng)],
        apply: Box::new(|v| Var::apply_primitive(Arc::new(LogCosh { jvp_scale: 1.0 + 1e-6 }), v)),
    })
}

/// The suite's four checks of one entry (64 cases each): whether each passed.
fn suite_verdicts(entry: &OpEntry) -> Vec<(&'static str, bool)> {
    let checks = [
        ("gradcheck", Order::First, Mode::Reverse),
        ("gradgradcheck", Order::Second, Mode::Reverse),
        ("jvp + dot product", Order::First, Mode::Forward),
        ("forward over reverse", Order::Second, Mode::Forward),
    ];
    checks
        .into_iter()
        .map(|(name, order, mode)| {
            let summary = check_entry_in(entry, 64, 0, order, mode);
            let result = match &summary.first_failure {
                None => "passes".to_string(),
                Some(why) => format!("FAILS: {why}"),
            };
            println!("  {:<20} {:<20} {result}", entry.name, name);
            (name, summary.passed())
        })
        .collect()
}

/// The exact derivative of softplus: the logistic sigmoid.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Gradients of `sum(f(x))` at the given points (so each is `f'(x_i)`).
fn derivative(f: VarFn, points: &[f64]) -> Result<Vec<f64>> {
    let x = Var::parameter(Tensor::from_vec(points.to_vec(), [points.len()])?);
    let grads = f(&x)?.sum_all()?.backward()?;
    Ok(grads.get(&x).expect("x is a parameter").to_vec::<f64>().unwrap())
}

/// The three softplus versions and their reports at random points and at 0.
struct Outcome {
    random: Vec<(&'static str, GradcheckReport)>,
    at_zero: Vec<(&'static str, GradcheckReport)>,
    huber: GradcheckReport,
    safe_at_extremes: Vec<f64>,
    /// The suite's verdicts on the right and the wrong `log_cosh`.
    primitive: [Vec<(&'static str, bool)>; 2],
}

fn run() -> Result<Outcome> {
    let versions: [(&'static str, VarFn); 3] = [
        ("naive", softplus_naive),
        ("stable", softplus_stable),
        ("safe", softplus_safe),
    ];
    let options = GradcheckOptions::default();
    let mut rng = Rng::new(7);
    let random_points = Tensor::rand_normal([4, 5], 0.0, 3.0, ferrograd::engine::DType::F64, &mut rng)?;
    let zero = Tensor::from_vec(vec![0.0f64], [1])?;

    println!("gradient check at 20 random points (normal, std 3):");
    let mut random = Vec::new();
    for (name, f) in versions {
        let report = gradcheck(|v| f(&v[0]), std::slice::from_ref(&random_points), &options)?;
        println!("  {name:<7} {report}");
        random.push((name, report));
    }

    println!("gradient check at exactly x = 0 (exact derivative sigmoid(0) = 0.5):");
    let mut at_zero = Vec::new();
    for (name, f) in versions {
        let report = gradcheck(|v| f(&v[0]), std::slice::from_ref(&zero), &options)?;
        let d = derivative(f, &[0.0])?[0];
        println!("  {name:<7} backward gives {d}: {report}");
        at_zero.push((name, report));
    }

    println!("derivatives far out (exact: sigmoid(-1000) = 0, sigmoid(1000) = 1):");
    let extremes = [-1000.0, 1000.0];
    for (name, f) in versions {
        println!("  {name:<7} {:?}", derivative(f, &extremes)?);
    }
    let safe_at_extremes = derivative(softplus_safe, &extremes)?;

    // Huber at residuals including both joins, |r| = delta.
    let residuals = Tensor::from_vec(vec![-3.0f64, -1.0, -0.4, 0.3, 1.0, 2.5], [6])?;
    let huber_report = gradcheck(|v| huber(&v[0], 1.0), &[residuals], &options)?;
    println!("huber(delta = 1) at [-3, -1, -0.4, 0.3, 1, 2.5]: {huber_report}");

    let check = derivative(softplus_safe, &[-2.0, 0.5])?;
    println!(
        "safe softplus' at [-2, 0.5] = [{:.6}, {:.6}]; sigmoid = [{:.6}, {:.6}]",
        check[0],
        check[1],
        sigmoid(-2.0),
        sigmoid(0.5)
    );
    println!("log_cosh as one primitive op, through the suite of the built-in ops:");
    let primitive = [suite_verdicts(&right_log_cosh()), suite_verdicts(&wrong_log_cosh())];
    Ok(Outcome {
        random,
        at_zero,
        huber: huber_report,
        safe_at_extremes,
        primitive,
    })
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let out = run()?;
    let verdict = |reports: &[(&str, GradcheckReport)]| {
        reports
            .iter()
            .map(|(n, r)| format!("{n} {}", if r.passed { "passes" } else { "FAILS" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("random points: {}", verdict(&out.random));
    println!("at zero: {}", verdict(&out.at_zero));
    println!(
        "huber {}; safe softplus' at -1000 and 1000: {:?}",
        if out.huber.passed { "passes" } else { "FAILS" },
        out.safe_at_extremes
    );
    for (name, verdicts) in ["log_cosh", "log_cosh_wrong_jvp"].iter().zip(&out.primitive) {
        let failed: Vec<&str> = verdicts.iter().filter(|(_, ok)| !ok).map(|(check, _)| *check).collect();
        match failed.is_empty() {
            true => println!("{name}: passes all four checks"),
            false => println!("{name}: caught by {}", failed.join(", ")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_check_tells_the_three_versions_apart() {
        let out = run().unwrap();
        assert!(out.random.iter().all(|(_, r)| r.passed), "all pass away from 0");
        let at_zero: Vec<bool> = out.at_zero.iter().map(|(_, r)| r.passed).collect();
        assert_eq!(at_zero, [true, false, true], "only the kinked tape fails at 0");
        assert!(out.huber.passed, "{}", out.huber);
        assert_eq!(out.safe_at_extremes, [0.0, 1.0]);
    }

    #[test]
    fn the_suite_passes_the_primitive_and_catches_its_planted_mistake() {
        let out = run().unwrap();
        let [right, wrong] = &out.primitive;
        assert!(right.iter().all(|(_, passed)| *passed), "{right:?}");
        // Only the forward-mode first-order check runs the forward rule
        // against the backward rule; 1e-6 is 1,000 times below gradcheck's
        // rtol, so only its dot-product test can see the mistake.
        let caught: Vec<&str> = wrong
            .iter()
            .filter(|(_, passed)| !passed)
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(caught, ["jvp + dot product"], "{wrong:?}");
    }

    #[test]
    fn the_planted_mistake_is_invisible_to_finite_differences_alone() {
        let x = Tensor::rand_normal([3, 4], 0.0, 1.0, ferrograd::engine::DType::F64, &mut Rng::new(5)).unwrap();
        let wrong = |v: &[Var]| Var::apply_primitive(Arc::new(LogCosh { jvp_scale: 1.0 + 1e-6 }), v);
        let report = ferrograd::autograd::jvpcheck(wrong, &[x], &GradcheckOptions::default()).unwrap();
        assert!(report.passed, "{report}");
    }

    #[test]
    fn values_agree_where_all_three_are_finite() {
        let points = [-30.0, -2.0, -1e-3, 0.0, 1e-3, 0.7, 5.0, 30.0];
        let x = Var::constant(Tensor::from_vec(points.to_vec(), [points.len()]).unwrap());
        let naive = softplus_naive(&x).unwrap().value().to_vec::<f64>().unwrap();
        for f in [softplus_stable, softplus_safe] {
            for (a, b) in f(&x).unwrap().value().to_vec::<f64>().unwrap().iter().zip(&naive) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

// The four tests every built-in op gets, for the right `log_cosh`.
ferrograd::autograd::op_suite!(log_cosh_suite, right_log_cosh());
