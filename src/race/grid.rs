//! The race's grid: entrants (an optimizer with hyperparameter overrides)
//! x tracks x seeds, its parsing from the command line, and deterministic
//! shards.

use super::RaceError;
use crate::optim::{catalog, HyperParams, TaskOptimizer};
use std::collections::BTreeMap;
use std::fmt;

/// One contestant: a catalog optimizer with hyperparameter overrides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entrant {
    /// The catalog name.
    pub optimizer: String,
    /// Overrides `key -> value`, each value in its canonical text form
    /// ([`canonical_number`]), so `3e-4` and `0.0003` are the same entrant.
    pub hp: BTreeMap<String, String>,
}

impl Entrant {
    /// An optimizer at its catalog defaults.
    pub fn plain(optimizer: &str) -> Entrant {
        Entrant {
            optimizer: optimizer.to_string(),
            hp: BTreeMap::new(),
        }
    }

    /// The overrides as numbers.
    pub fn hp_values(&self) -> BTreeMap<String, f64> {
        self.hp
            .iter()
            .map(|(k, v)| (k.clone(), v.parse().expect("canonical numbers parse")))
            .collect()
    }

    /// The hyperparameters: catalog defaults with the overrides applied.
    pub fn hyperparams(&self) -> Result<HyperParams, RaceError> {
        let info = catalog::lookup(&self.optimizer).map_err(|e| RaceError::Usage(e.to_string()))?;
        let mut values = HyperParams::defaults(info);
        for (key, value) in self.hp_values() {
            values.set(&key, value).map_err(|e| RaceError::Usage(e.to_string()))?;
        }
        Ok(values)
    }

    /// Builds the optimizer through the catalog, exactly as `ferrograd
    /// train` does.
    pub fn build(&self) -> Result<Box<dyn TaskOptimizer>, RaceError> {
        let info = catalog::lookup(&self.optimizer).map_err(|e| RaceError::Usage(e.to_string()))?;
        (info.build)(&self.hyperparams()?).map_err(|e| RaceError::Usage(format!("{self}: {e}")))
    }
}

/// `adam` or `adam(beta1=0.95,lr=3e-4)`: no spaces, so it can be passed
/// back as `--baseline`.
impl fmt::Display for Entrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.optimizer)?;
        if !self.hp.is_empty() {
            let parts: Vec<String> = self.hp.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "({})", parts.join(","))?;
        }
        Ok(())
    }
}

/// The shorter of Rust's plain and exponent forms of `value` (both parse
/// back to exactly `value`): `3e-4`, `0.9`, `1e-8`, `100`.
pub fn canonical_number(value: f64) -> String {
    let plain = format!("{value}");
    let exponent = format!("{value:e}");
    if exponent.len() < plain.len() {
        exponent
    } else {
        plain
    }
}

/// One cell of the grid: who runs, on which track, with which seed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    /// The contestant.
    pub entrant: Entrant,
    /// Hidden layers (the track).
    pub n_hidden: usize,
    /// The instance seed.
    pub seed: u64,
    /// The epoch budget (1000 under the task's rules).
    pub max_epochs: usize,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} n_hidden={} seed={}", self.entrant, self.n_hidden, self.seed)
    }
}

/// The whole grid, in its canonical order: entrants as listed, then tracks,
/// then seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The contestants.
    pub entrants: Vec<Entrant>,
    /// The tracks (`n_hidden` values).
    pub tracks: Vec<usize>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The epoch budget of every run.
    pub max_epochs: usize,
}

impl Grid {
    /// Every run, in canonical order.
    pub fn runs(&self) -> Vec<RunKey> {
        let mut runs = Vec::new();
        for entrant in &self.entrants {
            for &n_hidden in &self.tracks {
                for &seed in &self.seeds {
                    runs.push(RunKey {
                        entrant: entrant.clone(),
                        n_hidden,
                        seed,
                        max_epochs: self.max_epochs,
                    });
                }
            }
        }
        runs
    }

    /// The runs of `shard`: every run whose canonical index is
    /// `shard.index` modulo `shard.count` (round robin, so every shard gets
    /// a similar mix of tracks).
    pub fn shard_runs(&self, shard: Shard) -> Vec<RunKey> {
        self.runs()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, run)| run)
            .collect()
    }
}

