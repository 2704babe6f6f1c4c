//! The op registry: one entry per differentiable op a user can call, each
//! with the input domain its gradient check draws from (positive for `log`,
//! away from the kink for `relu`, distinct values for `max`, ...).
//!
//! The test suite and `ferrograd gradcheck` both enumerate [`entries`], and a
//! test fails if any [`OpKind`] is not the primary kind of some entry, so an
//! op cannot be added without a gradient check.

use crate::{Conv1dParams, Conv2dParams, OpKind, PrimitiveOp, Var};
use ferrograd_engine::{DType, Result, Rng, Shape, Tensor, UnaryOp, Window2d};
use std::sync::Arc;

/// A differentiable function of some input `Var`s.
pub type VarFn = Box<dyn Fn(&[Var]) -> Result<Var>>;

/// One drawn test case: inputs (f64) and the function of them to check.
pub struct Case {
    /// The inputs, in f64.
    pub inputs: Vec<Tensor>,
    /// The op applied to the inputs.
    pub apply: VarFn,
}

/// A registered op: its name, the recorded kind it exercises, and how to
/// draw a valid case from base dimensions and a generator.
pub struct OpEntry {
    /// The op's user-facing name.
    pub name: &'static str,
    /// The recorded op kind this entry proves.
    pub kind: OpKind,
    /// Draws a case. `dims` are base dimensions (rank 1..=3, each 1..=4)
    /// from which the entry derives its input shapes.
    pub build: fn(&[usize], &mut Rng) -> Case,
    /// Finite-difference step and tolerances, if the defaults do not fit.
    pub tolerance: Option<(f64, f64, f64)>,
    /// Relative tolerance where forward mode is compared with reverse mode
    /// (the dot-product test, forward-over-reverse against
    /// reverse-over-reverse), if [`CROSS_MODE_TOLERANCE`] does not fit (an
    /// op that rounds through f32 cannot meet an f64 tolerance).
    pub cross_mode_tolerance: Option<f64>,
}

/// The relative tolerance of comparisons between modes, for ops computed
/// in f64: both sides are exact up to rounding.
pub const CROSS_MODE_TOLERANCE: f64 = 1e-10;

impl OpEntry {
    /// The tolerance of comparisons between modes for this entry.
    pub fn cross_mode_tolerance(&self) -> f64 {
        self.cross_mode_tolerance.unwrap_or(CROSS_MODE_TOLERANCE)
    }
}

// ----- input domains --------------------------------------------------------

/// Standard normal values.
pub fn real(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, DType::F64, rng).expect("valid normal")
}

/// Values in [0.5, 2]: the domain of log, sqrt, rsqrt and a pow base.
pub fn positive(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(shape.to_vec(), 0.5, 2.0, DType::F64, rng).expect("valid uniform")
}

/// Normal values at least `margin` away from every point in `kinks`, where
/// the function is not differentiable.
pub fn away_from(shape: &[usize], kinks: &[f64], margin: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| loop {
            let v = rng.normal();
            if kinks.iter().all(|k| (v - k).abs() >= margin) {
                break v;
            }
        })
        .collect();
    Tensor::from_vec(values, shape.to_vec()).expect("length matches")
}

/// Distinct values (a shuffled grid plus jitter), so max/min have no ties.
pub fn distinct(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let values: Vec<f64> = order
        .iter()
        .map(|&i| (i as f64 - n as f64 / 2.0) * 0.3 + rng.uniform_range(-0.05, 0.05))
        .collect();
    Tensor::from_vec(values, shape.to_vec()).expect("length matches")
}

/// A shape that broadcasts with `dims`: some axes set to 1, maybe fewer leading axes.
fn broadcast_partner(dims: &[usize], rng: &mut Rng) -> Vec<usize> {
    let drop = rng.below(dims.len());
    dims[drop..]
        .iter()
        .map(|&d| if rng.below(3) == 0 { 1 } else { d })
        .collect()
}

