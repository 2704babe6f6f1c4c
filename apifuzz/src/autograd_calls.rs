//! Autograd calls: ops on `Var`s, backward (also through the recorded
//! backward pass), gradcheck, Hessian-vector products and deep graphs.

use crate::engine_calls::small_tensor;
use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::autograd::{gradcheck, hvp, GradcheckOptions, Var};
use ferrograd::engine::Tensor;

/// Runs one autograd case.
pub fn run(g: &mut Gen, s: &mut CaseStats) {
    let mut vars: Vec<Var> = (0..2).map(|_| leaf(g)).collect();
    for _ in 0..2 + g.below(4) {
        let a = vars[g.below(vars.len())].clone();
        let b = vars[g.below(vars.len())].clone();
        if let Some(v) = var_op(g, s, &a, &b) {
            vars.push(v);
        }
    }
    let out = vars[g.below(vars.len())].clone();
    match g.below(5) {
        0 | 1 => backward(g, s, &out),
        2 => check(g, s),
        3 => second_order(g, s),
        _ => deep_chain(g, s),
    }
}

/// A parameter or a constant holding a small random tensor.
fn leaf(g: &mut Gen) -> Var {
    let t = small_tensor(g);
    if g.chance(0.8) {
        Var::parameter(t)
    } else {
        Var::constant(t)
    }
}

/// One op on vars.
fn var_op(g: &mut Gen, s: &mut CaseStats, a: &Var, b: &Var) -> Option<Var> {
    let (sa, sb) = (format!("Var{:?}", a.dims()), format!("Var{:?}", b.dims()));
    let (ax, c) = (g.axis(), g.float());
    let rows = a.dims().first().copied().unwrap_or(0);
    let idx: Vec<usize> = (0..g.below(4)).map(|_| g.index(rows)).collect();
    let n = g.count();
    match g.below(10) {
        0 => s.call(format!("{sa}.mul({sb})"), || a.mul(b)),
        1 => s.call(format!("{sa}.matmul({sb})"), || a.matmul(b)),
        2 => s.call(format!("{sa}.sum(Some([{ax}]), true)"), || a.sum(Some(&[ax]), true)),
        3 => s.call(format!("{sa}.var(Some([{ax}]), false, true)"), || {
            a.var(Some(&[ax]), false, true)
        }),
        4 => s.call(format!("{sa}.log_softmax({ax})"), || a.log_softmax(ax)),
        5 => s.call(format!("{sa}.clamp({c}, {})", c + 1.0), || a.clamp(c, c + 1.0)),
        6 => s.call(format!("{sa}.index_select({idx:?})"), || a.index_select(&idx)),
        7 => s.call(format!("{sa}.scatter({idx:?}, {n})"), || a.scatter(&idx, n)),
        8 => s.call(format!("{sa}.pad_zeros({ax}, {n}, 1)"), || a.pad_zeros(ax, n, 1)),
        _ => s.call(format!("{sa}.tanh().pow_scalar({c}).sum_all()"), || {
            a.tanh()?.pow_scalar(c)?.sum_all()
        }),
    }
}

/// Backward from `out` (summed to a scalar), sometimes recording the
/// backward pass and differentiating again.
fn backward(g: &mut Gen, s: &mut CaseStats, out: &Var) {
    let loss = if g.chance(0.8) {
        match s.call(format!("Var{:?}.sum_all()", out.dims()), || out.sum_all()) {
            Some(loss) => loss,
            None => return,
        }
    } else {
        out.clone()
    };
    let create = g.chance(0.4);
    let desc = format!("Var{:?}.backward_with({create})", loss.dims());
    let Some(grads) = s.call(desc, || loss.backward_with(create)) else {
        return;
    };
    if create {
        if let Some(gv) = grads.get_var(out).cloned() {
            s.call(format!("grad Var{:?}.square().sum_all().backward()", gv.dims()), || {
                gv.square()?.sum_all()?.backward().map(|g| g.len())
            });
        }
    }
}

/// gradcheck of a random composition at random inputs.
fn check(g: &mut Gen, s: &mut CaseStats) {
    let inputs = [small_tensor(g), small_tensor(g)];
    let which = g.below(3);
    let eps = if g.chance(0.2) { g.float() } else { 1e-6 };
    let options = GradcheckOptions {
        eps,
        ..GradcheckOptions::default()
    };
    let desc = format!(
        "gradcheck(#{which}, {:?}, {:?}, eps {eps})",
        inputs[0].dims(),
        inputs[1].dims()
    );
    s.call(desc, || {
        gradcheck(
            |v| match which {
                0 => v[0].mul(&v[1])?.sum(None, false),
                1 => v[0].matmul(&v[1])?.tanh()?.sum(None, false),
                _ => v[0].logsumexp(None, false)?.add(&v[1].sum_all()?),
            },
            &inputs,
            &options,
        )
        .map(|r| r.checked)
    });
}

/// A Hessian-vector product of a random function.
fn second_order(g: &mut Gen, s: &mut CaseStats) {
    let x = small_tensor(g);
    let v = if g.chance(0.8) {
        match s.call(format!("Tensor{:?}.ones_like()", x.dims()), || x.ones_like()) {
            Some(v) => v,
            None => return,
        }
    } else {
        small_tensor(g)
    };
    let desc = format!("hvp(x {:?}, v {:?})", x.dims(), v.dims());
    s.call(desc, || {
        hvp(|x| x.tanh()?.square()?.sum_all(), &x, &v).map(|h| h.numel())
    });
}

/// A long chain of recorded ops, then its backward and its drop.
fn deep_chain(g: &mut Gen, s: &mut CaseStats) {
    let len = if g.wild && g.chance(0.5) {
        300_000 + g.below(700_000)
    } else {
        1 + g.below(2000)
    };
    let backward = g.chance(0.5);
    s.call(
        format!("chain of {len} add_scalar ops, backward {backward}, drop"),
        || {
            let x = Var::parameter(Tensor::scalar(0.5, ferrograd::engine::DType::F64));
            let mut y = x.clone();
            for _ in 0..len {
                y = y.add_scalar(1e-6).unwrap();
            }
            let r = if backward { y.backward().map(|g| g.len()) } else { Ok(0) };
            drop(y);
            r
        },
    );
}