/// A deterministic slice `index` of `count` (0-based: `0/4` .. `3/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 <= index < count`.
    pub index: usize,
    /// The number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, RaceError> {
        let bad = || RaceError::Usage(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Parses seeds: a comma list of numbers and inclusive ranges, so `0..4`
/// means 0, 1, 2, 3, 4 (`0..=4` is accepted too) and `0..2,10` means 0, 1,
/// 2, 10. Duplicates are dropped, order is kept.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, RaceError> {
    let bad = |part: &str| {
        RaceError::Usage(format!(
            "--seeds: {part:?} is not a seed or an inclusive range like 0..19"
        ))
    };
    let mut seeds = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let a: u64 = a.trim().parse().map_err(|_| bad(part))?;
            let b: u64 = b.trim().trim_start_matches('=').trim().parse().map_err(|_| bad(part))?;
            if a > b {
                return Err(bad(part));
            }
            seeds.extend(a..=b);
        } else {
            seeds.push(part.parse().map_err(|_| bad(part))?);
        }
    }
    dedup_keep_order(&mut seeds);
    if seeds.is_empty() {
        return Err(RaceError::Usage("--seeds lists no seed; e.g. --seeds 0..19".into()));
    }
    Ok(seeds)
}

/// Parses tracks: a comma list of `n_hidden` values, e.g. `4,10`.
pub fn parse_tracks(text: &str) -> Result<Vec<usize>, RaceError> {
    let mut tracks = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: usize = part
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| RaceError::Usage(format!("--tracks: {part:?} is not a positive layer count")))?;
        tracks.push(n);
    }
    dedup_keep_order(&mut tracks);
    if tracks.is_empty() {
        return Err(RaceError::Usage("--tracks lists no track; e.g. --tracks 4,10".into()));
    }
    Ok(tracks)
}

/// One `--hp` option: `NAME.key=v1,v2,...` for optimizer `NAME`, or
/// `key=v1,v2,...` for every listed optimizer that declares `key` (the
/// spelling `ferrograd train --hp` uses; both are accepted everywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct HpOption {
    /// The optimizer it applies to (`None`: every listed one with `key`).
    pub optimizer: Option<String>,
    /// The hyperparameter.
    pub key: String,
    /// Its values (more than one makes a grid), canonical text.
    pub values: Vec<String>,
}

impl HpOption {
    /// Parses `[NAME.]key=value[,value...]`.
    pub fn parse(text: &str) -> Result<HpOption, RaceError> {
        let bad = |why: &str| {
            RaceError::Usage(format!(
                "--hp {text:?}: {why}; write [OPTIMIZER.]KEY=VALUE[,VALUE...], e.g. adam.lr=1e-3,3e-4 or lr=1e-3"
            ))
        };
        let (target, values) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (optimizer, key) = split_hp_target(target);
        if key.is_empty() || optimizer.is_some_and(str::is_empty) {
            return Err(bad("no hyperparameter name before '='"));
        }
        let mut parsed = Vec::new();
        for value in values.split(',').map(str::trim) {
            let number: f64 = value.parse().map_err(|_| bad(&format!("{value:?} is not a number")))?;
            if !number.is_finite() {
                return Err(bad(&format!("{value:?} is not finite")));
            }
            parsed.push(canonical_number(number));
        }
        dedup_keep_order(&mut parsed);
        Ok(HpOption {
            optimizer: optimizer.map(str::to_string),
            key: key.to_string(),
            values: parsed,
        })
    }

    /// Whether the option sets a hyperparameter of optimizer `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        match &self.optimizer {
            Some(optimizer) => optimizer == name,
            None => catalog::find(name).is_some_and(|info| info.hyperparams.iter().any(|h| h.name == self.key)),
        }
    }

    /// The option as typed, e.g. `adam.lr` or `lr`.
    fn target(&self) -> String {
        match &self.optimizer {
            Some(optimizer) => format!("{optimizer}.{}", self.key),
            None => self.key.clone(),
        }
    }
}