/// Two broadcast-compatible shapes in random order.
fn broadcast_pair(dims: &[usize], rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let partner = broadcast_partner(dims, rng);
    if rng.below(2) == 0 {
        (dims.to_vec(), partner)
    } else {
        (partner, dims.to_vec())
    }
}

/// A random non-empty subset of `0..rank` as isize axes.
fn random_axes(rank: usize, rng: &mut Rng) -> Vec<isize> {
    loop {
        let axes: Vec<isize> = (0..rank as isize).filter(|_| rng.below(2) == 0).collect();
        if !axes.is_empty() {
            return axes;
        }
    }
}

fn unary(inputs: Vec<Tensor>, f: fn(&Var) -> Result<Var>) -> Case {
    Case {
        inputs,
        apply: Box::new(move |v| f(&v[0])),
    }
}

fn binary(inputs: Vec<Tensor>, f: fn(&Var, &Var) -> Result<Var>) -> Case {
    Case {
        inputs,
        apply: Box::new(move |v| f(&v[0], &v[1])),
    }
}

/// Two broadcasting inputs whose paired values stay `margin` apart (for max/min).
fn separated_pair(dims: &[usize], rng: &mut Rng) -> Vec<Tensor> {
    let (sa, sb) = broadcast_pair(dims, rng);
    let a = distinct(&sa, rng);
    loop {
        let b = real(&sb, rng);
        let gap = a
            .sub(&b)
            .expect("broadcastable")
            .abs()
            .expect("a CPU op")
            .min(None, false)
            .expect("non-empty");
        if gap.to_scalar().expect("scalar") > 0.02 {
            return vec![a, b];
        }
    }
}

macro_rules! entry {
    ($name:literal, $kind:ident, $build:expr) => {
        OpEntry {
            name: $name,
            kind: OpKind::$kind,
            build: $build,
            tolerance: None,
            cross_mode_tolerance: None,
        }
    };
}

/// Every registered op, in a stable order.
pub fn entries() -> Vec<OpEntry> {
    let mut all = unary_entries();
    all.extend(binary_entries());
    all.extend(reduction_entries());
    all.extend(shape_entries());
    all.extend(layer_entries());
    all.extend(conv_entries());
    all.extend(custom_entries());
    all
}

fn unary_entries() -> Vec<OpEntry> {
    vec![
        entry!("neg", Neg, |d, r| unary(vec![real(d, r)], Var::neg)),
        entry!("abs", Abs, |d, r| unary(vec![away_from(d, &[0.0], 0.05, r)], Var::abs)),
        entry!("exp", Exp, |d, r| unary(vec![real(d, r)], Var::exp)),
        entry!("log", Log, |d, r| unary(vec![positive(d, r)], Var::log)),
        entry!("sqrt", Sqrt, |d, r| unary(vec![positive(d, r)], Var::sqrt)),
        entry!("rsqrt", Rsqrt, |d, r| unary(vec![positive(d, r)], Var::rsqrt)),
        entry!("square", Square, |d, r| unary(vec![real(d, r)], Var::square)),
        entry!("recip", Recip, |d, r| unary(
            vec![away_from(d, &[0.0], 0.5, r)],
            Var::recip
        )),
        entry!("relu", Relu, |d, r| unary(
            vec![away_from(d, &[0.0], 0.05, r)],
            Var::relu
        )),
        entry!("leaky_relu", LeakyRelu, |d, r| unary(
            vec![away_from(d, &[0.0], 0.05, r)],
            |x| x.leaky_relu(0.1)
        )),
        entry!("sigmoid", Sigmoid, |d, r| unary(vec![real(d, r)], Var::sigmoid)),
        entry!("tanh", Tanh, |d, r| unary(vec![real(d, r)], Var::tanh)),
        entry!("gelu", Gelu, |d, r| unary(vec![real(d, r)], Var::gelu)),
        entry!("silu", Silu, |d, r| unary(vec![real(d, r)], Var::silu)),
        entry!("sin", Sin, |d, r| unary(vec![real(d, r)], Var::sin)),
        entry!("cos", Cos, |d, r| unary(vec![real(d, r)], Var::cos)),
        entry!("clamp", Clamp, |d, r| Case {
            inputs: vec![away_from(d, &[-0.5, 0.7], 0.05, r)],
            apply: Box::new(|v| v[0].clamp(-0.5, 0.7)),
        }),
        entry!("add_scalar", AddScalar, |d, r| unary(vec![real(d, r)], |x| x
            .add_scalar(1.5))),
        entry!("sub_scalar", AddScalar, |d, r| unary(vec![real(d, r)], |x| x
            .sub_scalar(0.25))),
        entry!("mul_scalar", MulScalar, |d, r| unary(vec![real(d, r)], |x| x
            .mul_scalar(-2.5))),
        entry!("div_scalar", MulScalar, |d, r| unary(vec![real(d, r)], |x| x
            .div_scalar(3.0))),
        entry!("pow_scalar", PowScalar, |d, r| {
            let p = [-1.5, 0.5, 2.0, 3.0][r.below(4)];
            Case {
                inputs: vec![positive(d, r)],
                apply: Box::new(move |v| v[0].pow_scalar(p)),
            }
        }),
        OpEntry {
            name: "cast",
            kind: OpKind::Cast,
            build: |d, r| unary(vec![real(d, r)], |x| x.to_dtype(DType::F32)?.to_dtype(DType::F64)),
            // f32 rounding is a step function at 1e-7 scale: use a wide step.
            tolerance: Some((1e-2, 1e-4, 1e-3)),
            // J v rounds v to f32 and J^T u rounds u: the two inner products
            // differ by f32 rounding (2^-24 relative per term).
            cross_mode_tolerance: Some(1e-6),
        },
    ]
}

