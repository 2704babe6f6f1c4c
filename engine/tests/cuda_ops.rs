//! The GPU suite: every CUDA op against the CPU backend on random inputs.
//!
//! f64 results must agree with the CPU's to 1e-10 relative + 1e-12 absolute
//! (GEMM and reductions sum in a different order).
//!
//! f32 results are held to a tolerance derived from the op's own rounding,
//! not a fixed one: each op also runs on the CPU with its inputs widened to
//! f64 (exact: the inputs are f32 values), giving a reference `r` that is
//! all but exact at f32 precision. With `g` the GPU's result, `c` the CPU's
//! f32 result, `u = 2^-24` the unit roundoff and `m` a magnitude (for sums,
//! means and GEMM the op applied to the inputs' absolute values; 0 for
//! elementwise ops), every element must satisfy
//! `|g - r| <= 8 (|c - r| + u |r| + u m)`:
//! the GPU's error may be at most 8 times the larger of the CPU's own f32
//! error (another summation order, another libm: CUDA's transcendentals are
//! within a few ulp), one rounding of the result, or one rounding of the sum
//! of magnitudes (a sum that cancels to ~0 has no relative accuracy). See
//! [`assert_accurate`]. Without a GPU (or against the stub libcuda) every
//! test prints why it skipped, and passes.
#![cfg(feature = "cuda")]

use ferrograd_engine::cuda::nn::{batchnorm_backward, batchnorm_eval, batchnorm_train};
use ferrograd_engine::cuda::optim::{FusedOptimizer, FusedRule};
use ferrograd_engine::{cuda, BinaryOp, DType, Device, Rng, Tensor, UnaryOp, Window2d};

/// The GPU, or `None` after printing why the test is skipped.
fn gpu(test: &str) -> Option<Device> {
    cuda::device_or_skip(test)
}

/// The f64 rule: relative and absolute tolerance against the CPU's result.
const F64_RTOL: f64 = 1e-10;
const F64_ATOL: f64 = 1e-12;

/// f32's unit roundoff, 2^-24: the largest relative error of one rounding.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// The scale of the terms behind each element of an op's result.
#[derive(Clone, Copy)]
enum Magnitude<'a> {
    /// Elementwise ops and data movement: no sum, the relative terms suffice.
    None,
    /// Sums, means, products: the op applied (in f64) to the inputs' absolute
    /// values, e.g. `sum |x|` for a sum or `|A| |B|` for a GEMM.
    OfAbs,
    /// A function of the inputs widened to f64.
    Custom(&'a dyn Fn(&[Tensor]) -> Tensor),
}

/// Runs `op` on `inputs` moved to the GPU, on the CPU inputs and (for f32
/// inputs) on the CPU inputs widened to f64, and checks the GPU's result
/// with [`assert_accurate`]. `op` must be a pure function of its inputs.
fn check(what: &str, dev: Device, inputs: &[&Tensor], magnitude: Magnitude, op: impl Fn(&[Tensor]) -> Tensor) {
    let dtype = inputs[0].dtype();
    let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(dev).unwrap()).collect();
    let cpu: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
    let (g, c) = (op(&on_gpu), op(&cpu));
    if dtype == DType::F64 {
        return assert_accurate(what, dtype, &g, &c, &c, None);
    }
    let wide: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64))
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    let m = match magnitude {
        Magnitude::None => None,
        Magnitude::OfAbs => Some(op(&wide.iter().map(|t| t.abs().unwrap()).collect::<Vec<_>>())),
        Magnitude::Custom(f) => Some(f(&wide)),
    };
    assert_accurate(what, dtype, &g, &c, &op(&wide), m.as_ref());
}

