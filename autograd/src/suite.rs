//! Running the registry: draw cases for an entry and gradcheck each one.
//! Shared by `ferrograd gradcheck` and anyone scripting a check suite.

use crate::registry::{Case, OpEntry};
use crate::{dot_product_check, gradcheck, gradgradcheck, hvpcheck, jvpcheck, GradcheckOptions, GradcheckReport};
use ferrograd_engine::{Result, Rng};

/// Which derivative a check compares against finite differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Gradients ([`gradcheck`](fn@crate::gradcheck)).
    First,
    /// Gradients of gradients ([`gradgradcheck`](fn@crate::gradgradcheck)): the backward pass itself
    /// recorded with `backward_with(true)` and differentiated again.
    Second,
}

impl Order {
    /// `1` or `2`.
    pub fn number(self) -> u8 {
        match self {
            Order::First => 1,
            Order::Second => 2,
        }
    }
}

/// Which mode of differentiation a check exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Backward rules: [`gradcheck`](fn@crate::gradcheck) at first order,
    /// [`gradgradcheck`](fn@crate::gradgradcheck) (reverse over reverse) at second.
    Reverse,
    /// Forward rules: [`jvpcheck`](fn@crate::jvpcheck) and the dot-product
    /// test against the backward rules at first order,
    /// [`hvpcheck`](fn@crate::hvpcheck) (forward over reverse) at second.
    Forward,
}

impl Mode {
    /// `"reverse"` or `"forward"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Reverse => "reverse",
            Mode::Forward => "forward",
        }
    }
}

/// The result of checking one registry entry over many cases.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrySummary {
    /// The entry's name.
    pub op: &'static str,
    /// Cases run.
    pub cases: usize,
    /// Cases that failed (or errored).
    pub failed_cases: usize,
    /// Largest absolute error over all cases.
    pub worst_abs_error: f64,
    /// Largest relative error over all cases.
    pub worst_rel_error: f64,
    /// A description of the first failure, if any.
    pub first_failure: Option<String>,
}

impl EntrySummary {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failed_cases == 0
    }
}

/// Draws base dimensions (rank 1..=3, each 1..=4) for one case.
pub fn draw_dims(rng: &mut Rng) -> Vec<usize> {
    let rank = 1 + rng.below(3);
    (0..rank).map(|_| 1 + rng.below(4)).collect()
}

/// The gradcheck options an entry asks for, with the cotangent seeded.
pub fn options_for(entry: &OpEntry, seed: u64) -> GradcheckOptions {
    let base = GradcheckOptions {
        seed,
        ..GradcheckOptions::default()
    };
    match entry.tolerance {
        Some((eps, atol, rtol)) => GradcheckOptions { eps, atol, rtol, seed },
        None => base,
    }
}

/// Gradchecks `cases` drawn cases of `entry`; case `i` uses seed `seed + i`.
pub fn check_entry(entry: &OpEntry, cases: usize, seed: u64) -> EntrySummary {
    check_entry_at(entry, cases, seed, Order::First)
}

/// Like [`check_entry`], for first or second derivatives.
pub fn check_entry_at(entry: &OpEntry, cases: usize, seed: u64, order: Order) -> EntrySummary {
    check_entry_in(entry, cases, seed, order, Mode::Reverse)
}

/// Like [`check_entry_at`], for the backward or the forward rules.
pub fn check_entry_in(entry: &OpEntry, cases: usize, seed: u64, order: Order, mode: Mode) -> EntrySummary {
    let mut summary = EntrySummary {
        op: entry.name,
        cases,
        failed_cases: 0,
        worst_abs_error: 0.0,
        worst_rel_error: 0.0,
        first_failure: None,
    };
    for i in 0..cases as u64 {
        let case_seed = seed.wrapping_add(i);
        let mut rng = Rng::new(case_seed);
        let dims = draw_dims(&mut rng);
        let case = (entry.build)(&dims, &mut rng);
        let options = options_for(entry, case_seed);
        let failure = match check_case(entry, &case, &options, order, mode) {
            Ok((report, failure)) => {
                summary.worst_abs_error = summary.worst_abs_error.max(report.max_abs_error);
                summary.worst_rel_error = summary.worst_rel_error.max(report.max_rel_error);
                failure
            }
            Err(e) => Some(format!("error: {e}")),
        };
        if let Some(message) = failure {
            summary.failed_cases += 1;
            summary
                .first_failure
                .get_or_insert_with(|| format!("seed {case_seed}, dims {dims:?}: {message}"));
        }
    }
    summary
}