fn binary_entries() -> Vec<OpEntry> {
    fn pair(
        d: &[usize],
        r: &mut Rng,
        first: fn(&[usize], &mut Rng) -> Tensor,
        second: fn(&[usize], &mut Rng) -> Tensor,
    ) -> Vec<Tensor> {
        let (sa, sb) = broadcast_pair(d, r);
        vec![first(&sa, r), second(&sb, r)]
    }
    fn nonzero(s: &[usize], r: &mut Rng) -> Tensor {
        away_from(s, &[0.0], 0.5, r)
    }
    vec![
        entry!("add", Add, |d, r| binary(pair(d, r, real, real), Var::add)),
        entry!("sub", Sub, |d, r| binary(pair(d, r, real, real), Var::sub)),
        entry!("mul", Mul, |d, r| binary(pair(d, r, real, real), Var::mul)),
        entry!("div", Div, |d, r| binary(pair(d, r, real, nonzero), Var::div)),
        entry!("pow", Pow, |d, r| binary(pair(d, r, positive, real), Var::pow)),
        entry!("maximum", Maximum, |d, r| binary(separated_pair(d, r), Var::maximum)),
        entry!("minimum", Minimum, |d, r| binary(separated_pair(d, r), Var::minimum)),
        entry!("where", Where, |d, r| {
            let (sa, sb) = broadcast_pair(d, r);
            let mask_shape = broadcast_partner(d, r);
            let mask = Tensor::rand_uniform(mask_shape, 0.0, 1.0, DType::F64, r)
                .expect("valid")
                .gt_scalar(0.5)
                .expect("a CPU op");
            Case {
                inputs: vec![real(&sa, r), real(&sb, r)],
                apply: Box::new(move |v| Var::where_mask(&mask, &v[0], &v[1])),
            }
        }),
        entry!("matmul", Matmul, |d, r| matmul_case(d, r, false, false)),
        entry!("matmul_tn", Matmul, |d, r| matmul_case(d, r, true, false)),
        entry!("matmul_nt", Matmul, |d, r| matmul_case(d, r, false, true)),
        entry!("matmul_tt", Matmul, |d, r| matmul_case(d, r, true, true)),
    ]
}