/// Asserts that `gpu` (the GPU's result of an op on `input`-dtype inputs)
/// matches `cpu` (the CPU's result on the same inputs).
///
/// f64: `|g - c| <= 1e-12 + 1e-10 |c|`.
///
/// f32: `reference` is the same op on the inputs widened to f64 and
/// `magnitude` (f64, or `None` for 0) the scale of the terms behind each
/// element; per element `|g - r| <= 8 (|c - r| + u |r| + u m)` with
/// `u = 2^-24`. The GPU's result must be as close to the exact result as the
/// CPU's own f32 result is, within a factor 8 (another summation order,
/// another libm), or within 8 roundings of the result, or within 8 roundings
/// of the sum of magnitudes for reductions and products (so that a sum that
/// cancels to ~0 is not held to a relative bound). The factor 8 applies to
/// the magnitude too: a tree sum of `n` terms may lose up to `log2(n)`
/// roundings of it, and with a single one (`+ u m`) GEMM and log_softmax
/// used up to 1.6 times that on other seeds, where the CPU's f32 result
/// happened to be accurate.
///
/// Both dtypes: NaN must be where the CPU has NaN, and an infinity must equal
/// the CPU's.
fn assert_accurate(
    what: &str,
    input: DType,
    gpu: &Tensor,
    cpu: &Tensor,
    reference: &Tensor,
    magnitude: Option<&Tensor>,
) {
    assert!(gpu.is_cuda(), "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    assert_eq!(gpu.dtype(), cpu.dtype(), "{what}: dtype");
    assert_eq!(reference.shape(), cpu.shape(), "{what}: reference shape");
    let (g, c, r) = (
        gpu.to_vec_f64().unwrap(),
        cpu.to_vec_f64().unwrap(),
        reference.to_vec_f64().unwrap(),
    );
    let m = match magnitude {
        Some(m) => {
            assert_eq!(m.shape(), cpu.shape(), "{what}: magnitude shape");
            m.to_vec_f64().unwrap()
        }
        None => vec![0.0; c.len()],
    };
    for (i, (((&g, &c), &r), &m)) in g.iter().zip(&c).zip(&r).zip(&m).enumerate() {
        let (target, tol) = match input {
            DType::F64 => (c, F64_ATOL + F64_RTOL * c.abs()),
            DType::F32 => (r, 8.0 * ((c - r).abs() + U * r.abs() + U * m)),
        };
        let ok = if g.is_nan() || c.is_nan() {
            g.is_nan() && c.is_nan()
        } else if g.is_infinite() || c.is_infinite() {
            g == c
        } else {
            approx::abs_diff_eq!(g, target, epsilon = tol)
        };
        assert!(
            ok,
            "{what} ({input}): element {i}: gpu {g:e}, cpu {c:e}, f64 reference {r:e}: \
             |gpu - {}| = {:e} > tolerance {tol:e}",
            if input == DType::F64 { "cpu" } else { "reference" },
            (g - target).abs()
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
            Tensor::ones([3], DType::F32).unwrap().to_device(Device::Cuda(0)),
            Err(ferrograd_engine::Error::DeviceUnavailable { .. })
        ));
        return;
    };
    let mut rng = Rng::new(1);
    for dtype in DTYPES {
        let x = rand(&[5, 7], dtype, &mut rng);
        let g = x.to_device(dev).unwrap();
        assert_eq!(g.device(), dev);
        assert_eq!(
            g.to_device(Device::Cpu).unwrap().to_vec_f64().unwrap(),
            x.to_vec_f64().unwrap()
        );
        assert_eq!(g.to_vec_f64().unwrap(), x.to_vec_f64().unwrap());
        check("to_dtype", dev, &[&x], Magnitude::None, |t| {
            t[0].to_dtype(DType::F64).unwrap()
        });
        assert_eq!(g.get(&[2, 3]).unwrap(), x.get(&[2, 3]).unwrap());
        check("zeros_like", dev, &[&x], Magnitude::None, |t| {
            t[0].zeros_like().unwrap()
        });
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
        let xp = x.abs().unwrap().add_scalar(0.1).unwrap();
        let g = x.to_device(dev).unwrap();
        for op in ops {
            check(&format!("{op:?}"), dev, &[&x], Magnitude::None, |t| {
                t[0].unary(op).unwrap()
            });
        }
        for op in positive {
            check(&format!("{op:?}"), dev, &[&xp], Magnitude::None, |t| {
                t[0].unary(op).unwrap()
            });
        }
        // In place, so compared directly, against the CPU's tanh and its f64 reference.
        let mut inplace = g.clone();
        inplace.unary_in_place(UnaryOp::Tanh).unwrap();
        assert_accurate(
            "unary_in_place",
            dtype,
            &inplace,
            &x.tanh().unwrap(),
            &x.to_dtype(DType::F64).unwrap().tanh().unwrap(),
            None,
        );
        // No arithmetic: the clone's buffer must be bit for bit unchanged.
        assert_eq!(
            g.to_vec_f64().unwrap(),
            x.to_vec_f64().unwrap(),
            "shared buffer untouched"
        );
    }
}

