//! Reductions over chosen axes (or all), with `keepdim`: sum, mean, max, min,
//! var, logsumexp; and argmax.

use super::for_each_strided;
use crate::storage::CpuSlice;
use crate::{with_dtype, Element, Error, Result, Shape, Tensor};

/// How a reduction combines values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the values.
    Sum,
    /// Largest value (NaN wins).
    Max,
    /// Smallest value (NaN wins).
    Min,
}

impl ReduceOp {
    fn init<T: Element>(self) -> T {
        match self {
            ReduceOp::Sum => T::zero(),
            ReduceOp::Max => T::neg_infinity(),
            ReduceOp::Min => T::infinity(),
        }
    }

    #[inline]
    fn fold<T: Element>(self, acc: T, x: T) -> T {
        match self {
            ReduceOp::Sum => acc + x,
            ReduceOp::Max => {
                if x > acc || x.is_nan() {
                    x
                } else {
                    acc
                }
            }
            ReduceOp::Min => {
                if x < acc || x.is_nan() {
                    x
                } else {
                    acc
                }
            }
        }
    }
}

/// The output shape of reducing `axes` (sorted, resolved) of `shape`.
pub(crate) fn reduced_shape(shape: &Shape, axes: &[usize], keepdim: bool) -> Shape {
    let dims = shape
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect::<Vec<_>>();
    Shape::new(dims)
}

fn reduce_kernel<T: CpuSlice>(x: &Tensor, axes: &[usize], op: ReduceOp) -> Vec<T> {
    let kept = reduced_shape(x.shape(), axes, true);
    let src = x.data::<T>();
    let rank = x.rank();
    if src.is_empty() {
        return vec![op.init::<T>(); kept.numel()];
    }
    // Fast path: reducing every axis.
    if kept.numel() == 1 {
        return vec![src.iter().fold(op.init(), |a, &v| op.fold(a, v))];
    }
    let leading = axes.iter().enumerate().all(|(i, &a)| i == a);
    let trailing = axes.iter().rev().enumerate().all(|(i, &a)| a == rank - 1 - i);
    if leading {
        // Reduce whole rows into one: out[j] = fold over i of src[i * inner + j].
        let inner = kept.numel();
        let mut out = vec![op.init::<T>(); inner];
        for row in src.chunks(inner) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = op.fold(*o, v);
            }
        }
        return out;
    }
    if trailing {
        // Reduce each contiguous chunk to one value.
        let chunk = src.len() / kept.numel();
        return src
            .chunks(chunk)
            .map(|c| c.iter().fold(op.init(), |a, &v| op.fold(a, v)))
            .collect();
    }
    match op {
        ReduceOp::Sum => reduce_by_runs(src, x.dims(), axes, kept.numel(), ReduceOp::Sum),
        ReduceOp::Max => reduce_by_runs(src, x.dims(), axes, kept.numel(), ReduceOp::Max),
        ReduceOp::Min => reduce_by_runs(src, x.dims(), axes, kept.numel(), ReduceOp::Min),
    }
}

/// The general reduction, in runs: neighbouring axes that are both reduced
/// or both kept walk as one (the input is contiguous), and the last such
/// group is handled a whole run at a time (folded into one output when
/// reduced, folded element by element into a run of outputs when kept).
/// Each output receives its inputs in the input's row-major order, as an
/// element-by-element walk would: the same bits.
#[inline(always)]
fn reduce_by_runs<T: Element>(src: &[T], dims: &[usize], axes: &[usize], kept: usize, op: ReduceOp) -> Vec<T> {
    let groups = coalesce(dims, axes);
    let mut out = vec![op.init::<T>(); kept];
    let Some((&(run, run_reduced), outer)) = groups.split_last() else {
        return out;
    };
    let outer_dims: Vec<usize> = outer.iter().map(|&(len, _)| len).collect();
    let (in_strides, out_strides) = group_strides(&groups);
    let outer_in = &in_strides[..outer.len()];
    let outer_out = &out_strides[..outer.len()];
    for_each_strided(&outer_dims, [outer_in, outer_out], |_, [i, o]| {
        let values = &src[i..i + run];
        if run_reduced {
            out[o] = values.iter().fold(out[o], |a, &v| op.fold(a, v));
        } else {
            for (acc, &v) in out[o..o + run].iter_mut().zip(values) {
                *acc = op.fold(*acc, v);
            }
        }
    });
    out
}

/// `dims` with size-1 axes dropped and neighbours of the same kind
/// (reduced or kept) merged: `(length, reduced)` per group.
fn coalesce(dims: &[usize], axes: &[usize]) -> Vec<(usize, bool)> {
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (i, &d) in dims.iter().enumerate().filter(|&(_, &d)| d != 1) {
        let reduced = axes.contains(&i);
        match groups.last_mut() {
            Some((len, r)) if *r == reduced => *len *= d,
            _ => groups.push((d, reduced)),
        }
    }
    groups
}

