//! Running one public call: its outcome (value, typed error or panic), and
//! the panic hook that names the panic's site in ferrograd's own code.

use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

/// Whether each call is announced on stdout before it runs (worker mode:
/// the supervisor then knows which call aborted or hung).
static TRACE_CALLS: AtomicBool = AtomicBool::new(false);

/// Announce each call on stdout (`CALL <description>`) before running it.
pub fn trace_calls(on: bool) {
    TRACE_CALLS.store(on, Ordering::Relaxed);
}

/// The workspace root this harness was built in (panic locations are
/// reported relative to it).
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Where and why the last panic happened: `(site, message)`.
static LAST_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Held while a call runs: one call at a time per process, so a panic the
/// hook sees (on any thread: ops may run on the engine's pool) is that
/// call's, even when tests run cases on several threads.
static CALL_LOCK: Mutex<()> = Mutex::new(());

/// Whether a call is running (the hook stays quiet only then).
static IN_CALL: AtomicBool = AtomicBool::new(false);

/// One panic seen while running a case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PanicRecord {
    /// `file:line` in ferrograd's code (the first workspace frame when the
    /// panic itself is in the standard library, e.g. an arithmetic overflow
    /// inside `Iterator::product`).
    pub site: String,
    /// The panic message.
    pub message: String,
    /// The call that panicked, with its arguments.
    pub call: String,
}

/// What one case did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CaseStats {
    /// Public calls made.
    pub calls: u64,
    /// Calls that returned a value.
    pub ok: u64,
    /// Calls that returned a typed error.
    pub errors: u64,
    /// Calls that panicked.
    pub panics: Vec<PanicRecord>,
}

impl CaseStats {
    /// Runs `f`, a call described by `call`, and records its outcome:
    /// `Some(value)`, or `None` after a typed error or a panic.
    pub fn call<T, E: Display>(&mut self, call: impl Into<String>, f: impl FnOnce() -> Result<T, E>) -> Option<T> {
        install_hook();
        self.calls += 1;
        let call = call.into();
        if TRACE_CALLS.load(Ordering::Relaxed) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "CALL {}", call.replace('\n', "\\n"));
            let _ = out.flush();
        }
        let _one_at_a_time = CALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = None;
        IN_CALL.store(true, Ordering::SeqCst);
        let outcome = catch_unwind(AssertUnwindSafe(f));
        IN_CALL.store(false, Ordering::SeqCst);
        match outcome {
            Ok(Ok(v)) => {
                self.ok += 1;
                Some(v)
            }
            Ok(Err(e)) => {
                self.errors += 1;
                // Typed errors must render (a Display that panics is a bug too).
                let _ = e.to_string();
                None
            }
            Err(_) => {
                let (site, message) = take_last_panic();
                self.panics.push(PanicRecord { site, message, call });
                None
            }
        }
    }

    /// Runs a call that cannot fail (it returns a plain value).
    pub fn infallible<T>(&mut self, call: impl Into<String>, f: impl FnOnce() -> T) -> Option<T> {
        self.call(call, || Ok::<T, std::convert::Infallible>(f()))
    }
}

/// The recorded site and message of the last panic (cleared).
fn take_last_panic() -> (String, String) {
    let mut last = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
    last.take()
        .unwrap_or_else(|| ("unknown".into(), "panic hook saw nothing".into()))
}

/// Installs (once) a quiet panic hook that records the panic's site.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CALL.load(Ordering::SeqCst) {
                return default_hook(info);
            }
            let (file, line) = info.location().map(|l| (l.file(), l.line())).unwrap_or(("unknown", 0));
            let site = match relative(file) {
                Some(path) => format!("{path}:{line}"),
                None => first_workspace_frame().map_or_else(
                    || format!("{file}:{line}"),
                    |frame| format!("{frame} (in {})", short_std(file, line)),
                ),
            };
            let message = payload_text(info.payload());
            let mut last = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none() {
                *last = Some((site, message));
            }
        }));
    });
}

/// A panic payload as text.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into());
    text.chars().take(200).collect()
}

/// `file` relative to the workspace, if it is ferrograd's own code.
pub fn relative(file: &str) -> Option<String> {
    let root = std::path::Path::new(WORKSPACE)
        .canonicalize()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| WORKSPACE.to_string());
    // Backtraces print paths under the current directory as "./...".
    let absolute = match file.strip_prefix("./") {
        Some(rest) => std::env::current_dir().map_or(file.to_string(), |d| format!("{}/{rest}", d.display())),
        None => file.to_string(),
    };
    let path = absolute.strip_prefix(&format!("{root}/")).unwrap_or(file);
    let own = !path.starts_with('/') && !path.contains(".cargo") && !path.starts_with("library/");
    own.then(|| path.to_string())
}

/// The standard library file a panic came from, shortened.
fn short_std(file: &str, line: u32) -> String {
    let tail = file.rsplit("/src/").next().unwrap_or(file);
    format!("std {tail}:{line}")
}

/// The innermost frame of the current backtrace in ferrograd's code
/// outside this harness.
fn first_workspace_frame() -> Option<String> {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    trace.lines().find_map(|line| {
        let at = line.trim().strip_prefix("at ")?;
        let (file, rest) = at.split_once(':')?;
        let line_no = rest.split(':').next()?;
        let path = relative(file)?;
        (!path.starts_with("apifuzz/")).then(|| format!("{path}:{line_no}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_recorded_with_its_site_and_the_call() {
        let mut stats = CaseStats::default();
        let got: Option<()> = stats.infallible("explode()", || panic!("boom"));
        assert!(got.is_none());
        assert_eq!(stats.panics.len(), 1);
        assert!(
            stats.panics[0].site.starts_with("apifuzz/src/record.rs:"),
            "{:?}",
            stats.panics[0]
        );
        assert_eq!(stats.panics[0].message, "boom");
        assert_eq!(stats.panics[0].call, "explode()");
    }

    #[test]
    fn values_and_typed_errors_are_counted_apart() {
        let mut stats = CaseStats::default();
        assert_eq!(stats.call("ok()", || Ok::<u8, String>(1)), Some(1));
        assert_eq!(stats.call("err()", || Err::<u8, String>("no".into())), None);
        assert_eq!((stats.calls, stats.ok, stats.errors, stats.panics.len()), (2, 1, 1, 0));
    }

    #[test]
    fn a_panic_in_library_code_is_placed_in_the_workspace_frame() {
        let mut stats = CaseStats::default();
        // usize overflow inside Iterator::product, reached from engine code.
        let dims = [1usize << 32, 1 << 32];
        stats.infallible("Shape::numel", || ferrograd::engine::Shape::new(dims).numel());
        // (Once the element count is checked there is no panic to place.)
        if let Some(p) = stats.panics.first() {
            assert!(p.site.starts_with("engine/src/shape.rs:"), "{p:?}");
        }
    }
}
