//! Milliseconds per epoch of a user's own MLP through ferrograd's general
//! path (modules, recorded forward, `backward`, a catalog optimizer): the
//! ferrograd half of `bench/compare-general.sh`, whose PyTorch half is
//! `bench/torch_mlp.py` with the same model, data sizes, batch and optimizer.
//!
//! ```text
//! cargo run --release -p ferrograd-bench --bin general_mlp -- \
//!     --widths 64,256,256,256,10 --act tanh --batch 128 --samples 1024 \
//!     --epochs 5 --warmup 1 --threads 2
//! ```
//!
//! The model is `Linear -> act` per hidden layer (`relu_bn`: `Linear ->
//! BatchNorm1d -> ReLU`, PyTorch's usual order), then a last `Linear`; the
//! loss is softmax cross-entropy on random labels, the optimizer Adam (lr
//! 1e-3), the data random normal inputs, f32, a fresh shuffle per epoch and
//! batches of `--batch` (the last one short). Prints one JSON line with the
//! median over the timed epochs.

use ferrograd::autograd::Var;
use ferrograd::engine::{DType, Rng, Tensor};
use ferrograd::module::{BatchNorm1d, Gelu, Linear, Module, ModuleOptimizer, Relu, Sequential, Tanh};
use ferrograd::nn::cross_entropy;
use ferrograd_bench::median;
use std::time::Instant;

/// The command line.
struct Args {
    widths: Vec<usize>,
    act: String,
    batch: usize,
    samples: usize,
    epochs: usize,
    warmup: usize,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        widths: vec![64, 256, 256, 256, 10],
        act: "tanh".into(),
        batch: 128,
        samples: 1024,
        epochs: 5,
        warmup: 1,
        threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--widths" => a.widths = value.split(',').map(num).collect::<Result<_, _>>()?,
            "--act" => a.act = value,
            "--batch" => a.batch = num(&value)?.max(1),
            "--samples" => a.samples = num(&value)?.max(1),
            "--epochs" => a.epochs = num(&value)?.max(1),
            "--warmup" => a.warmup = num(&value)?,
            "--threads" => a.threads = num(&value)?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.widths.len() < 2 {
        return Err("--widths needs at least an input and an output width".into());
    }
    if !["tanh", "relu", "relu_bn", "gelu"].contains(&a.act.as_str()) {
        return Err(format!("--act {}: one of tanh, relu, relu_bn, gelu", a.act));
    }
    Ok(a)
}

/// The model `args` describe, drawn from a fixed seed.
fn model(args: &Args) -> ferrograd::Result<Sequential> {
    let mut rng = Rng::new(0);
    let mut net = Sequential::new();
    let hidden = args.widths.len() - 2;
    for (i, w) in args.widths.windows(2).enumerate() {
        net = net.append(Linear::new(w[0], w[1], DType::F32, &mut rng)?);
        if i == hidden {
            break;
        }
        net = match args.act.as_str() {
            "tanh" => net.append(Tanh),
            "relu" => net.append(Relu),
            "relu_bn" => net.append(BatchNorm1d::new(w[1], DType::F32)?).append(Relu),
            _ => net.append(Gelu),
        };
    }
    Ok(net)
}

/// Trains for `warmup + epochs` epochs; returns the timed epochs' seconds.
fn train(args: &Args) -> ferrograd::Result<Vec<f64>> {
    let mut rng = Rng::new(1);
    let (n_in, n_out) = (args.widths[0], *args.widths.last().expect("checked"));
    let inputs: Vec<f32> = (0..args.samples * n_in).map(|_| rng.normal() as f32).collect();
    let inputs = Tensor::from_vec(inputs, [args.samples, n_in])?;
    let labels: Vec<usize> = (0..args.samples).map(|_| rng.below(n_out)).collect();
    let mut net = model(args)?;
    let mut opt = ModuleOptimizer::new("adam", &[("lr", 1e-3)], &net, 0)?;
    let mut order: Vec<usize> = (0..args.samples).collect();
    let mut times = Vec::new();
    for epoch in 0..args.warmup + args.epochs {
        let started = Instant::now();
        rng.shuffle(&mut order);
        for rows in order.chunks(args.batch) {
            let x = Var::constant(inputs.index_select(rows)?);
            let y: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
            let loss = cross_entropy(&net.forward(&x)?, &y)?;
            opt.backward_step(&mut net, &loss)?;
        }
        if epoch >= args.warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("general_mlp: {e}");
        std::process::exit(2);
    });
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("the global thread pool is set once, here");
    let times = train(&args).unwrap_or_else(|e| {
        eprintln!("general_mlp: {e}");
        std::process::exit(1);
    });
    let widths: Vec<String> = args.widths.iter().map(|w| w.to_string()).collect();
    println!(
        "{{\"framework\":\"ferrograd\",\"widths\":\"{}\",\"act\":\"{}\",\"batch\":{},\"threads\":{},\"ms_per_epoch\":{:.3}}}",
        widths.join(","),
        args.act,
        args.batch,
        args.threads,
        1e3 * median(&times)
    );
}
