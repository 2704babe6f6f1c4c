//! `hvp` agrees with finite differences of gradients on random MLPs (f64).

use ferrograd::autograd::{hessian, hvp, Var};
use ferrograd::engine::{DType, Result, Rng, Tensor};
use proptest::prelude::*;

/// A 2-layer tanh MLP's loss as a function of its flattened first-layer weights.
fn mlp_loss(w1: &Var, x: &Tensor, w2: &Tensor, y: &Tensor, shape: [usize; 2]) -> Result<Var> {
    let h = Var::constant(x.clone()).matmul(&w1.reshape(shape)?)?.tanh()?;
    h.matmul(&Var::constant(w2.clone()))?
        .sub(&Var::constant(y.clone()))?
        .square()?
        .sum_all()
}

fn gradient(f: &dyn Fn(&Var) -> Result<Var>, x: &Tensor) -> Vec<f64> {
    let leaf = Var::parameter(x.clone());
    f(&leaf)
        .unwrap()
        .backward()
        .unwrap()
        .get(&leaf)
        .unwrap()
        .to_vec_f64()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn hvp_matches_finite_differences_of_gradients(batch in 1usize..5, fan_in in 1usize..4, hidden in 1usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut normal = |s: &[usize]| Tensor::rand_normal(s.to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let (x, w2, y) = (normal(&[batch, fan_in]), normal(&[hidden, 1]), normal(&[batch, 1]));
        let w1 = normal(&[fan_in * hidden]).mul_scalar(0.5)?;
        let v = normal(&[fan_in * hidden]);
        let f = |w: &Var| mlp_loss(w, &x, &w2, &y, [fan_in, hidden]);
        let analytic = hvp(f, &w1, &v).unwrap().to_vec_f64().unwrap();
        let eps = 1e-5;
        let plus = gradient(&f, &w1.add(&v.mul_scalar(eps)?).unwrap());
        let minus = gradient(&f, &w1.sub(&v.mul_scalar(eps)?).unwrap());
        let scale = analytic.iter().fold(1e-3f64, |m, a| m.max(a.abs()));
        for (i, a) in analytic.iter().enumerate() {
            let numeric = (plus[i] - minus[i]) / (2.0 * eps);
            prop_assert!(approx::abs_diff_eq!(*a, numeric, epsilon = 1e-6 * scale), "element {i}: hvp {a}, finite differences {numeric}");
        }
    }
}

#[test]
fn hessian_of_a_quadratic_form_is_its_symmetrised_matrix() {
    // f(x) = x^T A x has Hessian A + A^T.
    let a = Tensor::from_vec(vec![1.0f64, 2.0, -0.5, 3.0], [2, 2]).unwrap();
    let x = Tensor::from_vec(vec![0.3f64, -0.7], [2]).unwrap();
    let f = |v: &Var| -> Result<Var> {
        let col = v.reshape([2, 1])?;
        col.matmul_t(true, &Var::constant(a.clone()), false)?
            .matmul(&col)?
            .sum(None, false)
    };
    let h = hessian(f, &x).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(h, vec![2.0, 1.5, 1.5, 6.0]);
}

/// Central differences of the analytic gradient along each basis vector: a
/// finite-difference Hessian, `[n, n]` row-major.
fn finite_difference_hessian(f: &dyn Fn(&Var) -> Result<Var>, x: &Tensor, eps: f64) -> Vec<f64> {
    let n = x.numel();
    let base = x.to_vec_f64().unwrap();
    let mut h = vec![0.0; n * n];
    for j in 0..n {
        let shifted = |delta: f64| {
            let mut moved = base.clone();
            moved[j] += delta;
            gradient(
                f,
                &Tensor::from_f64_slice(&moved, x.shape().clone(), DType::F64).unwrap(),
            )
        };
        let (plus, minus) = (shifted(eps), shifted(-eps));
        for i in 0..n {
            h[i * n + j] = (plus[i] - minus[i]) / (2.0 * eps);
        }
    }
    h
}

/// Asserts two `n x n` matrices agree to `rel` relative to the largest entry.
fn assert_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    let scale = want.iter().fold(1e-3f64, |m, w| m.max(w.abs()));
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::abs_diff_eq!(g, w, epsilon = rel * scale),
            "{what}: entry {k}: {g} vs {w} (scale {scale})"
        );
    }
}

