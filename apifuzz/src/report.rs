//! The run's report: calls, values, typed errors, panics by site and
//! crashes, as JSON and as a short text table.

use crate::allowed::allowed;
use crate::record::CaseStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// All panics at one site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SiteReport {
    /// `file:line`.
    pub site: String,
    /// How many calls panicked there.
    pub count: u64,
    /// The documented precondition that allows it, if any.
    pub allowed: Option<String>,
    /// One panic message.
    pub message: String,
    /// One call that panicked there.
    pub example_call: String,
    /// The case of that call (`--case N` reruns it).
    pub example_case: u64,
}

/// A case that ended its worker process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Crash {
    /// The case (`--case N` reruns it).
    pub case: u64,
    /// `allocation abort`, `stack overflow`, `hang`, or the signal or exit code.
    pub kind: String,
    /// The call that was running (the last one announced).
    pub call: String,
    /// The worker's last line on stderr.
    pub detail: String,
}

/// Crashes of one kind in one public call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CrashGroup {
    /// As in [`Crash::kind`].
    pub kind: String,
    /// The crashing call's name, shapes left out (`Tensor::ones`).
    pub api: String,
    /// Every case that crashed so (`--case N` reruns one).
    pub cases: Vec<u64>,
    /// One such crash in full.
    pub example: Crash,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Cases run (crashed ones included).
    pub cases: u64,
    /// The first case number (cases are `first_case..first_case + cases`,
    /// fewer when a time budget ran out).
    pub first_case: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Public calls made.
    pub calls: u64,
    /// Calls that returned a value.
    pub ok: u64,
    /// Calls that returned a typed error.
    pub typed_errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Panics outside the documented preconditions.
    pub unallowed_panics: u64,
    /// Panics by site, most frequent first.
    pub sites: Vec<SiteReport>,
    /// Cases that aborted or hung their worker (in the JSON as groups).
    #[serde(skip)]
    pub crashes: Vec<Crash>,
    /// The crashes grouped by kind and call, largest group first.
    pub crash_groups: Vec<CrashGroup>,
}

impl Report {
    /// Adds what case `case` did.
    pub fn add_case(&mut self, case: u64, stats: &CaseStats) {
        self.cases += 1;
        self.calls += stats.calls;
        self.ok += stats.ok;
        self.typed_errors += stats.errors;
        for p in &stats.panics {
            self.panics += 1;
            let allowed = allowed(&p.site, &p.message).map(|a| a.api.to_string());
            if allowed.is_none() {
                self.unallowed_panics += 1;
            }
            match self.sites.iter_mut().find(|s| s.site == p.site) {
                Some(site) => site.count += 1,
                None => self.sites.push(SiteReport {
                    site: p.site.clone(),
                    count: 1,
                    allowed,
                    message: p.message.clone(),
                    example_call: p.call.clone(),
                    example_case: case,
                }),
            }
        }
    }

    /// Adds a case that crashed its worker (its calls are lost but the
    /// crashing one, which counts as one call).
    pub fn add_crash(&mut self, crash: Crash) {
        self.cases += 1;
        self.calls += 1;
        self.crashes.push(crash);
    }

