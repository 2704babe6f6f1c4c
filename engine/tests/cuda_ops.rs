//! The GPU suite: every CUDA op against the CPU backend on random inputs.
//! f64 results must agree to 1e-12 relative (GEMM and reductions sum in a
//! different order: 1e-10), f32 to 1e-5 relative + 1e-5 absolute (transcendental
//! functions use CUDA's libdevice, within a few ulp). Without a GPU (or
//! against the stub libcuda) every test prints why it skipped, and passes.
#![cfg(feature = "cuda")]

use ferrograd_engine::cuda::nn::{batchnorm_backward, batchnorm_eval, batchnorm_train};
use ferrograd_engine::cuda::optim::{FusedOptimizer, FusedRule};
use ferrograd_engine::{cuda, BinaryOp, DType, Device, Rng, Tensor, UnaryOp};

/// The GPU, or `None` after printing why the test is skipped.
fn gpu(test: &str) -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("{test}: skipped: {e}");
            None
        }
    }
}

fn tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-10, 1e-12),
        DType::F32 => (1e-5, 1e-5),
    }
}

fn assert_close(what: &str, gpu: &Tensor, cpu: &Tensor) {
    assert!(gpu.is_cuda(), "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    let (rtol, atol) = tol(cpu.dtype());
    let (g, c) = (gpu.to_vec_f64(), cpu.to_vec_f64());
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        let same_nan = a.is_nan() && b.is_nan();
        assert!(
            same_nan || a == b || (a - b).abs() <= atol + rtol * b.abs(),
            "{what} ({}): element {i}: gpu {a} vs cpu {b}",
            cpu.dtype()
        );
    }
}

fn rand(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, dtype, rng).unwrap()
}

const DTYPES: [DType; 2] = [DType::F32, DType::F64];

#[test]
fn no_device_is_a_typed_error_and_a_real_one_round_trips() {
    let Some(dev) = gpu("round_trip") else {
        assert_eq!(cuda::device_count(), 0);
        assert!(matches!(
            Tensor::ones([3], DType::F32).to_device(Device::Cuda(0)),
            Err(ferrograd_engine::Error::DeviceUnavailable { .. })
        ));
        return;
    };
    let mut rng = Rng::new(1);
    for dtype in DTYPES {
        let x = rand(&[5, 7], dtype, &mut rng);
        let g = x.to_device(dev).unwrap();
        assert_eq!(g.device(), dev);
        assert_eq!(g.to_device(Device::Cpu).unwrap().to_vec_f64(), x.to_vec_f64());
        assert_eq!(g.to_vec_f64(), x.to_vec_f64());
        assert_close("to_dtype", &g.to_dtype(DType::F64), &x.to_dtype(DType::F64));
        assert_eq!(g.get(&[2, 3]).unwrap(), x.get(&[2, 3]).unwrap());
        assert_close("zeros_like", &g.zeros_like(), &x.zeros_like());
    }
    assert!(Device::cuda(cuda::device_count() + 7).is_err());
}

#[test]
fn unary_ops_match_the_cpu() {
    let Some(dev) = gpu("unary") else { return };
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.1),
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Gelu,
        UnaryOp::Silu,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Sign,
        UnaryOp::Clamp(-0.5, 0.7),
        UnaryOp::AddScalar(1.5),
        UnaryOp::MulScalar(-3.0),
        UnaryOp::GtScalar(0.2),
        UnaryOp::LtScalar(-0.2),
    ];
    let positive = [UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt, UnaryOp::PowScalar(1.7)];
    let mut rng = Rng::new(2);
    for dtype in DTYPES {
        let x = rand(&[33, 65], dtype, &mut rng);
        let xp = x.abs().add_scalar(0.1);
        let (g, gp) = (x.to_device(dev).unwrap(), xp.to_device(dev).unwrap());
        for op in ops {
            assert_close(&format!("{op:?}"), &g.unary(op), &x.unary(op));
        }
        for op in positive {
            assert_close(&format!("{op:?}"), &gp.unary(op), &xp.unary(op));
        }
        let mut inplace = g.clone();
        inplace.unary_in_place(UnaryOp::Tanh);
        assert_close("unary_in_place", &inplace, &x.tanh());
        assert_close("shared buffer untouched", &g, &x);
    }
}

