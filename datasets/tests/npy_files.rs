//! NPY reading and writing: round trips and malformed input.

mod common;

use common::TempDir;
use ferrograd_datasets::{read_npy, write_npy, DataError, Matrix, NpyArray, NpyData, NpyProblem};

fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn f64_array(shape: &[usize]) -> NpyArray {
    let data = (0..count(shape)).map(|i| (i as f64).sin() * 1e3).collect();
    NpyArray::new(shape.to_vec(), NpyData::F64(data)).unwrap()
}

fn f32_array(shape: &[usize]) -> NpyArray {
    let data = (0..count(shape)).map(|i| i as f32 / 7.0 - 3.0).collect();
    NpyArray::new(shape.to_vec(), NpyData::F32(data)).unwrap()
}

const SHAPES: [&[usize]; 6] = [&[], &[5], &[3, 4], &[2, 3, 4], &[0], &[2, 0, 3]];

#[test]
fn round_trip_f32_and_f64_of_several_ranks() {
    let dir = TempDir::new("npy-rt");
    for (i, shape) in SHAPES.iter().enumerate() {
        for array in [f64_array(shape), f32_array(shape)] {
            let path = dir.path().join(format!("a{i}.npy"));
            write_npy(&path, &array).unwrap();
            let back = read_npy(&path).unwrap();
            assert_eq!(back, array);
            assert_eq!(back.shape(), *shape);
            assert_eq!(NpyArray::from_bytes(&array.to_bytes()).unwrap(), array);
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), SHAPES.len());
}

#[test]
fn zero_d_array_holds_one_value() {
    let a = NpyArray::new(vec![], NpyData::F64(vec![2.5])).unwrap();
    let b = NpyArray::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(b.shape(), &[] as &[usize]);
    assert_eq!(b.to_f64(), [2.5]);
}

#[test]
fn f32_widens_exactly_and_matrices_convert() {
    let a = f32_array(&[2, 2]);
    let NpyData::F32(values) = a.data() else {
        panic!("expected f32 data")
    };
    let widened: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(a.to_f64(), widened);
    // 1/7 is not exact in f32, so the widened value differs from the f64 quotient.
    assert_ne!(a.to_f64()[1], -3.0 + 1.0 / 7.0);
    let m = Matrix::new(2, 3, vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let npy = NpyArray::from(&m);
    assert_eq!(npy.shape(), &[2, 3]);
    assert_eq!(npy.to_f64(), m.data());
}

/// Bytes of a hand-written file: version 1.0 with `header` padded to 64.
fn file_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The problem and offset of parsing `bytes`, which must fail.
fn npy_problem(bytes: &[u8]) -> (NpyProblem, usize, String) {
    let err = NpyArray::from_bytes(bytes).unwrap_err();
    let msg = err.to_string();
    match err {
        DataError::Npy { offset, problem, .. } => (problem, offset, msg),
        other => panic!("not an NPY error: {other:?}"),
    }
}

#[test]
fn reads_numpy_style_headers_including_version_2() {
    let data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let v1 = file_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &data);
    assert_eq!(NpyArray::from_bytes(&v1).unwrap().to_f64(), [1.0, 2.0]);
    // Version 2.0: same header with a 4-byte length field.
    let header = &v1[10..v1.len() - 16];
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&(header.len() as u32).to_le_bytes());
    v2.extend_from_slice(header);
    v2.extend_from_slice(&data);
    assert_eq!(NpyArray::from_bytes(&v2).unwrap().shape(), &[2]);
}

#[test]
fn bad_magic() {
    let (problem, offset, msg) = npy_problem(b"PK\x03\x04 not numpy at all");
    assert_eq!((problem, offset), (NpyProblem::BadMagic, 0));
    assert!(msg.contains("byte 0") && msg.contains("magic"), "{msg}");
    let (problem, offset, _) = npy_problem(b"\x93NUMPX");
    assert_eq!((problem, offset), (NpyProblem::BadMagic, 5));
}

