//! module calls: a `Sequential` of the `ferrograd::module` layers built with
//! random (often wrong or absurd) sizes and options, then forward passes on
//! inputs of random shape, dtype and values, mode switches, predictions,
//! layouts, and `load_state_dict` with a tensor dropped, added, renamed,
//! reshaped or of another dtype.

use crate::engine_calls::small_tensor;
use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::autograd::Var;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{
    BatchNorm1d, BatchNorm2d, BatchNormOptions, Dropout, Embedding, Flatten, LayerNorm, Linear, Module, Relu,
    Sequential,
};

/// Runs one module case.
pub fn run(g: &mut Gen, s: &mut CaseStats) {
    let mut model = Sequential::new();
    for _ in 0..1 + g.below(3) {
        model = add_layer(g, s, model);
    }
    for _ in 0..2 + g.below(4) {
        match g.below(5) {
            0 | 1 => forward(g, s, &mut model),
            2 => {
                let training = g.chance(0.5);
                s.infallible(format!("Sequential.set_training({training})"), || {
                    model.set_training(training)
                });
            }
            3 => load_mutated(g, s, &mut model),
            _ => {
                let x = input(g);
                s.call(format!("Sequential.predict({:?})", x.dims()), || model.predict(&x));
                s.call("Sequential.layout()", || model.layout().map(|l| l.shapes().len()));
            }
        }
    }
}

/// A random dtype for a layer.
fn dtype(g: &mut Gen) -> DType {
    g.pick(&[DType::F32, DType::F64])
}

/// BatchNorm options with eps and momentum sometimes out of range.
fn options(g: &mut Gen) -> BatchNormOptions {
    let default = BatchNormOptions::default();
    BatchNormOptions {
        eps: if g.chance(0.2) { g.float() } else { default.eps },
        momentum: if g.chance(0.2) { g.float() } else { default.momentum },
        affine: g.chance(0.7),
        track_running_stats: g.chance(0.7),
    }
}

/// `model` with one more random layer, when its constructor accepts the
/// drawn arguments.
fn add_layer(g: &mut Gen, s: &mut CaseStats, model: Sequential) -> Sequential {
    let (a, b, dt) = (g.count(), g.count(), dtype(g));
    let mut rng = Rng::new(g.u64());
    match g.below(8) {
        0 => {
            let bias = g.chance(0.7);
            match s.call(format!("Linear::with_bias({a}, {b}, {bias})"), || {
                Linear::with_bias(a, b, bias, dt, &mut rng)
            }) {
                Some(layer) => model.append(layer),
                None => model,
            }
        }
        1 => {
            let o = options(g);
            match s.call(format!("BatchNorm1d::with_options({a}, {o:?})"), || {
                BatchNorm1d::with_options(a, o, dt)
            }) {
                Some(layer) => model.append(layer),
                None => model,
            }
        }
        2 => {
            let o = options(g);
            match s.call(format!("BatchNorm2d::with_options({a}, {o:?})"), || {
                BatchNorm2d::with_options(a, o, dt)
            }) {
                Some(layer) => model.append(layer),
                None => model,
            }
        }
        3 => {
            let shape = g.dims();
            let eps = if g.chance(0.2) { g.float() } else { 1e-5 };
            let affine = g.chance(0.7);
            match s.call(format!("LayerNorm::with_options({shape:?}, {eps}, {affine})"), || {
                LayerNorm::with_options(&shape, eps, affine, dt)
            }) {
                Some(layer) => model.append(layer),
                None => model,
            }
        }
        4 => {
            let p = if g.chance(0.5) { g.float() } else { 0.5 };
            match s.call(format!("Dropout::new({p})"), || Dropout::new(p, rng.clone())) {
                Some(layer) => model.append(layer),
                None => model,
            }
        }
        5 => match s.call(format!("Embedding::new({a}, {b})"), || {
            Embedding::new(a, b, dt, &mut rng)
        }) {
            Some(layer) => model.append(layer),
            None => model,
        },
        6 => model.append(Flatten),
        _ => model.append(Relu),
    }
}

/// An input: random values, or whole numbers (embedding indices, some out
/// of range or negative).
fn input(g: &mut Gen) -> Tensor {
    let x = small_tensor(g);
    if !g.chance(0.4) {
        return x;
    }
    let values: Vec<f64> = (0..x.numel()).map(|_| g.index(6) as f64 - g.below(2) as f64).collect();
    Tensor::from_f64_slice(&values, x.dims().to_vec(), x.dtype()).expect("length matches")
}

/// A forward pass (recording), sometimes followed by a backward pass.
fn forward(g: &mut Gen, s: &mut CaseStats, model: &mut Sequential) {
    let x = Var::constant(input(g));
    let desc = format!("Sequential.forward({:?} {:?})", x.dims(), x.dtype());
    let Some(y) = s.call(desc, || model.forward(&x)) else {
        return;
    };
    if g.chance(0.5) {
        s.call("backward of the output's sum", || {
            y.sum_all()?.backward().map(|grads| grads.len())
        });
    }
}

/// `load_state_dict` with the model's own tensors, one of them changed.
fn load_mutated(g: &mut Gen, s: &mut CaseStats, model: &mut Sequential) {
    let mut tensors = model.state_dict();
    let i = g.below(tensors.len() + 1);
    let change = g.below(6);
    match (change, tensors.get_mut(i)) {
        (0, Some(_)) => {
            tensors.remove(i);
        }
        (1, Some((name, _))) => name.push_str(".x"),
        (2, Some((_, t))) => *t = small_tensor(g),
        (3, Some((_, t))) => *t = t.to_dtype(dtype(g)).unwrap(),
        (4, _) => tensors.push((format!("{}.weight", g.below(4)), small_tensor(g))),
        _ => {}
    }
    let desc = format!(
        "Sequential.load_state_dict({} tensors, change {change} at {i})",
        tensors.len()
    );
    s.call(desc, || model.load_state_dict(&tensors));
}
