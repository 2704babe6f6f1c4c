//! Forward mode over the op registry, three `#[test]`s per entry, mirroring
//! the gradcheck suite (`tests/gradcheck_ops.rs` in the facade crate):
//! `jvpcheck_<op>` draws 64 cases and asserts that the forward rules' `J v`
//! matches central differences along a random `v`; `dot_product_<op>` draws
//! 64 cases and asserts `<J v, u> == <v, J^T u>` for random `u, v` to 1e-10
//! relative in f64 (forward mode against reverse mode, no finite
//! differences); `hvp_modes_<op>` draws 64 cases and asserts that
//! forward-over-reverse Hessian-vector products of `sum(r * op(x))` (tangents
//! pushed through the op's backward rule) equal reverse-over-reverse ones
//! (which `gradgradcheck` proves against finite differences) to the same
//! tolerance.
//!
//! Plus the enforcement test `every_op_kind_has_a_forward_rule`: for every
//! `OpKind`, a registry case run with tangents on all its inputs records the
//! kind and gives its output a tangent of the output's shape. A new op whose
//! forward rule answers "no tangent" fails it, and a new registry entry
//! without its three tests here fails it too.

use ferrograd_autograd::registry::{self, OpEntry};
use ferrograd_autograd::{dot_product_check, hvp_of_inputs, jvpcheck, GradcheckOptions, HvpMode, OpKind, Var};
use ferrograd_engine::{DType, Rng, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::{BTreeSet, HashSet};

/// Cases per op, for each of the two checks.
const CASES: u32 = 64;

/// Which property `check_op` verifies.
#[derive(Clone, Copy)]
enum Check {
    /// `J v` against central differences.
    Jvp,
    /// `<J v, u>` against `<v, J^T u>`.
    DotProduct,
    /// Forward-over-reverse against reverse-over-reverse.
    HvpModes,
}

/// The largest elementwise difference between the two modes' `H v`, relative
/// to the larger of 1 and the largest entry: `r` weights the op's output
/// into a scalar, `v` is one direction per input (all standard normal).
fn hvp_mode_gap(case: &registry::Case, seed: u64) -> ferrograd_engine::Result<f64> {
    let mut rng = Rng::new(seed ^ 0x4856_5021);
    let shape = ferrograd_autograd::no_grad(|| {
        let constants: Vec<Var> = case.inputs.iter().cloned().map(Var::constant).collect();
        (case.apply)(&constants).map(|out| out.shape().clone())
    })?;
    let r = Var::constant(Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, &mut rng)?);
    let v: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|x| Tensor::rand_normal(x.shape().clone(), 0.0, 1.0, DType::F64, &mut rng))
        .collect::<ferrograd_engine::Result<_>>()?;
    let loss = |vars: &[Var]| (case.apply)(vars)?.mul(&r)?.sum_all();
    let forward = hvp_of_inputs(loss, &case.inputs, &v, HvpMode::ForwardOverReverse)?;
    let reverse = hvp_of_inputs(loss, &case.inputs, &v, HvpMode::ReverseOverReverse)?;
    let (mut gap, mut scale) = (0.0f64, 1.0f64);
    for (a, b) in forward.iter().zip(&reverse) {
        for (x, y) in a.to_vec_f64().unwrap().into_iter().zip(b.to_vec_f64().unwrap()) {
            gap = gap.max((x - y).abs());
            scale = scale.max(y.abs());
        }
    }
    Ok(gap / scale)
}

/// A proptest runner whose stream is fixed by `label` (repeatable in CI,
/// different per op). No failure files are written.
fn runner(label: &str) -> TestRunner {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 512,
        ..Config::default()
    };
    // FNV-1a over the label, expanded to the 32 bytes ChaCha wants.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        let word = h.rotate_left(13 * i as u32) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Base dims (rank 1..=3, each dim 1..=4) and a case seed.
fn dims_and_seed() -> impl Strategy<Value = (Vec<usize>, u64)> {
    (prop::collection::vec(1usize..=4, 1..=3), any::<u64>())
}

/// The entry's finite-difference options: its override if any, else the defaults.
fn options(entry: &OpEntry, seed: u64) -> GradcheckOptions {
    match entry.tolerance {
        Some((eps, atol, rtol)) => GradcheckOptions { eps, atol, rtol, seed },
        None => GradcheckOptions {
            seed,
            ..GradcheckOptions::default()
        },
    }
}

fn entry(name: &str) -> OpEntry {
    registry::entries()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("registry has no entry named {name:?}"))
}

