//! Checking forward mode: [`jvpcheck`] compares the forward rules' `J v`
//! with central differences along `v`, [`hvpcheck`] does the same for
//! forward-over-reverse Hessian-vector products, and [`dot_product_check`] compares
//! forward mode with reverse mode through the identity
//! `<J v, u> = <v, J^T u>`, which holds for every linear map and so for the
//! JVP and VJP of one function at one point.
//!
//! The dot-product test needs no finite differences, so it is exact up to
//! rounding (1e-10 relative in f64) where gradcheck needs tolerances of
//! 1e-5: it catches a forward rule and a backward rule that disagree by
//! far less than any finite difference can see. What it cannot see is the
//! two rules being wrong in the same way (transposes of one wrong
//! Jacobian); the central differences of [`jvpcheck`] and
//! [`gradcheck`](fn@crate::gradcheck) rule that out.

use crate::functional::{jvp, vjp};
use crate::gradcheck::{unravel, WorstElement};
use crate::second_order::{hvp_of_inputs, HvpMode};
use crate::suite::Mode;
use crate::{no_grad, GradcheckOptions, GradcheckReport, Var};
use ferrograd_engine::{DType, Error, Result, Rng, Tensor};

/// A standard normal tensor per input, in f64.
fn random_directions(inputs: &[Tensor], rng: &mut Rng) -> Result<Vec<Tensor>> {
    inputs
        .iter()
        .map(|t| Tensor::rand_normal(t.shape().clone(), 0.0, 1.0, DType::F64, rng))
        .collect()
}

/// `f(inputs + delta * directions)`, without recording.
fn evaluate_along(
    f: &dyn Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    directions: &[Tensor],
    delta: f64,
) -> Result<Tensor> {
    no_grad(|| {
        let moved: Vec<Var> = inputs
            .iter()
            .zip(directions)
            .map(|(x, v)| x.add(&v.mul_scalar(delta)?).map(Var::constant))
            .collect::<Result<_>>()?;
        Ok(f(&moved)?.value().clone())
    })
}

/// Checks the forward-mode derivative of `f` at `inputs` (converted to f64):
/// for random directions `v` (standard normal, one per input, seeded by
/// `options.seed`), every element of `J v` must match
/// `(f(x + eps v) - f(x - eps v)) / (2 eps)` within
/// `atol + rtol * |numeric|`.
///
/// In the report, `checked` counts output elements, and the worst element's
/// `input` is 0 and its `index` an index into the output.
pub fn jvpcheck(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
) -> Result<GradcheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let directions = random_directions(&inputs, &mut Rng::new(options.seed ^ 0x4A56_5043))?;
    let (out, analytic) = jvp(&f, &inputs, &directions)?;
    if !out.all_finite()? {
        return Err(Error::NonFinite {
            what: "jvpcheck: the function's output".into(),
            value: f64::NAN,
        });
    }
    let plus = evaluate_along(&f, &inputs, &directions, options.eps)?;
    let minus = evaluate_along(&f, &inputs, &directions, -options.eps)?;
    let numeric = plus.sub(&minus)?.div_scalar(2.0 * options.eps)?;
    let mut comparison = Comparison::new(options);
    comparison.add(0, &analytic, &numeric)?;
    Ok(comparison.report)
}

/// Checks forward-over-reverse second derivatives of `f` at `inputs`
/// (converted to f64): for `L(x) = sum(r * f(x))` with a random `r`, and
/// random directions `v` (one per input, seeded by `options.seed`), the
/// Hessian-vector product `H v` that tangents pushed through the backward
/// pass give must match `(grad L(x + eps v) - grad L(x - eps v)) / (2 eps)`
/// element by element (`worst.input` names the input).
pub fn hvpcheck(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
) -> Result<GradcheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = Rng::new(options.seed ^ 0x4856_5043);
    let directions = random_directions(&inputs, &mut rng)?;
    let out = evaluate_along(&f, &inputs, &directions, 0.0)?;
    let r = Tensor::rand_normal(out.shape().clone(), 0.0, 1.0, DType::F64, &mut rng)?;
    let weights = Var::constant(r.clone());
    let loss = |vars: &[Var]| f(vars)?.mul(&weights)?.sum_all();
    let analytic = hvp_of_inputs(loss, &inputs, &directions, HvpMode::ForwardOverReverse)?;
    let gradient_at = |delta: f64| -> Result<Vec<Tensor>> {
        let moved: Vec<Tensor> = inputs
            .iter()
            .zip(&directions)
            .map(|(x, v)| x.add(&v.mul_scalar(delta)?))
            .collect::<Result<_>>()?;
        Ok(vjp(&f, &moved, &r)?.1)
    };
    let (plus, minus) = (gradient_at(options.eps)?, gradient_at(-options.eps)?);
    let mut comparison = Comparison::new(options);
    for (i, (hv, (p, m))) in analytic.iter().zip(plus.iter().zip(&minus)).enumerate() {
        comparison.add(i, hv, &p.sub(m)?.div_scalar(2.0 * options.eps)?)?;
    }
    Ok(comparison.report)
}