/// `op(A) op(B)` with `m, k, n` taken from the base dims (padded randomly).
fn matmul_case(d: &[usize], r: &mut Rng, ta: bool, tb: bool) -> Case {
    let mut pick = |i: usize| d.get(i).copied().unwrap_or_else(|| 1 + r.below(5));
    let (m, k, n) = (pick(0), pick(1), pick(2));
    let a = if ta { [k, m] } else { [m, k] };
    let b = if tb { [n, k] } else { [k, n] };
    Case {
        inputs: vec![real(&a, r), real(&b, r)],
        apply: Box::new(move |v| v[0].matmul_t(ta, &v[1], tb)),
    }
}

fn reduction_entries() -> Vec<OpEntry> {
    /// A reduction over random axes (sometimes all), keepdim random.
    fn reduce(
        d: &[usize],
        r: &mut Rng,
        input: fn(&[usize], &mut Rng) -> Tensor,
        f: fn(&Var, Option<&[isize]>, bool) -> Result<Var>,
    ) -> Case {
        let axes = if r.below(4) == 0 {
            None
        } else {
            Some(random_axes(d.len(), r))
        };
        let keepdim = r.below(2) == 0;
        Case {
            inputs: vec![input(d, r)],
            apply: Box::new(move |v| f(&v[0], axes.as_deref(), keepdim)),
        }
    }
    fn axis_op(d: &[usize], r: &mut Rng, f: fn(&Var, isize) -> Result<Var>) -> Case {
        let axis = r.below(d.len()) as isize - if r.below(2) == 0 { d.len() as isize } else { 0 };
        Case {
            inputs: vec![real(d, r).mul_scalar(2.0).expect("a CPU op")],
            apply: Box::new(move |v| f(&v[0], axis)),
        }
    }
    vec![
        entry!("sum", Sum, |d, r| reduce(d, r, real, Var::sum)),
        entry!("mean", Sum, |d, r| reduce(d, r, real, Var::mean)),
        entry!("max", Max, |d, r| reduce(d, r, distinct, Var::max)),
        entry!("min", Min, |d, r| reduce(d, r, distinct, Var::min)),
        entry!("var", Sum, |d, r| {
            let dims: Vec<usize> = d.iter().map(|&x| x + 1).collect(); // >= 2 per axis
            reduce(&dims, r, real, |x, a, k| x.var(a, k, false))
        }),
        entry!("var_unbiased", Sum, |d, r| {
            let dims: Vec<usize> = d.iter().map(|&x| x + 1).collect();
            reduce(&dims, r, real, |x, a, k| x.var(a, k, true))
        }),
        entry!("logsumexp", LogSumExp, |d, r| reduce(d, r, real, Var::logsumexp)),
        entry!("softmax", Softmax, |d, r| axis_op(d, r, Var::softmax)),
        entry!("log_softmax", LogSoftmax, |d, r| axis_op(d, r, Var::log_softmax)),
    ]
}

