//! NumPy `.npy` files: little-endian `float32` / `float64`, C order, any rank.
//!
//! Reads format versions 1.0, 2.0 and 3.0; writes 1.0 (2.0 only when the
//! header would not fit 1.0's 16-bit length). Parsing never panics and never
//! allocates more than the input's length: the header's shape is checked
//! against the bytes actually present before any data buffer is made.
//!
//! Why not the `npyz` crate (issue 28, measured with npyz 0.9.1 and no
//! default features): it pulls 27 crates (a `pest` grammar for the header)
//! against none here, and its errors carry neither the file nor a byte offset
//! nor the sizes involved: a header promising 2^40 doubles over 8 bytes of
//! data is "failed to fill whole buffer" there, and "byte 128: data length
//! mismatch: shape \[1099511627776\] of <f8 needs 8796093022208 bytes but the
//! file has 8" here; an unsupported dtype is "invalid type string" there and
//! names the dtype and the `astype` fix here. What it would add (other
//! dtypes, big-endian and Fortran-order arrays, `.npz`) ferrograd does not
//! load: its tensors are f32/f64. The byte casts are `bytemuck`'s
//! (`ferrograd_engine::bytes`); the header parser stays, under the fuzzers.

use ferrograd_engine::bytes;
use std::path::Path;

use crate::error::NpyProblem;
use crate::{atomic, DataError, Matrix};

/// The 6-byte magic string every NPY file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Header text blocks are padded so that the data starts on this alignment.
const ALIGN: usize = 64;

/// Deepest tuple/list nesting accepted in a header (real headers use 1).
const MAX_DEPTH: usize = 16;

/// The element values of an [`NpyArray`], in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4` values.
    F32(Vec<f32>),
    /// `<f8` values.
    F64(Vec<f64>),
}

impl NpyData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NPY dtype string: `<f4` or `<f8`.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
        }
    }
}

/// An n-dimensional array as stored in an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    shape: Vec<usize>,
    data: NpyData,
}

impl NpyArray {
    /// An array of `shape` holding `data` in C order; fails if the element
    /// count does not match the shape (an empty shape is a 0-d array of one value).
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<Self, DataError> {
        if element_count(&shape) != Some(data.len()) {
            let len = data.len();
            return Err(DataError::ArrayShape { shape, len });
        }
        Ok(NpyArray { shape, data })
    }

    /// The dimensions (empty for a 0-d array).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, in C order.
    pub fn data(&self) -> &NpyData {
        &self.data
    }

    /// Consumes the array, returning its shape and values.
    pub fn into_parts(self) -> (Vec<usize>, NpyData) {
        (self.shape, self.data)
    }

    /// The values widened to `f64`, in C order.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
        }
    }

    /// Parses a complete `.npy` file held in memory.
    ///
    /// Errors are [`DataError::Npy`] with the byte offset of the problem.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DataError> {
        let preamble = read_preamble(bytes)?;
        let header = read_header_dict(bytes, &preamble)?;
        let data_start = preamble.header_start + preamble.header_len;
        let data = decode_data(&bytes[data_start..], data_start, &header)?;
        Ok(NpyArray {
            shape: header.shape,
            data,
        })
    }

    /// Serialises the array as a version 1.0 `.npy` file (2.0 if the header is huge).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header_bytes(self.data.descr(), &self.shape);
        match &self.data {
            NpyData::F32(v) => out.extend_from_slice(&bytes::to_le_bytes(v)),
            NpyData::F64(v) => out.extend_from_slice(&bytes::to_le_bytes(v)),
        }
        out
    }
}

impl From<&Matrix> for NpyArray {
    /// A 2-D `<f8` array with the matrix's shape and values.
    fn from(m: &Matrix) -> Self {
        NpyArray {
            shape: vec![m.rows(), m.cols()],
            data: NpyData::F64(m.data().to_vec()),
        }
    }
}

/// Reads an `.npy` file; errors carry the path and byte offset.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "read", e))?;
    NpyArray::from_bytes(&bytes).map_err(|e| e.with_npy_path(path))
}

/// Writes `array` as an `.npy` file atomically (temporary file, then rename).
pub fn write_npy(path: impl AsRef<Path>, array: &NpyArray) -> Result<(), DataError> {
    atomic::write_atomic(path.as_ref(), &array.to_bytes())
}