/// The row-major strides of each group in the input, and in the output
/// (the kept groups' own row-major strides; 0 for reduced groups).
fn group_strides(groups: &[(usize, bool)]) -> (Vec<usize>, Vec<usize>) {
    let (mut in_strides, mut out_strides) = (vec![0; groups.len()], vec![0; groups.len()]);
    let (mut in_step, mut out_step) = (1, 1);
    for (g, &(len, reduced)) in groups.iter().enumerate().rev() {
        in_strides[g] = in_step;
        in_step *= len;
        if !reduced {
            out_strides[g] = out_step;
            out_step *= len;
        }
    }
    (in_strides, out_strides)
}

impl Tensor {
    /// Reduces `axes` (all if `None`) with `op`.
    pub fn reduce(&self, axes: Option<&[isize]>, keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        let name = match op {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        };
        self.reduce_named(name, axes, keepdim, op)
    }

    /// [`Tensor::reduce`], naming `name` in errors.
    fn reduce_named(&self, name: &'static str, axes: Option<&[isize]>, keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        let axes = self.shape().axes(name, axes)?;
        if op != ReduceOp::Sum && axes.iter().any(|&a| self.dims()[a] == 0) {
            return Err(Error::invalid(name, "max/min over an empty axis has no value"));
        }
        let shape = reduced_shape(self.shape(), &axes, keepdim);
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce(self, &axes, op, shape);
        }
        Ok(with_dtype!(self.dtype(), T => Tensor::from_typed(reduce_kernel::<T>(self, &axes, op), shape)))
    }

    /// Sum over `axes` (all if `None`).
    pub fn sum(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce(axes, keepdim, ReduceOp::Sum)
    }

    /// Sum of all elements, as a scalar tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(None, false)
    }

    /// Mean over `axes` (all if `None`).
    pub fn mean(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let count = self.reduced_count("mean", axes)?;
        self.sum(axes, keepdim)?.div_scalar(count as f64)
    }

    /// Maximum over `axes` (all if `None`).
    pub fn max(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce(axes, keepdim, ReduceOp::Max)
    }

    /// Minimum over `axes` (all if `None`).
    pub fn min(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce(axes, keepdim, ReduceOp::Min)
    }

    /// Variance over `axes`: biased (divide by n) or unbiased (n - 1).
    pub fn var(&self, axes: Option<&[isize]>, keepdim: bool, unbiased: bool) -> Result<Tensor> {
        let count = self.reduced_count("var", axes)?;
        let ddof = usize::from(unbiased);
        if count <= ddof {
            return Err(Error::invalid(
                "var",
                format!("needs more than {ddof} element(s) per reduction, got {count}"),
            ));
        }
        let centered = self.sub(&self.mean(axes, true)?)?;
        centered.square()?.sum(axes, keepdim)?.div_scalar((count - ddof) as f64)
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably (max subtracted first).
    pub fn logsumexp(&self, axes: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let m = self.reduce_named("logsumexp", axes, true, ReduceOp::Max)?;
        // An all -inf slice would give -inf - -inf = NaN; shift by 0 there instead.
        let m = m.unary(crate::UnaryOp::Clamp(f64::MIN, f64::INFINITY))?;
        let lse = self.sub(&m)?.exp()?.sum(axes, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(lse)
        } else {
            let axes = self.shape().axes("logsumexp", axes)?;
            lse.reshape(reduced_shape(self.shape(), &axes, false))
        }
    }

    /// Index of the largest value along `axis` for every other position, in
    /// row-major order of the remaining axes (the first index wins ties).
    pub fn argmax(&self, axis: isize) -> Result<Vec<usize>> {
        let a = self.shape().axis("argmax", axis)?;
        let size = self.dims()[a];
        if size == 0 {
            return Err(Error::invalid("argmax", "axis is empty"));
        }
        let outer: usize = self.dims()[..a].iter().product();
        let inner: usize = self.dims()[a + 1..].iter().product();
        let v = self.to_vec_f64()?;
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| v[(o * size + k) * inner + i];
                let best = (1..size).fold(0, |b, k| if at(k) > at(b) { k } else { b });
                out.push(best);
            }
        }
        Ok(out)
    }

    /// How many elements each output of a reduction over `axes` combines.
    pub fn reduced_count(&self, op: &'static str, axes: Option<&[isize]>) -> Result<usize> {
        let axes = self.shape().axes(op, axes)?;
        Ok(axes.iter().map(|&a| self.dims()[a]).product())
    }
}

#[cfg(test)]
mod tests {
    use super::ReduceOp;
    use crate::Tensor;

    #[test]
    fn sums_and_means_over_axes() {
        let a = Tensor::from_vec((0..24).map(|x| x as f64).collect(), [2, 3, 4]).unwrap();
        let s = a.sum(Some(&[0, 2]), false).unwrap();
        assert_eq!(s.dims(), &[3]);
        // axis-1 index j: sum over i,k of 12i + 4j + k = 2*4*4j + (0+12)*4 + 2*(0+1+2+3)
        let expect: Vec<f64> = (0..3).map(|j| 32.0 * j as f64 + 48.0 + 12.0).collect();
        assert_eq!(s.to_vec::<f64>().unwrap(), expect);
        assert_eq!(a.mean(None, false).unwrap().to_scalar().unwrap(), 11.5);
        assert_eq!(a.sum(Some(&[-1]), true).unwrap().dims(), &[2, 3, 1]);
        assert!(a.sum(Some(&[3]), false).is_err());
    }

