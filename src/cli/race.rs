//! `ferrograd race`: optimizers x tracks x seeds under the task protocol,
//! resumable, shardable, with tables and plots; `ferrograd race report`
//! merges result files into the same tables and plots.

use ferrograd::race::grid::{self, Grid, HpOption, RunKey, Shard};
use ferrograd::race::record::{self, ResultsWriter, RunRecord};
use ferrograd::race::report::merge;
use ferrograd::race::stats::Bootstrap;
use ferrograd::race::{files, run, write_report, RaceError};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Options of `ferrograd race`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<RaceCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum RaceCommand {
    /// Merge result files (dropping duplicate runs) into one report and plots.
    Report(ReportArgs),
}

/// Options shared by a race and its report.
#[derive(clap::Args)]
struct ReportOptions {
    /// Compare every entrant with this one, paired by seed (default:
    /// clipped_adam, the task's default, if it ran, else the first entrant).
    #[arg(long)]
    baseline: Option<String>,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = ferrograd::race::stats::DEFAULT_RESAMPLES)]
    resamples: usize,
    /// Do not write SVG plots.
    #[arg(long)]
    no_plots: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Comma-separated optimizers, e.g. sgd,adam,lion (see `ferrograd optimizers`).
    #[arg(long, value_name = "LIST")]
    optimizers: Option<String>,
    /// [OPTIMIZER.]KEY=VALUE[,VALUE...]: override a hyperparameter (without
    /// OPTIMIZER: of every listed optimizer that has KEY); several
    /// values make several entrants (repeatable; options multiply).
    #[arg(long = "hp", value_name = "[OPT.]KEY=V[,V]")]
    hps: Vec<String>,
    /// Tracks (hidden layers), comma-separated.
    #[arg(long, default_value = "4")]
    tracks: String,
    /// Seeds: numbers and inclusive ranges, e.g. 0..19 (= 20 seeds) or 0..4,9.
    #[arg(long, default_value = "0..4")]
    seeds: String,
    /// Runs at once: worker threads of the race's thread pool, which also
    /// runs the engine's parallel kernels (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory for race.jsonl, report.txt and the plots.
    #[arg(long, default_value = "race")]
    out: PathBuf,
    /// Continue the race in --out: skip runs already in its race.jsonl.
    #[arg(long)]
    resume: bool,
    /// Start over: discard an existing race.jsonl in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Run only slice I of N of the grid (0-based), e.g. 0/10; merge the
    /// slices' files with `ferrograd race report`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Epoch budget per run (the task's is 1000; lower it only for tests).
    #[arg(long, default_value_t = 1000, hide = true)]
    max_epochs: usize,
    #[command(flatten)]
    report: ReportOptions,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// race.jsonl files to merge.
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Directory for report.txt and the plots.
    #[arg(long, default_value = "race-report")]
    out: PathBuf,
    #[command(flatten)]
    report: ReportOptions,
}