#[test]
fn hessian_of_softmax_cross_entropy_is_diag_p_minus_p_p_transposed() {
    // Mean cross-entropy over a batch of b rows of c logits: the Hessian is
    // block-diagonal, each block (diag(p) - p p^T) / b with p = softmax(row).
    let (b, c) = (3, 4);
    let logits = Tensor::rand_normal([b * c], 0.0, 1.5, DType::F64, &mut Rng::new(7)).unwrap();
    let labels = [2usize, 0, 3];
    let f = |z: &Var| ferrograd::nn::cross_entropy(&z.reshape([b, c])?, &labels);
    let h = hessian(f, &logits).unwrap().to_vec::<f64>().unwrap();

    let z = logits.to_vec::<f64>().unwrap();
    let n = b * c;
    let mut want = vec![0.0; n * n];
    for row in 0..b {
        let exps: Vec<f64> = z[row * c..(row + 1) * c].iter().map(|v| v.exp()).collect();
        let total: f64 = exps.iter().sum();
        let p: Vec<f64> = exps.iter().map(|e| e / total).collect();
        for i in 0..c {
            for j in 0..c {
                let diag = if i == j { p[i] } else { 0.0 };
                want[(row * c + i) * n + row * c + j] = (diag - p[i] * p[j]) / b as f64;
            }
        }
    }
    assert_close(&h, &want, 1e-12, "analytic softmax cross-entropy Hessian");
    assert_close(
        &h,
        &finite_difference_hessian(&f, &logits, 1e-5),
        1e-7,
        "finite differences",
    );
}

#[test]
fn hessian_of_an_mlp_with_batchnorm_matches_finite_differences() {
    use ferrograd::nn::{BatchNorm1d, Linear};
    // Linear(2 -> 3) -> BatchNorm (training mode) -> tanh -> Linear(3 -> 1),
    // squared error, as a function of all 19 parameters flattened.
    let (batch, fan_in, hidden) = (5, 2, 3);
    let mut rng = Rng::new(11);
    let x = Tensor::rand_normal([batch, fan_in], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let y = Tensor::rand_normal([batch, 1], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let sizes = [hidden * fan_in, hidden, hidden, hidden, hidden, 1];
    let n: usize = sizes.iter().sum();
    let mut params = Tensor::rand_normal([n], 0.0, 0.7, DType::F64, &mut rng).unwrap();
    // BatchNorm's scale near 1, as at initialisation.
    let offset = hidden * fan_in + hidden;
    let mut values = params.to_vec::<f64>().unwrap();
    for v in &mut values[offset..offset + hidden] {
        *v += 1.0;
    }
    params = Tensor::from_vec(values, [n]).unwrap();
    let norm = BatchNorm1d::new(hidden, DType::F64).unwrap();
    let f = |p: &Var| -> Result<Var> {
        let mut start = 0;
        let mut take = |len: usize| {
            let part = p.narrow(0, start, len);
            start += len;
            part
        };
        let (w1, b1, scale, shift, w2, b2) = (
            take(sizes[0])?,
            take(sizes[1])?,
            take(sizes[2])?,
            take(sizes[3])?,
            take(sizes[4])?,
            take(sizes[5])?,
        );
        let h = Linear::forward(&Var::constant(x.clone()), &w1.reshape([hidden, fan_in])?, &b1)?;
        let (h, _, _) = norm.forward_train(&h, &scale, &shift)?;
        let out = Linear::forward(&h.tanh()?, &w2.reshape([1, hidden])?, &b2)?;
        ferrograd::nn::sse(&out, &Var::constant(y.clone()))
    };
    let h = hessian(f, &params).unwrap().to_vec::<f64>().unwrap();
    for i in 0..n {
        for j in 0..i {
            assert!(
                approx::abs_diff_eq!(h[i * n + j], h[j * n + i], epsilon = 1e-10),
                "symmetric at ({i}, {j})"
            );
        }
    }
    assert_close(
        &h,
        &finite_difference_hessian(&f, &params, 1e-5),
        1e-6,
        "finite differences",
    );
}
