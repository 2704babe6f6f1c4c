//! Hyperparameters: each optimizer declares its names, defaults, meaning and
//! the values each may take; users override them by name (`--hp lr=3e-4`),
//! and a value outside its domain is refused when it is set.

use crate::catalog::OptimizerInfo;
use ferrograd_engine::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;

/// The values a hyperparameter may take. Every domain holds finite numbers
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpDomain {
    /// Any finite number.
    Real,
    /// `x >= 0`: a learning rate, a weight decay, a stabiliser, a radius.
    NonNegative,
    /// `x > 0`: a value that divides or scales and is meaningless at zero.
    Positive,
    /// `0 <= x < 1`: a decay rate or momentum (Adam's betas), where 1 would
    /// stop the average from ever moving.
    DecayRate,
    /// `0 <= x <= 1`: a fraction or a mixing weight.
    Fraction,
    /// `0 < x <= 1`: a fraction that must not vanish (an exponent, a step
    /// toward a target).
    PositiveFraction,
    /// Exactly 0 (off) or 1 (on).
    Flag,
    /// A whole number `>= 0` (a number of warmup steps).
    WholeNumber,
    /// A whole number `>= 1` (iterations, steps between events).
    Count,
}

impl HpDomain {
    /// Whether `x` lies in this domain.
    pub fn contains(self, x: f64) -> bool {
        let whole = x.fract() == 0.0;
        x.is_finite()
            && match self {
                HpDomain::Real => true,
                HpDomain::NonNegative => x >= 0.0,
                HpDomain::Positive => x > 0.0,
                HpDomain::DecayRate => (0.0..1.0).contains(&x),
                HpDomain::Fraction => (0.0..=1.0).contains(&x),
                HpDomain::PositiveFraction => x > 0.0 && x <= 1.0,
                HpDomain::Flag => x == 0.0 || x == 1.0,
                HpDomain::WholeNumber => whole && x >= 0.0,
                HpDomain::Count => whole && x >= 1.0,
            }
    }
}

/// The allowed set in words, as error messages and listings show it.
impl fmt::Display for HpDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HpDomain::Real => "any finite number",
            HpDomain::NonNegative => "a number >= 0",
            HpDomain::Positive => "a number > 0",
            HpDomain::DecayRate => "a number in [0, 1)",
            HpDomain::Fraction => "a number in [0, 1]",
            HpDomain::PositiveFraction => "a number in (0, 1]",
            HpDomain::Flag => "0 or 1",
            HpDomain::WholeNumber => "a whole number >= 0",
            HpDomain::Count => "a whole number >= 1",
        })
    }
}

/// One declared hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpSpec {
    /// Its name, as typed after `--hp`.
    pub name: &'static str,
    /// Its default value (inside `domain`).
    pub default: f64,
    /// What it controls.
    pub about: &'static str,
    /// The values it may take.
    pub domain: HpDomain,
    /// The largest value it may take, when its domain alone would allow
    /// one too large to run (an iteration count that would never finish).
    pub max: Option<f64>,
}

/// A hyperparameter declaration taking any finite number; narrow it with
/// the builders: `hp("lr", 1e-3, "learning rate").non_negative()`.
pub const fn hp(name: &'static str, default: f64, about: &'static str) -> HpSpec {
    HpSpec {
        name,
        default,
        about,
        domain: HpDomain::Real,
        max: None,
    }
}

impl HpSpec {
    /// The same declaration with values restricted to `domain`.
    pub const fn within(self, domain: HpDomain) -> HpSpec {
        HpSpec { domain, ..self }
    }

    /// The same declaration with another description (for a wrapper that
    /// passes its values on to an inner optimizer).
    pub const fn described_as(self, about: &'static str) -> HpSpec {
        HpSpec { about, ..self }
    }

    /// Restricted to [`HpDomain::NonNegative`].
    pub const fn non_negative(self) -> HpSpec {
        self.within(HpDomain::NonNegative)
    }

    /// Restricted to [`HpDomain::Positive`].
    pub const fn positive(self) -> HpSpec {
        self.within(HpDomain::Positive)
    }

    /// Restricted to [`HpDomain::DecayRate`].
    pub const fn decay_rate(self) -> HpSpec {
        self.within(HpDomain::DecayRate)
    }