/// The GPU's clamp keeps NaN as NaN, like the CPU's (`nan_never_hidden.rs`).
#[test]
fn clamp_on_the_gpu_keeps_nan() {
    let Some(dev) = gpu("clamp_nan") else { return };
    for dtype in DTYPES {
        let x = Tensor::from_f64_slice(&[f64::NAN, -3.0, 0.25, 3.0], [4], dtype).unwrap();
        let g = x.to_device(dev).unwrap();
        for (what, y) in [
            ("clamp", g.clamp(-1.0, 1.0).unwrap()),
            (
                "maximum_scalar",
                g.maximum_scalar(-1.0).unwrap().minimum_scalar(1.0).unwrap(),
            ),
        ] {
            let y = y.to_device(Device::Cpu).unwrap().to_vec_f64().unwrap();
            assert!(y[0].is_nan(), "{what} {dtype}: NaN became {}", y[0]);
            assert_eq!(&y[1..], &[-1.0, 0.25, 1.0], "{what} {dtype}");
        }
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
            for op in ops {
                check(&format!("{op:?} {sa:?} {sb:?}"), dev, &[&a, &b], Magnitude::None, |t| {
                    t[0].binary(&t[1], op).unwrap()
                });
            }
            let base = a.abs().unwrap().add_scalar(0.5).unwrap();
            check("pow", dev, &[&base, &b], Magnitude::None, |t| {
                t[0].binary(&t[1], BinaryOp::Pow).unwrap()
            });
        }
        let (c, t, f) = (
            rand(&[3, 1], dtype, &mut rng).gt_scalar(0.0),
            rand(&[3, 4], dtype, &mut rng),
            rand(&[4], dtype, &mut rng),
        );
        check("where", dev, &[&c.unwrap(), &t, &f], Magnitude::None, |t| {
            Tensor::where_cond(&t[0], &t[1], &t[2]).unwrap()
        });
        let cpu_on_gpu = a_mismatch(dtype, dev);
        assert!(matches!(
            cpu_on_gpu,
            Err(ferrograd_engine::Error::DeviceMismatch { .. })
        ));
    }
}

