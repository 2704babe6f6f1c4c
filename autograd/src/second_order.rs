//! Second-order helpers: Hessian-vector products, by reverse-over-reverse
//! (differentiate `<grad f, v>` once more) or forward-over-reverse (push the
//! tangent `v` through the backward pass), and full Hessians of small inputs.

use crate::{set_grad_enabled, Var};
use ferrograd_engine::{DType, Error, Result, Tensor};

/// How [`hvp_with`] computes a Hessian-vector product. Both give `H v` up to
/// rounding; they differ in cost and in which rules they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HvpMode {
    /// Record the backward pass (`backward_with(true)`), form `<grad, v>`,
    /// and run a second backward pass through both: a forward, a recorded
    /// backward and a backward twice as long (3.8-4.2 gradients on the
    /// task's MLPs, `bench/RESULTS.md`).
    ReverseOverReverse,
    /// Attach `v` as the tangent of `x` and run one plain forward and
    /// backward pass; every op, backward rules included, also computes its
    /// tangent, and the gradient's tangent is `H v` (2.8-2.9 gradients on
    /// the task's MLPs, about 0.7 of reverse over reverse: the same matrix
    /// products, without recording the backward pass or walking it again).
    #[default]
    ForwardOverReverse,
}

impl HvpMode {
    /// Both modes, for comparisons.
    pub const ALL: [HvpMode; 2] = [HvpMode::ReverseOverReverse, HvpMode::ForwardOverReverse];

    /// `"reverse-over-reverse"` or `"forward-over-reverse"`.
    pub fn name(self) -> &'static str {
        match self {
            HvpMode::ReverseOverReverse => "reverse-over-reverse",
            HvpMode::ForwardOverReverse => "forward-over-reverse",
        }
    }
}

/// `H v` for the Hessian `H` of the scalar `f` at `x`, by the default mode
/// ([`HvpMode::ForwardOverReverse`]).
pub fn hvp(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    hvp_with(f, x, v, HvpMode::default())
}

/// `H v` for the Hessian `H` of the scalar `f` at `x`, by `mode`.
pub fn hvp_with(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor, mode: HvpMode) -> Result<Tensor> {
    let mut products = hvp_of_inputs(
        |vars| f(&vars[0]),
        std::slice::from_ref(x),
        std::slice::from_ref(v),
        mode,
    )?;
    Ok(products.remove(0))
}

/// `H v` for a scalar `f` of several inputs: `inputs` and `directions` pair
/// up (same count, same shapes), and the result holds the block rows
/// `sum_j H_ij v_j`, one per input, each of its input's shape and dtype.
pub fn hvp_of_inputs(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    directions: &[Tensor],
    mode: HvpMode,
) -> Result<Vec<Tensor>> {
    check_directions(inputs, directions)?;
    let directions: Vec<Tensor> = inputs
        .iter()
        .zip(directions)
        .map(|(x, v)| v.to_dtype(x.dtype()))
        .collect::<Result<Vec<_>>>()?;
    match mode {
        HvpMode::ReverseOverReverse => reverse_over_reverse(&f, inputs, &directions),
        HvpMode::ForwardOverReverse => forward_over_reverse(&f, inputs, &directions),
    }
}

/// An error unless there is one direction per input, of its shape.
fn check_directions(inputs: &[Tensor], directions: &[Tensor]) -> Result<()> {
    if inputs.len() != directions.len() {
        return Err(Error::invalid(
            "hvp",
            format!(
                "got {} directions for {} inputs; pass one per input, in the same order",
                directions.len(),
                inputs.len()
            ),
        ));
    }
    for (x, v) in inputs.iter().zip(directions) {
        if x.shape() != v.shape() {
            return Err(Error::ShapeMismatch {
                op: "hvp",
                lhs: x.shape().clone(),
                rhs: v.shape().clone(),
                hint: "v must have x's shape",
            });
        }
    }
    Ok(())
}

/// `f`'s value, which must be a scalar for a Hessian to exist.
fn scalar_value(f: &dyn Fn(&[Var]) -> Result<Var>, leaves: &[Var]) -> Result<Var> {
    let out = f(leaves)?;
    if out.shape().numel() != 1 {
        return Err(Error::invalid(
            "hvp",
            format!(
                "needs a scalar function, got output shape {}; reduce it first (e.g. `.sum_all()`)",
                out.shape()
            ),
        ));
    }
    Ok(out)
}

/// Each leaf's entry of `per_leaf`, or zeros where it has none.
fn or_zeros(leaves: &[Var], per_leaf: impl Fn(&Var) -> Option<Tensor>) -> Result<Vec<Tensor>> {
    leaves
        .iter()
        .map(|leaf| match per_leaf(leaf) {
            Some(t) => Ok(t),
            None => leaf.value().zeros_like(),
        })
        .collect()
}

/// Differentiates `sum_i <grad_i f(x), v_i>` once more.
fn reverse_over_reverse(f: &dyn Fn(&[Var]) -> Result<Var>, inputs: &[Tensor], v: &[Tensor]) -> Result<Vec<Tensor>> {
    let _recording = set_grad_enabled(true);
    let leaves: Vec<Var> = inputs.iter().cloned().map(Var::parameter).collect();
    let grads = scalar_value(f, &leaves)?.backward_with(true)?;
    let mut directional: Option<Var> = None;
    for (leaf, direction) in leaves.iter().zip(v) {
        if let Some(g) = grads.get_var(leaf) {
            let term = g.mul(&Var::constant(direction.clone()))?.sum_all()?;
            directional = Some(match directional {
                Some(total) => total.add(&term)?,
                None => term,
            });
        }
    }
    let Some(directional) = directional else {
        return or_zeros(&leaves, |_| None); // f does not depend on x
    };
    let second = directional.backward()?;
    or_zeros(&leaves, |leaf| second.get(leaf).cloned())
}

/// The tangent of `grad f(x + eps v)` at `eps = 0`: one forward pass with
/// tangents and one plain backward pass, which carries them along.
fn forward_over_reverse(f: &dyn Fn(&[Var]) -> Result<Var>, inputs: &[Tensor], v: &[Tensor]) -> Result<Vec<Tensor>> {
    let _recording = set_grad_enabled(true);
    let leaves: Vec<Var> = inputs
        .iter()
        .zip(v)
        .map(|(x, direction)| Var::parameter(x.clone()).with_tangent(&Var::constant(direction.clone())))
        .collect::<Result<_>>()?;
    let grads = scalar_value(f, &leaves)?.backward()?;
    or_zeros(&leaves, |leaf| {
        grads.get_var(leaf).and_then(Var::tangent).map(|t| t.value().clone())
    })
}

/// The full Hessian of the scalar `f` at `x`, as an `[n, n]` matrix with
/// `n = x.numel()`: one forward-over-reverse `hvp` per column (for small
/// inputs only).
pub fn hessian(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    let n = x.numel();
    let mut columns = Vec::with_capacity(n * n);
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let basis = Tensor::from_f64_slice(&e, x.shape().clone(), x.dtype())?;
        columns.extend(hvp_with(&f, x, &basis, HvpMode::ForwardOverReverse)?.to_vec_f64()?);
    }
    // columns[j * n + i] = H[i, j]; H is symmetric, but transpose to be exact.
    Tensor::from_f64_slice(&columns, [n, n], DType::F64)?
        .t()
        .map(|h| h.to_dtype(x.dtype()))?
}