    #[test]
    fn fast_paths_agree_with_the_general_path() {
        let a = Tensor::from_vec((0..60).map(|x| ((x * 37) % 11) as f64 - 5.0).collect(), [3, 4, 5]).unwrap();
        // leading [0,1], trailing [1,2], middle [1] and [0,2] (general) against a direct loop
        for axes in [vec![0isize, 1], vec![1, 2], vec![1], vec![0, 2], vec![0], vec![2]] {
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
                let got = a.reduce(Some(&axes), true, op).unwrap();
                for idx in 0..got.numel() {
                    let out_index: Vec<usize> = {
                        let mut rem = idx;
                        let mut v = vec![0; 3];
                        for d in (0..3).rev() {
                            v[d] = rem % got.dims()[d];
                            rem /= got.dims()[d];
                        }
                        v
                    };
                    let mut acc: Option<f64> = None;
                    for i in 0..3 {
                        for j in 0..4 {
                            for k in 0..5 {
                                let pos = [i, j, k];
                                if (0..3).all(|d| axes.contains(&(d as isize)) || pos[d] == out_index[d]) {
                                    let v = a.get(&pos).unwrap();
                                    acc = Some(match (acc, op) {
                                        (None, _) => v,
                                        (Some(s), ReduceOp::Sum) => s + v,
                                        (Some(s), ReduceOp::Max) => s.max(v),
                                        (Some(s), ReduceOp::Min) => s.min(v),
                                    });
                                }
                            }
                        }
                    }
                    assert_eq!(got.to_vec::<f64>().unwrap()[idx], acc.unwrap(), "axes {axes:?} {op:?}");
                }
            }
        }
    }

    #[test]
    fn var_max_argmax_logsumexp() {
        let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 9.0, 0.0], [2, 3]).unwrap();
        let v = a.var(Some(&[1]), false, true).unwrap().to_vec::<f64>().unwrap();
        // row [4, 9, 0]: mean 13/3, squared deviations sum to 122/3, over n-1 = 2
        assert!((v[0] - 1.0).abs() < 1e-12 && (v[1] - 61.0 / 3.0).abs() < 1e-12, "{v:?}");
        let vb = a.var(Some(&[1]), false, false).unwrap().to_vec::<f64>().unwrap();
        assert!((vb[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            a.max(Some(&[0]), false).unwrap().to_vec::<f64>().unwrap(),
            vec![4.0, 9.0, 3.0]
        );
        assert_eq!(a.argmax(1).unwrap(), vec![2, 1]);
        let l = a.logsumexp(Some(&[1]), false).unwrap().to_vec::<f64>().unwrap();
        let direct = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((l[0] - direct).abs() < 1e-12);
        let big = Tensor::from_vec(vec![1000.0f64, 1000.0], [2]).unwrap();
        assert!((big.logsumexp(None, false).unwrap().to_scalar().unwrap() - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }

    /// The reduction by plain index loops: every input element, in
    /// row-major order, folded into the output its kept indices name.
    fn reduce_by_hand(values: &[f64], dims: &[usize], axes: &[usize], op: ReduceOp) -> Vec<f64> {
        let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
        let out_len: usize = kept.iter().map(|&a| dims[a]).product();
        let init = if op == ReduceOp::Sum {
            0.0
        } else if op == ReduceOp::Max {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        let mut out = vec![init; out_len];
        let mut index = vec![0usize; dims.len()];
        for &v in values {
            let o = kept.iter().fold(0, |o, &a| o * dims[a] + index[a]);
            out[o] = match op {
                ReduceOp::Sum => out[o] + v,
                ReduceOp::Max => {
                    if v > out[o] || v.is_nan() {
                        v
                    } else {
                        out[o]
                    }
                }
                ReduceOp::Min => {
                    if v < out[o] || v.is_nan() {
                        v
                    } else {
                        out[o]
                    }
                }
            };
            for a in (0..dims.len()).rev() {
                index[a] += 1;
                if index[a] < dims[a] {
                    break;
                }
                index[a] = 0;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn every_reduction_equals_the_index_loop_bit_for_bit(
            dims in proptest::collection::vec(1usize..5, 1..5),
            mask in 0u32..16,
            seed in 0u64..1000,
        ) {
            let numel: usize = dims.iter().product();
            let mut rng = crate::Rng::new(seed);
            let values: Vec<f64> = (0..numel).map(|_| rng.normal()).collect();
            let axes: Vec<usize> = (0..dims.len()).filter(|a| mask & (1 << a) != 0).collect();
            let x = Tensor::from_vec(values.clone(), dims.clone()).unwrap();
            let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
                let got = x.reduce(Some(&signed), false, op).unwrap().to_vec::<f64>().unwrap();
                let want = reduce_by_hand(&values, &dims, &axes, op);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                proptest::prop_assert_eq!(bits(&got), bits(&want), "{:?} over {:?} of {:?}", op, axes, dims);
            }
        }
    }
}