fn a_mismatch(dtype: DType, dev: Device) -> ferrograd_engine::Result<Tensor> {
    let a = Tensor::ones([2], dtype).unwrap();
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
                    check(&format!("sum {what}"), dev, &[&x], Magnitude::OfAbs, |t| {
                        t[0].sum(ax, keep).unwrap()
                    });
                    check(&format!("max {what}"), dev, &[&x], Magnitude::None, |t| {
                        t[0].max(ax, keep).unwrap()
                    });
                    check(&format!("min {what}"), dev, &[&x], Magnitude::None, |t| {
                        t[0].min(ax, keep).unwrap()
                    });
                    check(&format!("mean {what}"), dev, &[&x], Magnitude::OfAbs, |t| {
                        t[0].mean(ax, keep).unwrap()
                    });
                }
            }
            for a in 0..rank {
                // exp(x - max) / sum exp(x - max): the sum's relative
                // rounding error is a relative error of every output, so its
                // magnitude is the result itself (on top of `u |r|` for the
                // exp and the division).
                let softmax = |t: &[Tensor]| t[0].softmax(a).unwrap();
                check("softmax", dev, &[&x], Magnitude::Custom(&softmax), softmax);
                // (x - max) - log(sum exp(x - max)): both terms are <= 0, so
                // `u |r|` covers their rounding, but the log turns the sum's
                // relative rounding error into an absolute one: magnitude 1.
                let one = |t: &[Tensor]| t[0].ones_like().unwrap();
                check("log_softmax", dev, &[&x], Magnitude::Custom(&one), |t| {
                    t[0].log_softmax(a).unwrap()
                });
                assert_eq!(g.argmax(a).unwrap(), x.argmax(a).unwrap());
            }
        }
        // Determinism: the same reduction twice gives the same bits.
        let x = rand(&[3, 100_000], dtype, &mut rng).to_device(dev).unwrap();
        assert_eq!(
            x.sum_all().unwrap().to_vec_f64().unwrap(),
            x.sum_all().unwrap().to_vec_f64().unwrap()
        );
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
            let (at, bt) = (a.t().unwrap(), b.t().unwrap());
            let what = |t: &str| format!("{t} {m}x{k}x{n}");
            check(&what("nn"), dev, &[&a, &b], Magnitude::OfAbs, |t| {
                t[0].matmul(&t[1]).unwrap()
            });
            check(&what("tn"), dev, &[&at, &b], Magnitude::OfAbs, |t| {
                t[0].matmul_t(true, &t[1], false).unwrap()
            });
            check(&what("nt"), dev, &[&a, &bt], Magnitude::OfAbs, |t| {
                t[0].matmul_t(false, &t[1], true).unwrap()
            });
            check(&what("tt"), dev, &[&at, &bt], Magnitude::OfAbs, |t| {
                t[0].matmul_t(true, &t[1], true).unwrap()
            });
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
        let none = Magnitude::None;
        check("permute", dev, &[&x], none, |t| t[0].permute(&[2, 0, 1]).unwrap());
        check("t", dev, &[&x], none, |t| t[0].transpose(0, 2).unwrap());
        check("broadcast_to", dev, &[&x], none, |t| {
            t[0].narrow(1, 0, 1).unwrap().broadcast_to([4, 6, 5]).unwrap()
        });
        check("narrow", dev, &[&x], none, |t| t[0].narrow(2, 1, 3).unwrap());
        check("pad_zeros", dev, &[&x], none, |t| t[0].pad_zeros(1, 2, 1).unwrap());
        let y = rand(&[4, 2, 5], dtype, &mut rng);
        check("concat", dev, &[&x, &y], none, |t| Tensor::concat(t, 1).unwrap());
        check("sum_to", dev, &[&x], Magnitude::OfAbs, |t| t[0].sum_to([3, 1]).unwrap());
        let idx = [3, 0, 0, 2, 1, 3];
        check("index_select", dev, &[&x], none, |t| t[0].index_select(&idx).unwrap());
        let rows = rand(&[6, 3, 5], dtype, &mut rng);
        check("index_add", dev, &[&rows], Magnitude::OfAbs, |t| {
            t[0].index_add(&idx, 5).unwrap()
        });
        let m = rand(&[6, 4], dtype, &mut rng);
        let labels = [0, 3, 2, 2, 1, 0];
        check("gather", dev, &[&m], none, |t| t[0].gather(&labels).unwrap());
        let v = rand(&[6], dtype, &mut rng);
        check("scatter", dev, &[&v], Magnitude::OfAbs, |t| {
            t[0].scatter(&labels, 4).unwrap()
        });
        let image = rand(&[2, 3, 5, 6], dtype, &mut rng);
        let window = Window2d::new((2, 3)).stride((2, 1)).padding((1, 1)).dilation((1, 2));
        check("unfold", dev, &[&image], none, |t| t[0].unfold(&window).unwrap());
        let cols = rand(image.unfold(&window).unwrap().dims(), dtype, &mut rng);
        check("fold", dev, &[&cols], Magnitude::OfAbs, |t| {
            t[0].fold(&window, 5, 6).unwrap()
        });
        // In place, so compared directly: x + x = 2x exactly, in f32 as in f64.
        let mut acc = g.clone();
        acc.add_assign(&g).unwrap();
        let wide = x.to_dtype(DType::F64).unwrap();
        assert_accurate(
            "add_assign",
            dtype,
            &acc,
            &x.mul_scalar(2.0).unwrap(),
            &wide.mul_scalar(2.0).unwrap(),
            None,
        );
        // No arithmetic: a copy must be bit for bit.
        acc.copy_from(&g).unwrap();
        assert_eq!(acc.to_vec_f64().unwrap(), x.to_vec_f64().unwrap(), "copy_from");
    }
}

/// BatchNorm's training-mode results, written with engine ops: the CPU
/// reference for the fused kernels, run on the f32 inputs (`c`) and on them
/// widened to f64 (`r`). Each `*_mag` is that result's magnitude: the same
/// formula on absolute values (`x - mean(x)` becomes `|x| + mean(|x|)`, a sum
/// of terms the sum of their absolute values).
struct BnReference {
    y: Tensor,
    mean: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    dshift: Tensor,
    dscale: Tensor,
    dx: Tensor,
    y_mag: Tensor,
    mean_mag: Tensor,
    running_mean_mag: Tensor,
    dshift_mag: Tensor,
    dscale_mag: Tensor,
    dx_mag: Tensor,
}