/// An elementwise comparison of analytic with numeric derivatives, one
/// tensor at a time, with gradcheck's pass rule.
struct Comparison<'a> {
    options: &'a GradcheckOptions,
    report: GradcheckReport,
    worst_score: f64,
}

impl<'a> Comparison<'a> {
    fn new(options: &'a GradcheckOptions) -> Self {
        let report = GradcheckReport {
            passed: true,
            checked: 0,
            max_abs_error: 0.0,
            max_rel_error: 0.0,
            worst: None,
        };
        Comparison {
            options,
            report,
            worst_score: f64::NEG_INFINITY,
        }
    }

    /// Compares one tensor's elements (same shapes); `input` names it in
    /// the report.
    fn add(&mut self, input: usize, analytic: &Tensor, numeric: &Tensor) -> Result<()> {
        let (atol, rtol) = (self.options.atol, self.options.rtol);
        let report = &mut self.report;
        report.checked += numeric.numel();
        for (j, (a, n)) in analytic
            .to_vec_f64()?
            .into_iter()
            .zip(numeric.to_vec_f64()?)
            .enumerate()
        {
            let abs = (a - n).abs();
            let score = abs / (atol + rtol * n.abs());
            let score = if score.is_nan() { f64::INFINITY } else { score };
            report.max_abs_error = report.max_abs_error.max(abs);
            report.max_rel_error = report.max_rel_error.max(abs / n.abs().max(atol));
            report.passed &= score <= 1.0;
            if score > self.worst_score {
                self.worst_score = score;
                report.worst = Some(WorstElement {
                    input,
                    index: unravel(j, numeric.dims()),
                    analytic: a,
                    numeric: n,
                });
            }
        }
        Ok(())
    }
}

/// The outcome of a [`dot_product_check`].
#[derive(Debug, Clone, PartialEq)]
pub struct DotProductReport {
    /// Whether `|forward - reverse| <= tolerance * scale`.
    pub passed: bool,
    /// `<J v, u>`, from forward mode.
    pub forward: f64,
    /// `<v, J^T u>`, from reverse mode.
    pub reverse: f64,
    /// `|forward - reverse| / scale`.
    pub rel_error: f64,
    /// What the difference is measured against: the larger of 1 and the
    /// sums of the absolute terms of either inner product (so cancellation
    /// in a sum does not make rounding look like a bug).
    pub scale: f64,
}

impl std::fmt::Display for DotProductReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: <J v, u> = {:.17e} (forward), <v, J^T u> = {:.17e} (reverse), relative error {:.3e}",
            if self.passed { "passed" } else { "FAILED" },
            self.forward,
            self.reverse,
            self.rel_error
        )
    }
}

/// `(sum(a * b), sum(|a * b|))`.
fn inner(a: &Tensor, b: &Tensor) -> Result<(f64, f64)> {
    let product = a.mul(b)?;
    Ok((product.sum_all()?.to_scalar()?, product.abs()?.sum_all()?.to_scalar()?))
}

/// The dot-product test of forward against reverse mode for `f` at `inputs`
/// (converted to f64): random `v` (one per input) and `u` (output shape),
/// standard normal from `seed`; passes when `<J v, u>` and `<v, J^T u>`
/// agree to `tolerance` relative to the size of their terms (use 1e-10 in
/// f64 for rules that compute in f64).
pub fn dot_product_check(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    seed: u64,
    tolerance: f64,
) -> Result<DotProductReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = Rng::new(seed ^ 0xD07_D07);
    let v = random_directions(&inputs, &mut rng)?;
    let (out, jv) = jvp(&f, &inputs, &v)?;
    let u = Tensor::rand_normal(out.shape().clone(), 0.0, 1.0, DType::F64, &mut rng)?;
    let (_, jtu) = vjp(&f, &inputs, &u)?;
    let (forward, forward_size) = inner(&jv.to_dtype(DType::F64)?, &u)?;
    let (mut reverse, mut reverse_size) = (0.0, 0.0);
    for (vi, gi) in v.iter().zip(&jtu) {
        let (value, size) = inner(vi, &gi.to_dtype(DType::F64)?)?;
        reverse += value;
        reverse_size += size;
    }
    let scale = forward_size.max(reverse_size).max(1.0);
    let rel_error = (forward - reverse).abs() / scale;
    Ok(DotProductReport {
        passed: rel_error <= tolerance,
        forward,
        reverse,
        rel_error,
        scale,
    })
}

