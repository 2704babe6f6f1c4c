//! `ferrograd-apifuzz`: runs seeded cases of random public calls under a
//! crash-isolating supervisor and reports calls, typed errors, panics by
//! site and crashes. See README.md for the options.

use ferrograd_apifuzz::record::trace_calls;
use ferrograd_apifuzz::report::Report;
use ferrograd_apifuzz::supervisor::{limit_memory, supervise, Plan};
use ferrograd_apifuzz::{run_case, run_in_process};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: ferrograd-apifuzz [--cases N (2000; unbounded with --seconds)] [--first N] [--seconds S] [--jobs J] \
[--case-limit-s S] [--memory-gib G] [--json PATH] [--text PATH] [--in-process] | --case N";

/// The command line, parsed.
struct Args {
    plan: Plan,
    json: Option<String>,
    text: Option<String>,
    one_case: Option<u64>,
    in_process: bool,
    worker: Option<(u64, u64)>,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferrograd-apifuzz: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some((from, to)) = args.worker {
        return worker(from, to, args.plan.memory);
    }
    if let Some(case) = args.one_case {
        return rerun(case, args.plan.memory);
    }
    let report = if args.in_process {
        run_in_process(args.plan.first, args.plan.cases)
    } else {
        supervise(&args.plan)
    };
    write_reports(&args, &report);
    print!("{}", report.text());
    if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Parses the options.
fn parse(argv: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        plan: Plan {
            first: 0,
            cases: 2000,
            budget: None,
            case_limit: Duration::from_secs(10),
            memory: 4 << 30,
            jobs: 1,
            chunk: 100,
        },
        json: None,
        text: None,
        one_case: None,
        in_process: false,
        worker: None,
    };
    let (mut from, mut to, mut cases_given) = (0, 0, false);
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--worker" || flag == "--in-process" {
            a.worker = a.worker.or((flag == "--worker").then_some((0, 0)));
            a.in_process |= flag == "--in-process";
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
        };
        match flag.as_str() {
            "--cases" => {
                a.plan.cases = num()?;
                cases_given = true;
            }
            "--first" => a.plan.first = num()?,
            "--seconds" => a.plan.budget = Some(Duration::from_secs(num()?)),
            "--jobs" => a.plan.jobs = num()? as usize,
            "--case-limit-s" => a.plan.case_limit = Duration::from_secs(num()?),
            "--memory-gib" => a.plan.memory = num()?.saturating_mul(1 << 30),
            "--memory-bytes" => a.plan.memory = num()?,
            "--json" => a.json = Some(value),
            "--text" => a.text = Some(value),
            "--case" => a.one_case = Some(num()?),
            "--from" => from = num()?,
            "--to" => to = num()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.worker.is_some() {
        a.worker = Some((from, to));
    }
    if a.plan.budget.is_some() && !cases_given {
        a.plan.cases = u64::MAX / 2; // as many as the time allows
    }
    Ok(a)
}

/// Worker mode: runs `from..to`, announcing each case and call.
fn worker(from: u64, to: u64, memory: u64) -> ExitCode {
    limit_memory(memory);
    trace_calls(true);
    for case in from..to {
        println!("START {case}");
        let stats = run_case(case, true);
        println!("END {case} {}", serde_json::to_string(&stats).expect("stats serialise"));
    }
    ExitCode::SUCCESS
}

/// `--case N`: reruns one case in this process (memory capped as a
/// worker's), printing each call and the case's outcome.
fn rerun(case: u64, memory: u64) -> ExitCode {
    limit_memory(memory);
    trace_calls(true);
    let stats = run_case(case, true);
    println!("{}", serde_json::to_string_pretty(&stats).expect("stats serialise"));
    let mut report = Report::default();
    report.add_case(case, &stats);
    if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes the JSON and text reports where asked.
fn write_reports(args: &Args, report: &Report) {
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(report).expect("report serialises");
        std::fs::write(path, json + "\n").unwrap_or_else(|e| eprintln!("cannot write {path}: {e}"));
    }
    if let Some(path) = &args.text {
        std::fs::write(path, report.text()).unwrap_or_else(|e| eprintln!("cannot write {path}: {e}"));
    }
}