#[test]
fn truncated_preamble_and_header() {
    let full = f64_array(&[3]).to_bytes();
    for cut in [0, 3, 6, 7, 9, 10, 40, 127] {
        let (problem, _, msg) = npy_problem(&full[..cut]);
        assert!(matches!(problem, NpyProblem::Truncated { .. }), "cut at {cut}: {msg}");
    }
    let (_, offset, msg) = npy_problem(&full[..40]);
    assert_eq!(offset, 10, "{msg}");
    assert!(msg.contains("header needs 118 bytes but only 30 remain"), "{msg}");
}

#[test]
fn unsupported_version() {
    let mut bytes = f64_array(&[1]).to_bytes();
    bytes[6] = 9;
    let (problem, offset, _) = npy_problem(&bytes);
    assert_eq!(problem, NpyProblem::UnsupportedVersion { major: 9, minor: 0 });
    assert_eq!(offset, 6);
}

#[test]
fn header_not_a_dict() {
    for header in [
        "['descr', '<f8']",
        "{'descr' '<f8'}",
        "{'descr': '<f8'} junk",
        "{'shape': (1,2",
        "{1: 2}",
    ] {
        let (problem, offset, msg) = npy_problem(&file_with_header(header, &[]));
        assert!(matches!(problem, NpyProblem::HeaderNotDict { .. }), "{header}: {msg}");
        assert!(offset >= 10, "{msg}");
    }
}

#[test]
fn missing_keys_and_bad_values() {
    let (problem, ..) = npy_problem(&file_with_header("{'descr': '<f8', 'shape': (1,)}", &[0; 8]));
    assert_eq!(problem, NpyProblem::MissingKey { key: "fortran_order" });
    let (problem, ..) = npy_problem(&file_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
        &[],
    ));
    assert!(matches!(problem, NpyProblem::BadValue { key: "shape", .. }));
    let (problem, ..) = npy_problem(&file_with_header(
        "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
        &[0; 8],
    ));
    assert!(matches!(
        problem,
        NpyProblem::BadValue {
            key: "fortran_order",
            ..
        }
    ));
}

#[test]
fn unsupported_dtypes() {
    for descr in ["'>f8'", "'<i4'", "'|u1'", "'<f2'", "[('a', '<f8')]"] {
        let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,)}}");
        let (problem, _, msg) = npy_problem(&file_with_header(&header, &[0; 8]));
        assert!(matches!(problem, NpyProblem::UnsupportedDtype { .. }), "{descr}: {msg}");
        assert!(msg.contains("astype('<f8')"), "{msg}");
    }
}

#[test]
fn fortran_order_is_rejected_with_advice() {
    let header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2)}";
    let (problem, _, msg) = npy_problem(&file_with_header(header, &[0; 32]));
    assert_eq!(problem, NpyProblem::FortranOrder);
    assert!(msg.contains("ascontiguousarray"), "{msg}");
}

#[test]
fn data_length_mismatch_and_huge_shapes() {
    let full = f64_array(&[2, 3]).to_bytes();
    let (problem, offset, msg) = npy_problem(&full[..full.len() - 1]);
    assert!(
        matches!(
            problem,
            NpyProblem::DataLength {
                expected: 48,
                found: 47,
                ..
            }
        ),
        "{msg}"
    );
    assert_eq!(offset, 128);
    let mut longer = full.clone();
    longer.push(0);
    assert!(matches!(
        npy_problem(&longer).0,
        NpyProblem::DataLength { found: 49, .. }
    ));
    // A header claiming an enormous array must fail without allocating it.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000)}";
    let (problem, ..) = npy_problem(&file_with_header(header, &[0; 16]));
    assert!(matches!(problem, NpyProblem::DataLength { found: 16, .. }));
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999, 99999999999)}";
    let (problem, ..) = npy_problem(&file_with_header(header, &[]));
    assert!(matches!(problem, NpyProblem::ShapeOverflow { .. }));
}

#[test]
fn file_errors_carry_the_path() {
    let dir = TempDir::new("npy-path");
    let path = dir.file("broken.npy", b"\x93NUMPY\x01\x00\xff\xff{");
    let msg = read_npy(&path).unwrap_err().to_string();
    assert!(msg.contains("broken.npy: byte 10"), "{msg}");
    assert!(matches!(
        read_npy(dir.path().join("none.npy")),
        Err(DataError::Io { .. })
    ));
}