/// Number of elements for `shape`, or `None` on overflow.
fn element_count(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// An NPY error at `offset` of in-memory bytes (the path is attached later).
fn npy_error(offset: usize, problem: NpyProblem) -> DataError {
    DataError::Npy {
        path: None,
        offset,
        problem,
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Where the header text lies.
struct Preamble {
    header_start: usize,
    header_len: usize,
}

/// Checks magic and version and reads the header length, bounds-checked.
fn read_preamble(bytes: &[u8]) -> Result<Preamble, DataError> {
    check_magic(bytes)?;
    let version = take(bytes, 6, 2, "the version bytes")?;
    let len_width = match (version[0], version[1]) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        (major, minor) => {
            return Err(npy_error(6, NpyProblem::UnsupportedVersion { major, minor }));
        }
    };
    let len_bytes = take(bytes, 8, len_width, "the header length")?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let header_start = 8 + len_width;
    take(bytes, header_start, header_len, "the header")?;
    Ok(Preamble {
        header_start,
        header_len,
    })
}

/// Fails unless `bytes` starts with the NPY magic string.
fn check_magic(bytes: &[u8]) -> Result<(), DataError> {
    let mismatch = MAGIC.iter().zip(bytes).position(|(m, b)| m != b);
    match mismatch {
        Some(offset) => Err(npy_error(offset, NpyProblem::BadMagic)),
        None => take(bytes, 0, MAGIC.len(), "the magic string").map(drop),
    }
}

/// `bytes[offset..offset + len]`, or a `Truncated` error naming `what`.
fn take<'a>(bytes: &'a [u8], offset: usize, len: usize, what: &'static str) -> Result<&'a [u8], DataError> {
    let available = bytes.len().saturating_sub(offset);
    if len > available {
        let problem = NpyProblem::Truncated {
            what,
            needed: len,
            available,
        };
        return Err(npy_error(offset, problem));
    }
    Ok(&bytes[offset..offset + len])
}

/// What the header dict says about the array.
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
}

/// The supported element types.
#[derive(Clone, Copy)]
enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }
}

/// Parses the header text and extracts dtype, order and shape.
fn read_header_dict(bytes: &[u8], preamble: &Preamble) -> Result<Header, DataError> {
    let start = preamble.header_start;
    let raw = &bytes[start..start + preamble.header_len];
    let text = std::str::from_utf8(raw).map_err(|e| npy_error(start + e.valid_up_to(), NpyProblem::HeaderNotText))?;
    let entries = HeaderParser::new(text, start).parse_dict()?;
    let dtype = dtype_entry(lookup(&entries, "descr", start)?)?;
    fortran_entry(lookup(&entries, "fortran_order", start)?)?;
    let shape = shape_entry(lookup(&entries, "shape", start)?)?;
    Ok(Header { dtype, shape })
}

/// The entry for `key`, or a `MissingKey` error at the header start.
fn lookup<'a>(entries: &'a [Entry], key: &'static str, header_start: usize) -> Result<&'a Entry, DataError> {
    entries
        .iter()
        .find(|e| e.key == key)
        .ok_or_else(|| npy_error(header_start, NpyProblem::MissingKey { key }))
}

/// `descr` must be `'<f4'` or `'<f8'`.
fn dtype_entry(entry: &Entry) -> Result<Dtype, DataError> {
    match &entry.value {
        Value::Str(s) if s == "<f4" => Ok(Dtype::F32),
        Value::Str(s) if s == "<f8" => Ok(Dtype::F64),
        Value::Str(s) => Err(unsupported_dtype(entry.offset, format!("'{s}'"))),
        _ => Err(unsupported_dtype(entry.offset, "a structured (record) dtype".into())),
    }
}

fn unsupported_dtype(offset: usize, descr: String) -> DataError {
    npy_error(offset, NpyProblem::UnsupportedDtype { descr })
}

/// `fortran_order` must be `False`.
fn fortran_entry(entry: &Entry) -> Result<(), DataError> {
    match entry.value {
        Value::Bool(false) => Ok(()),
        Value::Bool(true) => Err(npy_error(entry.offset, NpyProblem::FortranOrder)),
        _ => Err(bad_value(entry, "fortran_order", "True or False")),
    }
}

/// `shape` must be a tuple of non-negative integers.
fn shape_entry(entry: &Entry) -> Result<Vec<usize>, DataError> {
    let bad = || bad_value(entry, "shape", "a tuple of non-negative integers");
    let Value::Tuple(items) = &entry.value else {
        return Err(bad());
    };
    items
        .iter()
        .map(|item| match item {
            Value::Int(n) => Ok(*n),
            _ => Err(bad()),
        })
        .collect()
}