/// Runs one forward-mode property over 64 drawn cases of one entry.
fn check_op(name: &str, check: Check) {
    let entry = entry(name);
    let label = match check {
        Check::Jvp => format!("{name} (jvp)"),
        Check::DotProduct => format!("{name} (dot product)"),
        Check::HvpModes => format!("{name} (hvp modes)"),
    };
    let ran = std::cell::Cell::new(0u32);
    let result = runner(&label).run(&dims_and_seed(), |(dims, seed)| {
        ran.set(ran.get() + 1);
        let case = (entry.build)(&dims, &mut Rng::new(seed));
        let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.dims().to_vec()).collect();
        let fail = |e| TestCaseError::fail(format!("{label}: check errored on inputs {shapes:?}: {e}"));
        match check {
            Check::Jvp => {
                let report = jvpcheck(&case.apply, &case.inputs, &options(&entry, seed)).map_err(fail)?;
                prop_assert!(report.passed, "{label} (dims {dims:?}, seed {seed}, inputs {shapes:?}): {report}");
            }
            Check::DotProduct => {
                let tolerance = entry.cross_mode_tolerance();
                let report = dot_product_check(&case.apply, &case.inputs, seed, tolerance).map_err(fail)?;
                prop_assert!(report.passed, "{label} (dims {dims:?}, seed {seed}, inputs {shapes:?}): {report}");
            }
            Check::HvpModes => {
                let gap = hvp_mode_gap(&case, seed).map_err(fail)?;
                let tolerance = entry.cross_mode_tolerance();
                prop_assert!(gap <= tolerance, "{label} (dims {dims:?}, seed {seed}, inputs {shapes:?}): forward-over-reverse and reverse-over-reverse differ by {gap:.3e} relative (tolerance {tolerance:.0e})");
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("property failed for `{label}`: {e}");
    }
    assert!(ran.get() >= CASES, "{label}: only {} cases ran", ran.get());
}

/// Declares three `#[test]`s per registry entry, and the list of covered names.
macro_rules! forward_mode_ops {
    ($($test:ident, $test2:ident, $test3:ident = $op:ident),* $(,)?) => {
        /// `(jvp test, dot-product test, hvp-modes test, registry entry)` for every generated triple.
        const TESTED: &[(&str, &str, &str, &str)] =
            &[$((stringify!($test), stringify!($test2), stringify!($test3), stringify!($op))),*];
        $(
            #[test]
            fn $test() {
                check_op(stringify!($op), Check::Jvp);
            }

            #[test]
            fn $test2() {
                check_op(stringify!($op), Check::DotProduct);
            }

            #[test]
            fn $test3() {
                check_op(stringify!($op), Check::HvpModes);
            }
        )*
    };
}

forward_mode_ops! {
    jvpcheck_neg, dot_product_neg, hvp_modes_neg = neg,
    jvpcheck_abs, dot_product_abs, hvp_modes_abs = abs,
    jvpcheck_exp, dot_product_exp, hvp_modes_exp = exp,
    jvpcheck_log, dot_product_log, hvp_modes_log = log,
    jvpcheck_sqrt, dot_product_sqrt, hvp_modes_sqrt = sqrt,
    jvpcheck_rsqrt, dot_product_rsqrt, hvp_modes_rsqrt = rsqrt,
    jvpcheck_square, dot_product_square, hvp_modes_square = square,
    jvpcheck_recip, dot_product_recip, hvp_modes_recip = recip,
    jvpcheck_relu, dot_product_relu, hvp_modes_relu = relu,
    jvpcheck_leaky_relu, dot_product_leaky_relu, hvp_modes_leaky_relu = leaky_relu,
    jvpcheck_sigmoid, dot_product_sigmoid, hvp_modes_sigmoid = sigmoid,
    jvpcheck_tanh, dot_product_tanh, hvp_modes_tanh = tanh,
    jvpcheck_gelu, dot_product_gelu, hvp_modes_gelu = gelu,
    jvpcheck_silu, dot_product_silu, hvp_modes_silu = silu,
    jvpcheck_sin, dot_product_sin, hvp_modes_sin = sin,
    jvpcheck_cos, dot_product_cos, hvp_modes_cos = cos,
    jvpcheck_clamp, dot_product_clamp, hvp_modes_clamp = clamp,
    jvpcheck_add_scalar, dot_product_add_scalar, hvp_modes_add_scalar = add_scalar,
    jvpcheck_sub_scalar, dot_product_sub_scalar, hvp_modes_sub_scalar = sub_scalar,
    jvpcheck_mul_scalar, dot_product_mul_scalar, hvp_modes_mul_scalar = mul_scalar,
    jvpcheck_div_scalar, dot_product_div_scalar, hvp_modes_div_scalar = div_scalar,
    jvpcheck_pow_scalar, dot_product_pow_scalar, hvp_modes_pow_scalar = pow_scalar,
    jvpcheck_cast, dot_product_cast, hvp_modes_cast = cast,
    jvpcheck_add, dot_product_add, hvp_modes_add = add,
    jvpcheck_sub, dot_product_sub, hvp_modes_sub = sub,
    jvpcheck_mul, dot_product_mul, hvp_modes_mul = mul,
    jvpcheck_div, dot_product_div, hvp_modes_div = div,
    jvpcheck_pow, dot_product_pow, hvp_modes_pow = pow,
    jvpcheck_maximum, dot_product_maximum, hvp_modes_maximum = maximum,
    jvpcheck_minimum, dot_product_minimum, hvp_modes_minimum = minimum,
    jvpcheck_where, dot_product_where, hvp_modes_where = where,
    jvpcheck_matmul, dot_product_matmul, hvp_modes_matmul = matmul,
    jvpcheck_matmul_tn, dot_product_matmul_tn, hvp_modes_matmul_tn = matmul_tn,
    jvpcheck_matmul_nt, dot_product_matmul_nt, hvp_modes_matmul_nt = matmul_nt,
    jvpcheck_matmul_tt, dot_product_matmul_tt, hvp_modes_matmul_tt = matmul_tt,
    jvpcheck_sum, dot_product_sum, hvp_modes_sum = sum,
    jvpcheck_mean, dot_product_mean, hvp_modes_mean = mean,
    jvpcheck_max, dot_product_max, hvp_modes_max = max,
    jvpcheck_min, dot_product_min, hvp_modes_min = min,
    jvpcheck_var, dot_product_var, hvp_modes_var = var,
    jvpcheck_var_unbiased, dot_product_var_unbiased, hvp_modes_var_unbiased = var_unbiased,
    jvpcheck_logsumexp, dot_product_logsumexp, hvp_modes_logsumexp = logsumexp,
    jvpcheck_softmax, dot_product_softmax, hvp_modes_softmax = softmax,
    jvpcheck_log_softmax, dot_product_log_softmax, hvp_modes_log_softmax = log_softmax,
    jvpcheck_reshape, dot_product_reshape, hvp_modes_reshape = reshape,
    jvpcheck_squeeze, dot_product_squeeze, hvp_modes_squeeze = squeeze,
    jvpcheck_unsqueeze, dot_product_unsqueeze, hvp_modes_unsqueeze = unsqueeze,
    jvpcheck_permute, dot_product_permute, hvp_modes_permute = permute,
    jvpcheck_transpose, dot_product_transpose, hvp_modes_transpose = transpose,
    jvpcheck_broadcast_to, dot_product_broadcast_to, hvp_modes_broadcast_to = broadcast_to,
    jvpcheck_sum_to, dot_product_sum_to, hvp_modes_sum_to = sum_to,
    jvpcheck_concat, dot_product_concat, hvp_modes_concat = concat,
    jvpcheck_narrow, dot_product_narrow, hvp_modes_narrow = narrow,
    jvpcheck_pad_zeros, dot_product_pad_zeros, hvp_modes_pad_zeros = pad_zeros,
    jvpcheck_index_select, dot_product_index_select, hvp_modes_index_select = index_select,
    jvpcheck_index_add, dot_product_index_add, hvp_modes_index_add = index_add,
    jvpcheck_gather, dot_product_gather, hvp_modes_gather = gather,
    jvpcheck_scatter, dot_product_scatter, hvp_modes_scatter = scatter,
    // layers' ops (composites)
    jvpcheck_layer_norm, dot_product_layer_norm, hvp_modes_layer_norm = layer_norm,
    jvpcheck_dropout, dot_product_dropout, hvp_modes_dropout = dropout,
    jvpcheck_embedding, dot_product_embedding, hvp_modes_embedding = embedding,
    // convolution and pooling
    jvpcheck_unfold, dot_product_unfold, hvp_modes_unfold = unfold,
    jvpcheck_fold, dot_product_fold, hvp_modes_fold = fold,
    jvpcheck_conv2d, dot_product_conv2d, hvp_modes_conv2d = conv2d,
    jvpcheck_conv1d, dot_product_conv1d, hvp_modes_conv1d = conv1d,
    jvpcheck_max_pool2d, dot_product_max_pool2d, hvp_modes_max_pool2d = max_pool2d,
    jvpcheck_avg_pool2d, dot_product_avg_pool2d, hvp_modes_avg_pool2d = avg_pool2d,
    // user-defined primitives
    jvpcheck_custom_softplus, dot_product_custom_softplus, hvp_modes_custom_softplus = custom_softplus,
    jvpcheck_custom_scaled_square, dot_product_custom_scaled_square, hvp_modes_custom_scaled_square = custom_scaled_square,
}

/// A standard normal tangent for `x`, as a constant.
fn random_tangent(x: &Tensor, rng: &mut Rng) -> Var {
    Var::constant(Tensor::rand_normal(x.shape().clone(), 0.0, 1.0, DType::F64, rng).unwrap())
}

/// Whether `out`'s graph records `kind` anywhere.
fn records(out: &Var, kind: OpKind) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![out.clone()];
    while let Some(v) = stack.pop() {
        if !seen.insert(v.id()) {
            continue;
        }
        if let Some(node) = v.node() {
            if node.op.kind() == kind {
                return true;
            }
            stack.extend(node.inputs.iter().cloned());
        }
    }
    false
}

/// Runs `entry`'s case at a few base dims with a tangent on every input:
/// `Ok(true)` if some run recorded the entry's kind and its output carried a
/// tangent of the output's shape, `Err` naming a run that recorded the kind
/// but produced no tangent.
fn forward_rule_runs(entry: &OpEntry) -> Result<bool, String> {
    for seed in 0..8u64 {
        let dims = [[2, 3, 4], [3, 2, 1], [4, 3, 2], [1, 4, 3]][seed as usize % 4][..1 + (seed as usize % 3)].to_vec();
        let mut rng = Rng::new(seed);
        let case = (entry.build)(&dims, &mut rng);
        let duals: Vec<Var> = case
            .inputs
            .iter()
            .map(|x| {
                Var::parameter(x.clone())
                    .with_tangent(&random_tangent(x, &mut rng))
                    .unwrap()
            })
            .collect();
        let out = (case.apply)(&duals).unwrap_or_else(|e| panic!("{}: case failed to run: {e}", entry.name));
        if !records(&out, entry.kind) {
            continue;
        }
        return match out.tangent() {
            Some(t) if t.shape() == out.shape() && t.dtype() == out.dtype() => Ok(true),
            Some(t) => Err(format!(
                "{}: tangent of shape {} for an output of shape {}",
                entry.name,
                t.shape(),
                out.shape()
            )),
            None => Err(format!("{} (dims {dims:?}): no tangent on the output", entry.name)),
        };
    }
    Ok(false)
}

#[test]
fn every_op_kind_has_a_forward_rule() {
    let entries = registry::entries();
    let mut proved = BTreeSet::new();
    let mut failures = Vec::new();
    for entry in &entries {
        match forward_rule_runs(entry) {
            Ok(true) => {
                proved.insert(entry.kind);
            }
            Ok(false) => {}
            Err(why) => failures.push(why),
        }
    }
    assert!(failures.is_empty(), "forward rules that give no tangent: {failures:?}");
    let missing: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| !proved.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(
        missing.is_empty(),
        "op kinds whose forward rule no registry case exercised: {missing:?}"
    );

    let tested: BTreeSet<&str> = TESTED.iter().map(|(_, _, _, op)| *op).collect();
    assert_eq!(
        tested.len(),
        TESTED.len(),
        "an entry is listed twice in forward_mode_ops!"
    );
    for (test, test2, test3, op) in TESTED {
        assert_eq!(
            *test,
            format!("jvpcheck_{op}"),
            "test named inconsistently with its entry"
        );
        assert_eq!(
            *test2,
            format!("dot_product_{op}"),
            "test named inconsistently with its entry"
        );
        assert_eq!(
            *test3,
            format!("hvp_modes_{op}"),
            "test named inconsistently with its entry"
        );
    }
    let registered: BTreeSet<&str> = entries.iter().map(|e| e.name).collect();
    let untested: Vec<_> = registered.difference(&tested).collect();
    let stale: Vec<_> = tested.difference(&registered).collect();
    assert!(
        untested.is_empty(),
        "registry entries without forward-mode tests (add them to forward_mode_ops!): {untested:?}"
    );
    assert!(
        stale.is_empty(),
        "forward-mode tests for names not in the registry: {stale:?}"
    );
}
