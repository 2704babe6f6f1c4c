//! Engine calls: creation with random (sometimes absurd) shapes and values,
//! then elementwise, reduction, matmul, shape and index ops on what was made.

use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::engine::{DType, Rng, Tensor};

/// Results larger than this are not kept for later calls.
const KEEP_LIMIT: usize = 4096;

/// A random dtype.
pub fn dtype(g: &mut Gen) -> DType {
    g.pick(&[DType::F32, DType::F64])
}

/// A plausible small tensor of random values (no call recorded).
pub fn small_tensor(g: &mut Gen) -> Tensor {
    let dims = g.small_dims();
    let n = dims.iter().product();
    let dt = dtype(g);
    Tensor::from_f64_slice(&g.floats(n), dims, dt).expect("length matches")
}

/// Runs one engine case: a few creations, then random ops on the results.
pub fn run(g: &mut Gen, s: &mut CaseStats) {
    let mut pool: Vec<Tensor> = (0..2).map(|_| small_tensor(g)).collect();
    for _ in 0..1 + g.below(3) {
        if let Some(t) = create(g, s) {
            keep(&mut pool, t);
        }
    }
    for _ in 0..2 + g.below(5) {
        let a = pool[g.below(pool.len())].clone();
        let b = pool[g.below(pool.len())].clone();
        if let Some(t) = op(g, s, &a, &b) {
            keep(&mut pool, t);
        }
    }
}

/// Keeps `t` for later calls if it is small.
fn keep(pool: &mut Vec<Tensor>, t: Tensor) {
    if t.numel() <= KEEP_LIMIT {
        pool.push(t);
    }
}

/// One creation call.
pub fn create(g: &mut Gen, s: &mut CaseStats) -> Option<Tensor> {
    let dims = g.dims();
    let dt = dtype(g);
    let (x, y) = (g.float(), g.float());
    let mut rng = Rng::new(g.u64());
    match g.below(9) {
        0 => s.call(format!("Tensor::zeros({dims:?}, {dt:?})"), || Tensor::zeros(dims, dt)),
        1 => s.call(format!("Tensor::full({dims:?}, {x}, {dt:?})"), || {
            Tensor::full(dims, x, dt)
        }),
        2 => {
            let n = g.count();
            s.call(format!("Tensor::eye({n}, {dt:?})"), || Tensor::eye(n, dt))
        }
        3 => {
            let step = if g.wild && g.chance(0.2) { 1e-12 } else { g.float() };
            s.call(format!("Tensor::arange({x}, {y}, {step}, {dt:?})"), || {
                Tensor::arange(x, y, step, dt)
            })
        }
        4 => s.call(format!("Tensor::rand_uniform({dims:?}, {x}, {y})"), || {
            Tensor::rand_uniform(dims, x.min(y), x.max(y), dt, &mut rng)
        }),
        5 => s.call(format!("Tensor::rand_normal({dims:?}, {x}, {y})"), || {
            Tensor::rand_normal(dims, x, y.abs(), dt, &mut rng)
        }),
        6 => {
            let len = if g.chance(0.7) {
                dims.iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(d))
                    .map_or(64, |n| n.min(64))
            } else {
                g.below(9)
            };
            let data = g.floats(len);
            s.call(format!("Tensor::from_f64_slice(len {len}, {dims:?})"), || {
                Tensor::from_f64_slice(&data, dims, dt)
            })
        }
        7 => s.infallible(format!("Tensor::scalar({x}, {dt:?})"), || Tensor::scalar(x, dt)),
        _ => s.call(format!("Tensor::ones({dims:?}, {dt:?})"), || Tensor::ones(dims, dt)),
    }
}

/// One op on `a` (and `b`).
fn op(g: &mut Gen, s: &mut CaseStats, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    let (sa, sb) = (
        format!("{:?}{:?}", a.dtype(), a.dims()),
        format!("{:?}{:?}", b.dtype(), b.dims()),
    );
    match g.below(6) {
        0 => elementwise(g, s, a, b, &sa, &sb),
        1 => reduce(g, s, a, &sa),
        2 => matmul(g, s, a, b, &sa, &sb),
        3 => shape_op(g, s, a, b, &sa, &sb),
        4 => index_op(g, s, a, &sa),
        _ => read_op(g, s, a, b, &sa),
    }
}

/// Elementwise unary, scalar and binary ops.
fn elementwise(g: &mut Gen, s: &mut CaseStats, a: &Tensor, b: &Tensor, sa: &str, sb: &str) -> Option<Tensor> {
    let c = g.float();
    match g.below(8) {
        0 => s.call(format!("{sa}.exp().log().sqrt().tanh()"), || {
            a.exp()?.log()?.sqrt()?.tanh()
        }),
        1 => s.call(format!("{sa}.pow_scalar({c}).recip().gelu()"), || {
            a.pow_scalar(c)?.recip()?.gelu()
        }),
        2 => s.call(format!("{sa}.clamp({c}, {})", -c), || a.clamp(c, -c)),
        3 => s.call(format!("{sa}.add({sb})"), || a.add(b)),
        4 => s.call(format!("{sa}.pow({sb})"), || a.pow(b)),
        5 => s.call(format!("{sa}.div({sb}).maximum({sa})"), || a.div(b)?.maximum(a)),
        6 => s.call(format!("Tensor::where_cond({sa}.gt_scalar({c}), {sa}, {sb})"), || {
            Tensor::where_cond(&a.gt_scalar(c)?, a, b)
        }),
        _ => s.call(format!("{sa}.leaky_relu({c}).maximum_scalar({c})"), || {
            a.leaky_relu(c)?.maximum_scalar(c)
        }),
    }
}

