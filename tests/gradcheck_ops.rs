//! Property-based derivative checks, two `#[test]`s per registry entry:
//! `gradcheck_<op>` draws 64 cases (base dims of rank 1..=3 with dims 1..=4,
//! and a case seed) from a deterministic proptest runner and asserts that
//! `gradcheck` passes with the entry's tolerance override;
//! `gradgradcheck_<op>` draws 64 cases and asserts that `gradgradcheck`
//! passes: the op's backward rule, recorded with `backward_with(true)`, has
//! correct derivatives itself (piecewise-linear ops check a zero second
//! derivative away from their kinks).
//!
//! Plus coverage tests: every `OpKind` is proved by some entry, every entry
//! has both tests here (a new registry entry without them fails
//! `registry_covers_every_op_kind`), and each entry's case really records its
//! declared kind in the graph.

use ferrograd::autograd::registry::{self, OpEntry};
use ferrograd::autograd::{gradcheck, gradgradcheck, GradcheckOptions, OpKind, Var};
use ferrograd::engine::Rng;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::{BTreeSet, HashSet};

/// Cases per op for first derivatives. 64 x 58 entries take about 0.2 s at
/// opt-level 2.
const CASES: u32 = 64;

/// Cases per op for second derivatives (each finite-difference probe runs a
/// recorded backward pass; all 58 entries together still take well under a
/// second at opt-level 2).
const CASES_SECOND_ORDER: u32 = 64;

/// Which derivative `check_op` verifies.
#[derive(Clone, Copy)]
enum Order {
    First,
    Second,
}

