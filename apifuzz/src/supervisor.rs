//! Crash isolation: worker processes run ranges of cases and announce each
//! case and call on stdout; the supervisor records a case that ends its
//! worker (abort, signal) or outlives the time limit (killed: a hang), and
//! starts a new worker after it.

use crate::record::CaseStats;
use crate::report::{Crash, Report};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How a supervised run is set up.
#[derive(Debug, Clone)]
pub struct Plan {
    /// First case.
    pub first: u64,
    /// Number of cases.
    pub cases: u64,
    /// Stop starting cases after this long.
    pub budget: Option<Duration>,
    /// A case running longer than this is a hang.
    pub case_limit: Duration,
    /// Address-space limit of each worker, bytes.
    pub memory: u64,
    /// Worker processes run at once.
    pub jobs: usize,
    /// Cases handed to a worker at a time.
    pub chunk: u64,
}

/// Runs the plan and returns the report.
pub fn supervise(plan: &Plan) -> Report {
    let start = Instant::now();
    let report = Arc::new(Mutex::new(Report {
        first_case: plan.first,
        ..Report::default()
    }));
    let next_chunk = Arc::new(Mutex::new(plan.first));
    let end = plan.first + plan.cases;
    let stop_at = plan.budget.map(|b| start + b);
    let threads: Vec<JoinHandle<()>> = (0..plan.jobs.max(1))
        .map(|_| {
            let (plan, report, next_chunk) = (plan.clone(), report.clone(), next_chunk.clone());
            thread::spawn(move || loop {
                let from = {
                    let mut next = next_chunk.lock().expect("chunk counter");
                    let out_of_time = stop_at.is_some_and(|t| Instant::now() >= t);
                    if *next >= end || out_of_time {
                        return;
                    }
                    let from = *next;
                    *next = (from + plan.chunk).min(end);
                    from
                };
                run_range(&plan, from, (from + plan.chunk).min(end), stop_at, &report);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("supervisor thread");
    }
    let mut report = Arc::try_unwrap(report)
        .expect("threads joined")
        .into_inner()
        .expect("report");
    report.seconds = start.elapsed().as_secs_f64();
    report.finish();
    report
}

/// Runs cases `from..to`, restarting a worker after each crash; starts no
/// case after `stop_at`.
fn run_range(plan: &Plan, from: u64, to: u64, stop_at: Option<Instant>, report: &Mutex<Report>) {
    let mut next = from;
    while next < to {
        match run_worker(plan, next, to, stop_at, report) {
            Some(crash) => {
                next = crash.case + 1;
                report.lock().expect("report").add_crash(crash);
            }
            None => return,
        }
    }
}

/// What a worker said on stdout.
enum Line {
    Start(u64),
    Call(String),
    End(u64, CaseStats),
    Eof,
}

/// Runs one worker over `from..to` (stopping it at the first case that
/// starts after `stop_at`); returns the crash that ended it early.
fn run_worker(plan: &Plan, from: u64, to: u64, stop_at: Option<Instant>, report: &Mutex<Report>) -> Option<Crash> {
    let mut child = spawn(plan, from, to);
    let (lines, stderr) = (read_lines(&mut child), keep_stderr(&mut child));
    let (mut current, mut call, mut expected) = (None::<u64>, String::new(), from);
    let mut deadline = Instant::now() + plan.case_limit;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Line::Start(_)) if stop_at.is_some_and(|t| Instant::now() >= t) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(Line::Start(case)) => {
                (current, call) = (Some(case), String::new());
                deadline = Instant::now() + plan.case_limit;
            }
            Ok(Line::Call(c)) => {
                call = if call.is_empty() {
                    c
                } else {
                    format!("{}; then {c}", last_call(&call))
                }
            }
            Ok(Line::End(case, stats)) => {
                report.lock().expect("report").add_case(case, &stats);
                (current, expected) = (None, case + 1);
            }
            Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for worker");
                let detail = last_line(stderr);
                if current.is_none() && status.success() && expected >= to {
                    return None;
                }
                // A worker that dies between cases is charged to the next
                // one, so no case is skipped without a record.
                let case = current.unwrap_or(expected);
                return Some(crash(case, call, kind_of(status, &detail), detail));
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                let case = current.unwrap_or(from);
                let limit = format!("no end after {:?}", plan.case_limit);
                return Some(crash(case, call, "hang".into(), limit));
            }
        }
    }
}

/// The last call of a `"a; then b"` trail.
fn last_call(trail: &str) -> &str {
    trail.rsplit("; then ").next().unwrap_or(trail)
}

/// A crash record.
fn crash(case: u64, call: String, kind: String, detail: String) -> Crash {
    Crash {
        case,
        kind,
        call,
        detail,
    }
}

/// Starts a worker process (this same binary) over `from..to`.
fn spawn(plan: &Plan, from: u64, to: u64) -> Child {
    let exe = std::env::current_exe().expect("own executable");
    Command::new(exe)
        .args(["--worker", "--from", &from.to_string(), "--to", &to.to_string()])
        .args(["--memory-bytes", &plan.memory.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a worker process")
}

/// Parses the worker's stdout on a thread, line by line.
fn read_lines(child: &mut Child) -> Receiver<Line> {
    let out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in out.lines().map_while(|l| l.ok()) {
            if let Some(parsed) = parse(&line) {
                if tx.send(parsed).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Line::Eof);
    });
    rx
}

/// One stdout line of a worker.
fn parse(line: &str) -> Option<Line> {
    let (tag, rest) = line.split_once(' ')?;
    match tag {
        "START" => rest.parse().ok().map(Line::Start),
        "CALL" => Some(Line::Call(rest.to_string())),
        "END" => {
            let (case, json) = rest.split_once(' ')?;
            Some(Line::End(case.parse().ok()?, serde_json::from_str(json).ok()?))
        }
        _ => None,
    }
}

/// Keeps the worker's last stderr line that is not part of a backtrace
/// (an abort's reason, e.g. "memory allocation of N bytes failed").
fn keep_stderr(child: &mut Child) -> JoinHandle<String> {
    let err = BufReader::new(child.stderr.take().expect("piped stderr"));
    thread::spawn(move || {
        err.lines()
            .map_while(|l| l.ok())
            .filter(|l| !l.trim().is_empty() && !l.starts_with(' '))
            .filter(|l| !l.starts_with("stack backtrace") && !l.starts_with("note:"))
            .last()
            .unwrap_or_default()
    })
}

/// The stderr thread's reason line.
fn last_line(stderr: JoinHandle<String>) -> String {
    stderr.join().unwrap_or_default().chars().take(200).collect()
}

/// Names how a worker ended.
fn kind_of(status: std::process::ExitStatus, detail: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    if detail.contains("memory allocation of") {
        "allocation abort".into()
    } else if detail.contains("overflowed its stack") || detail.contains("stack overflow") {
        "stack overflow".into()
    } else if let Some(sig) = status.signal() {
        format!("signal {sig}")
    } else {
        format!("exit {}", status.code().unwrap_or(-1))
    }
}

/// Caps this process's address space at `bytes`, so an absurd allocation
/// fails at once instead of being granted lazily by overcommit.
pub fn limit_memory(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and has no other effect on memory.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_AS) failed");
}
