//! # ferrograd-apifuzz
//!
//! A public-API fuzz harness for ferrograd on stable Rust: each case is a
//! seeded random sequence of public calls (engine, autograd, optim,
//! datasets, nn, train and module) with plausible and adversarial arguments. Every
//! call runs under `catch_unwind`; a quiet panic hook names the panic's
//! site. A supervisor runs cases in worker processes (memory capped with
//! `RLIMIT_AS`, a time limit per case), so aborts and hangs are recorded
//! with the case that caused them instead of ending the run. See README.md.
#![deny(missing_docs)]

pub mod allowed;
mod autograd_calls;
pub mod compat;
mod data_calls;
mod engine_calls;
pub mod gen;
mod module_calls;
mod nn_calls;
mod optim_calls;
pub mod record;
pub mod report;
pub mod supervisor;

use gen::Gen;
use record::CaseStats;

/// The families of calls, one per case, chosen by the case's seed.
pub const FAMILIES: [&str; 7] = ["engine", "autograd", "optim", "datasets", "nn", "train", "module"];

/// Runs case `case`: its family and every argument follow from `case`.
/// `wild` allows absurd sizes and counters (which may abort or hang the
/// process: only workers under the supervisor should set it).
pub fn run_case(case: u64, wild: bool) -> CaseStats {
    let mut g = Gen::new(case, wild);
    let mut stats = CaseStats::default();
    match g.below(FAMILIES.len()) {
        0 => engine_calls::run(&mut g, &mut stats),
        1 => autograd_calls::run(&mut g, &mut stats),
        2 => optim_calls::run(&mut g, &mut stats),
        3 => data_calls::run(&mut g, &mut stats),
        4 => nn_calls::run_nn(&mut g, &mut stats),
        5 => nn_calls::run_train(&mut g, &mut stats),
        _ => module_calls::run(&mut g, &mut stats),
    }
    stats
}

/// Runs cases `first..first + cases` in this process without absurd sizes
/// or counters (so nothing aborts or hangs): what the crate's test and
/// `--in-process` run.
pub fn run_in_process(first: u64, cases: u64) -> report::Report {
    let start = std::time::Instant::now();
    let mut report = report::Report {
        first_case: first,
        ..report::Report::default()
    };
    for case in first..first + cases {
        report.add_case(case, &run_case(case, false));
    }
    report.seconds = start.elapsed().as_secs_f64();
    report.finish();
    report
}