fn shape_entries() -> Vec<OpEntry> {
    vec![
        entry!("reshape", Reshape, |d, r| {
            let target: Vec<usize> = d.iter().rev().copied().collect();
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].reshape(target.clone())),
            }
        }),
        entry!("squeeze", Reshape, |d, r| {
            let mut dims = d.to_vec();
            let at = r.below(dims.len() + 1);
            dims.insert(at, 1);
            Case {
                inputs: vec![real(&dims, r)],
                apply: Box::new(move |v| v[0].squeeze(at as isize)),
            }
        }),
        entry!("unsqueeze", Reshape, |d, r| {
            let at = r.below(d.len() + 1) as isize;
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].unsqueeze(at)),
            }
        }),
        entry!("permute", Permute, |d, r| {
            let mut axes: Vec<usize> = (0..d.len()).collect();
            r.shuffle(&mut axes);
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].permute(&axes)),
            }
        }),
        entry!("transpose", Permute, |d, r| {
            let (a, b) = (r.below(d.len()) as isize, r.below(d.len()) as isize);
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].transpose(a, b)),
            }
        }),
        entry!("broadcast_to", BroadcastTo, |d, r| {
            let source = broadcast_partner(d, r);
            let mut target = d.to_vec();
            if r.below(2) == 0 {
                target.insert(0, 2);
            }
            Case {
                inputs: vec![real(&source, r)],
                apply: Box::new(move |v| v[0].broadcast_to(target.clone())),
            }
        }),
        entry!("sum_to", SumTo, |d, r| {
            let target = broadcast_partner(d, r);
            let mut source = d.to_vec();
            if r.below(2) == 0 {
                source.insert(0, 3);
            }
            let target = Shape::new(target);
            Case {
                inputs: vec![real(&source, r)],
                apply: Box::new(move |v| v[0].sum_to(target.clone())),
            }
        }),
        entry!("concat", Concat, |d, r| {
            let axis = r.below(d.len());
            let pieces = 2 + r.below(2);
            let inputs = (0..pieces)
                .map(|_| {
                    let mut s = d.to_vec();
                    s[axis] = 1 + r.below(3);
                    real(&s, r)
                })
                .collect();
            Case {
                inputs,
                apply: Box::new(move |v| Var::concat(v, axis as isize)),
            }
        }),
        entry!("narrow", Narrow, |d, r| {
            let axis = r.below(d.len());
            let mut s = d.to_vec();
            s[axis] += 2;
            let start = r.below(s[axis]);
            let len = 1 + r.below(s[axis] - start);
            Case {
                inputs: vec![real(&s, r)],
                apply: Box::new(move |v| v[0].narrow(axis as isize, start, len)),
            }
        }),
        entry!("pad_zeros", PadZeros, |d, r| {
            let axis = r.below(d.len()) as isize;
            let (before, after) = (r.below(3), r.below(3));
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].pad_zeros(axis, before, after)),
            }
        }),
        entry!("index_select", IndexSelect, |d, r| {
            let rows = d[0];
            let indices: Vec<usize> = (0..1 + r.below(5)).map(|_| r.below(rows)).collect();
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].index_select(&indices)),
            }
        }),
        entry!("index_add", IndexAdd, |d, r| {
            let rows = 1 + r.below(4);
            let indices: Vec<usize> = (0..d[0]).map(|_| r.below(rows)).collect();
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| v[0].index_add(&indices, rows)),
            }
        }),
        entry!("gather", Gather, |d, r| {
            let (n, c) = (d[0], d.get(1).copied().unwrap_or(3));
            let labels: Vec<usize> = (0..n).map(|_| r.below(c)).collect();
            Case {
                inputs: vec![real(&[n, c], r)],
                apply: Box::new(move |v| v[0].gather(&labels)),
            }
        }),
        entry!("scatter", Scatter, |d, r| {
            let (n, c) = (d[0], d.get(1).copied().unwrap_or(3));
            let labels: Vec<usize> = (0..n).map(|_| r.below(c)).collect();
            Case {
                inputs: vec![real(&[n], r)],
                apply: Box::new(move |v| v[0].scatter(&labels, c)),
            }
        }),
    ]
}

// ----- layers' ops (composites, `nn_ops.rs`) --------------------------------

/// Layer norm over the last 1..=rank axes of distinct values (every group
/// has at least 2 elements 0.2 apart, so its variance is away from 0),
/// with no affine tensors, a weight, or a weight and a bias.
fn layer_norm_case(d: &[usize], r: &mut Rng) -> Case {
    let mut dims = d.to_vec();
    *dims.last_mut().expect("rank >= 1") += 1;
    let normalized: Vec<usize> = dims[r.below(dims.len())..].to_vec();
    let mut inputs = vec![distinct(&dims, r)];
    for _ in 0..r.below(3) {
        inputs.push(real(&normalized, r));
    }
    Case {
        inputs,
        apply: Box::new(move |v| v[0].layer_norm(&normalized, v.get(1), v.get(2), 1e-5)),
    }
}

/// Dropout with a mask drawn once per case (fixed for the check).
fn dropout_case(d: &[usize], r: &mut Rng) -> Case {
    let p = [0.2, 0.5][r.below(2)];
    let mask = crate::dropout_mask(d.to_vec(), p, r).expect("p is a probability");
    Case {
        inputs: vec![real(d, r)],
        apply: Box::new(move |v| v[0].dropout_with_mask(&mask, p)),
    }
}