/// Splits the part of an `--hp` option before `=` into the optimizer it
/// names (if any, before a `.`) and the hyperparameter, both trimmed.
pub fn split_hp_target(target: &str) -> (Option<&str>, &str) {
    match target.trim().split_once('.') {
        Some((optimizer, key)) => (Some(optimizer.trim()), key.trim()),
        None => (None, target.trim()),
    }
}

/// The entrants for `optimizers` (comma list) with `--hp` options applied:
/// each optimizer gets the Cartesian product of its options' values. Every
/// entrant is built once here, so a bad name or value fails before any
/// training starts.
pub fn entrants(optimizers: &str, hp: &[HpOption]) -> Result<Vec<Entrant>, RaceError> {
    let names: Vec<&str> = optimizers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if names.is_empty() {
        return Err(RaceError::Usage(
            "--optimizers lists no optimizer; e.g. --optimizers sgd,adam (see `ferrograd optimizers`)".into(),
        ));
    }
    for option in hp {
        if !names.iter().any(|name| option.applies_to(name)) {
            let why = match &option.optimizer {
                Some(optimizer) => format!("{optimizer} is not in --optimizers"),
                None => format!("no optimizer in --optimizers has a hyperparameter {:?}", option.key),
            };
            return Err(RaceError::Usage(format!(
                "--hp {}: {why} ({})",
                option.target(),
                names.join(",")
            )));
        }
    }
    let mut result = Vec::new();
    for name in names {
        let mut variants = vec![Entrant::plain(name)];
        for option in hp.iter().filter(|o| o.applies_to(name)) {
            variants = variants
                .into_iter()
                .flat_map(|base| {
                    option.values.iter().map(move |value| {
                        let mut e = base.clone();
                        e.hp.insert(option.key.clone(), value.clone());
                        e
                    })
                })
                .collect();
        }
        for entrant in variants {
            entrant.build()?;
            if !result.contains(&entrant) {
                result.push(entrant);
            }
        }
    }
    Ok(result)
}

fn dedup_keep_order<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(items.len());
    items.retain(|item| {
        if seen.contains(item) {
            false
        } else {
            seen.push(item.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_inclusive_ranges_and_lists() {
        assert_eq!(parse_seeds("0..4").unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_seeds("0..=2, 10,1").unwrap(), vec![0, 1, 2, 10]);
        assert!(parse_seeds("4..0").is_err());
        assert!(parse_seeds("x").is_err());
        assert!(parse_seeds("").is_err());
    }

    #[test]
    fn shards_partition_the_grid() {
        let grid = Grid {
            entrants: vec![Entrant::plain("sgd"), Entrant::plain("adam")],
            tracks: vec![4, 10],
            seeds: (0..5).collect(),
            max_epochs: 1000,
        };
        let all = grid.runs();
        assert_eq!(all.len(), 20);
        let mut union: Vec<RunKey> = (0..3)
            .flat_map(|i| grid.shard_runs(Shard { index: i, count: 3 }))
            .collect();
        assert_eq!(union.len(), 20);
        union.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(union, sorted);
        assert_eq!(grid.shard_runs(Shard::ALL), all);
        assert!(Shard::parse("3/3").is_err());
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
    }

    #[test]
    fn hp_options_make_a_product_of_variants() {
        let hp = [
            HpOption::parse("adam.lr=1e-3,0.0003").unwrap(),
            HpOption::parse("adam.beta1=0.9,0.95").unwrap(),
        ];
        let list = entrants("sgd,adam", &hp).unwrap();
        let labels: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            [
                "sgd",
                "adam(beta1=0.9,lr=1e-3)",
                "adam(beta1=0.95,lr=1e-3)",
                "adam(beta1=0.9,lr=3e-4)",
                "adam(beta1=0.95,lr=3e-4)"
            ]
        );
        assert!(entrants("sgd", &[HpOption::parse("sgd.momentum=0.9").unwrap()]).is_err());
        assert!(entrants("sgd", &[HpOption::parse("adam.lr=1").unwrap()]).is_err());
        assert!(HpOption::parse("=1").is_err());
        assert!(HpOption::parse(".lr=1").is_err());
        assert!(entrants("nope", &[]).is_err());
    }
}
