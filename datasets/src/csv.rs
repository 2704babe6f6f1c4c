//! Numeric CSV files with a header row.
//!
//! Records are split by the `csv` crate (RFC 4180: comma-separated, `\n` or
//! `\r\n` line ends, double-quoted fields that may hold commas, line breaks
//! and doubled `""` quotes); blank lines are ignored, and surrounding
//! whitespace and one pair of surrounding double quotes are stripped from each
//! field. Every column must be numeric (anything Rust's `f64` parser accepts,
//! including `NaN` and `inf`). Errors name the line where the record starts.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use crate::error::CsvProblem;
use crate::{atomic, DataError, Matrix};

/// Selects a target column by header name or by 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetColumn {
    /// The column whose header is exactly this name.
    Name(String),
    /// The column at this 0-based position.
    Index(usize),
}

impl From<&str> for TargetColumn {
    fn from(name: &str) -> Self {
        TargetColumn::Name(name.to_string())
    }
}

impl From<String> for TargetColumn {
    fn from(name: String) -> Self {
        TargetColumn::Name(name)
    }
}

impl From<usize> for TargetColumn {
    fn from(index: usize) -> Self {
        TargetColumn::Index(index)
    }
}

impl fmt::Display for TargetColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetColumn::Name(name) => write!(f, "{name}"),
            TargetColumn::Index(index) => write!(f, "#{index}"),
        }
    }
}

/// A loaded CSV file split into input and target columns (file order kept within each).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Header names of the input columns.
    pub input_names: Vec<String>,
    /// Header names of the target columns, in the order they were requested.
    pub target_names: Vec<String>,
    /// `rows x input_names.len()`.
    pub inputs: Matrix,
    /// `rows x target_names.len()`.
    pub targets: Matrix,
}

impl Table {
    /// Writes the table as CSV: input columns first, then target columns.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        let joined = self.inputs.hstack(&self.targets)?;
        let names: Vec<&str> = self
            .input_names
            .iter()
            .chain(&self.target_names)
            .map(String::as_str)
            .collect();
        write_csv(path, &names, &joined)
    }
}

/// Loads a numeric CSV file with a header row, splitting off the target columns.
///
/// Errors name the file and line and say what was wrong: empty file, missing
/// header, wrong field count, a non-numeric value (with its column name), an
/// unknown target column, or no input columns left.
pub fn load_csv(path: impl AsRef<Path>, target_columns: &[TargetColumn]) -> Result<Table, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "read", e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        csv_error(path, line, CsvProblem::NotUtf8)
    })?;
    parse(&text, path, target_columns)
}

/// Parses CSV text as [`load_csv`] does; errors name the source as `<text>`.
pub fn parse_csv(text: &str, target_columns: &[TargetColumn]) -> Result<Table, DataError> {
    parse(text, Path::new("<text>"), target_columns)
}

/// Writes `data` as CSV with a header of `column_names`, atomically.
///
/// Values are written in Rust's shortest round-trip form, so [`load_csv`]
/// reads back bit-identical numbers (a matrix with no rows gives a header-only
/// file, which `load_csv` rejects). Names must be unique, non-empty and contain
/// no commas, quotes or line breaks.
pub fn write_csv<S: AsRef<str>>(path: impl AsRef<Path>, column_names: &[S], data: &Matrix) -> Result<(), DataError> {
    let path = path.as_ref();
    check_names_for_writing(path, column_names, data.cols())?;
    let names: Vec<&str> = column_names.iter().map(AsRef::as_ref).collect();
    let mut text = names.join(",");
    text.push('\n');
    for row in data.iter_rows() {
        let fields: Vec<String> = row.iter().map(f64::to_string).collect();
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    atomic::write_atomic(path, text.as_bytes())
}

/// Checks that `names` can be written as a header for `cols` columns and read back.
fn check_names_for_writing<S: AsRef<str>>(path: &Path, names: &[S], cols: usize) -> Result<(), DataError> {
    let fail = |problem: String| {
        Err(DataError::CsvWrite {
            path: path.to_path_buf(),
            problem,
        })
    };
    if names.len() != cols {
        return fail(format!(
            "{} column names for {cols} columns; give one name per column",
            names.len()
        ));
    }
    let mut seen = HashSet::new();
    for name in names.iter().map(AsRef::as_ref) {
        if name.trim().is_empty() || name.trim() != name {
            return fail(format!("column name '{name}' is empty or has surrounding spaces"));
        }
        if name.contains([',', '"', '\n', '\r']) {
            return fail(format!("column name '{name}' contains a comma, quote or line break"));
        }
        if !seen.insert(name) {
            return fail(format!("column name '{name}' appears more than once"));
        }
    }
    Ok(())
}

/// A [`DataError::Csv`] at `line` of `path`.
fn csv_error(path: &Path, line: usize, problem: CsvProblem) -> DataError {
    DataError::Csv {
        path: path.to_path_buf(),
        line,
        problem,
    }
}

/// A record's cleaned fields and the 1-based line it starts on.
type Record = (usize, Vec<String>);

/// The non-blank records of `text` (read from `path`), split by the `csv` crate.
fn records<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<Record, DataError>> + 'a {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text);
    reader.into_records().filter_map(move |record| {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = lines.at(e.position().map_or(0, |p| p.byte()));
                return Some(Err(csv_error(
                    path,
                    line,
                    CsvProblem::Malformed { message: e.to_string() },
                )));
            }
        };
        let line = lines.at(record.position().map_or(0, |p| p.byte()));
        let fields: Vec<String> = record.iter().map(|f| clean_field(f).to_string()).collect();
        let blank = fields.len() == 1 && record[0].trim().is_empty();
        (!blank).then_some(Ok((line, fields)))
    })
}

