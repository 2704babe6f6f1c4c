//! `hvp` agrees with finite differences of gradients on random MLPs (f64).

use ferrograd::autograd::{hessian, hvp, Var};
use ferrograd::engine::{DType, Result, Rng, Tensor};
use proptest::prelude::*;

/// A 2-layer tanh MLP's loss as a function of its flattened first-layer weights.
fn mlp_loss(w1: &Var, x: &Tensor, w2: &Tensor, y: &Tensor, shape: [usize; 2]) -> Result<Var> {
    let h = Var::constant(x.clone()).matmul(&w1.reshape(shape)?)?.tanh();
    Ok(h.matmul(&Var::constant(w2.clone()))?
        .sub(&Var::constant(y.clone()))?
        .square()
        .sum_all())
}

fn gradient(f: &dyn Fn(&Var) -> Result<Var>, x: &Tensor) -> Vec<f64> {
    let leaf = Var::parameter(x.clone());
    f(&leaf).unwrap().backward().unwrap().get(&leaf).unwrap().to_vec_f64()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn hvp_matches_finite_differences_of_gradients(batch in 1usize..5, fan_in in 1usize..4, hidden in 1usize..5, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut normal = |s: &[usize]| Tensor::rand_normal(s.to_vec(), 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let (x, w2, y) = (normal(&[batch, fan_in]), normal(&[hidden, 1]), normal(&[batch, 1]));
        let w1 = normal(&[fan_in * hidden]).mul_scalar(0.5);
        let v = normal(&[fan_in * hidden]);
        let f = |w: &Var| mlp_loss(w, &x, &w2, &y, [fan_in, hidden]);
        let analytic = hvp(f, &w1, &v).unwrap().to_vec_f64();
        let eps = 1e-5;
        let plus = gradient(&f, &w1.add(&v.mul_scalar(eps)).unwrap());
        let minus = gradient(&f, &w1.sub(&v.mul_scalar(eps)).unwrap());
        let scale = analytic.iter().fold(1e-3f64, |m, a| m.max(a.abs()));
        for (i, a) in analytic.iter().enumerate() {
            let numeric = (plus[i] - minus[i]) / (2.0 * eps);
            prop_assert!((a - numeric).abs() <= 1e-6 * scale, "element {i}: hvp {a}, finite differences {numeric}");
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
    let h = hessian(f, &x).unwrap().to_vec::<f64>();
    assert_eq!(h, vec![2.0, 1.5, 1.5, 6.0]);
}
