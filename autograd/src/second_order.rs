//! Second-order helpers built on `backward_with(true)`: Hessian-vector
//! products by reverse-over-reverse, and full Hessians of small inputs.

use crate::{set_grad_enabled, Var};
use ferrograd_engine::{DType, Error, Result, Tensor};

/// `H v` for the Hessian `H` of the scalar `f` at `x`: differentiate
/// `<grad f(x), v>` once more. Costs about two to four gradient evaluations.
pub fn hvp(f: impl Fn(&Var) -> Result<Var>, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    if x.shape() != v.shape() {
        return Err(Error::ShapeMismatch {
            op: "hvp",
            lhs: x.shape().clone(),
            rhs: v.shape().clone(),
            hint: "v must have x's shape",
        });
    }
    let _recording = set_grad_enabled(true);
    let leaf = Var::parameter(x.clone());
    let grads = f(&leaf)?.backward_with(true)?;
    let Some(g) = grads.get_var(&leaf) else {
        return Ok(x.zeros_like()); // f does not depend on x
    };
    let directional = g.mul(&Var::constant(v.to_dtype(x.dtype())))?.sum_all();
    let second = directional.backward()?;
    Ok(second.get(&leaf).cloned().unwrap_or_else(|| x.zeros_like()))
}

/// The full Hessian of the scalar `f` at `x`, as an `[n, n]` matrix with
/// `n = x.numel()` (one `hvp` per column: for small inputs only).
pub fn hessian(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    let n = x.numel();
    let mut columns = Vec::with_capacity(n * n);
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let basis = Tensor::from_f64_slice(&e, x.shape().clone(), x.dtype())?;
        columns.extend(hvp(&f, x, &basis)?.to_vec_f64());
    }
    // columns[j * n + i] = H[i, j]; H is symmetric, but transpose to be exact.
    Tensor::from_f64_slice(&columns, [n, n], DType::F64)?
        .t()
        .map(|h| h.to_dtype(x.dtype()))
}