/// [`BnReference`] for `x[n, c]` with eps 1e-5, momentum 0.1 and running
/// statistics starting at mean 0, variance 1; `dy` is the output's gradient.
fn bn_reference(x: &Tensor, scale: &Tensor, shift: &Tensor, dy: &Tensor) -> BnReference {
    let (n, c) = (x.dims()[0], x.dims()[1]);
    let nf = n as f64;
    let mean = x.mean(Some(&[0]), true).unwrap();
    let var = x.var(Some(&[0]), true, false).unwrap();
    let inv_std = var.add_scalar(1e-5).unwrap().rsqrt().unwrap();
    let xhat = x.sub(&mean).unwrap().mul(&inv_std).unwrap();
    let y = xhat.mul(scale).unwrap().add(shift).unwrap();
    let unbiased = x.var(Some(&[0]), false, true).unwrap();
    let dshift = dy.sum(Some(&[0]), false).unwrap();
    let dscale = dy.mul(&xhat).unwrap().sum(Some(&[0]), false).unwrap();
    let k = scale.mul(&inv_std.reshape([c]).unwrap()).unwrap();
    let dx = dy
        .sub(&dshift.div_scalar(nf).unwrap())
        .unwrap()
        .sub(&xhat.mul(&dscale.div_scalar(nf).unwrap()).unwrap())
        .unwrap()
        .mul(&k)
        .unwrap();
    // The variance sums squares (no cancellation): it needs no magnitude.
    let (abs_x, abs_dy) = (x.abs().unwrap(), dy.abs().unwrap());
    let mean_mag = abs_x.mean(Some(&[0]), true).unwrap();
    let xhat_mag = abs_x.add(&mean_mag).unwrap().mul(&inv_std).unwrap();
    let dshift_mag = abs_dy.sum(Some(&[0]), false).unwrap();
    let dscale_mag = abs_dy.mul(&xhat_mag).unwrap().sum(Some(&[0]), false).unwrap();
    BnReference {
        y_mag: xhat_mag
            .mul(&scale.abs().unwrap())
            .unwrap()
            .add(&shift.abs().unwrap())
            .unwrap(),
        dx_mag: abs_dy
            .add(&dshift_mag.div_scalar(nf).unwrap())
            .unwrap()
            .add(&xhat_mag.mul(&dscale_mag.div_scalar(nf).unwrap()).unwrap())
            .unwrap()
            .mul(&k.abs().unwrap())
            .unwrap(),
        running_mean_mag: mean_mag.reshape([c]).unwrap().mul_scalar(0.1).unwrap(),
        mean_mag: mean_mag.reshape([c]).unwrap(),
        running_mean: mean.reshape([c]).unwrap().mul_scalar(0.1).unwrap(),
        running_var: unbiased.mul_scalar(0.1).unwrap().add_scalar(0.9).unwrap(),
        mean: mean.reshape([c]).unwrap(),
        y,
        dshift,
        dscale,
        dx,
        dshift_mag,
        dscale_mag,
    }
}

/// Inference-mode BatchNorm with running statistics, written with engine
/// ops, and its magnitude (as in [`BnReference`]).
fn bn_eval_reference(x: &Tensor, scale: &Tensor, shift: &Tensor, rm: &Tensor, rv: &Tensor) -> (Tensor, Tensor) {
    let inv_std = rv.add_scalar(1e-5).unwrap().sqrt().unwrap();
    let y = x
        .sub(rm)
        .unwrap()
        .div(&inv_std)
        .unwrap()
        .mul(scale)
        .unwrap()
        .add(shift)
        .unwrap();
    let mag = x
        .abs()
        .unwrap()
        .add(&rm.abs().unwrap())
        .unwrap()
        .div(&inv_std)
        .unwrap()
        .mul(&scale.abs().unwrap())
        .unwrap()
        .add(&shift.abs().unwrap())
        .unwrap();
    (y, mag)
}