/// A `BadValue` error for `key` at the entry's value.
fn bad_value(entry: &Entry, key: &'static str, expected: &'static str) -> DataError {
    npy_error(entry.offset, NpyProblem::BadValue { key, expected })
}

/// Decodes the data section, after checking its length against the header.
fn decode_data(data: &[u8], offset: usize, header: &Header) -> Result<NpyData, DataError> {
    let overflow = || {
        npy_error(
            offset,
            NpyProblem::ShapeOverflow {
                shape: header.shape.clone(),
            },
        )
    };
    let count = element_count(&header.shape).ok_or_else(overflow)?;
    let expected = count.checked_mul(header.dtype.size()).ok_or_else(overflow)?;
    if expected != data.len() {
        let problem = NpyProblem::DataLength {
            shape: header.shape.clone(),
            dtype: header.dtype.descr(),
            expected,
            found: data.len(),
        };
        return Err(npy_error(offset, problem));
    }
    Ok(match header.dtype {
        Dtype::F32 => NpyData::F32(bytes::from_le_bytes(data).expect("length checked above")),
        Dtype::F64 => NpyData::F64(bytes::from_le_bytes(data).expect("length checked above")),
    })
}

// ---------------------------------------------------------------------------
// The header's Python-literal parser
// ---------------------------------------------------------------------------

/// A Python literal as it can appear in an NPY header.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    None,
    Int(usize),
    NegInt,
    Tuple(Vec<Value>),
    /// A list (only ever seen in structured dtypes, which are rejected).
    List,
}

/// One `key: value` pair of the header dict, with the value's byte offset.
struct Entry {
    key: String,
    value: Value,
    offset: usize,
}

/// A recursive-descent parser for the header dict, with a nesting limit.
struct HeaderParser<'a> {
    text: &'a [u8],
    pos: usize,
    base: usize,
    depth: usize,
}

impl<'a> HeaderParser<'a> {
    /// A parser over `text`, which starts at byte `base` of the file.
    fn new(text: &'a str, base: usize) -> Self {
        HeaderParser {
            text: text.as_bytes(),
            pos: 0,
            base,
            depth: 0,
        }
    }

    /// A `HeaderNotDict` error at the current position.
    fn fail(&self, detail: impl Into<String>) -> DataError {
        let detail = detail.into();
        npy_error(self.base + self.pos, NpyProblem::HeaderNotDict { detail })
    }