#[test]
fn binary_ops_broadcast_like_the_cpu() {
    let Some(dev) = gpu("binary") else { return };
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
    ];
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[4, 5], &[4, 5]),
        (&[4, 5], &[5]),
        (&[4, 1], &[1, 5]),
        (&[2, 3, 4], &[3, 1]),
        (&[], &[3, 2]),
    ];
    let mut rng = Rng::new(3);
    for dtype in DTYPES {
        for (sa, sb) in shapes {
            let (a, b) = (rand(sa, dtype, &mut rng), rand(sb, dtype, &mut rng));
            let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            for op in ops {
                assert_close(
                    &format!("{op:?} {sa:?} {sb:?}"),
                    &ga.binary(&gb, op).unwrap(),
                    &a.binary(&b, op).unwrap(),
                );
            }
            let base = a.abs().add_scalar(0.5);
            let gbase = base.to_device(dev).unwrap();
            assert_close(
                "pow",
                &gbase.binary(&gb, BinaryOp::Pow).unwrap(),
                &base.binary(&b, BinaryOp::Pow).unwrap(),
            );
        }
        let (c, t, f) = (
            rand(&[3, 1], dtype, &mut rng).gt_scalar(0.0),
            rand(&[3, 4], dtype, &mut rng),
            rand(&[4], dtype, &mut rng),
        );
        let want = Tensor::where_cond(&c, &t, &f).unwrap();
        let got = Tensor::where_cond(
            &c.to_device(dev).unwrap(),
            &t.to_device(dev).unwrap(),
            &f.to_device(dev).unwrap(),
        )
        .unwrap();
        assert_close("where", &got, &want);
        let cpu_on_gpu = a_mismatch(dtype, dev);
        assert!(matches!(
            cpu_on_gpu,
            Err(ferrograd_engine::Error::DeviceMismatch { .. })
        ));
    }
}

fn a_mismatch(dtype: DType, dev: Device) -> ferrograd_engine::Result<Tensor> {
    let a = Tensor::ones([2], dtype);
    a.to_device(dev)?.add(&a)
}

#[test]
fn reductions_and_softmax_match_the_cpu() {
    let Some(dev) = gpu("reduce") else { return };
    let mut rng = Rng::new(4);
    for dtype in DTYPES {
        // [2, 3, 5000] exercises the two-pass path for axis 2 and all axes.
        for shape in [&[7usize, 9, 11][..], &[2, 3, 5000], &[1, 40000]] {
            let x = rand(shape, dtype, &mut rng);
            let g = x.to_device(dev).unwrap();
            let rank = shape.len() as isize;
            let mut axes_sets: Vec<Option<Vec<isize>>> = vec![None];
            for a in 0..rank {
                axes_sets.push(Some(vec![a]));
            }
            if rank == 3 {
                axes_sets.push(Some(vec![0, 2]));
                axes_sets.push(Some(vec![1, 2]));
            }
            for axes in &axes_sets {
                let ax = axes.as_deref();
                for keep in [false, true] {
                    let what = format!("{shape:?} {axes:?} keep={keep}");
                    assert_close(
                        &format!("sum {what}"),
                        &g.sum(ax, keep).unwrap(),
                        &x.sum(ax, keep).unwrap(),
                    );
                    assert_close(
                        &format!("max {what}"),
                        &g.max(ax, keep).unwrap(),
                        &x.max(ax, keep).unwrap(),
                    );
                    assert_close(
                        &format!("min {what}"),
                        &g.min(ax, keep).unwrap(),
                        &x.min(ax, keep).unwrap(),
                    );
                    assert_close(
                        &format!("mean {what}"),
                        &g.mean(ax, keep).unwrap(),
                        &x.mean(ax, keep).unwrap(),
                    );
                }
            }
            for a in 0..rank {
                assert_close("softmax", &g.softmax(a).unwrap(), &x.softmax(a).unwrap());
                assert_close("log_softmax", &g.log_softmax(a).unwrap(), &x.log_softmax(a).unwrap());
                assert_eq!(g.argmax(a).unwrap(), x.argmax(a).unwrap());
            }
        }
        // Determinism: the same reduction twice gives the same bits.
        let x = rand(&[3, 100_000], dtype, &mut rng).to_device(dev).unwrap();
        assert_eq!(x.sum_all().to_vec_f64(), x.sum_all().to_vec_f64());
    }
}

