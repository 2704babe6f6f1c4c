//! The one fallible allocator for tensor buffers: every op whose output can
//! be larger than its inputs (creation, broadcasting, padding, concat,
//! matmul, indexing) asks it for memory, so a request the machine cannot
//! satisfy is an [`Error::OutOfMemory`] instead of an abort. Counts reach
//! it already checked by [`crate::checked_numel`]; this module only turns a
//! failed reservation into an error.
//!
//! Ops whose output is the size of an input that already exists (unary
//! maps, same-shape binary ops, reductions, casts) allocate as `Vec` does.

use crate::{Error, Result};

/// An empty vector with room for exactly `n` values of `T`, or
/// [`Error::OutOfMemory`] naming `op` and the bytes asked for.
pub(crate) fn with_capacity<T>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        op,
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    })?;
    Ok(v)
}

/// `n` copies of `value`, allocated through [`with_capacity`].
pub(crate) fn filled<T: Clone>(op: &'static str, n: usize, value: T) -> Result<Vec<T>> {
    let mut v = with_capacity(op, n)?;
    v.resize(n, value);
    Ok(v)
}

/// The values of `iter`, which yields `n` of them, in one buffer allocated
/// through [`with_capacity`] (no growth while collecting).
pub(crate) fn collect<T>(op: &'static str, n: usize, iter: impl IntoIterator<Item = T>) -> Result<Vec<T>> {
    let mut v = with_capacity(op, n)?;
    v.extend(iter);
    debug_assert_eq!(v.len(), n, "{op}: the iterator yielded a different count");
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_past_the_address_space_is_an_error_naming_the_bytes() {
        // usize::MAX / 2 f64 values is more bytes than any address space:
        // the reservation fails before the allocator is even called.
        let err = with_capacity::<f64>("t", usize::MAX / 2).unwrap_err();
        assert_eq!(
            err,
            Error::OutOfMemory {
                op: "t",
                bytes: usize::MAX
            }
        );
        assert!(err.to_string().contains("out of host memory"), "{err}");
        assert!(filled("t", usize::MAX / 4, 0.0f32).is_err());
    }

    #[test]
    fn small_requests_are_exact() {
        let v = filled("t", 5, 1.5f64).unwrap();
        assert_eq!(v.len(), 5);
        assert!(v.iter().all(|&x| x == 1.5));
        let c = collect("t", 4, (0..4).map(|i| i * 2)).unwrap();
        assert_eq!(c, vec![0, 2, 4, 6]);
        assert!(with_capacity::<u8>("t", 0).unwrap().is_empty());
    }
}
