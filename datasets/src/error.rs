//! The crate's error type: every failure says what was wrong, where, and what to do.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while generating, loading or saving data.
///
/// Variants carry the place of the problem (file path, line number, byte
/// offset) so that a message alone is enough to find and fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A generator configuration field is out of range.
    #[error("invalid {config}.{field} = {value}: it must be {requirement}")]
    InvalidConfig {
        /// The configuration type, e.g. `RffConfig`.
        config: &'static str,
        /// The offending field.
        field: &'static str,
        /// The value that was given, as text.
        value: String,
        /// What the field must be.
        requirement: &'static str,
    },

    /// A function argument is out of range.
    #[error("{function}: invalid {argument} = {value}: it must be {requirement}")]
    InvalidArgument {
        /// The function that was called.
        function: &'static str,
        /// The offending argument.
        argument: &'static str,
        /// The value that was given, as text.
        value: String,
        /// What the argument must be.
        requirement: &'static str,
    },

    /// A matrix was built from a buffer of the wrong length.
    #[error(
        "a {rows} x {cols} matrix needs {} values but {len} were given; \
         pass rows * cols values in row-major order",
        product_text(&[*.rows, *.cols])
    )]
    MatrixSize {
        /// Requested number of rows.
        rows: usize,
        /// Requested number of columns.
        cols: usize,
        /// Length of the buffer that was given.
        len: usize,
    },

    /// An array was built from a buffer whose length does not match its shape.
    #[error(
        "an array of shape {shape:?} needs {} values but {len} were given",
        product_text(.shape)
    )]
    ArrayShape {
        /// Requested shape.
        shape: Vec<usize>,
        /// Length of the buffer that was given.
        len: usize,
    },

    /// Memory for a buffer (a sample order, batches, a matrix) could not be
    /// allocated: the request was within the engine's `MAX_ELEMENTS` but the
    /// machine cannot satisfy it.
    #[error("{function}: out of memory: {bytes} bytes could not be allocated; use fewer samples or free memory")]
    OutOfMemory {
        /// The function that was called.
        function: &'static str,
        /// The allocation asked for, in bytes (saturated at `usize::MAX`).
        bytes: usize,
    },

    /// Reading, writing or renaming a file failed at the operating-system level.
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done, e.g. "read" or "rename temporary file onto".
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A CSV file is malformed or does not fit the request.
    #[error("{}, line {line}: {problem}", .path.display())]
    Csv {
        /// The file (or `<text>` for in-memory input).
        path: PathBuf,
        /// 1-based line number of the problem (1 for file-level problems).
        line: usize,
        /// What is wrong.
        problem: CsvProblem,
    },

    /// Column names given to a CSV writer cannot be written.
    #[error("cannot write {}: {problem}", .path.display())]
    CsvWrite {
        /// The file that was to be written.
        path: PathBuf,
        /// What is wrong with the request.
        problem: String,
    },

    /// An NPY file or buffer is malformed or uses an unsupported feature.
    #[error("{}byte {offset}: {problem}", origin_text(.path.as_deref()))]
    Npy {
        /// The file, or `None` for bytes parsed from memory.
        path: Option<PathBuf>,
        /// Byte offset (from the start of the file) where the problem was found.
        offset: usize,
        /// What is wrong.
        problem: NpyProblem,
    },
}

