//! Function transforms over closures of `Var`s (after `torch.func` and
//! JAX): [`jvp`] and [`jacfwd`] push tangents forward (one pass per input
//! direction), [`vjp`] and [`jacrev`] pull cotangents back (one pass per
//! output direction). Prefer the forward ones for functions with few inputs
//! and many outputs, the reverse ones for the opposite; Hessians live in
//! [`second_order`](crate::second_order).
//!
//! Every transform takes plain tensors and returns plain tensors: the `Var`s
//! it builds are its own, so it composes with any caller's graph.

use crate::{no_grad, Var};
use ferrograd_engine::{DType, Error, Result, Tensor};

/// An error unless `given` has one tensor per input, each of its input's
/// shape. `what` names the argument ("tangents", ...).
fn check_directions(op: &'static str, what: &str, inputs: &[Tensor], given: &[Tensor]) -> Result<()> {
    if inputs.len() != given.len() {
        return Err(Error::invalid(
            op,
            format!(
                "got {} {what} for {} inputs; pass one per input, in the same order",
                given.len(),
                inputs.len()
            ),
        ));
    }
    for (input, direction) in inputs.iter().zip(given) {
        if input.shape() != direction.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: input.shape().clone(),
                rhs: direction.shape().clone(),
                hint: "each direction must have its input's shape",
            });
        }
    }
    Ok(())
}

/// `(f(x), J v)`: the value of `f` at `primals` and its directional
/// derivative along `tangents` (one per primal, same shapes), by forward
/// mode: one evaluation of `f` with tangents attached, nothing recorded.
///
/// ```
/// use ferrograd_autograd::functional::jvp;
/// use ferrograd_engine::Tensor;
///
/// // f(x) = x^2 at x = 3, along v = 1: (9, 6).
/// let x = Tensor::from_vec(vec![3.0f64], [1])?;
/// let (y, dy) = jvp(|v| v[0].square(), &[x.clone()], &[x.ones_like()?])?;
/// assert_eq!((y.to_vec::<f64>()?, dy.to_vec::<f64>()?), (vec![9.0], vec![6.0]));
/// # Ok::<(), ferrograd_engine::Error>(())
/// ```
pub fn jvp(f: impl Fn(&[Var]) -> Result<Var>, primals: &[Tensor], tangents: &[Tensor]) -> Result<(Tensor, Tensor)> {
    check_directions("jvp", "tangents", primals, tangents)?;
    no_grad(|| {
        let duals: Vec<Var> = primals
            .iter()
            .zip(tangents)
            .map(|(p, t)| Var::constant(p.clone()).with_tangent(&Var::constant(t.to_dtype(p.dtype())?)))
            .collect::<Result<_>>()?;
        let out = f(&duals)?;
        let tangent = match out.tangent() {
            Some(t) => t.value().clone(),
            None => out.value().zeros_like()?, // f does not depend on its inputs
        };
        Ok((out.value().clone(), tangent))
    })
}

/// `(f(x), J^T u)`: the value of `f` at `primals` and the vector-Jacobian
/// product with `cotangent` (of `f`'s output shape), one tensor per input,
/// by one backward pass.
///
/// ```
/// use ferrograd_autograd::functional::vjp;
/// use ferrograd_engine::Tensor;
///
/// // f(a, b) = a * b: J^T u = (u b, u a).
/// let a = Tensor::from_vec(vec![2.0f64], [1])?;
/// let b = Tensor::from_vec(vec![5.0f64], [1])?;
/// let (_, grads) = vjp(|v| v[0].mul(&v[1]), &[a, b], &Tensor::from_vec(vec![1.0f64], [1])?)?;
/// assert_eq!(grads[0].to_vec::<f64>()?, vec![5.0]);
/// assert_eq!(grads[1].to_vec::<f64>()?, vec![2.0]);
/// # Ok::<(), ferrograd_engine::Error>(())
/// ```
pub fn vjp(f: impl Fn(&[Var]) -> Result<Var>, primals: &[Tensor], cotangent: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
    let _recording = crate::set_grad_enabled(true);
    let leaves: Vec<Var> = primals.iter().cloned().map(Var::parameter).collect();
    let out = f(&leaves)?;
    if out.shape() != cotangent.shape() {
        return Err(Error::ShapeMismatch {
            op: "vjp",
            lhs: out.shape().clone(),
            rhs: cotangent.shape().clone(),
            hint: "the cotangent must have the function's output shape",
        });
    }
    let weighted = out.mul(&Var::constant(cotangent.to_dtype(out.dtype())?))?.sum_all()?;
    let grads = weighted.backward()?;
    let pulled = leaves
        .iter()
        .map(|leaf| match grads.get(leaf) {
            Some(g) => Ok(g.clone()),
            None => leaf.value().zeros_like(),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out.value().clone(), pulled))
}

/// The one-hot tensor of `shape` with a 1 at flat position `j`, in f64.
fn basis(shape: &[usize], j: usize) -> Result<Tensor> {
    let mut e = vec![0.0; shape.iter().product()];
    e[j] = 1.0;
    Tensor::from_vec(e, shape.to_vec())
}

/// `rows` (each of length `row_len`, row-major) as a tensor of shape
/// `leading ++ trailing` in `dtype`.
fn assemble(rows: Vec<f64>, leading: &[usize], trailing: &[usize], dtype: DType) -> Result<Tensor> {
    let dims: Vec<usize> = leading.iter().chain(trailing).copied().collect();
    Tensor::from_f64_slice(&rows, dims, dtype)
}

/// `f`'s output shape at `x`, evaluated without recording.
fn output_dims(f: &dyn Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Vec<usize>> {
    no_grad(|| f(&Var::constant(x.clone())).map(|out| out.dims().to_vec()))
}

/// The Jacobian of `f` at `x` by forward mode, shaped `out.dims ++ x.dims`
/// (`[m, n]` for vectors): one [`jvp`] per input element, so it suits
/// functions with fewer inputs than outputs.
pub fn jacfwd(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    let out_dims = output_dims(&f, x)?;
    let (m, n) = (out_dims.iter().product::<usize>(), x.numel());
    let mut jacobian = vec![0.0; m * n];
    for j in 0..n {
        let direction = basis(x.dims(), j)?.to_dtype(x.dtype())?;
        let (_, column) = jvp(|v| f(&v[0]), std::slice::from_ref(x), &[direction])?;
        for (i, value) in column.to_vec_f64()?.into_iter().enumerate() {
            jacobian[i * n + j] = value;
        }
    }
    assemble(jacobian, &out_dims, x.dims(), x.dtype())
}

/// The Jacobian of `f` at `x` by reverse mode, shaped `out.dims ++ x.dims`:
/// one [`vjp`] per output element, so it suits functions with fewer outputs
/// than inputs. Agrees with [`jacfwd`] up to rounding.
pub fn jacrev(f: impl Fn(&Var) -> Result<Var>, x: &Tensor) -> Result<Tensor> {
    let out_dims = output_dims(&f, x)?;
    let m = out_dims.iter().product::<usize>();
    let mut jacobian = Vec::with_capacity(m * x.numel());
    for i in 0..m {
        let cotangent = basis(&out_dims, i)?.to_dtype(x.dtype())?;
        let (_, row) = vjp(|v| f(&v[0]), std::slice::from_ref(x), &cotangent)?;
        jacobian.extend(row[0].to_vec_f64()?);
    }
    assemble(jacobian, &out_dims, x.dims(), x.dtype())
}