    fn skip_space(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    /// The next non-space byte, without consuming it.
    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.pos).copied()
    }

    /// Consumes `byte` (after spaces) or fails.
    fn expect(&mut self, byte: u8) -> Result<(), DataError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(self.fail(format!("expected '{}' but found '{}'", byte as char, b as char))),
            None => Err(self.fail(format!("expected '{}' but the header ended", byte as char))),
        }
    }

    /// Parses `{ 'key': value, ... }` followed only by whitespace.
    fn parse_dict(&mut self) -> Result<Vec<Entry>, DataError> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        while self.peek() != Some(b'}') {
            let key = match self.parse_value()? {
                Value::Str(key) => key,
                _ => return Err(self.fail("dict keys must be strings")),
            };
            self.expect(b':')?;
            let offset = self.base + self.pos;
            let value = self.parse_value()?;
            entries.push(Entry { key, value, offset });
            if self.peek() != Some(b'}') {
                self.expect(b',')?;
            }
        }
        self.expect(b'}')?;
        match self.peek() {
            None => Ok(entries),
            Some(_) => Err(self.fail("unexpected text after the closing '}'")),
        }
    }

    /// Parses one literal: string, integer, True/False/None, tuple or list.
    fn parse_value(&mut self) -> Result<Value, DataError> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.parse_str(q),
            Some(b'(') => self.parse_sequence(b')').map(Value::Tuple),
            Some(b'[') => self.parse_sequence(b']').map(|_| Value::List),
            Some(b'0'..=b'9') => self.parse_int(),
            Some(b'-') => {
                self.pos += 1;
                self.parse_int().map(|_| Value::NegInt)
            }
            Some(b) if b.is_ascii_alphabetic() => self.parse_word(),
            Some(b) => Err(self.fail(format!("unexpected character '{}'", b as char))),
            None => Err(self.fail("expected a value but the header ended")),
        }
    }

    /// A quoted string (backslash escapes keep the next character as is).
    fn parse_str(&mut self, quote: u8) -> Result<Value, DataError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.text.get(self.pos).copied() {
                None => return Err(self.fail("unterminated string")),
                Some(b) if b == quote => break,
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.text.get(self.pos).copied();
                    out.push(escaped.ok_or_else(|| self.fail("unterminated string"))?);
                }
                Some(b) => out.push(b),
            }
            self.pos += 1;
        }
        self.pos += 1;
        // Escapes may split a multi-byte character; such text is never a valid key or dtype.
        Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()))
    }

    /// A decimal integer, with Python 2's optional `L` suffix.
    fn parse_int(&mut self) -> Result<Value, DataError> {
        let start = self.pos;
        let mut n = 0usize;
        while let Some(d @ b'0'..=b'9') = self.text.get(self.pos).copied() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
                .ok_or_else(|| self.fail("integer too large"))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.fail("expected digits"));
        }
        if self.text.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        Ok(Value::Int(n))
    }

    /// `True`, `False` or `None`.
    fn parse_word(&mut self) -> Result<Value, DataError> {
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
            self.pos += 1;
        }
        match &self.text[start..self.pos] {
            b"True" => Ok(Value::Bool(true)),
            b"False" => Ok(Value::Bool(false)),
            b"None" => Ok(Value::None),
            word => {
                self.pos = start;
                let word = String::from_utf8_lossy(word);
                Err(self.fail(format!("unknown name '{word}'")))
            }
        }
    }

    /// Comma-separated values up to `close` (a trailing comma is allowed).
    fn parse_sequence(&mut self, close: u8) -> Result<Vec<Value>, DataError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail("values are nested too deeply"));
        }
        self.depth += 1;
        self.pos += 1;
        let mut items = Vec::new();
        while self.peek() != Some(close) {
            items.push(self.parse_value()?);
            if self.peek() != Some(close) {
                self.expect(b',')?;
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(items)
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// The magic, version, length and padded header dict for `descr` and `shape`.
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let padded_len = |preamble: usize| {
        let unpadded = preamble + dict.len() + 1;
        dict.len() + 1 + (ALIGN - unpadded % ALIGN) % ALIGN
    };
    let fits_v1 = padded_len(10) <= usize::from(u16::MAX);
    let (version, len_width) = if fits_v1 { (1u8, 2) } else { (2u8, 4) };
    let preamble = MAGIC.len() + 2 + len_width;
    let header_len = padded_len(preamble);
    let mut out = Vec::with_capacity(preamble + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&(header_len as u32).to_le_bytes()[..len_width]);
    out.extend_from_slice(dict.as_bytes());
    out.resize(preamble + header_len - 1, b' ');
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_array(shape: &[usize]) -> NpyArray {
        let n = element_count(shape).unwrap();
        let data = (0..n).map(|i| i as f64 * 0.5 - 1.0).collect();
        NpyArray::new(shape.to_vec(), NpyData::F64(data)).unwrap()
    }

    #[test]
    fn header_is_aligned_and_numpy_shaped() {
        for shape in [&[][..], &[3], &[2, 3], &[0, 4, 1]] {
            let bytes = f64_array(shape).to_bytes();
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(bytes[10 + header_len - 1], b'\n');
        }
        let text = String::from_utf8_lossy(&f64_array(&[3]).to_bytes()[10..]).into_owned();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"));
        let text = String::from_utf8_lossy(&f64_array(&[]).to_bytes()[10..]).into_owned();
        assert!(text.contains("'shape': (), }"));
    }

    #[test]
    fn parser_accepts_numpy_variants() {
        let entries = HeaderParser::new("{\"descr\":\"<f4\",'shape':(2L, 3,),'fortran_order':False}  \n", 10)
            .parse_dict()
            .unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].value, Value::Tuple(vec![Value::Int(2), Value::Int(3)]));
    }

    #[test]
    fn parser_limits_nesting() {
        let text = format!("{{'shape': {}}}", "(".repeat(10_000));
        let err = HeaderParser::new(&text, 10).parse_dict().err().unwrap();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
    }

    #[test]
    fn new_checks_shape() {
        assert!(NpyArray::new(vec![2, 2], NpyData::F32(vec![0.0; 3])).is_err());
        assert!(NpyArray::new(vec![], NpyData::F32(vec![1.0])).is_ok());
        assert!(NpyArray::new(vec![usize::MAX, 2], NpyData::F32(vec![])).is_err());
    }

    #[test]
    fn huge_headers_switch_to_version_2() {
        let shape = vec![1usize; 30_000];
        let bytes = f64_array(&shape).to_bytes();
        assert_eq!(bytes[6], 2);
        assert_eq!(NpyArray::from_bytes(&bytes).unwrap().shape(), &shape[..]);
    }
}