/// An embedding table of `d[0] + 1` rows and indices shaped by the other
/// base dims (or `[3]`), repeated rows likely.
fn embedding_case(d: &[usize], r: &mut Rng) -> Case {
    let rows = d[0] + 1;
    let index_dims: Vec<usize> = if d.len() > 1 { d[1..].to_vec() } else { vec![3] };
    let count: usize = index_dims.iter().product();
    let indices: Vec<usize> = (0..count).map(|_| r.below(rows)).collect();
    let dim = 1 + r.below(3);
    Case {
        inputs: vec![real(&[rows, dim], r)],
        apply: Box::new(move |v| v[0].embedding(&indices, &index_dims)),
    }
}

fn layer_entries() -> Vec<OpEntry> {
    vec![
        entry!("layer_norm", Rsqrt, layer_norm_case),
        entry!("dropout", Mul, dropout_case),
        entry!("embedding", IndexSelect, embedding_case),
    ]
}

// ----- convolution and pooling ----------------------------------------------

/// A random small window (kernel 1..=3, stride 1..=2, dilation 1..=2,
/// padding up to half the kernel) and an image size `(h, w)` it fits.
fn window_and_image(r: &mut Rng) -> (Window2d, usize, usize) {
    let mut pick = || (1 + r.below(3), 1 + r.below(2), 1 + r.below(2));
    let ((kh, sh, dh), (kw, sw, dw)) = (pick(), pick());
    let window = Window2d::new((kh, kw))
        .stride((sh, sw))
        .dilation((dh, dw))
        .padding((r.below(kh / 2 + 1), r.below(kw / 2 + 1)));
    let size = |k: usize, d: usize, p: usize, extra: usize| (d * (k - 1) + 1).saturating_sub(2 * p).max(1) + extra;
    let h = size(kh, dh, window.padding.0, r.below(3));
    let w = size(kw, dw, window.padding.1, r.below(3));
    (window, h, w)
}

/// A conv case: input `[n, c, h, w]` (or `[n, c, w]` for 1-D), weight,
/// bias, and the params, with `groups` 1 or 2.
fn conv_case(d: &[usize], r: &mut Rng, one_d: bool) -> Case {
    let (mut window, mut h, w) = window_and_image(r);
    if one_d {
        window = Window2d::new((1, window.kernel.1))
            .stride((1, window.stride.1))
            .padding((0, window.padding.1))
            .dilation((1, window.dilation.1));
        h = 1;
    }
    let groups = 1 + r.below(2);
    let n = d[0].min(2);
    let (c, o) = (groups * (1 + r.below(2)), groups * (1 + r.below(2)));
    let (kh, kw) = window.kernel;
    let params = Conv2dParams {
        stride: window.stride,
        padding: window.padding,
        dilation: window.dilation,
        groups,
    };
    if one_d {
        let p1 = Conv1dParams {
            stride: params.stride.1,
            padding: params.padding.1,
            dilation: params.dilation.1,
            groups,
        };
        return Case {
            inputs: vec![real(&[n, c, w], r), real(&[o, c / groups, kw], r), real(&[o], r)],
            apply: Box::new(move |v| v[0].conv1d(&v[1], Some(&v[2]), &p1)),
        };
    }
    Case {
        inputs: vec![real(&[n, c, h, w], r), real(&[o, c / groups, kh, kw], r), real(&[o], r)],
        apply: Box::new(move |v| v[0].conv2d(&v[1], Some(&v[2]), &params)),
    }
}

