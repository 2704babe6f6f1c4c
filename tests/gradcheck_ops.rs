//! Property-based gradient checks: one `#[test]` per registry entry, each
//! drawing 64 cases (base dims of rank 1..=3 with dims 1..=4, and a case
//! seed) from a deterministic proptest runner and asserting that
//! `gradcheck` passes with the entry's tolerance override.
//!
//! Plus coverage tests: every `OpKind` is proved by some entry, every entry
//! has a test here (a new registry entry without one fails
//! `registry_covers_every_op_kind`), and each entry's case really records its
//! declared kind in the graph.

use ferrograd::autograd::registry::{self, OpEntry};
use ferrograd::autograd::{gradcheck, GradcheckOptions, OpKind, Var};
use ferrograd::engine::Rng;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::{BTreeSet, HashSet};

/// Cases per op. 64 x 58 entries take about 0.2 s at opt-level 2.
const CASES: u32 = 64;

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

/// Runs the gradcheck property for one registry entry.
fn check_op(name: &str) {
    let entry = entry(name);
    let ran = std::cell::Cell::new(0u32);
    let result = runner(name, CASES).run(&dims_and_seed(), |(dims, seed)| {
        ran.set(ran.get() + 1);
        let case = (entry.build)(&dims, &mut Rng::new(seed));
        let shapes: Vec<Vec<usize>> = case.inputs.iter().map(|t| t.dims().to_vec()).collect();
        let report = gradcheck(&case.apply, &case.inputs, &options(&entry, seed))
            .map_err(|e| TestCaseError::fail(format!("{name}: gradcheck errored on inputs {shapes:?}: {e}")))?;
        // The report's Display names the worst element (input, index, analytic, numeric).
        prop_assert!(
            report.passed,
            "{name} (dims {dims:?}, seed {seed}, input shapes {shapes:?}): {report}"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("gradcheck property failed for `{name}`: {e}");
    }
    assert!(ran.get() >= CASES, "{name}: only {} cases ran", ran.get());
}

/// Declares one `#[test]` per registry entry, and the list of covered names.
/// Each pair is `test_fn_name = entry_name`; `registry_covers_every_op_kind`
/// checks that the test is called `gradcheck_<entry>`.
macro_rules! gradcheck_ops {
    ($($test:ident = $op:ident),* $(,)?) => {
        /// `(test function, registry entry)` for every generated test.
        const TESTED: &[(&str, &str)] = &[$((stringify!($test), stringify!($op))),*];
        $(
            #[test]
            fn $test() {
                check_op(stringify!($op));
            }
        )*
    };
}

gradcheck_ops! {
    // unary
    gradcheck_neg = neg,
    gradcheck_abs = abs,
    gradcheck_exp = exp,
    gradcheck_log = log,
    gradcheck_sqrt = sqrt,
    gradcheck_rsqrt = rsqrt,
    gradcheck_square = square,
    gradcheck_recip = recip,
    gradcheck_relu = relu,
    gradcheck_leaky_relu = leaky_relu,
    gradcheck_sigmoid = sigmoid,
    gradcheck_tanh = tanh,
    gradcheck_gelu = gelu,
    gradcheck_silu = silu,
    gradcheck_sin = sin,
    gradcheck_cos = cos,
    gradcheck_clamp = clamp,
    gradcheck_add_scalar = add_scalar,
    gradcheck_sub_scalar = sub_scalar,
    gradcheck_mul_scalar = mul_scalar,
    gradcheck_div_scalar = div_scalar,
    gradcheck_pow_scalar = pow_scalar,
    gradcheck_cast = cast,
    // binary
    gradcheck_add = add,
    gradcheck_sub = sub,
    gradcheck_mul = mul,
    gradcheck_div = div,
    gradcheck_pow = pow,
    gradcheck_maximum = maximum,
    gradcheck_minimum = minimum,
    gradcheck_where = where,
    gradcheck_matmul = matmul,
    gradcheck_matmul_tn = matmul_tn,
    gradcheck_matmul_nt = matmul_nt,
    gradcheck_matmul_tt = matmul_tt,
    // reductions
    gradcheck_sum = sum,
    gradcheck_mean = mean,
    gradcheck_max = max,
    gradcheck_min = min,
    gradcheck_var = var,
    gradcheck_var_unbiased = var_unbiased,
    gradcheck_logsumexp = logsumexp,
    gradcheck_softmax = softmax,
    gradcheck_log_softmax = log_softmax,
    // shape and indexing
    gradcheck_reshape = reshape,
    gradcheck_squeeze = squeeze,
    gradcheck_unsqueeze = unsqueeze,
    gradcheck_permute = permute,
    gradcheck_transpose = transpose,
    gradcheck_broadcast_to = broadcast_to,
    gradcheck_sum_to = sum_to,
    gradcheck_concat = concat,
    gradcheck_narrow = narrow,
    gradcheck_pad_zeros = pad_zeros,
    gradcheck_index_select = index_select,
    gradcheck_index_add = index_add,
    gradcheck_gather = gather,
    gradcheck_scatter = scatter,
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
    for (test, op) in TESTED {
        assert_eq!(
            *test,
            format!("gradcheck_{op}"),
            "test function named inconsistently with its entry"
        );
    }
    let tested: BTreeSet<&str> = TESTED.iter().map(|(_, op)| *op).collect();
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