#[test]
fn gemm_matches_the_cpu_with_every_transpose() {
    let Some(dev) = gpu("gemm") else { return };
    let mut rng = Rng::new(5);
    for dtype in DTYPES {
        for (m, k, n) in [(1, 1, 1), (7, 5, 3), (64, 64, 64), (130, 77, 65), (256, 300, 129)] {
            let a = rand(&[m, k], dtype, &mut rng);
            let b = rand(&[k, n], dtype, &mut rng);
            let want = a.matmul(&b).unwrap();
            let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            let (gat, gbt) = (
                a.t().unwrap().to_device(dev).unwrap(),
                b.t().unwrap().to_device(dev).unwrap(),
            );
            let scale = (k as f64).sqrt();
            let check = |what: &str, got: Tensor| {
                let (rtol, atol) = tol(dtype);
                for (x, y) in got.to_vec_f64().iter().zip(want.to_vec_f64()) {
                    assert!(
                        (x - y).abs() <= scale * (atol + rtol * y.abs()),
                        "{what} {m}x{k}x{n}: {x} vs {y}"
                    );
                }
            };
            check("nn", ga.matmul(&gb).unwrap());
            check("tn", gat.matmul_t(true, &gb, false).unwrap());
            check("nt", ga.matmul_t(false, &gbt, true).unwrap());
            check("tt", gat.matmul_t(true, &gbt, true).unwrap());
        }
    }
}

#[test]
fn shape_and_index_ops_match_the_cpu() {
    let Some(dev) = gpu("shape_index") else { return };
    let mut rng = Rng::new(6);
    for dtype in DTYPES {
        let x = rand(&[4, 3, 5], dtype, &mut rng);
        let g = x.to_device(dev).unwrap();
        assert_close(
            "permute",
            &g.permute(&[2, 0, 1]).unwrap(),
            &x.permute(&[2, 0, 1]).unwrap(),
        );
        assert_close("t", &g.transpose(0, 2).unwrap(), &x.transpose(0, 2).unwrap());
        assert_close(
            "broadcast_to",
            &g.narrow(1, 0, 1).unwrap().broadcast_to([4, 6, 5]).unwrap(),
            &x.narrow(1, 0, 1).unwrap().broadcast_to([4, 6, 5]).unwrap(),
        );
        assert_close("narrow", &g.narrow(2, 1, 3).unwrap(), &x.narrow(2, 1, 3).unwrap());
        assert_close(
            "pad_zeros",
            &g.pad_zeros(1, 2, 1).unwrap(),
            &x.pad_zeros(1, 2, 1).unwrap(),
        );
        let y = rand(&[4, 2, 5], dtype, &mut rng);
        let gy = y.to_device(dev).unwrap();
        assert_close(
            "concat",
            &Tensor::concat(&[g.clone(), gy.clone()], 1).unwrap(),
            &Tensor::concat(&[x.clone(), y.clone()], 1).unwrap(),
        );
        assert_close("sum_to", &g.sum_to([3, 1]).unwrap(), &x.sum_to([3, 1]).unwrap());
        let idx = [3, 0, 0, 2, 1, 3];
        assert_close(
            "index_select",
            &g.index_select(&idx).unwrap(),
            &x.index_select(&idx).unwrap(),
        );
        let rows = rand(&[6, 3, 5], dtype, &mut rng);
        let grows = rows.to_device(dev).unwrap();
        assert_close(
            "index_add",
            &grows.index_add(&idx, 5).unwrap(),
            &rows.index_add(&idx, 5).unwrap(),
        );
        let m = rand(&[6, 4], dtype, &mut rng);
        let gm = m.to_device(dev).unwrap();
        let labels = [0, 3, 2, 2, 1, 0];
        assert_close("gather", &gm.gather(&labels).unwrap(), &m.gather(&labels).unwrap());
        let v = rand(&[6], dtype, &mut rng);
        assert_close(
            "scatter",
            &v.to_device(dev).unwrap().scatter(&labels, 4).unwrap(),
            &v.scatter(&labels, 4).unwrap(),
        );
        let mut acc = g.clone();
        acc.add_assign(&g).unwrap();
        assert_close("add_assign", &acc, &x.mul_scalar(2.0));
        acc.copy_from(&g).unwrap();
        assert_close("copy_from", &acc, &x);
    }
}

