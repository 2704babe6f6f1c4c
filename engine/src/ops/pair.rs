//! A second thread kept awake for the two halves of [`super::join`].
//!
//! A training step of the task model is a dozen products of about a tenth
//! of a millisecond each, every one cut into two halves. Handing a half to a
//! sleeping thread pool worker costs a futex wake-up (tens of microseconds
//! on a virtual machine), often more than the half itself. Here one helper
//! thread spins while a stretch of such work is running (an *owned region*,
//! opened by [`super::in_pool`]), so a half starts on the other core within
//! a fraction of a microsecond; between regions, and after
//! [`SPIN_LIMIT`] without work, it sleeps.
//!
//! The protocol is a single slot: the owner posts the second half, runs the
//! first, then either takes the second back (the helper had not started it)
//! or waits for it. Which thread runs a half never changes its result.

use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins without work before it sleeps, inside an owned
/// region. Long enough to span the serial stretches of a training step (an
/// optimizer pass over every parameter takes a few milliseconds on track
/// 18): on the 2-core KVM guest, a parked helper took up to a millisecond to
/// wake, and meanwhile the owner took back, and ran alone, a quarter of the
/// step's halves (counted with 1 ms here). Outside a region it sleeps at once.
const SPIN_LIMIT: Duration = Duration::from_millis(10);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// What the current thread is to the helper.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Neither: [`super::join`] uses the rayon pool.
    Outside,
    /// The thread that owns the helper now: it posts halves to it.
    Owner,
    /// The helper itself: joins inside a half run one after the other.
    Helper,
}

thread_local! {
    static ROLE: Cell<Role> = const { Cell::new(Role::Outside) };
}

/// The current thread's role.
pub(crate) fn role() -> Role {
    ROLE.with(Cell::get)
}

/// A posted half: its closure's address and the function that runs it.
#[derive(Clone, Copy)]
struct JobRef {
    data: *const (),
    run: unsafe fn(*const ()),
}

