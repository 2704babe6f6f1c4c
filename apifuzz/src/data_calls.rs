//! Dataset calls: CSV and NPY parsing of random and mutated input,
//! batching and splits with random sizes, matrices and the generator.

use crate::gen::Gen;
use crate::record::CaseStats;
use ferrograd::datasets::{
    epoch_batches, generate, parse_csv, train_val_split, Matrix, NpyArray, NpyData, RffConfig, Rng, ShuffledBatches,
    TargetColumn,
};

/// Runs one dataset case.
pub fn run(g: &mut Gen, s: &mut CaseStats) {
    for _ in 0..1 + g.below(3) {
        match g.below(6) {
            0 => csv(g, s),
            1 => npy(g, s),
            2 => batches(g, s),
            3 => matrix(g, s),
            4 => rff(g, s),
            _ => split(g, s),
        }
    }
}

/// CSV text made of random tokens.
fn csv(g: &mut Gen, s: &mut CaseStats) {
    const TOKENS: [&str; 12] = [
        "a", "b", ",", "\n", "1.5", "-2", "nan", "inf", "\"", " ", "1e999", "\r\n",
    ];
    let mut text = String::from(if g.chance(0.7) { "a,b\n" } else { "" });
    for _ in 0..g.below(30) {
        text.push_str(g.pick(&TOKENS));
    }
    let target: TargetColumn = if g.chance(0.5) { "b".into() } else { g.index(3).into() };
    let desc = format!("parse_csv({text:?}, [{target}])");
    s.call(desc, || parse_csv(&text, &[target]).map(|t| t.inputs.rows()));
}

/// NPY bytes: a valid array's bytes mutated, or random bytes.
fn npy(g: &mut Gen, s: &mut CaseStats) {
    let mut bytes = if g.chance(0.7) {
        let data = NpyData::F64(g.floats(4));
        NpyArray::new(vec![2, 2], data).expect("valid").to_bytes()
    } else {
        let len = g.below(80);
        g.bytes(len)
    };
    for _ in 0..g.below(4) {
        if !bytes.is_empty() {
            let i = g.below(bytes.len());
            bytes[i] = g.u64() as u8;
        }
    }
    if g.chance(0.3) {
        bytes.truncate(g.below(bytes.len() + 1));
    }
    s.call(format!("NpyArray::from_bytes({} bytes)", bytes.len()), || {
        NpyArray::from_bytes(&bytes).map(|a| a.to_f64().len())
    });
}

/// Batches of random sizes.
fn batches(g: &mut Gen, s: &mut CaseStats) {
    let (n, size) = (g.count(), g.count());
    let seed = g.u64();
    if g.chance(0.5) {
        s.call(format!("epoch_batches({n}, {size})"), || {
            epoch_batches(n, size, &mut Rng::new(seed)).map(|b| b.len())
        });
    } else {
        s.call(format!("ShuffledBatches::new({n}, {size}).next_epoch()"), || {
            ShuffledBatches::new(n, size, Rng::new(seed)).and_then(|mut b| b.next_epoch().map(|e| e.len()))
        });
    }
}

/// A train/validation split of random size and fraction.
fn split(g: &mut Gen, s: &mut CaseStats) {
    let n = g.count();
    let frac = if g.chance(0.8) {
        g.below(11) as f64 / 10.0
    } else {
        g.float()
    };
    let seed = g.u64();
    s.call(format!("train_val_split({n}, {frac})"), || {
        train_val_split(n, frac, &mut Rng::new(seed)).map(|sp| sp.train.len())
    });
}

/// Matrices: construction, row selection (documented panics) and stacking.
fn matrix(g: &mut Gen, s: &mut CaseStats) {
    let (rows, cols) = (g.below(4), g.below(4));
    let len = if g.chance(0.8) { rows * cols } else { g.below(9) };
    let data = g.floats(len);
    let Some(m) = s.call(format!("Matrix::new({rows}, {cols}, len {len})"), || {
        Matrix::new(rows, cols, data)
    }) else {
        return;
    };
    let idx: Vec<usize> = (0..g.below(4)).map(|_| g.index(rows)).collect();
    s.infallible(format!("Matrix[{rows}x{cols}].select_rows({idx:?})"), || {
        m.select_rows(&idx)
    });
    let other_rows = g.below(4);
    let Some(other) = s.call(format!("Matrix::zeros({other_rows}, 1)"), || {
        Matrix::zeros(other_rows, 1)
    }) else {
        return;
    };
    s.call(format!("Matrix[{rows}x{cols}].hstack([{other_rows}x1])"), || {
        m.hstack(&other)
    });
}

/// The task's generator with random sizes.
fn rff(g: &mut Gen, s: &mut CaseStats) {
    let config = RffConfig {
        input_dims: g.below(4),
        output_dims: g.below(3),
        n_features: g.below(9),
        lengthscale: if g.chance(0.8) { 0.5 } else { g.float() },
        noise_std: if g.chance(0.8) { 0.1 } else { g.float() },
        n_train: g.count(),
        n_val: g.below(5),
        n_test: g.below(5),
    };
    let seed = g.u64();
    s.call(format!("generate({config:?})"), || {
        generate(&config, seed).map(|d| d.train.len())
    });
}