/// The outcome of a [`gradcheck_fast`]: one row per random projection.
#[derive(Debug, Clone, PartialEq)]
pub struct FastCheckReport {
    /// Whether every projection was within tolerance.
    pub passed: bool,
    /// `(analytic, numeric)` values of `u^T J v`, one pair per projection.
    pub projections: Vec<(f64, f64)>,
}

impl std::fmt::Display for FastCheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let worst = self
            .projections
            .iter()
            .max_by(|a, b| (a.0 - a.1).abs().total_cmp(&(b.0 - b.1).abs()));
        write!(
            f,
            "{} ({} random projections of the Jacobian)",
            if self.passed { "passed" } else { "FAILED" },
            self.projections.len()
        )?;
        if let Some((analytic, numeric)) = worst {
            write!(f, "; worst: analytic {analytic:.9e}, numeric {numeric:.9e}")?;
        }
        Ok(())
    }
}

/// Fast mode for large inputs (after PyTorch's `gradcheck(fast_mode=True)`):
/// instead of one pair of evaluations per input element, checks
/// `projections` random projections `u^T J v` of the Jacobian, `u` (output
/// shape) and `v` (one per input) standard normal from `options.seed`.
/// The analytic value comes from reverse mode (`<v, J^T u>`, one backward
/// pass) or forward mode (`<u, J v>`, one forward pass with tangents), by
/// `mode`; the
/// numeric one from `(<u, f(x + eps v)> - <u, f(x - eps v)>) / (2 eps)`.
/// A projection passes when `|analytic - numeric| <= atol + rtol |numeric|`.
/// Each costs two evaluations and one pass, whatever the input size.
///
/// # What it detects
///
/// Let `D` be the difference between the analytic Jacobian and the true
/// one. If `D != 0`, then `u^T D v` is a non-zero polynomial in the entries
/// of `u` and `v`, so it is non-zero with probability 1. With a tolerance
/// `tau = atol + rtol |numeric|`, given `v`, `u^T D v` is normal with
/// standard deviation `||D v||`, so one projection misses the error with
/// probability at most `sqrt(2 / pi) tau / ||D v||`, and `k` independent
/// projections all miss it with at most that to the power `k`. An error
/// much smaller than the tolerance in the projection's scale (a single
/// wrong entry among millions, say) can hide; the elementwise
/// [`gradcheck`](fn@crate::gradcheck) is the check for small inputs.
pub fn gradcheck_fast(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
    projections: usize,
    mode: Mode,
) -> Result<FastCheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = Rng::new(options.seed ^ 0xFA57);
    let mut report = FastCheckReport {
        passed: true,
        projections: Vec::with_capacity(projections),
    };
    for _ in 0..projections {
        let (analytic, numeric) = one_projection(&f, &inputs, options, mode, &mut rng)?;
        let within = (analytic - numeric).abs() <= options.atol + options.rtol * numeric.abs();
        report.passed &= within;
        report.projections.push((analytic, numeric));
    }
    Ok(report)
}

/// `(analytic, numeric)` values of `u^T J v` for fresh random `u` and `v`.
fn one_projection(
    f: &dyn Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
    mode: Mode,
    rng: &mut Rng,
) -> Result<(f64, f64)> {
    let v = random_directions(inputs, rng)?;
    let out = evaluate_along(f, inputs, &v, 0.0)?;
    let u = Tensor::rand_normal(out.shape().clone(), 0.0, 1.0, DType::F64, rng)?;
    let analytic = if mode == Mode::Forward {
        inner(&jvp(f, inputs, &v)?.1.to_dtype(DType::F64)?, &u)?.0
    } else {
        let (_, pulled) = vjp(f, inputs, &u)?;
        let mut total = 0.0;
        for (vi, gi) in v.iter().zip(&pulled) {
            total += inner(vi, &gi.to_dtype(DType::F64)?)?.0;
        }
        total
    };
    let plus = inner(&evaluate_along(f, inputs, &v, options.eps)?, &u)?.0;
    let minus = inner(&evaluate_along(f, inputs, &v, -options.eps)?, &u)?.0;
    Ok((analytic, (plus - minus) / (2.0 * options.eps)))
}