/// Reductions over random axes.
fn reduce(g: &mut Gen, s: &mut CaseStats, a: &Tensor, sa: &str) -> Option<Tensor> {
    let axes: Vec<isize> = (0..g.below(3)).map(|_| g.axis()).collect();
    let keep = g.chance(0.5);
    let axes_opt = if g.chance(0.2) { None } else { Some(axes.as_slice()) };
    let d = format!("({axes_opt:?}, {keep})");
    match g.below(7) {
        0 => s.call(format!("{sa}.sum{d}"), || a.sum(axes_opt, keep)),
        1 => s.call(format!("{sa}.mean{d}"), || a.mean(axes_opt, keep)),
        2 => s.call(format!("{sa}.max{d}"), || a.max(axes_opt, keep)),
        3 => s.call(format!("{sa}.var{d}"), || a.var(axes_opt, keep, true)),
        4 => s.call(format!("{sa}.logsumexp{d}"), || a.logsumexp(axes_opt, keep)),
        5 => {
            let axis = g.axis();
            s.call(format!("{sa}.argmax({axis})"), || {
                a.argmax(axis).map(|v| Tensor::scalar(v.len() as f64, a.dtype()))
            })
        }
        _ => {
            let axis = g.axis();
            s.call(format!("{sa}.softmax({axis}).log_softmax({axis})"), || {
                a.softmax(axis)?.log_softmax(axis)
            })
        }
    }
}

/// Matrix products.
fn matmul(g: &mut Gen, s: &mut CaseStats, a: &Tensor, b: &Tensor, sa: &str, sb: &str) -> Option<Tensor> {
    let (ta, tb) = (g.chance(0.5), g.chance(0.5));
    if g.chance(0.5) {
        s.call(format!("{sa}.matmul({sb})"), || a.matmul(b))
    } else {
        s.call(format!("{sa}.matmul_t({ta}, {sb}, {tb})"), || a.matmul_t(ta, b, tb))
    }
}

/// Reshape, permute, broadcast and friends.
fn shape_op(g: &mut Gen, s: &mut CaseStats, a: &Tensor, b: &Tensor, sa: &str, sb: &str) -> Option<Tensor> {
    let dims = g.dims();
    let (ax, ax2) = (g.axis(), g.axis());
    let (n1, n2) = (g.count(), g.count());
    match g.below(9) {
        0 => s.call(format!("{sa}.reshape({dims:?})"), || a.reshape(dims)),
        1 => {
            let perm: Vec<usize> = (0..a.rank()).map(|_| g.below(a.rank() + 1)).collect();
            s.call(format!("{sa}.permute({perm:?})"), || a.permute(&perm))
        }
        2 => s.call(format!("{sa}.transpose({ax}, {ax2})"), || a.transpose(ax, ax2)),
        3 => s.call(format!("{sa}.broadcast_to({dims:?})"), || a.broadcast_to(dims)),
        4 => s.call(format!("{sa}.sum_to({dims:?})"), || a.sum_to(dims)),
        5 => s.call(format!("{sa}.squeeze({ax}).unsqueeze({ax2})"), || {
            a.squeeze(ax)?.unsqueeze(ax2)
        }),
        6 => s.call(format!("Tensor::concat([{sa}, {sb}], {ax})"), || {
            Tensor::concat(&[a.clone(), b.clone()], ax)
        }),
        7 => s.call(format!("{sa}.narrow({ax}, {n1}, {n2})"), || a.narrow(ax, n1, n2)),
        _ => s.call(format!("{sa}.pad_zeros({ax}, {n1}, {n2})"), || a.pad_zeros(ax, n1, n2)),
    }
}

/// Row selection, scatter and gather.
fn index_op(g: &mut Gen, s: &mut CaseStats, a: &Tensor, sa: &str) -> Option<Tensor> {
    let rows = a.dims().first().copied().unwrap_or(0);
    let idx: Vec<usize> = (0..g.below(5)).map(|_| g.index(rows)).collect();
    let n = g.count();
    match g.below(4) {
        0 => s.call(format!("{sa}.index_select({idx:?})"), || a.index_select(&idx)),
        1 => s.call(format!("{sa}.index_add({idx:?}, {n})"), || a.index_add(&idx, n)),
        2 => s.call(format!("{sa}.gather({idx:?})"), || a.gather(&idx)),
        _ => s.call(format!("{sa}.scatter({idx:?}, {n})"), || a.scatter(&idx, n)),
    }
}

/// Reads and in-place updates.
fn read_op(g: &mut Gen, s: &mut CaseStats, a: &Tensor, b: &Tensor, sa: &str) -> Option<Tensor> {
    let index: Vec<usize> = a.dims().iter().map(|&d| g.index(d)).collect();
    let dt = dtype(g);
    match g.below(5) {
        0 => s.call(format!("{sa}.get({index:?})"), || {
            a.get(&index).map(|v| Tensor::scalar(v, a.dtype()))
        }),
        1 => s.call(format!("{sa}.to_scalar()"), || {
            a.to_scalar().map(|v| Tensor::scalar(v, a.dtype()))
        }),
        2 => s.call(format!("{sa}.copy_from(..)"), || {
            let mut t = a.clone();
            t.copy_from(b).map(|()| t)
        }),
        3 => s.call(format!("{sa}.add_assign(..)"), || {
            let mut t = a.clone();
            t.add_assign(b).map(|()| t)
        }),
        _ => s.call(format!("{sa}.to_dtype({dt:?}).to_vec_f64()"), || {
            let t = a.to_dtype(dt)?;
            t.to_vec_f64()?;
            Ok::<_, ferrograd::engine::Error>(t)
        }),
    }
}