/// What is wrong with a CSV file; see [`DataError::Csv`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvProblem {
    /// The `csv` crate could not split the text into records.
    #[error("the text is not valid CSV ({message}); check the quoting of this record")]
    Malformed {
        /// The `csv` crate's description.
        message: String,
    },
    /// The file has no non-blank line.
    #[error("the file is empty; it needs a header row of column names followed by data rows")]
    Empty,
    /// The file is not valid UTF-8.
    #[error("the text is not valid UTF-8; save the file as UTF-8 (or plain ASCII)")]
    NotUtf8,
    /// The first line looks like numbers rather than column names.
    #[error("the first line looks like data, not a header; add a header row of column names")]
    MissingHeader,
    /// A header field is empty.
    #[error("header column {index} has an empty name; give every column a name")]
    EmptyColumnName {
        /// 0-based column index.
        index: usize,
    },
    /// Two header fields have the same name.
    #[error("column name '{name}' appears more than once; column names must be unique")]
    DuplicateColumnName {
        /// The repeated name.
        name: String,
    },
    /// A target named by the caller is not in the header.
    #[error("unknown target column '{target}'; the header has: {available}")]
    UnknownTargetColumn {
        /// The requested target, as text.
        target: String,
        /// The column names in the header, comma separated.
        available: String,
    },
    /// A target index is past the last column.
    #[error(
        "target column index {index} is out of range; the file has {columns} columns (0-based indices 0..{columns})"
    )]
    TargetIndexOutOfRange {
        /// The requested index.
        index: usize,
        /// Number of columns in the header.
        columns: usize,
    },
    /// The same column was requested as a target twice.
    #[error("column '{name}' is selected as a target more than once")]
    DuplicateTarget {
        /// The repeated column name.
        name: String,
    },
    /// No target column was requested.
    #[error("no target columns were requested; pass at least one TargetColumn")]
    NoTargetColumns,
    /// Every column is a target, leaving no inputs.
    #[error("every column is a target, so there are no input columns; leave at least one column as input")]
    NoInputColumns,
    /// The file has a header but no data rows.
    #[error("the file has a header but no data rows")]
    NoDataRows,
    /// A data row has a different number of fields than the header.
    #[error("expected {expected} comma-separated fields (as in the header) but found {found}")]
    FieldCount {
        /// Number of header columns.
        expected: usize,
        /// Number of fields on this line.
        found: usize,
    },
    /// A field is not a number.
    #[error("column '{column}': value '{value}' is not a number; every column must be numeric")]
    NonNumeric {
        /// The column's header name.
        column: String,
        /// The offending text (shortened if long).
        value: String,
    },
}

/// What is wrong with NPY bytes; see [`DataError::Npy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyProblem {
    /// The buffer does not start with `\x93NUMPY`.
    #[error("bad magic: not an NPY file (it must start with \\x93NUMPY); save it with numpy.save")]
    BadMagic,
    /// The buffer ends inside the fixed preamble or the header.
    #[error("truncated: {what} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes actually available.
        available: usize,
    },
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported NPY format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are supported")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header is not valid text.
    #[error("the header is not valid text")]
    HeaderNotText,
    /// The header is not a Python dict literal of the expected form.
    #[error("header is not a dict literal: {detail}")]
    HeaderNotDict {
        /// What the parser expected or found.
        detail: String,
    },
    /// A required header key is absent.
    #[error("header dict has no '{key}' key")]
    MissingKey {
        /// The missing key.
        key: &'static str,
    },
    /// A header value has the wrong type.
    #[error("header key '{key}' must be {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// What the value must be.
        expected: &'static str,
    },
    /// The dtype is not little-endian float32 or float64.
    #[error(
        "unsupported dtype {descr}: only little-endian float32 ('<f4') and float64 ('<f8') are supported; \
         convert with arr.astype('<f8') before saving"
    )]
    UnsupportedDtype {
        /// The `descr` value as written in the header.
        descr: String,
    },
    /// The array is stored in Fortran (column-major) order.
    #[error(
        "fortran_order is True: only C-order arrays are supported; \
         save with numpy.save(path, numpy.ascontiguousarray(arr))"
    )]
    FortranOrder,
    /// The shape's element count or byte size overflows.
    #[error("shape {shape:?} is too large to address")]
    ShapeOverflow {
        /// The declared shape.
        shape: Vec<usize>,
    },
    /// The data section's length does not match the header's shape and dtype.
    #[error("data length mismatch: shape {shape:?} of {dtype} needs {expected} bytes but the file has {found}")]
    DataLength {
        /// The declared shape.
        shape: Vec<usize>,
        /// The dtype, `<f4` or `<f8`.
        dtype: &'static str,
        /// Bytes the header implies.
        expected: usize,
        /// Bytes present after the header.
        found: usize,
    },
}

/// The product of `dims` as text, or a note that it overflows.
fn product_text(dims: &[usize]) -> String {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
}

/// `"<path>: "` for a file, empty for in-memory bytes.
fn origin_text(path: Option<&Path>) -> String {
    path.map_or_else(String::new, |p| format!("{}: ", p.display()))
}

impl DataError {
    /// Attaches a file path to an NPY error that was raised while parsing bytes.
    pub(crate) fn with_npy_path(self, file: &Path) -> Self {
        match self {
            DataError::Npy {
                path: None,
                offset,
                problem,
            } => DataError::Npy {
                path: Some(file.to_path_buf()),
                offset,
                problem,
            },
            other => other,
        }
    }

    /// An I/O error on `path` while doing `action`.
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}
