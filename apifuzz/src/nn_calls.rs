//! nn and train calls: Linear, BatchNorm1d, Mlp and the losses with random
//! shapes, and the Trainer on small random (often malformed) data.

use crate::compat;
use crate::engine_calls::small_tensor;
use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::autograd::Var;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::nn::{self, Activation, BatchNorm1d, Linear, Mlp, Role};
use ferrograd::optim::{catalog, HyperParams};
use ferrograd::train::{SplitTensors, TaskConfig, TaskData, Trainer};

/// Runs one nn case.
pub fn run_nn(g: &mut Gen, s: &mut CaseStats) {
    match g.below(4) {
        0 => linear(g, s),
        1 => batchnorm(g, s),
        2 => losses(g, s),
        _ => mlp(g, s),
    }
}

/// A random tensor as a parameter var.
fn var(g: &mut Gen) -> Var {
    Var::parameter(small_tensor(g))
}

/// Linear layers of random (sometimes absurd) size and forward passes.
fn linear(g: &mut Gen, s: &mut CaseStats) {
    let (fan_in, fan_out) = (g.count(), g.count());
    let mut rng = Rng::new(g.u64());
    s.call(format!("Linear::new({fan_in}, {fan_out})"), || {
        Linear::new(fan_in, fan_out, DType::F32, &mut rng).map(|l| l.weight.numel())
    });
    let (x, w, b) = (var(g), var(g), var(g));
    let desc = format!("Linear::forward({:?}, {:?}, {:?})", x.dims(), w.dims(), b.dims());
    s.call(desc, || Linear::forward(&x, &w, &b));
}

/// BatchNorm1d on random inputs, rank 0 included.
fn batchnorm(g: &mut Gen, s: &mut CaseStats) {
    let features = g.count();
    let Some(bn) = s.call(format!("BatchNorm1d::new({features})"), || {
        BatchNorm1d::new(features, DType::F64)
    }) else {
        return;
    };
    let (x, scale, shift) = (var(g), var(g), var(g));
    let desc = format!(
        "BatchNorm1d[{features}].forward_train({:?}, {:?}, {:?})",
        x.dims(),
        scale.dims(),
        shift.dims()
    );
    if g.chance(0.6) {
        s.call(desc, || bn.forward_train(&x, &scale, &shift).map(|r| r.1));
    } else {
        s.call(desc.replace("train", "eval"), || bn.forward_eval(&x, &scale, &shift));
    }
}

/// mse, sse and cross-entropy of random shapes and labels.
fn losses(g: &mut Gen, s: &mut CaseStats) {
    let (p, t) = (var(g), var(g));
    let labels: Vec<usize> = (0..g.below(4)).map(|_| g.index(3)).collect();
    let d = format!("({:?}, {:?})", p.dims(), t.dims());
    match g.below(3) {
        0 => s.call(format!("mse{d}"), || nn::mse(&p, &t)),
        1 => s.call(format!("sse{d}"), || nn::sse(&p, &t)),
        _ => s.call(format!("cross_entropy({:?}, {labels:?})", p.dims()), || {
            nn::cross_entropy(&p, &labels)
        }),
    };
}

/// An Mlp of random widths, its accessors, and forward with random vars.
fn mlp(g: &mut Gen, s: &mut CaseStats) {
    let widths: Vec<usize> = (0..g.below(5)).map(|_| g.below(4)).collect();
    let frozen = g.below(4);
    let mut rng = Rng::new(g.u64());
    let desc = format!("Mlp::new({widths:?}, frozen {frozen})");
    let Some(mut m) = s.call(desc, || {
        Mlp::new(&widths, Activation::Relu, frozen, DType::F32, &mut rng)
    }) else {
        return;
    };
    let n = m.tensor_count();
    let i = g.index(n);
    s.infallible(format!("Mlp({widths:?}).role({i})"), || m.role(i));
    let role = g.pick(&[Role::Weight(i / 2), Role::Bias(i / 2), Role::RunningVar(i / 4)]);
    s.infallible(format!("Mlp({widths:?}).tensor({role:?})"), || m.tensor(role).numel());
    let mut vars = m.vars();
    if g.chance(0.4) {
        vars.truncate(g.below(vars.len() + 1));
    }
    let x = Var::constant(small_tensor(g).to_dtype(DType::F32).unwrap());
    let training = g.chance(0.5);
    let desc = format!(
        "Mlp({widths:?}).forward({:?}, {} vars, {training})",
        x.dims(),
        vars.len()
    );
    s.call(desc, || m.functional_forward(&x, &vars, training).map(|r| r.1.len()));
    let stats: Vec<Tensor> = (0..g.below(4)).map(|_| small_tensor(g)).collect();
    s.call(
        format!("Mlp({widths:?}).set_running_stats({} tensors)", stats.len()),
        || compat::set_running_stats(&mut m, stats),
    );
    let x = small_tensor(g);
    s.call(format!("Mlp({widths:?}).predict({:?})", x.dims()), || m.predict(&x));
}

/// One split of `rows` rows; malformed sometimes.
fn split(g: &mut Gen, rows: usize, cols: (usize, usize)) -> SplitTensors {
    let inputs = table(g, rows, cols.0);
    let targets = table(g, rows, cols.1);
    let clean = targets.clone();
    let mut split = SplitTensors { inputs, targets, clean };
    match g.below(8) {
        0 => split.inputs = split.inputs.reshape([rows * cols.0]).expect("same count"),
        1 => split.targets = table(g, rows + 1, cols.1),
        _ => {}
    }
    split
}

/// A random `[rows, cols]` f32 table.
fn table(g: &mut Gen, rows: usize, cols: usize) -> Tensor {
    Tensor::from_f64_slice(&g.floats(rows * cols), [rows, cols], DType::F32).expect("length matches")
}

/// A Trainer on small random data: construction, steps on random rows,
/// an epoch and the validation loss.
pub fn run_train(g: &mut Gen, s: &mut CaseStats) {
    let cols = (1 + g.below(2), 1 + g.below(2));
    let rows = [g.pick(&[0, 1, 2, 3, 5, 9]), g.below(4), 1 + g.below(3)];
    let (train, val, test) = (
        split(g, rows[0], cols),
        split(g, rows[1], cols),
        split(g, rows[2], cols),
    );
    let data = TaskData { train, val, test };
    let config = TaskConfig {
        n_hidden: g.below(3),
        seed: g.u64(),
        batch_size: g.pick(&[0, 1, 2, 3, 4, 128]),
        max_epochs: 1 + g.below(2),
        patience: 1,
        ..TaskConfig::default()
    };
    let all = catalog::all();
    let info = all[g.below(all.len())];
    let Ok(opt) = (info.build)(&HyperParams::defaults(info)) else {
        return;
    };
    let desc = format!(
        "Trainer::with_data(rows {rows:?}, cols {cols:?}, batch {}, n_hidden {}, {})",
        config.batch_size, config.n_hidden, info.name
    );
    let Some(mut trainer) = s.call(desc, || Trainer::with_data(config, data, opt)) else {
        return;
    };
    let batch: Vec<usize> = (0..g.below(4)).map(|_| g.index(rows[0])).collect();
    s.call(format!("Trainer.step_on({batch:?}) of {} rows", rows[0]), || {
        trainer.step_on(&batch)
    });
    if g.chance(0.5) {
        s.call("Trainer.run_epoch()", || trainer.run_epoch().map(|m| m.epoch));
    }
    s.call("Trainer.validation_loss()", || trainer.validation_loss());
}