struct Helper {
    /// IDLE, POSTED, RUNNING or DONE.
    state: AtomicU8,
    /// Written by the owner while IDLE, read by the helper once POSTED.
    job: UnsafeCell<JobRef>,
    /// Whether some thread owns the helper (an owned region is open).
    owned: AtomicBool,
    /// Whether the helper is (about to be) parked and needs an unpark.
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` is written only by the single owner while the state is IDLE
// and read only by the helper after it saw POSTED (release/acquire on
// `state`), so the two never touch it at the same time.
unsafe impl Sync for Helper {}

/// The helper, started on first use; `None` if the system refused a new
/// thread (then no region owns it and every join takes the rayon path).
fn helper() -> Option<&'static Helper> {
    static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
    *HELPER.get_or_init(|| {
        let h: &'static Helper = Box::leak(Box::new(Helper {
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(JobRef {
                data: std::ptr::null(),
                run: noop,
            }),
            owned: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            thread: OnceLock::new(),
        }));
        let handle = thread::Builder::new()
            .name("ferrograd-pair".into())
            .spawn(move || h.serve())
            .ok()?;
        // A fresh lock, set here only: it cannot hold a value yet.
        let _ = h.thread.set(handle.thread().clone());
        Some(h)
    })
}

/// The helper of the current owner (a role that only [`claim`] grants,
/// after the helper started).
fn owned_helper() -> &'static Helper {
    helper().expect("an owner exists only once the helper runs")
}

unsafe fn noop(_: *const ()) {}

impl Helper {
    /// The helper thread's loop: spin for posted halves while owned, sleep
    /// otherwise.
    fn serve(&self) {
        ROLE.with(|r| r.set(Role::Helper));
        let mut last_work = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.state.load(Ordering::Acquire) == POSTED {
                if self
                    .state
                    .compare_exchange(POSTED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: POSTED was seen with acquire, so `job` holds the
                    // owner's half, which stays alive until DONE is seen.
                    unsafe {
                        let job = *self.job.get();
                        (job.run)(job.data);
                    }
                    self.state.store(DONE, Ordering::Release);
                }
                last_work = Instant::now();
                spins = 0;
                continue;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins % 64 == 0 && (!self.owned.load(Ordering::Relaxed) || last_work.elapsed() > SPIN_LIMIT) {
                self.sleep();
                last_work = Instant::now();
                spins = 0;
            }
        }
    }

    /// Parks unless a half was posted meanwhile (the owner checks
    /// `sleeping` after posting, so no post is missed).
    fn sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.state.load(Ordering::SeqCst) != POSTED {
            thread::park();
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }

    fn wake(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

/// Whether a region should use the helper at all: only when this process
/// may run on two CPUs or more (`available_parallelism`, which follows the
/// CPU affinity mask and cgroup quota): on one CPU the spinning helper
/// would take the owner's own time slices. `FERROGRAD_PAIR=off` (or `0`)
/// turns it off, `on` (or `1`) forces it on, for measurements
/// (`bench/RESULTS.md`, "The pair helper on one and two cores"). Read once.
pub(crate) fn pays() -> bool {
    static PAYS: OnceLock<bool> = OnceLock::new();
    *PAYS.get_or_init(|| {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var("FERROGRAD_PAIR").as_deref() {
            Ok("off" | "0") => false,
            Ok("on" | "1") => true,
            _ => cpus >= 2,
        }
    })
}

/// Ownership of the helper for the current thread; released on drop.
pub(crate) struct Owned(());

/// Makes the current thread the helper's owner, if no other thread owns it.
pub(crate) fn claim() -> Option<Owned> {
    let h = helper()?;
    h.owned
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    ROLE.with(|r| r.set(Role::Owner));
    h.wake();
    Some(Owned(()))
}

impl Drop for Owned {
    fn drop(&mut self) {
        ROLE.with(|r| r.set(Role::Outside));
        owned_helper().owned.store(false, Ordering::Release);
    }
}

/// A closure on the owner's stack, and where its result goes.
struct StackJob<F, R> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<thread::Result<R>>>,
}

impl<F: FnOnce() -> R, R> StackJob<F, R> {
    /// The slot's view of this job.
    fn as_job_ref(&self) -> JobRef {
        JobRef {
            data: self as *const Self as *const (),
            run: Self::run,
        }
    }

    /// Runs the closure once, keeping a panic as the result.
    ///
    /// # Safety
    /// `data` points at a live `StackJob<F, R>` whose closure nobody else
    /// runs or reads at the same time.
    unsafe fn run(data: *const ()) {
        let job = &*(data as *const Self);
        let f = (*job.f.get()).take().expect("a half runs once");
        *job.result.get() = Some(panic::catch_unwind(AssertUnwindSafe(f)));
    }
}

/// Runs `a` here and `b` on the helper (or here, if the helper is busy or
/// late). Only for the owner.
pub(crate) fn join<RA, RB>(a: impl FnOnce() -> RA, b: impl FnOnce() -> RB + Send) -> (RA, RB)
where
    RB: Send,
{
    let h = owned_helper();
    if h.state.load(Ordering::Relaxed) != IDLE {
        // A join nested inside a posted half's sibling: the helper is taken.
        return (a(), b());
    }
    let job = StackJob {
        f: UnsafeCell::new(Some(b)),
        result: UnsafeCell::new(None),
    };
    // SAFETY: the state is IDLE and only the owner (this thread) posts, so
    // the helper does not read `job` until the POSTED store below.
    unsafe {
        *h.job.get() = job.as_job_ref();
    }
    h.state.store(POSTED, Ordering::SeqCst);
    h.wake();
    let ra = panic::catch_unwind(AssertUnwindSafe(a));
    let taken_back = h
        .state
        .compare_exchange(POSTED, IDLE, Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if taken_back {
        // SAFETY: the helper never started the half; it is ours again.
        let here = job.as_job_ref();
        unsafe { (here.run)(here.data) };
    } else {
        wait_done(h);
        h.state.store(IDLE, Ordering::Release);
    }
    let rb = job.result.into_inner().expect("the half ran");
    match (ra, rb) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(p), _) | (_, Err(p)) => panic::resume_unwind(p),
    }
}

/// Waits until the helper has finished the posted half.
fn wait_done(h: &Helper) {
    let mut spins = 0u32;
    while h.state.load(Ordering::Acquire) != DONE {
        spins = spins.saturating_add(1);
        if spins < 1 << 14 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims the helper for this test, waiting while another test holds it.
    fn own() -> Owned {
        loop {
            if let Some(o) = claim() {
                return o;
            }
            thread::yield_now();
        }
    }

    #[test]
    fn halves_run_and_return_their_results() {
        let _owned = own();
        let mut left = vec![0u64; 1000];
        let mut right = vec![0u64; 1000];
        for round in 0..2000u64 {
            let (x, y) = join(
                || {
                    left.iter_mut().for_each(|v| *v += round);
                    round
                },
                || {
                    right.iter_mut().for_each(|v| *v += 2 * round);
                    2 * round
                },
            );
            assert_eq!((x, y), (round, 2 * round));
        }
        let total: u64 = (0..2000).sum();
        assert!(left.iter().all(|&v| v == total));
        assert!(right.iter().all(|&v| v == 2 * total));
    }

    /// The second half really runs on the helper when the first waits for
    /// it (up to 5 s, for a loaded machine; on one core the helper may never
    /// get a turn, so the check needs two).
    #[test]
    fn the_helper_takes_the_second_half() {
        if thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return;
        }
        let _owned = own();
        let started = AtomicBool::new(false);
        let (_, second) = join(
            || {
                let t = Instant::now();
                while !started.load(Ordering::Acquire) && t.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
            },
            || {
                started.store(true, Ordering::Release);
                thread::current().id()
            },
        );
        assert_ne!(second, thread::current().id(), "the owner ran both halves");
    }

    #[test]
    fn a_panicking_half_reaches_the_owner_and_the_helper_survives() {
        let _owned = own();
        let caught = panic::catch_unwind(|| join(|| 1, || -> u32 { panic!("second half fails") }));
        assert!(caught.is_err());
        assert_eq!(join(|| 1, || 2), (1, 2));
    }
}