/// 1-based line numbers of byte offsets, for offsets that never decrease.
/// (The `csv` crate's own line count skips blank lines, so the lines are
/// counted here from its byte offsets.)
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `offset` that is not a line
    /// break (the `csv` crate reports a record after blank lines at the
    /// first blank line).
    fn at(&mut self, offset: u64) -> usize {
        let mut offset = (offset as usize).clamp(self.offset, self.text.len());
        while matches!(self.text.get(offset), Some(b'\n' | b'\r')) {
            offset += 1;
        }
        self.line += self.text[self.offset..offset].iter().filter(|&&b| b == b'\n').count();
        self.offset = offset;
        self.line
    }
}

/// A field with surrounding whitespace and one pair of double quotes removed.
fn clean_field(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(field, str::trim)
}

/// Parses `text` (read from `path`) into a [`Table`].
fn parse(text: &str, path: &Path, target_columns: &[TargetColumn]) -> Result<Table, DataError> {
    let mut lines = records(text, path);
    let (header_line, header) = lines.next().ok_or_else(|| csv_error(path, 1, CsvProblem::Empty))??;
    let names = parse_header(header).map_err(|p| csv_error(path, header_line, p))?;
    let layout = ColumnLayout::new(&names, target_columns).map_err(|p| csv_error(path, header_line, p))?;
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    let mut rows = 0usize;
    for record in lines {
        let (line_no, fields) = record?;
        let values = parse_row(&fields, &names).map_err(|p| csv_error(path, line_no, p))?;
        inputs.extend(layout.inputs.iter().map(|&c| values[c]));
        targets.extend(layout.targets.iter().map(|&c| values[c]));
        rows += 1;
    }
    if rows == 0 {
        return Err(csv_error(path, header_line, CsvProblem::NoDataRows));
    }
    Ok(Table {
        input_names: layout.inputs.iter().map(|&c| names[c].clone()).collect(),
        target_names: layout.targets.iter().map(|&c| names[c].clone()).collect(),
        inputs: Matrix::new(rows, layout.inputs.len(), inputs)?,
        targets: Matrix::new(rows, layout.targets.len(), targets)?,
    })
}

/// Splits and checks the header: non-empty unique names that are not all numbers.
fn parse_header(names: Vec<String>) -> Result<Vec<String>, CsvProblem> {
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(CsvProblem::MissingHeader);
    }
    let mut seen = HashSet::new();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(CsvProblem::EmptyColumnName { index });
        }
        if !seen.insert(name.as_str()) {
            return Err(CsvProblem::DuplicateColumnName { name: name.clone() });
        }
    }
    Ok(names)
}

/// Parses one record's fields into numbers, one per header column.
fn parse_row(fields: &[String], names: &[String]) -> Result<Vec<f64>, CsvProblem> {
    if fields.len() != names.len() {
        return Err(CsvProblem::FieldCount {
            expected: names.len(),
            found: fields.len(),
        });
    }
    let parse_one = |(value, name): (&String, &String)| {
        value.parse::<f64>().map_err(|_| CsvProblem::NonNumeric {
            column: name.clone(),
            value: shorten(value),
        })
    };
    fields.iter().zip(names).map(parse_one).collect()
}

/// `text`, cut to at most 40 characters for use in a message.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Which header columns are inputs and which are targets.
struct ColumnLayout {
    inputs: Vec<usize>,
    targets: Vec<usize>,
}