    /// Restricted to [`HpDomain::Fraction`].
    pub const fn fraction(self) -> HpSpec {
        self.within(HpDomain::Fraction)
    }

    /// Restricted to [`HpDomain::PositiveFraction`].
    pub const fn positive_fraction(self) -> HpSpec {
        self.within(HpDomain::PositiveFraction)
    }

    /// Restricted to [`HpDomain::Flag`].
    pub const fn flag(self) -> HpSpec {
        self.within(HpDomain::Flag)
    }

    /// Restricted to [`HpDomain::WholeNumber`].
    pub const fn whole_number(self) -> HpSpec {
        self.within(HpDomain::WholeNumber)
    }

    /// Restricted to [`HpDomain::Count`].
    pub const fn count(self) -> HpSpec {
        self.within(HpDomain::Count)
    }

    /// Values above `max` refused too: the bound of an iteration count, so
    /// that `--hp cg_iters=1e12` is an error rather than a step that never
    /// ends.
    pub const fn at_most(self, max: f64) -> HpSpec {
        HpSpec { max: Some(max), ..self }
    }

    /// Whether `x` may be given: in the domain, and at most `max`.
    pub fn allows(&self, x: f64) -> bool {
        self.domain.contains(x) && self.max.is_none_or(|max| x <= max)
    }

    /// The allowed values in words, as error messages show them.
    pub fn allowed(&self) -> String {
        match self.max {
            Some(max) => format!("{}, at most {max}", self.domain),
            None => self.domain.to_string(),
        }
    }
}

/// Values for an optimizer's hyperparameters, by name; each lies in its
/// declared domain (defaults do, and [`HyperParams::set`] checks the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct HyperParams {
    optimizer: &'static str,
    specs: &'static [HpSpec],
    values: BTreeMap<&'static str, f64>,
}

impl HyperParams {
    /// The declared defaults of `info`.
    pub fn defaults(info: &OptimizerInfo) -> HyperParams {
        HyperParams {
            optimizer: info.name,
            specs: info.hyperparams,
            values: info.hyperparams.iter().map(|h| (h.name, h.default)).collect(),
        }
    }

    /// Sets `name` to `value`; fails for an unknown name or a value outside
    /// the declared domain.
    pub fn with(mut self, name: &str, value: f64) -> Result<HyperParams> {
        self.set(name, value)?;
        Ok(self)
    }

    /// Sets `name` to `value` in place; fails for an unknown name or a value
    /// outside the declared domain, saying what is allowed.
    pub fn set(&mut self, name: &str, value: f64) -> Result<()> {
        let spec = self.spec(name)?;
        if !value.is_finite() {
            return Err(Error::invalid(
                "hyperparameter",
                format!("{name} must be a finite number, got {value}"),
            ));
        }
        if !spec.allows(value) {
            return Err(Error::invalid(
                "hyperparameter",
                format!("{name} of {} must be {}, got {value}", self.optimizer, spec.allowed()),
            ));
        }
        self.values.insert(spec.name, value);
        Ok(())
    }