#[test]
fn batchnorm_matches_its_definition() {
    let Some(dev) = gpu("batchnorm") else { return };
    let mut rng = Rng::new(7);
    for dtype in DTYPES {
        let (n, c) = (128, 37);
        let x = rand(&[n, c], dtype, &mut rng);
        let scale = rand(&[c], dtype, &mut rng);
        let shift = rand(&[c], dtype, &mut rng);
        let on = |t: &Tensor| t.to_device(dev).unwrap();
        let mut rm = on(&Tensor::zeros([c], dtype));
        let mut rv = on(&Tensor::ones([c], dtype));
        let fwd = batchnorm_train(&on(&x), &on(&scale), &on(&shift), 1e-5, 0.1, Some((&mut rm, &mut rv))).unwrap();
        // The CPU reference, written with engine ops.
        let mean = x.mean(Some(&[0]), true).unwrap();
        let var = x.var(Some(&[0]), true, false).unwrap();
        let inv_std = var.add_scalar(1e-5).rsqrt();
        let xhat = x.sub(&mean).unwrap().mul(&inv_std).unwrap();
        let y = xhat.mul(&scale).unwrap().add(&shift).unwrap();
        assert_close("bn y", &fwd.y, &y);
        assert_close("bn mean", &fwd.mean, &mean.reshape([c]).unwrap());
        let unbiased = x.var(Some(&[0]), false, true).unwrap();
        assert_close("running var", &rv, &unbiased.mul_scalar(0.1).add_scalar(0.9));
        assert_close("running mean", &rm, &mean.reshape([c]).unwrap().mul_scalar(0.1));
        let eval = batchnorm_eval(&on(&x), &on(&scale), &on(&shift), &rm, &rv, 1e-5).unwrap();
        let want_eval = x
            .sub(&rm.to_device(Device::Cpu).unwrap())
            .unwrap()
            .div(&rv.to_device(Device::Cpu).unwrap().add_scalar(1e-5).sqrt())
            .unwrap()
            .mul(&scale)
            .unwrap()
            .add(&shift)
            .unwrap();
        assert_close("bn eval", &eval, &want_eval);
        let dy = rand(&[n, c], dtype, &mut rng);
        let grads = batchnorm_backward(&on(&x), &on(&dy), &fwd, &on(&scale)).unwrap();
        let dshift = dy.sum(Some(&[0]), false).unwrap();
        let dscale = dy.mul(&xhat).unwrap().sum(Some(&[0]), false).unwrap();
        let nf = n as f64;
        let dx = dy
            .sub(&dshift.div_scalar(nf))
            .unwrap()
            .sub(&xhat.mul(&dscale.div_scalar(nf)).unwrap())
            .unwrap()
            .mul(&scale.mul(&inv_std.reshape([c]).unwrap()).unwrap())
            .unwrap();
        assert_close("bn dshift", &grads.dshift, &dshift);
        assert_close("bn dscale", &grads.dscale, &dscale);
        assert_close("bn dx", &grads.dx, &dx);
    }
}