impl ColumnLayout {
    /// Resolves the requested targets against the header; the rest are inputs.
    fn new(names: &[String], requested: &[TargetColumn]) -> Result<Self, CsvProblem> {
        if requested.is_empty() {
            return Err(CsvProblem::NoTargetColumns);
        }
        let mut targets = Vec::with_capacity(requested.len());
        for target in requested {
            let column = resolve(names, target)?;
            if targets.contains(&column) {
                let name = names[column].clone();
                return Err(CsvProblem::DuplicateTarget { name });
            }
            targets.push(column);
        }
        let inputs: Vec<usize> = (0..names.len()).filter(|c| !targets.contains(c)).collect();
        if inputs.is_empty() {
            return Err(CsvProblem::NoInputColumns);
        }
        Ok(ColumnLayout { inputs, targets })
    }
}

/// The 0-based column index of `target`.
fn resolve(names: &[String], target: &TargetColumn) -> Result<usize, CsvProblem> {
    match target {
        TargetColumn::Index(index) if *index < names.len() => Ok(*index),
        TargetColumn::Index(index) => Err(CsvProblem::TargetIndexOutOfRange {
            index: *index,
            columns: names.len(),
        }),
        TargetColumn::Name(name) => {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| CsvProblem::UnknownTargetColumn {
                    target: name.clone(),
                    available: names.join(", "),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(names: &[&str]) -> Vec<TargetColumn> {
        names.iter().map(|&n| n.into()).collect()
    }

    #[test]
    fn parses_names_quotes_blank_lines_and_crlf() {
        let text = "\"x1\", x2 ,y\r\n1,2,3\r\n\r\n4,\"5\",6e0\r\n";
        let t = parse_csv(text, &targets(&["y"])).unwrap();
        assert_eq!(t.input_names, ["x1", "x2"]);
        assert_eq!(t.target_names, ["y"]);
        assert_eq!(t.inputs.data(), &[1., 2., 4., 5.]);
        assert_eq!(t.targets.data(), &[3., 6.]);
    }

    #[test]
    fn targets_by_index_keep_requested_order() {
        let t = parse_csv("a,b,c\n1,2,3\n", &[2.into(), 0.into()]).unwrap();
        assert_eq!(t.target_names, ["c", "a"]);
        assert_eq!(t.targets.data(), &[3., 1.]);
        assert_eq!(t.inputs.data(), &[2.]);
    }

    #[test]
    fn header_problems() {
        let err = |text: &str| parse_csv(text, &targets(&["y"])).unwrap_err().to_string();
        assert!(err("1,2\n3,4\n").contains("looks like data"));
        assert!(err("x,,y\n1,2,3\n").contains("empty name"));
        assert!(err("x,x,y\n1,2,3\n").contains("more than once"));
        assert!(err("x,y\n").contains("no data rows"));
        assert!(err("  \n\n").contains("line 1: the file is empty"));
    }

    #[test]
    fn target_selection_problems() {
        let err = |t: &[TargetColumn]| parse_csv("x,y\n1,2\n", t).unwrap_err().to_string();
        assert!(err(&[]).contains("no target columns"));
        assert!(err(&[5.into()]).contains("index 5 is out of range"));
        assert!(err(&["y".into(), 1.into()]).contains("'y' is selected as a target more than once"));
        assert!(err(&["x".into(), "y".into()]).contains("no input columns"));
    }

    #[test]
    fn quoted_fields_may_hold_commas_line_breaks_and_quotes() {
        // RFC 4180: the quoted header names keep their comma, line break and
        // doubled quote; the error for the last record names line 5, where
        // the record starts, though an earlier record spans two lines.
        let text = "\"a,b\",\"c\nd\",\"e\"\"f\"\n1,2,3\n\"4\",5,\"6\"\n7,8,x\n";
        let t = parse_csv(&text[..text.len() - 6], &targets(&["e\"f"])).unwrap();
        assert_eq!(t.input_names, ["a,b", "c\nd"]);
        assert_eq!(t.inputs.data(), &[1., 2., 4., 5.]);
        assert_eq!(t.targets.data(), &[3., 6.]);
        let err = parse_csv(text, &targets(&["e\"f"])).unwrap_err().to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("'x'"), "{err}");
    }

    #[test]
    fn shorten_cuts_long_values() {
        assert_eq!(shorten("abc"), "abc");
        assert_eq!(shorten(&"é".repeat(50)).chars().count(), 43);
    }
}
