//! Gradient checking: compares the gradients of [`Var::backward`] with
//! central finite differences, in f64.
//!
//! For a function `f` with any output shape, the check fixes a random
//! cotangent `r` (standard normal, seeded) and compares, for every element
//! `x_j` of every input, the analytic `d(sum(r * f))/dx_j` with
//! `(L(x + eps e_j) - L(x - eps e_j)) / (2 eps)`. An element passes when
//! `|analytic - numeric| <= atol + rtol * |numeric|` (PyTorch's defaults:
//! eps 1e-6, atol 1e-5, rtol 1e-3).

use crate::{no_grad, Var};
use ferrograd_engine::{DType, Error, Result, Rng, Tensor};

/// Settings of a gradient check.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (relative to the numeric value).
    pub rtol: f64,
    /// Seed of the random cotangent.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// The outcome of a gradient check, with the worst element found.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Whether every element was within tolerance.
    pub passed: bool,
    /// Elements compared.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_error: f64,
    /// Largest `|analytic - numeric| / max(|numeric|, atol)` (floored at `atol`
    /// so that gradients that are zero do not make it meaningless).
    pub max_rel_error: f64,
    /// The element with the largest tolerance-scaled error, if any.
    pub worst: Option<WorstElement>,
}

/// Where a gradient check was furthest from passing.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstElement {
    /// Which input.
    pub input: usize,
    /// The element's multi-index within that input.
    pub index: Vec<usize>,
    /// The gradient from backward.
    pub analytic: f64,
    /// The finite-difference gradient.
    pub numeric: f64,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} elements, max abs error {:.3e}, max rel error {:.3e})",
            if self.passed { "passed" } else { "FAILED" },
            self.checked,
            self.max_abs_error,
            self.max_rel_error
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst: input {} at {:?}: analytic {:.9e}, numeric {:.9e}",
                w.input, w.index, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// `sum(r * f(inputs))` as a plain number, without recording.
fn projected(f: &dyn Fn(&[Var]) -> Result<Var>, inputs: &[Tensor], r: &Tensor) -> Result<f64> {
    no_grad(|| {
        let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
        f(&vars)?.value().mul(r)?.sum_all()?.to_scalar()
    })
}

pub(crate) fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        index[i] = flat % d;
        flat /= d;
    }
    index
}

/// Checks the gradients of `f` at `inputs` (converted to f64) against
/// central finite differences. Every input is treated as requiring a
/// gradient. Fails with an error only if `f` itself fails or its output is
/// not finite.
pub fn gradcheck(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
) -> Result<GradcheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let params: Vec<Var> = inputs.iter().cloned().map(Var::parameter).collect();
    let out = f(&params)?;
    if !out.value().all_finite()? {
        return Err(Error::NonFinite {
            what: "gradcheck: the function's output".into(),
            value: f64::NAN,
        });
    }
    let mut rng = Rng::new(options.seed);
    let r = Tensor::rand_normal(out.shape().clone(), 0.0, 1.0, DType::F64, &mut rng)?;
    let loss = out.mul(&Var::constant(r.clone()))?.sum_all()?;
    let grads = loss.backward()?;

    let mut report = GradcheckReport {
        passed: true,
        checked: 0,
        max_abs_error: 0.0,
        max_rel_error: 0.0,
        worst: None,
    };
    let mut worst_score = f64::NEG_INFINITY;
    for (i, (input, param)) in inputs.iter().zip(&params).enumerate() {
        let analytic = match grads.get(param) {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; input.numel()],
        };
        let base = input.to_vec_f64()?;
        for (j, &a) in analytic.iter().enumerate() {
            let numeric = central_difference(&f, &inputs, i, &base, j, &r, options)?;
            let abs = (a - numeric).abs();
            let rel = abs / numeric.abs().max(options.atol);
            let score = abs / (options.atol + options.rtol * numeric.abs());
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(abs);
            report.max_rel_error = report.max_rel_error.max(rel);
            if score.is_nan() || score > 1.0 {
                report.passed = false;
            }
            if score > worst_score || score.is_nan() {
                worst_score = if score.is_nan() { f64::INFINITY } else { score };
                report.worst = Some(WorstElement {
                    input: i,
                    index: unravel(j, input.dims()),
                    analytic: a,
                    numeric,
                });
            }
        }
    }
    Ok(report)
}

/// `(L(x + eps e_j) - L(x - eps e_j)) / 2 eps` for element `j` of input `i`.
fn central_difference(
    f: &dyn Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    i: usize,
    base: &[f64],
    j: usize,
    r: &Tensor,
    options: &GradcheckOptions,
) -> Result<f64> {
    let at = |delta: f64| -> Result<f64> {
        let mut values = base.to_vec();
        values[j] += delta;
        let mut shifted = inputs.to_vec();
        shifted[i] = Tensor::from_vec(values, inputs[i].shape().clone())?;
        projected(f, &shifted, r)
    };
    let plus = at(options.eps)?;
    let minus = at(-options.eps)?;
    Ok((plus - minus) / (2.0 * options.eps))
}

/// Checks second derivatives: gradchecks the function
/// `x -> sum_i <w_i, d(sum(r * f(x)))/dx_i>` (random fixed `r` and `w_i`),
/// whose analytic gradient needs the backward pass of `f` to be recorded
/// (`backward_with(true)`) and differentiated again.
pub fn gradgradcheck(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    options: &GradcheckOptions,
) -> Result<GradcheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = Rng::new(options.seed ^ 0x5EC0_4D0D);
    let out_shape = no_grad(|| {
        let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
        f(&vars).map(|o| o.shape().clone())
    })?;
    let r = Tensor::rand_normal(out_shape, 0.0, 1.0, DType::F64, &mut rng)?;
    let weights: Vec<Tensor> = inputs
        .iter()
        .map(|t| Tensor::rand_normal(t.shape().clone(), 0.0, 1.0, DType::F64, &mut rng))
        .collect::<Result<_>>()?;
    let first_derivative = |vars: &[Var]| -> Result<Var> {
        let _recording = crate::set_grad_enabled(true);
        // Numeric evaluations pass constants: give them fresh leaves so the
        // first derivative exists; analytic ones keep the caller's graph.
        let leaves: Vec<Var> = vars
            .iter()
            .map(|v| {
                if v.requires_grad() {
                    v.clone()
                } else {
                    Var::parameter(v.value().clone())
                }
            })
            .collect();
        let loss = f(&leaves)?.mul(&Var::constant(r.clone()))?.sum_all()?;
        let grads = loss.backward_with(true)?;
        let mut total = Var::constant(Tensor::scalar(0.0, DType::F64));
        for (leaf, w) in leaves.iter().zip(&weights) {
            if let Some(g) = grads.get_var(leaf) {
                total = total.add(&g.mul(&Var::constant(w.clone()))?.sum_all()?)?;
            }
        }
        Ok(total)
    };
    gradcheck(first_derivative, &inputs, options)
}