/// Runs `ferrograd race` or `ferrograd race report`.
pub fn run(args: &Args) -> i32 {
    let result = match &args.command {
        Some(RaceCommand::Report(report)) => run_report(report),
        None => run_race(&args.run),
    };
    match result {
        Ok(()) => 0,
        Err(e @ (RaceError::Usage(_) | RaceError::Format { .. })) => super::usage(e),
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn bootstrap(options: &ReportOptions) -> Result<Bootstrap, RaceError> {
    if options.resamples == 0 {
        return Err(RaceError::Usage("--resamples must be at least 1".into()));
    }
    Ok(Bootstrap {
        resamples: options.resamples,
        ..Bootstrap::default()
    })
}

fn parse_grid(args: &RunArgs) -> Result<Grid, RaceError> {
    let optimizers = args.optimizers.as_deref().ok_or_else(|| {
        RaceError::Usage("--optimizers is required, e.g. --optimizers sgd,adam (see `ferrograd optimizers`)".into())
    })?;
    if args.max_epochs == 0 {
        return Err(RaceError::Usage("--max-epochs must be at least 1".into()));
    }
    let hp = args
        .hps
        .iter()
        .map(|h| HpOption::parse(h))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Grid {
        entrants: grid::entrants(optimizers, &hp)?,
        tracks: grid::parse_tracks(&args.tracks)?,
        seeds: grid::parse_seeds(&args.seeds)?,
        max_epochs: args.max_epochs,
    })
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Reads what an earlier invocation left in `path`, applying the
/// resume/force rules; returns the records to keep and where to append.
fn existing_results(args: &RunArgs, path: &Path) -> Result<(Vec<RunRecord>, u64), RaceError> {
    if args.force {
        return Ok((Vec::new(), 0));
    }
    let found = record::read_records(path)?;
    if !args.resume && (!found.records.is_empty() || found.valid_len > 0 || !found.warnings.is_empty()) {
        return Err(RaceError::Usage(format!(
            "{} already holds {} runs of an earlier race; pass --resume to continue it, --force to start \
             over (discarding them), or choose another --out",
            path.display(),
            found.records.len()
        )));
    }
    warn_all(&found.warnings);
    Ok((found.records, found.valid_len))
}

fn run_race(args: &RunArgs) -> Result<(), RaceError> {
    let grid = parse_grid(args)?;
    let shard = args
        .shard
        .as_deref()
        .map(Shard::parse)
        .transpose()?
        .unwrap_or(Shard::ALL);
    let bootstrap = bootstrap(&args.report)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(RaceError::Usage("--jobs must be at least 1".into()));
    }
    let path = args.out.join(files::RESULTS);
    let (mut records, valid_len) = existing_results(args, &path)?;
    let done: BTreeSet<_> = records.iter().map(RunRecord::key).collect();
    let shard_runs = grid.shard_runs(shard);
    let total = shard_runs.len();
    let pending: Vec<_> = shard_runs.into_iter().filter(|k| !done.contains(k)).collect();
    if !args.quiet {
        eprintln!(
            "race: {} runs in this {}, {} already done, {} to run on {jobs} threads; results in {}",
            total,
            if shard == Shard::ALL {
                "grid".to_string()
            } else {
                format!("shard {}/{}", shard.index, shard.count)
            },
            total - pending.len(),
            pending.len(),
            path.display()
        );
    }
    let writer = ResultsWriter::open(&path, valid_len)?;
    let bar = progress_bar(args.quiet, total, total - pending.len());
    let advance = |key: &RunKey, record: &RunRecord| {
        bar.set_message(format!("last: {key} quality {}", record.quality));
        bar.inc(1);
    };
    let fresh = run::run_all(pending, jobs, writer, &advance)?;
    bar.finish_and_clear();
    records.extend(fresh);
    let (text, written) = write_report(
        &records,
        args.report.baseline.as_deref(),
        &bootstrap,
        &args.out,
        !args.report.no_plots,
    )?;
    super::emit(&text);
    if !args.quiet {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        eprintln!("wrote {}", names.join(", "));
    }
    Ok(())
}

fn progress_bar(quiet: bool, total: usize, done: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs [{elapsed_precise}, ETA {eta}] {wide_msg}")
            .expect("valid template"),
    );
    bar.set_position(done as u64);
    bar
}

fn run_report(args: &ReportArgs) -> Result<(), RaceError> {
    let bootstrap = bootstrap(&args.report)?;
    let mut lists = Vec::new();
    for path in &args.files {
        if !path.is_file() {
            return Err(RaceError::Usage(format!(
                "{}: no such results file (give race.jsonl files written by `ferrograd race`)",
                path.display()
            )));
        }
        let found = record::read_records(path)?;
        warn_all(&found.warnings);
        lists.push(found.records);
    }
    let (records, duplicates) = merge(lists);
    if records.is_empty() {
        return Err(RaceError::Usage("the files hold no finished runs".into()));
    }
    eprintln!(
        "merged {} runs from {} files ({duplicates} duplicates dropped)",
        records.len(),
        args.files.len()
    );
    let (text, _) = write_report(
        &records,
        args.report.baseline.as_deref(),
        &bootstrap,
        &args.out,
        !args.report.no_plots,
    )?;
    super::emit(&text);
    Ok(())
}
