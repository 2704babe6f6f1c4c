//! Checked sizes and fallible allocation for the crate's own buffers (sample
//! orders, batches, matrices), so an absurd sample count is a typed
//! [`DataError`] and never an allocation abort. The limit is the engine's:
//! no tensor can hold more than [`MAX_ELEMENTS`] values, so no data meant
//! for one may either.

use crate::DataError;
use ferrograd_engine::MAX_ELEMENTS;

/// The requirement text of a count past [`MAX_ELEMENTS`].
const LIMIT: &str = "at most 2^40 = 1099511627776 (ferrograd_engine::MAX_ELEMENTS, the most one tensor may hold); \
                     use fewer samples or split the data";

/// `n` itself, or [`DataError::InvalidArgument`] naming `function` and
/// `argument` if it exceeds [`MAX_ELEMENTS`].
pub(crate) fn check_count(function: &'static str, argument: &'static str, n: usize) -> Result<usize, DataError> {
    if n > MAX_ELEMENTS {
        return Err(DataError::InvalidArgument {
            function,
            argument,
            value: n.to_string(),
            requirement: LIMIT,
        });
    }
    Ok(n)
}

/// `rows * cols` through the engine's one checked count, or
/// [`DataError::InvalidArgument`] if it overflows or exceeds [`MAX_ELEMENTS`].
pub(crate) fn matrix_len(function: &'static str, rows: usize, cols: usize) -> Result<usize, DataError> {
    ferrograd_engine::checked_numel(function, &[rows, cols]).map_err(|_| DataError::InvalidArgument {
        function,
        argument: "rows x cols",
        value: format!("{rows} x {cols}"),
        requirement: LIMIT,
    })
}

/// An empty vector with room for exactly `n` values, or
/// [`DataError::OutOfMemory`] naming `function` and the bytes asked for.
pub(crate) fn with_capacity<T>(function: &'static str, n: usize) -> Result<Vec<T>, DataError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| DataError::OutOfMemory {
        function,
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    })?;
    Ok(v)
}

/// `0..n` in a fallibly allocated buffer (the identity order a shuffle starts from).
pub(crate) fn identity(function: &'static str, n: usize) -> Result<Vec<usize>, DataError> {
    let mut order = with_capacity(function, n)?;
    order.extend(0..n);
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_past_the_engine_limit_are_named_errors() {
        assert_eq!(check_count("f", "n", MAX_ELEMENTS).unwrap(), MAX_ELEMENTS);
        let err = check_count("f", "n", MAX_ELEMENTS + 1).unwrap_err();
        assert!(err.to_string().contains("f: invalid n = 1099511627777"), "{err}");
        assert_eq!(matrix_len("m", 3, 4).unwrap(), 12);
        let err = matrix_len("m", 1 << 32, 1 << 32).unwrap_err();
        assert!(err.to_string().contains("4294967296 x 4294967296"), "{err}");
    }

    #[test]
    fn an_impossible_reservation_is_out_of_memory() {
        let err = with_capacity::<u64>("f", usize::MAX / 2).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::OutOfMemory {
                    function: "f",
                    bytes: usize::MAX
                }
            ),
            "{err:?}"
        );
        assert_eq!(identity("f", 4).unwrap(), vec![0, 1, 2, 3]);
    }
}