    /// Sorts sites by count and crashes by case.
    pub fn finish(&mut self) {
        self.sites
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.site.cmp(&b.site)));
        self.crashes.sort_by_key(|c| c.case);
        let mut groups: Vec<CrashGroup> = Vec::new();
        for c in &self.crashes {
            let api = api_of(&c.call);
            match groups.iter_mut().find(|g| g.kind == c.kind && g.api == api) {
                Some(g) => g.cases.push(c.case),
                None => groups.push(CrashGroup {
                    kind: c.kind.clone(),
                    api,
                    cases: vec![c.case],
                    example: c.clone(),
                }),
            }
        }
        groups.sort_by(|a, b| b.cases.len().cmp(&a.cases.len()).then(a.api.cmp(&b.api)));
        self.crash_groups = groups;
    }

    /// Whether the run found nothing but documented panics.
    pub fn clean(&self) -> bool {
        self.unallowed_panics == 0 && self.crashes.is_empty() && self.crash_groups.is_empty()
    }

    /// The short text table.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let unallowed = self.sites.iter().filter(|s| s.allowed.is_none()).count();
        let _ = writeln!(
            t,
            "cases {} (from {}) in {:.0} s\ncalls {}: ok {}, typed errors {}, panics {} ({} outside documented \
             preconditions, at {} sites), crashes {}",
            self.cases,
            self.first_case,
            self.seconds,
            self.calls,
            self.ok,
            self.typed_errors,
            self.panics,
            self.unallowed_panics,
            unallowed,
            self.crashes.len()
        );
        let _ = writeln!(
            t,
            "\npanics by site (count, site, allowed?, example case: call -> message)"
        );
        for s in &self.sites {
            let tag = s
                .allowed
                .as_deref()
                .map_or("FAIL".to_string(), |a| format!("allowed: {a}"));
            let _ = writeln!(
                t,
                "{:>6}  {}  [{tag}]\n        case {}: {} -> {}",
                s.count, s.site, s.example_case, s.example_call, s.message
            );
        }
        let _ = writeln!(t, "\ncrashes by kind: {:?}", self.crash_kinds());
        let _ = writeln!(t, "crashes by call (count, kind, call, example case: calls -> stderr)");
        for g in &self.crash_groups {
            let e = &g.example;
            let _ = writeln!(
                t,
                "{:>6}  {}  {}\n        case {}: {} -> {}",
                g.cases.len(),
                g.kind,
                g.api,
                e.case,
                e.call,
                e.detail
            );
        }
        t
    }

    /// How many crashes of each kind.
    pub fn crash_kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for g in &self.crash_groups {
            *kinds.entry(g.kind.clone()).or_insert(0) += g.cases.len();
        }
        kinds
    }
}

/// The name of the last call in a crash's call trail, without its
/// arguments or shapes: `Tensor::ones([4, 2], F32)` -> `Tensor::ones`.
fn api_of(trail: &str) -> String {
    let last = trail.rsplit("; then ").next().unwrap_or(trail);
    if last.starts_with("chain of ") {
        return "deep Var chain (backward, drop)".into();
    }
    let head = last.split('(').next().unwrap_or(last);
    let mut out = String::new();
    let mut depth = 0;
    for ch in head.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PanicRecord;

    fn panic_at(site: &str, message: &str) -> PanicRecord {
        PanicRecord {
            site: site.into(),
            message: message.into(),
            call: "f()".into(),
        }
    }

    #[test]
    fn sites_are_counted_and_only_documented_ones_are_allowed() {
        let stats = CaseStats {
            calls: 5,
            ok: 2,
            errors: 1,
            panics: vec![
                panic_at("engine/src/tensor.rs:159", "attempt to multiply with overflow"),
                panic_at("engine/src/tensor.rs:159", "attempt to multiply with overflow"),
                panic_at("datasets/src/matrix.rs:78", "Matrix::row: row 5 of 2"),
            ],
        };
        let mut r = Report::default();
        r.add_case(7, &stats);
        r.finish();
        assert_eq!(
            (r.calls, r.ok, r.typed_errors, r.panics, r.unallowed_panics),
            (5, 2, 1, 3, 2)
        );
        assert_eq!(r.sites[0].count, 2);
        assert_eq!(r.sites[0].example_case, 7);
        assert!(r.sites[1].allowed.is_some());
        assert!(!r.clean());
    }

    #[test]
    fn a_crash_makes_the_run_unclean_and_shows_in_the_table() {
        let mut r = Report::default();
        r.add_crash(Crash {
            case: 3,
            kind: "hang".into(),
            call: "g()".into(),
            detail: String::new(),
        });
        r.finish();
        assert!(!r.clean());
        assert_eq!(r.crash_groups[0].cases, vec![3]);
        assert!(r.text().contains("case 3: g() -> "), "{}", r.text());
    }

    #[test]
    fn crashes_group_by_the_last_call_without_its_shapes() {
        assert_eq!(
            api_of("Tensor::eye(4, F64); then Tensor::ones([4, 2], F32)"),
            "Tensor::ones"
        );
        assert_eq!(api_of("F64[2, 3].index_add([0], 9)"), "F64.index_add");
        assert_eq!(
            api_of("chain of 580261 add_scalar ops, backward true, drop"),
            "deep Var chain (backward, drop)"
        );
    }
}