fn conv_entries() -> Vec<OpEntry> {
    vec![
        entry!("unfold", Unfold, |d, r| {
            let (window, h, w) = window_and_image(r);
            Case {
                inputs: vec![real(&[d[0].min(2), d.get(1).map_or(1, |&c| c.min(2)), h, w], r)],
                apply: Box::new(move |v| v[0].unfold(&window)),
            }
        }),
        entry!("fold", Fold, |d, r| {
            let (window, h, w) = window_and_image(r);
            let (oh, ow) = window.output_size("fold", h, w).expect("the window fits");
            let c = d.get(1).map_or(1, |&c| c.min(2));
            Case {
                inputs: vec![real(&[d[0].min(2), c * window.taps(), oh * ow], r)],
                apply: Box::new(move |v| v[0].fold(&window, h, w)),
            }
        }),
        entry!("conv2d", Unfold, |d, r| conv_case(d, r, false)),
        entry!("conv1d", Unfold, |d, r| conv_case(d, r, true)),
        // Distinct values: no ties in any window, so max is differentiable.
        entry!("max_pool2d", Unfold, |d, r| {
            // Redraw windows that lie entirely in the padding (refused).
            let (window, h, w) = loop {
                let (window, h, w) = window_and_image(r);
                let probe = Var::constant(Tensor::zeros([1, 1, h, w], DType::F64).expect("small"));
                if probe.max_pool2d(&window).is_ok() {
                    break (window, h, w);
                }
            };
            Case {
                inputs: vec![distinct(&[d[0].min(2), 2, h, w], r)],
                apply: Box::new(move |v| v[0].max_pool2d(&window)),
            }
        }),
        entry!("avg_pool2d", Unfold, |d, r| {
            let (window, h, w) = window_and_image(r);
            Case {
                inputs: vec![real(&[d[0].min(2), 2, h, w], r)],
                apply: Box::new(move |v| v[0].avg_pool2d(&window)),
            }
        }),
    ]
}

// ----- user-defined primitives ----------------------------------------------

/// `softplus(x) = log(1 + e^x)` as one primitive with its own forward rule:
/// the registry's proof that a user op's rules are dispatched in both modes.
#[derive(Debug)]
struct SoftplusPrimitive;

impl PrimitiveOp for SoftplusPrimitive {
    fn name(&self) -> &'static str {
        "softplus"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        inputs[0].unary(UnaryOp::Exp)?.add_scalar(1.0)?.unary(UnaryOp::Log)
    }

    fn backward(&self, inputs: &[Var], _out: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        Ok(vec![Some(grad.mul(&inputs[0].sigmoid()?)?)])
    }

    fn jvp(&self, inputs: &[Var], _out: &Var, tangents: &[Option<Var>]) -> Option<Result<Option<Var>>> {
        Some(tangents[0].as_ref().map(|t| t.mul(&inputs[0].sigmoid()?)).transpose())
    }
}

/// `a * b^2` as one primitive without a forward rule: its JVP is derived
/// from the backward rule (the double VJP).
#[derive(Debug)]
struct ScaledSquarePrimitive;

impl PrimitiveOp for ScaledSquarePrimitive {
    fn name(&self) -> &'static str {
        "scaled_square"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        inputs[0].mul(&inputs[1].mul(&inputs[1])?)
    }

    fn backward(&self, inputs: &[Var], _out: &Var, grad: &Var) -> Result<Vec<Option<Var>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = grad.mul(&b.square()?)?.sum_to(a.shape().clone())?;
        let gb = grad.mul(a)?.mul(b)?.mul_scalar(2.0)?.sum_to(b.shape().clone())?;
        Ok(vec![Some(ga), Some(gb)])
    }
}

fn custom_entries() -> Vec<OpEntry> {
    vec![
        entry!("custom_softplus", Custom, |d, r| {
            let op: Arc<dyn PrimitiveOp> = Arc::new(SoftplusPrimitive);
            Case {
                inputs: vec![real(d, r)],
                apply: Box::new(move |v| Var::apply_primitive(op.clone(), v)),
            }
        }),
        entry!("custom_scaled_square", Custom, |d, r| {
            let op: Arc<dyn PrimitiveOp> = Arc::new(ScaledSquarePrimitive);
            let (sa, sb) = broadcast_pair(d, r);
            Case {
                inputs: vec![real(&sa, r), real(&sb, r)],
                apply: Box::new(move |v| Var::apply_primitive(op.clone(), v)),
            }
        }),
    ]
}