/// A proptest runner whose stream is fixed by `label` (so CI is repeatable,
/// but different ops still see different draws). No failure files are written.
fn runner(label: &str, cases: u32) -> TestRunner {
    let config = Config {
        cases,
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

/// The entry's gradcheck options: its override if any, else the defaults.
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

/// Runs the gradcheck (or gradgradcheck) property for one registry entry.
fn check_op(name: &str, order: Order) {
    let entry = entry(name);
    let (label, cases) = match order {
        Order::First => (name.to_string(), CASES),
        Order::Second => (format!("{name} (second order)"), CASES_SECOND_ORDER),
    };
    let ran = std::cell::Cell::new(0u32);
    let result = runner(&label, cases).run(&dims_and_seed(), |(dims, seed)| {
        ran.set(ran.get() + 1);
        let case = (entry.build)(&dims, &mut Rng::new(seed));
        let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.dims().to_vec()).collect();
        let options = options(&entry, seed);
        let outcome = match order {
            Order::First => gradcheck(&case.apply, &case.inputs, &options),
            Order::Second => gradgradcheck(&case.apply, &case.inputs, &options),
        };
        let report =
            outcome.map_err(|e| TestCaseError::fail(format!("{label}: check errored on inputs {shapes:?}: {e}")))?;
        // The report's Display names the worst element (input, index, analytic, numeric).
        prop_assert!(
            report.passed,
            "{label} (dims {dims:?}, seed {seed}, input shapes {shapes:?}): {report}"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("property failed for `{label}`: {e}");
    }
    assert!(ran.get() >= cases, "{label}: only {} cases ran", ran.get());
}

/// Declares two `#[test]`s per registry entry, and the list of covered names.
/// Each line is `first_order_test, second_order_test = entry_name`;
/// `registry_covers_every_op_kind` checks the tests are called
/// `gradcheck_<entry>` and `gradgradcheck_<entry>`.
macro_rules! gradcheck_ops {
    ($($test:ident, $test2:ident = $op:ident),* $(,)?) => {
        /// `(first-order test, second-order test, registry entry)` for every
        /// generated pair.
        const TESTED: &[(&str, &str, &str)] = &[$((stringify!($test), stringify!($test2), stringify!($op))),*];
        $(
            #[test]
            fn $test() {
                check_op(stringify!($op), Order::First);
            }

            #[test]
            fn $test2() {
                check_op(stringify!($op), Order::Second);
            }
        )*
    };
}

gradcheck_ops! {
    // unary
    gradcheck_neg, gradgradcheck_neg = neg,
    gradcheck_abs, gradgradcheck_abs = abs,
    gradcheck_exp, gradgradcheck_exp = exp,
    gradcheck_log, gradgradcheck_log = log,
    gradcheck_sqrt, gradgradcheck_sqrt = sqrt,
    gradcheck_rsqrt, gradgradcheck_rsqrt = rsqrt,
    gradcheck_square, gradgradcheck_square = square,
    gradcheck_recip, gradgradcheck_recip = recip,
    gradcheck_relu, gradgradcheck_relu = relu,
    gradcheck_leaky_relu, gradgradcheck_leaky_relu = leaky_relu,
    gradcheck_sigmoid, gradgradcheck_sigmoid = sigmoid,
    gradcheck_tanh, gradgradcheck_tanh = tanh,
    gradcheck_gelu, gradgradcheck_gelu = gelu,
    gradcheck_silu, gradgradcheck_silu = silu,
    gradcheck_sin, gradgradcheck_sin = sin,
    gradcheck_cos, gradgradcheck_cos = cos,
    gradcheck_clamp, gradgradcheck_clamp = clamp,
    gradcheck_add_scalar, gradgradcheck_add_scalar = add_scalar,
    gradcheck_sub_scalar, gradgradcheck_sub_scalar = sub_scalar,
    gradcheck_mul_scalar, gradgradcheck_mul_scalar = mul_scalar,
    gradcheck_div_scalar, gradgradcheck_div_scalar = div_scalar,
    gradcheck_pow_scalar, gradgradcheck_pow_scalar = pow_scalar,
    gradcheck_cast, gradgradcheck_cast = cast,
    // binary
    gradcheck_add, gradgradcheck_add = add,
    gradcheck_sub, gradgradcheck_sub = sub,
    gradcheck_mul, gradgradcheck_mul = mul,
    gradcheck_div, gradgradcheck_div = div,
    gradcheck_pow, gradgradcheck_pow = pow,
    gradcheck_maximum, gradgradcheck_maximum = maximum,
    gradcheck_minimum, gradgradcheck_minimum = minimum,
    gradcheck_where, gradgradcheck_where = where,
    gradcheck_matmul, gradgradcheck_matmul = matmul,
    gradcheck_matmul_tn, gradgradcheck_matmul_tn = matmul_tn,
    gradcheck_matmul_nt, gradgradcheck_matmul_nt = matmul_nt,
    gradcheck_matmul_tt, gradgradcheck_matmul_tt = matmul_tt,
    // reductions
    gradcheck_sum, gradgradcheck_sum = sum,
    gradcheck_mean, gradgradcheck_mean = mean,
    gradcheck_max, gradgradcheck_max = max,
    gradcheck_min, gradgradcheck_min = min,
    gradcheck_var, gradgradcheck_var = var,
    gradcheck_var_unbiased, gradgradcheck_var_unbiased = var_unbiased,
    gradcheck_logsumexp, gradgradcheck_logsumexp = logsumexp,
    gradcheck_softmax, gradgradcheck_softmax = softmax,
    gradcheck_log_softmax, gradgradcheck_log_softmax = log_softmax,
    // shape and indexing
    gradcheck_reshape, gradgradcheck_reshape = reshape,
    gradcheck_squeeze, gradgradcheck_squeeze = squeeze,
    gradcheck_unsqueeze, gradgradcheck_unsqueeze = unsqueeze,
    gradcheck_permute, gradgradcheck_permute = permute,
    gradcheck_transpose, gradgradcheck_transpose = transpose,
    gradcheck_broadcast_to, gradgradcheck_broadcast_to = broadcast_to,
    gradcheck_sum_to, gradgradcheck_sum_to = sum_to,
    gradcheck_concat, gradgradcheck_concat = concat,
    gradcheck_narrow, gradgradcheck_narrow = narrow,
    gradcheck_pad_zeros, gradgradcheck_pad_zeros = pad_zeros,
    gradcheck_index_select, gradgradcheck_index_select = index_select,
    gradcheck_index_add, gradgradcheck_index_add = index_add,
    gradcheck_gather, gradgradcheck_gather = gather,
    gradcheck_scatter, gradgradcheck_scatter = scatter,
    // layers' ops (composites)
    gradcheck_layer_norm, gradgradcheck_layer_norm = layer_norm,
    gradcheck_dropout, gradgradcheck_dropout = dropout,
    gradcheck_embedding, gradgradcheck_embedding = embedding,
    // convolution and pooling
    gradcheck_unfold, gradgradcheck_unfold = unfold,
    gradcheck_fold, gradgradcheck_fold = fold,
    gradcheck_conv2d, gradgradcheck_conv2d = conv2d,
    gradcheck_conv1d, gradgradcheck_conv1d = conv1d,
    gradcheck_max_pool2d, gradgradcheck_max_pool2d = max_pool2d,
    gradcheck_avg_pool2d, gradgradcheck_avg_pool2d = avg_pool2d,
    // user-defined primitives (autograd::custom)
    gradcheck_custom_softplus, gradgradcheck_custom_softplus = custom_softplus,
    gradcheck_custom_scaled_square, gradgradcheck_custom_scaled_square = custom_scaled_square,
}

/// Every op kind recorded anywhere in the graph that produced `out`.
fn recorded_kinds(out: &Var) -> BTreeSet<OpKind> {
    let mut kinds = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut stack = vec![out.clone()];
    while let Some(v) = stack.pop() {
        if !seen.insert(v.id()) {
            continue;
        }
        if let Some(node) = v.node() {
            kinds.insert(node.op.kind());
            stack.extend(node.inputs.iter().cloned());
        }
    }
    kinds
}

#[test]
fn registry_covers_every_op_kind() {
    let entries = registry::entries();

    // 1. Every kind is the declared kind of at least one entry.
    let declared: HashSet<OpKind> = entries.iter().map(|e| e.kind).collect();
    let missing: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| !declared.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(missing.is_empty(), "op kinds with no registry entry: {missing:?}");

    // 2. The generated tests and the registry list exactly the same names,
    //    and each test is named after its entry.
    for (test, test2, op) in TESTED {
        assert_eq!(
            *test,
            format!("gradcheck_{op}"),
            "test function named inconsistently with its entry"
        );
        assert_eq!(
            *test2,
            format!("gradgradcheck_{op}"),
            "test function named inconsistently with its entry"
        );
    }
    let tested: BTreeSet<&str> = TESTED.iter().map(|(_, _, op)| *op).collect();
    assert_eq!(tested.len(), TESTED.len(), "an entry is listed twice in gradcheck_ops!");
    let registered: BTreeSet<&str> = entries.iter().map(|e| e.name).collect();
    let untested: Vec<_> = registered.difference(&tested).collect();
    let stale: Vec<_> = tested.difference(&registered).collect();
    assert!(
        untested.is_empty(),
        "registry entries without a gradcheck test (add them to gradcheck_ops!): {untested:?}"
    );
    assert!(
        stale.is_empty(),
        "gradcheck tests for names not in the registry: {stale:?}"
    );

    // 3. Running an entry's case records its declared kind. A few base dims
    //    are tried because some draws are legitimately no-ops that record
    //    nothing (e.g. `sum_to` onto the input's own shape returns the input).
    let mut not_recorded = Vec::new();
    for entry in &entries {
        let mut found = false;
        let mut seen = BTreeSet::new();
        for seed in 0..8u64 {
            let dims =
                [[2, 3, 4], [3, 2, 1], [4, 3, 2], [1, 4, 3]][seed as usize % 4][..1 + (seed as usize % 3)].to_vec();
            let case = (entry.build)(&dims, &mut Rng::new(seed));
            let params: Vec<Var> = case.inputs.iter().cloned().map(Var::parameter).collect();
            let out = (case.apply)(&params).unwrap_or_else(|e| panic!("{}: case failed to run: {e}", entry.name));
            let kinds = recorded_kinds(&out);
            if kinds.contains(&entry.kind) {
                found = true;
                break;
            }
            seen.extend(kinds);
        }
        if !found {
            not_recorded.push(format!(
                "{} (declares {}, recorded {:?})",
                entry.name,
                entry.kind.name(),
                seen
            ));
        }
    }
    assert!(
        not_recorded.is_empty(),
        "entries whose case never records their kind: {not_recorded:?}"
    );
}

#[test]
fn registry_has_at_least_40_distinct_names() {
    let entries = registry::entries();
    let names: HashSet<&str> = entries.iter().map(|e| e.name).collect();
    assert_eq!(names.len(), entries.len(), "registry names must be unique");
    assert!(names.len() >= 40, "only {} distinct registry entries", names.len());
}