/// The fused kernels are GPU-only (the CPU's BatchNorm is built from engine
/// ops), so each result is compared directly with [`assert_accurate`]: `c`
/// from [`bn_reference`] on the f32 inputs, `r` and `m` from it on the inputs
/// widened to f64. This also covers the running statistics, updated in place.
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
        let wide = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let check_bn = |what: &str, g: &Tensor, c: &Tensor, r: &Tensor, m: &Tensor| {
            assert_accurate(what, dtype, g, c, r, Some(m));
        };
        let mut rm = on(&Tensor::zeros([c], dtype).unwrap());
        let mut rv = on(&Tensor::ones([c], dtype).unwrap());
        let fwd = batchnorm_train(&on(&x), &on(&scale), &on(&shift), 1e-5, 0.1, Some((&mut rm, &mut rv))).unwrap();
        let dy = rand(&[n, c], dtype, &mut rng);
        let cpu = bn_reference(&x, &scale, &shift, &dy);
        let exact = bn_reference(&wide(&x), &wide(&scale), &wide(&shift), &wide(&dy));
        check_bn("bn y", &fwd.y, &cpu.y, &exact.y, &exact.y_mag);
        check_bn("bn mean", &fwd.mean, &cpu.mean, &exact.mean, &exact.mean_mag);
        assert_accurate("running var", dtype, &rv, &cpu.running_var, &exact.running_var, None);
        let (g, c, r) = (&rm, &cpu.running_mean, &exact.running_mean);
        check_bn("running mean", g, c, r, &exact.running_mean_mag);
        let eval = batchnorm_eval(&on(&x), &on(&scale), &on(&shift), &rm, &rv, 1e-5).unwrap();
        let (rm, rv) = (rm.to_device(Device::Cpu).unwrap(), rv.to_device(Device::Cpu).unwrap());
        let (want_eval, _) = bn_eval_reference(&x, &scale, &shift, &rm, &rv);
        let (exact_eval, eval_mag) = bn_eval_reference(&wide(&x), &wide(&scale), &wide(&shift), &wide(&rm), &wide(&rv));
        check_bn("bn eval", &eval, &want_eval, &exact_eval, &eval_mag);
        let grads = batchnorm_backward(&on(&x), &on(&dy), &fwd, &on(&scale)).unwrap();
        check_bn(
            "bn dshift",
            &grads.dshift,
            &cpu.dshift,
            &exact.dshift,
            &exact.dshift_mag,
        );
        check_bn(
            "bn dscale",
            &grads.dscale,
            &cpu.dscale,
            &exact.dscale,
            &exact.dscale_mag,
        );
        check_bn("bn dx", &grads.dx, &cpu.dx, &exact.dx, &exact.dx_mag);
    }
}

#[test]
fn random_fills_have_the_right_moments_and_repeat_by_seed() {
    let Some(Device::Cuda(ordinal)) = gpu("rng") else {
        return;
    };
    for dtype in DTYPES {
        let u = cuda::nn::rand_uniform(ordinal, [200_000], -1.0, 3.0, dtype, 42).unwrap();
        let v = u.to_vec_f64().unwrap();
        assert!(v.iter().all(|&x| (-1.0..3.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "uniform mean {mean}");
        let z = cuda::nn::rand_normal(ordinal, [200_000], 2.0, 0.5, dtype, 7)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        let m = z.iter().sum::<f64>() / z.len() as f64;
        let s = (z.iter().map(|x| (x - m).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
        assert!(
            (m - 2.0).abs() < 0.01 && (s - 0.5).abs() < 0.01,
            "normal mean {m} std {s}"
        );
        let again = cuda::nn::rand_normal(ordinal, [200_000], 2.0, 0.5, dtype, 7)
            .unwrap()
            .to_vec_f64()
            .unwrap();
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
        let mut cpu: Vec<Vec<f64>> = params.iter().map(|p| p.to_vec_f64().unwrap()).collect();
        let mut state: Vec<Vec<[f64; 4]>> = cpu.iter().map(|p| vec![[0.0; 4]; p.len()]).collect();
        let mut opt = FusedOptimizer::new(rule, lr, wd);
        for t in 1..=5 {
            let grads: Vec<Tensor> = shapes.iter().map(|s| rand(s, DType::F64, &mut rng)).collect();
            let ggrads: Vec<Tensor> = grads.iter().map(|g| g.to_device(dev).unwrap()).collect();
            let updates = opt.updates(&gpu_params, &ggrads).unwrap();
            for (i, g) in grads.iter().enumerate() {
                let gv = g.to_vec_f64().unwrap();
                let want: Vec<f64> = (0..gv.len())
                    .map(|k| reference_step(rule, lr, wd, t, cpu[i][k], gv[k], &mut state[i][k]))
                    .collect();
                let got = updates[i].to_vec_f64().unwrap();
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        approx::abs_diff_eq!(a, b, epsilon = 1e-12 + 1e-10 * b.abs()),
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
            assert_eq!(
                a.to_vec_f64().unwrap(),
                b.to_vec_f64().unwrap(),
                "{rule:?} in place vs updates"
            );
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