/// One case's finite-difference report, and what failed, if anything.
fn check_case(
    entry: &OpEntry,
    case: &Case,
    options: &GradcheckOptions,
    order: Order,
    mode: Mode,
) -> Result<(GradcheckReport, Option<String>)> {
    let report = match (mode, order) {
        (Mode::Reverse, Order::First) => gradcheck(&case.apply, &case.inputs, options)?,
        (Mode::Reverse, Order::Second) => gradgradcheck(&case.apply, &case.inputs, options)?,
        (Mode::Forward, Order::First) => jvpcheck(&case.apply, &case.inputs, options)?,
        (Mode::Forward, Order::Second) => hvpcheck(&case.apply, &case.inputs, options)?,
    };
    if !report.passed {
        let failure = report.to_string();
        return Ok((report, Some(failure)));
    }
    if (mode, order) == (Mode::Forward, Order::First) {
        let dot = dot_product_check(&case.apply, &case.inputs, options.seed, entry.cross_mode_tolerance())?;
        if !dot.passed {
            return Ok((report, Some(format!("dot-product test {dot}"))));
        }
    }
    Ok((report, None))
}

/// Cases per check that [`op_suite!`](crate::op_suite) runs, as the
/// built-in ops' property tests do.
pub const SUITE_CASES: usize = 64;

/// Panics, naming the failing case, unless `entry` passes `cases` cases of
/// the check at `order` in `mode` (what each test of
/// [`op_suite!`](crate::op_suite) calls).
pub fn assert_entry_passes(entry: &OpEntry, cases: usize, order: Order, mode: Mode) {
    let summary = check_entry_in(entry, cases, 0, order, mode);
    assert!(
        summary.passed(),
        "`{}` fails the {} mode check at order {}: {} of {} cases; first: {}",
        entry.name,
        mode.name(),
        order.number(),
        summary.failed_cases,
        summary.cases,
        summary.first_failure.as_deref().unwrap_or("")
    );
}

/// Expands, in a test file of your own crate, to the checks every built-in
/// op gets, for one [`OpEntry`] (typically a user-defined
/// [`PrimitiveOp`](crate::PrimitiveOp) with its input domain): a module
/// named `$module` with four `#[test]`s of [`SUITE_CASES`] seeded random
/// cases each (base dims of rank 1..=3, dims 1..=4):
///
/// - `gradcheck`: the backward rule against central differences;
/// - `gradgradcheck`: the recorded backward rule, differentiated again;
/// - `jvp_and_dot_product`: the forward rule against central differences,
///   and against the backward rule by the dot-product test;
/// - `forward_over_reverse`: tangents through the backward rule against
///   finite differences of gradients.
///
/// ```
/// use ferrograd_autograd::registry::{real, Case, OpEntry};
/// use ferrograd_autograd::{op_suite, OpKind, Var};
///
/// fn doubled() -> OpEntry {
///     OpEntry {
///         name: "doubled",
///         kind: OpKind::MulScalar,
///         build: |dims, rng| Case {
///             inputs: vec![real(dims, rng)],
///             apply: Box::new(|v| v[0].mul_scalar(2.0)),
///         },
///         tolerance: None,
///         cross_mode_tolerance: None,
///     }
/// }
///
/// op_suite!(doubled_suite, doubled());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! op_suite {
    ($module:ident, $entry:expr) => {
        #[cfg(test)]
        mod $module {
            use super::*;
            use $crate::suite::{assert_entry_passes, Mode, Order, SUITE_CASES};

            #[test]
            fn gradcheck() {
                assert_entry_passes(&$entry, SUITE_CASES, Order::First, Mode::Reverse);
            }

            #[test]
            fn gradgradcheck() {
                assert_entry_passes(&$entry, SUITE_CASES, Order::Second, Mode::Reverse);
            }

            #[test]
            fn jvp_and_dot_product() {
                assert_entry_passes(&$entry, SUITE_CASES, Order::First, Mode::Forward);
            }

            #[test]
            fn forward_over_reverse() {
                assert_entry_passes(&$entry, SUITE_CASES, Order::Second, Mode::Forward);
            }
        }
    };
}