#[test]
fn random_fills_have_the_right_moments_and_repeat_by_seed() {
    let Some(Device::Cuda(ordinal)) = gpu("rng") else {
        return;
    };
    for dtype in DTYPES {
        let u = cuda::nn::rand_uniform(ordinal, [200_000], -1.0, 3.0, dtype, 42).unwrap();
        let v = u.to_vec_f64();
        assert!(v.iter().all(|&x| (-1.0..3.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "uniform mean {mean}");
        let z = cuda::nn::rand_normal(ordinal, [200_000], 2.0, 0.5, dtype, 7)
            .unwrap()
            .to_vec_f64();
        let m = z.iter().sum::<f64>() / z.len() as f64;
        let s = (z.iter().map(|x| (x - m).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
        assert!(
            (m - 2.0).abs() < 0.01 && (s - 0.5).abs() < 0.01,
            "normal mean {m} std {s}"
        );
        let again = cuda::nn::rand_normal(ordinal, [200_000], 2.0, 0.5, dtype, 7)
            .unwrap()
            .to_vec_f64();
        assert_eq!(z, again);
    }
}

/// The CPU optimizers' documented recurrences (ferrograd-optim), applied
/// elementwise in f64 as an independent reference for the fused kernels.
fn reference_step(rule: FusedRule, lr: f64, wd: f64, t: i32, p: f64, g: f64, s: &mut [f64; 4]) -> f64 {
    match rule {
        FusedRule::Sgdm {
            momentum,
            dampening,
            nesterov,
        } => {
            let g = g + wd * p;
            s[0] = if t == 1 {
                g
            } else {
                momentum * s[0] + (1.0 - dampening) * g
            };
            -lr * if nesterov { g + momentum * s[0] } else { s[0] }
        }
        FusedRule::Adam {
            beta1,
            beta2,
            eps,
            decoupled,
        } => {
            let g = if decoupled { g } else { g + wd * p };
            s[0] = beta1 * s[0] + (1.0 - beta1) * g;
            s[1] = beta2 * s[1] + (1.0 - beta2) * g * g;
            let dir = (s[0] / (1.0 - beta1.powi(t))) / ((s[1] / (1.0 - beta2.powi(t))).sqrt() + eps);
            -lr * if decoupled { dir + wd * p } else { dir }
        }
        FusedRule::Lion { beta1, beta2 } => {
            let c = beta1 * s[0] + (1.0 - beta1) * g;
            s[0] = beta2 * s[0] + (1.0 - beta2) * g;
            let sign = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            -lr * (sign + wd * p)
        }
        FusedRule::Adan {
            beta1,
            beta2,
            beta3,
            eps,
            no_prox,
        } => {
            let d = if t == 1 { 0.0 } else { g - s[3] };
            s[0] = beta1 * s[0] + (1.0 - beta1) * g;
            s[1] = beta2 * s[1] + (1.0 - beta2) * d;
            s[2] = beta3 * s[2] + (1.0 - beta3) * (g + beta2 * d).powi(2);
            s[3] = g;
            let u = (s[0] / (1.0 - beta1.powi(t)) + beta2 * s[1] / (1.0 - beta2.powi(t)))
                / (s[2].sqrt() / (1.0 - beta3.powi(t)).sqrt() + eps);
            let scale = if no_prox { -lr } else { -lr / (1.0 + lr * wd) };
            scale * (u + wd * p)
        }
    }
}

#[test]
fn fused_optimizers_follow_the_cpu_recurrences_step_by_step() {
    let Some(dev) = gpu("fused_optim") else { return };
    let rules = [
        FusedRule::Sgdm {
            momentum: 0.9,
            dampening: 0.1,
            nesterov: true,
        },
        FusedRule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decoupled: false,
        },
        FusedRule::Adam {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            decoupled: true,
        },
        FusedRule::Lion {
            beta1: 0.9,
            beta2: 0.99,
        },
        FusedRule::Adan {
            beta1: 0.98,
            beta2: 0.92,
            beta3: 0.99,
            eps: 1e-8,
            no_prox: false,
        },
    ];
    let mut rng = Rng::new(8);
    // Several tensors, one larger than a block's chunk, one empty.
    let shapes: [&[usize]; 4] = [&[300, 17], &[5], &[0], &[4097]];
    for rule in rules {
        let (lr, wd) = (1e-2, 0.05);
        let params: Vec<Tensor> = shapes.iter().map(|s| rand(s, DType::F64, &mut rng)).collect();
        let mut gpu_params: Vec<Tensor> = params.iter().map(|p| p.to_device(dev).unwrap()).collect();
        let mut cpu: Vec<Vec<f64>> = params.iter().map(|p| p.to_vec_f64()).collect();
        let mut state: Vec<Vec<[f64; 4]>> = cpu.iter().map(|p| vec![[0.0; 4]; p.len()]).collect();
        let mut opt = FusedOptimizer::new(rule, lr, wd);
        for t in 1..=5 {
            let grads: Vec<Tensor> = shapes.iter().map(|s| rand(s, DType::F64, &mut rng)).collect();
            let ggrads: Vec<Tensor> = grads.iter().map(|g| g.to_device(dev).unwrap()).collect();
            let updates = opt.updates(&gpu_params, &ggrads).unwrap();
            for (i, g) in grads.iter().enumerate() {
                let gv = g.to_vec_f64();
                let want: Vec<f64> = (0..gv.len())
                    .map(|k| reference_step(rule, lr, wd, t, cpu[i][k], gv[k], &mut state[i][k]))
                    .collect();
                let got = updates[i].to_vec_f64();
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 + 1e-10 * b.abs(),
                        "{rule:?} step {t} tensor {i}[{k}]: {a} vs {b}"
                    );
                }
                for (p, u) in cpu[i].iter_mut().zip(&want) {
                    *p += u;
                }
                gpu_params[i].add_assign(&updates[i]).unwrap();
            }
        }
        // The in-place form gives the same parameters as updates + add_assign.
        let mut inplace: Vec<Tensor> = params.iter().map(|p| p.to_device(dev).unwrap()).collect();
        let mut opt2 = FusedOptimizer::new(rule, lr, wd);
        let mut again = params.iter().map(|p| p.to_device(dev).unwrap()).collect::<Vec<_>>();
        let mut opt3 = FusedOptimizer::new(rule, lr, wd);
        let grads: Vec<Tensor> = shapes
            .iter()
            .map(|s| rand(s, DType::F64, &mut rng).to_device(dev).unwrap())
            .collect();
        opt2.step(&mut inplace, &grads).unwrap();
        let u = opt3.updates(&again, &grads).unwrap();
        for (p, u) in again.iter_mut().zip(&u) {
            p.add_assign(u).unwrap();
        }
        for (a, b) in inplace.iter().zip(&again) {
            assert_eq!(a.to_vec_f64(), b.to_vec_f64(), "{rule:?} in place vs updates");
        }
    }
}

/// GEMM throughput for bench/gpu-check.sh (`--ignored`): prints one line
/// `gemm <dtype> <n> <GFLOP/s>` per size.
#[test]
#[ignore = "a benchmark, run by bench/gpu-check.sh"]
fn gemm_throughput() {
    let Some(dev) = gpu("gemm_throughput") else { return };
    let mut rng = Rng::new(9);
    for dtype in DTYPES {
        for n in [1024usize, 4096] {
            let a = rand(&[n, n], dtype, &mut rng).to_device(dev).unwrap();
            let b = rand(&[n, n], dtype, &mut rng).to_device(dev).unwrap();
            let backend = cuda::backend(0).unwrap();
            let _ = a.matmul(&b).unwrap(); // warm-up
            backend.synchronize().unwrap();
            let reps = if n == 1024 { 20 } else { 3 };
            let start = std::time::Instant::now();
            for _ in 0..reps {
                let _ = a.matmul(&b).unwrap();
            }
            backend.synchronize().unwrap();
            let secs = start.elapsed().as_secs_f64() / reps as f64;
            println!("gemm {dtype} {n} {:.1}", 2.0 * (n as f64).powi(3) / secs / 1e9);
        }
    }
}
