//! A plain row-major matrix of `f64`, the crate's exchange format.

use crate::{sizes, DataError};

/// A dense row-major `rows x cols` matrix of `f64`.
///
/// It is deliberately not a tensor: this crate stays independent of the
/// engine's `Tensor`, and the facade converts. The length invariant
/// `data.len() == rows * cols` is checked on construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps row-major `data` as a `rows x cols` matrix; fails if the length is wrong.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, DataError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(DataError::MatrixSize {
                rows,
                cols,
                len: data.len(),
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A `rows x cols` matrix of zeros; fails if `rows * cols` overflows or
    /// exceeds the engine's `MAX_ELEMENTS` (2^40), or if memory cannot hold
    /// it ([`DataError::OutOfMemory`]).
    pub fn zeros(rows: usize, cols: usize) -> Result<Self, DataError> {
        let len = sizes::matrix_len("Matrix::zeros", rows, cols)?;
        let mut data = sizes::with_capacity("Matrix::zeros", len)?;
        data.resize(len, 0.0);
        Ok(Matrix { rows, cols, data })
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The row-major values.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The row-major values, mutably (the length cannot change).
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Consumes the matrix and returns its row-major values.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Row `i` as a slice.
    ///
    /// # Panics
    /// If `i >= rows`.
    pub fn row(&self, i: usize) -> &[f64] {
        assert!(i < self.rows, "Matrix::row: row {i} of {}", self.rows);
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    ///
    /// # Panics
    /// If `i >= rows`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        assert!(i < self.rows, "Matrix::row_mut: row {i} of {}", self.rows);
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterates over the rows as slices.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f64]> {
        (0..self.rows).map(move |i| self.row(i))
    }

    /// A new matrix made of the given rows, in the given order (a mini-batch).
    ///
    /// # Panics
    /// If any index is `>= rows`.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// Places `right`'s columns after this matrix's columns; fails if the row counts differ.
    pub fn hstack(&self, right: &Matrix) -> Result<Matrix, DataError> {
        if self.rows != right.rows {
            return Err(DataError::InvalidArgument {
                function: "Matrix::hstack",
                argument: "right.rows",
                value: right.rows.to_string(),
                requirement: "equal to the left matrix's row count",
            });
        }
        let mut data = Vec::with_capacity(self.data.len() + right.data.len());
        for i in 0..self.rows {
            data.extend_from_slice(self.row(i));
            data.extend_from_slice(right.row(i));
        }
        Matrix::new(self.rows, self.cols + right.cols, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_length() {
        assert!(Matrix::new(2, 3, vec![0.0; 6]).is_ok());
        let err = Matrix::new(2, 3, vec![0.0; 5]).unwrap_err();
        assert!(err.to_string().contains("needs 6 values but 5"), "{err}");
        assert!(Matrix::new(usize::MAX, 2, vec![]).is_err());
    }

    #[test]
    fn rows_and_selection() {
        let m = Matrix::new(3, 2, vec![1., 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(m.row(1), &[3., 4.]);
        let s = m.select_rows(&[2, 0, 2]);
        assert_eq!(s.shape(), (3, 2));
        assert_eq!(s.data(), &[5., 6., 1., 2., 5., 6.]);
        assert_eq!(m.iter_rows().count(), 3);
        assert_eq!(Matrix::zeros(4, 0).unwrap().iter_rows().count(), 4);
        assert!(Matrix::zeros(1 << 32, 1 << 32).is_err());
    }

    #[test]
    fn hstack_joins_columns() {
        let a = Matrix::new(2, 1, vec![1., 2.]).unwrap();
        let b = Matrix::new(2, 2, vec![3., 4., 5., 6.]).unwrap();
        let c = a.hstack(&b).unwrap();
        assert_eq!(c.data(), &[1., 3., 4., 2., 5., 6.]);
        assert!(a.hstack(&Matrix::zeros(3, 1).unwrap()).is_err());
    }

    #[test]
    #[should_panic(expected = "row 3 of 3")]
    fn row_out_of_range_panics() {
        Matrix::zeros(3, 2).unwrap().row(3);
    }
}
