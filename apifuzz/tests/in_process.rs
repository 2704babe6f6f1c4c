//! The harness in-process (no supervisor, no absurd sizes or counters, so
//! nothing can abort or hang): a few hundred seeded cases must reach every
//! family, get values and typed errors, and panic only at documented
//! preconditions.

use ferrograd_apifuzz::run_in_process;

#[test]
fn four_hundred_cases_panic_only_at_documented_preconditions() {
    let report = run_in_process(0, 400);
    assert!(report.calls >= 1200, "only {} calls in 400 cases", report.calls);
    assert!(report.ok > 0 && report.typed_errors > 0, "{}", report.text());
    assert!(report.crashes.is_empty());
    let failing: Vec<_> = report.sites.iter().filter(|s| s.allowed.is_none()).collect();
    assert!(
        failing.is_empty(),
        "panics outside documented preconditions:\n{}",
        report.text()
    );
}

#[test]
fn a_case_is_the_same_calls_every_time() {
    let once = run_in_process(1000, 50);
    let again = run_in_process(1000, 50);
    assert_eq!(
        (once.calls, once.ok, once.typed_errors),
        (again.calls, again.ok, again.typed_errors)
    );
    assert_eq!(once.sites, again.sites);
}