    /// Parses `key=value` and sets it.
    pub fn set_from_str(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| Error::invalid("hyperparameter", format!("expected key=value, got {assignment:?}")))?;
        let parsed: f64 = value
            .trim()
            .parse()
            .map_err(|_| Error::invalid("hyperparameter", format!("{key}: {value:?} is not a number")))?;
        self.set(key.trim(), parsed)
    }

    /// The value of a declared hyperparameter; fails for an unknown name.
    pub fn get(&self, name: &str) -> Result<f64> {
        let spec = self.spec(name)?;
        Ok(self.values[spec.name])
    }

    /// A hyperparameter declared as [`HpDomain::Flag`], as a bool.
    pub fn flag(&self, name: &str) -> Result<bool> {
        self.expect_domain(name, &[HpDomain::Flag])?;
        Ok(self.get(name)? == 1.0)
    }

    /// A hyperparameter declared as [`HpDomain::WholeNumber`] or
    /// [`HpDomain::Count`], as an integer.
    pub fn whole(&self, name: &str) -> Result<u64> {
        self.expect_domain(name, &[HpDomain::WholeNumber, HpDomain::Count])?;
        Ok(self.get(name)? as u64)
    }

    /// All values, by name.
    pub fn values(&self) -> &BTreeMap<&'static str, f64> {
        &self.values
    }

    /// The declaration of `name`, or an error listing the declared names.
    fn spec(&self, name: &str) -> Result<&'static HpSpec> {
        self.specs.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
            Error::invalid(
                "hyperparameter",
                format!(
                    "{} has no hyperparameter {name:?}; it has: {}",
                    self.optimizer,
                    known.join(", ")
                ),
            )
        })
    }

    /// Fails unless `name` is declared with one of `domains` (a reader that
    /// does not match its declaration would misread values).
    fn expect_domain(&self, name: &str, domains: &[HpDomain]) -> Result<()> {
        let spec = self.spec(name)?;
        if domains.contains(&spec.domain) {
            return Ok(());
        }
        Err(Error::invalid(
            "hyperparameter",
            format!(
                "{} declares {name} as {}, which cannot be read as {}",
                self.optimizer, spec.domain, domains[0]
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_hold_their_edges_and_refuse_what_lies_beyond() {
        let cases: &[(HpDomain, &[f64], &[f64])] = &[
            (HpDomain::Real, &[-1e300, 0.0, 1e300], &[f64::NAN, f64::INFINITY]),
            (HpDomain::NonNegative, &[0.0, 1e9], &[-1e-300]),
            (HpDomain::Positive, &[1e-300], &[0.0, -1.0]),
            (HpDomain::DecayRate, &[0.0, 0.999], &[1.0, -0.1]),
            (HpDomain::Fraction, &[0.0, 1.0], &[1.5, -0.1]),
            (HpDomain::PositiveFraction, &[1e-9, 1.0], &[0.0, 1.01]),
            (HpDomain::Flag, &[0.0, 1.0], &[0.5, 2.0, -1.0]),
            (HpDomain::WholeNumber, &[0.0, 7.0], &[2.5, -1.0]),
            (HpDomain::Count, &[1.0, 10.0], &[0.0, 1.5]),
        ];
        for (domain, inside, outside) in cases {
            assert!(inside.iter().all(|&x| domain.contains(x)), "{domain:?}");
            assert!(!outside.iter().any(|&x| domain.contains(x)), "{domain:?}");
        }
    }

    const SPECS: &[HpSpec] = &[
        hp("lr", 0.1, "learning rate").non_negative(),
        hp("steps", 3.0, "steps").count(),
        hp("iters", 5.0, "iterations").count().at_most(100.0),
    ];
    const INFO: OptimizerInfo = OptimizerInfo {
        name: "test_opt",
        about: "test only",
        hyperparams: SPECS,
        build: |_| Err(Error::invalid("test_opt", "not built")),
    };

    #[test]
    fn readers_refuse_a_name_declared_with_another_domain() {
        let h = HyperParams::defaults(&INFO);
        assert_eq!(h.whole("steps").unwrap(), 3);
        let err = h.flag("lr").unwrap_err().to_string();
        assert!(err.contains("lr") && err.contains("0 or 1"), "{err}");
        assert!(h.whole("lr").is_err());
    }

    #[test]
    fn a_refused_value_leaves_the_old_one() {
        let mut h = HyperParams::defaults(&INFO);
        let err = h.set("steps", 0.0).unwrap_err().to_string();
        assert!(
            err.contains("steps of test_opt must be a whole number >= 1, got 0"),
            "{err}"
        );
        assert_eq!(h.get("steps").unwrap(), 3.0);
    }

    /// An upper bound refuses what lies above it, keeps its edge, and says
    /// both the domain and the bound.
    #[test]
    fn an_upper_bound_refuses_larger_values_and_says_so() {
        let mut h = HyperParams::defaults(&INFO);
        h.set("iters", 100.0).unwrap();
        for too_many in [101.0, 1e12, 1e300] {
            let err = h.set("iters", too_many).unwrap_err().to_string();
            assert!(
                err.contains("iters of test_opt must be a whole number >= 1, at most 100"),
                "{err}"
            );
        }
        assert_eq!(h.whole("iters").unwrap(), 100);
        assert!(h.set("iters", 0.0).is_err(), "the domain still applies");
    }
}
