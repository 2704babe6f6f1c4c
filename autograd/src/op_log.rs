//! Test-only: the kinds of the ops run on this thread while a log is open,
//! so that a test can assert how much work a pass does (for example, that a
//! backward pass runs one matrix product, not two).

use crate::op::OpKind;
use std::cell::RefCell;

thread_local! {
    static LOG: RefCell<Option<Vec<OpKind>>> = const { RefCell::new(None) };
}

/// Notes that an op of `kind` ran (recorded or not), if a log is open.
pub(crate) fn record(kind: OpKind) {
    LOG.with(|log| {
        if let Some(kinds) = log.borrow_mut().as_mut() {
            kinds.push(kind);
        }
    });
}

/// Runs `f` and returns its result with the kinds of the ops it ran, in order.
pub(crate) fn ops_run_by<R>(f: impl FnOnce() -> R) -> (R, Vec<OpKind>) {
    let outer = LOG.with(|log| log.replace(Some(Vec::new())));
    let result = f();
    let kinds = LOG.with(|log| log.replace(outer)).unwrap_or_default();
    // An enclosing log counts the ops run here as well.
    kinds.iter().for_each(|&kind| record(kind));
    (result, kinds)
}
