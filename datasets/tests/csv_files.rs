//! CSV loading and writing: round trips and every malformed-file error.

mod common;

use common::TempDir;
use ferrograd_datasets::{load_csv, write_csv, DataError, Matrix, TargetColumn};

fn by_name(names: &[&str]) -> Vec<TargetColumn> {
    names.iter().map(|&n| TargetColumn::from(n)).collect()
}

/// The error message from loading `text` with target `y`, checked to name the file.
fn load_error(dir: &TempDir, text: &str, targets: &[TargetColumn]) -> String {
    let path = dir.file("bad.csv", text.as_bytes());
    let err = load_csv(&path, targets).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.csv"), "message does not name the file: {msg}");
    msg
}

#[test]
fn round_trip_is_bit_exact() {
    let dir = TempDir::new("csv-rt");
    let values = vec![0.1, -2.5e-300, 1.0 / 3.0, 7.0, f64::MAX, -0.0, 3.25, 1e21];
    let m = Matrix::new(2, 4, values).unwrap();
    let path = dir.path().join("data.csv");
    write_csv(&path, &["x0", "x1", "y0", "y1"], &m).unwrap();
    let t = load_csv(&path, &by_name(&["y0", "y1"])).unwrap();
    assert_eq!(t.input_names, ["x0", "x1"]);
    assert_eq!(t.target_names, ["y0", "y1"]);
    let joined = t.inputs.hstack(&t.targets).unwrap();
    let bits = |m: &Matrix| m.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&joined), bits(&m));

    // Table::write_csv puts inputs first, then targets, and reads back equal.
    let again = dir.path().join("again.csv");
    t.write_csv(&again).unwrap();
    assert_eq!(load_csv(&again, &by_name(&["y0", "y1"])).unwrap(), t);
    // Only the two data files remain: the temporary files were renamed away.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn targets_can_be_chosen_by_index() {
    let dir = TempDir::new("csv-idx");
    let path = dir.file("d.csv", b"a,b,c\n1,2,3\n4,5,6\n");
    let t = load_csv(&path, &[TargetColumn::Index(1)]).unwrap();
    assert_eq!(t.target_names, ["b"]);
    assert_eq!(t.targets.data(), &[2.0, 5.0]);
    assert_eq!(t.inputs.data(), &[1.0, 3.0, 4.0, 6.0]);
}

#[test]
fn non_numeric_value_names_line_and_column() {
    let dir = TempDir::new("csv-nan");
    let msg = load_error(&dir, "x,y\n1,2\n3,4\n5,abc\n", &by_name(&["y"]));
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("column 'y'"), "{msg}");
    assert!(msg.contains("'abc' is not a number"), "{msg}");
    let msg = load_error(&dir, "temp,y\n,2\n", &by_name(&["y"]));
    assert!(msg.contains("line 2") && msg.contains("column 'temp'"), "{msg}");
}

#[test]
fn wrong_field_count_names_line_and_counts() {
    let dir = TempDir::new("csv-count");
    let msg = load_error(&dir, "x,y\n1,2\n\n3,4,5\n", &by_name(&["y"]));
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("expected 2") && msg.contains("found 3"), "{msg}");
}

#[test]
fn empty_file_is_reported() {
    let dir = TempDir::new("csv-empty");
    let msg = load_error(&dir, "", &by_name(&["y"]));
    assert!(msg.contains("line 1") && msg.contains("empty"), "{msg}");
}

#[test]
fn unknown_target_lists_the_columns() {
    let dir = TempDir::new("csv-unknown");
    let msg = load_error(&dir, "x,y\n1,2\n", &by_name(&["target"]));
    assert!(msg.contains("line 1"), "{msg}");
    assert!(msg.contains("unknown target column 'target'"), "{msg}");
    assert!(msg.contains("x, y"), "{msg}");
}

#[test]
fn no_input_columns_is_reported() {
    let dir = TempDir::new("csv-noinput");
    let msg = load_error(&dir, "y\n1\n", &by_name(&["y"]));
    assert!(msg.contains("no input columns"), "{msg}");
}

#[test]
fn missing_header_is_reported() {
    let dir = TempDir::new("csv-nohdr");
    let msg = load_error(&dir, "1,2\n3,4\n", &[TargetColumn::Index(1)]);
    assert!(msg.contains("line 1") && msg.contains("header"), "{msg}");
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = TempDir::new("csv-utf8");
    let path = dir.file("bad.csv", b"x,y\n1,2\n3,\xff\n");
    let msg = load_csv(&path, &by_name(&["y"])).unwrap_err().to_string();
    assert!(msg.contains("line 3") && msg.contains("UTF-8"), "{msg}");
}

#[test]
fn errors_are_typed() {
    let dir = TempDir::new("csv-typed");
    let path = dir.file("d.csv", b"x,y\n1,oops\n");
    match load_csv(&path, &by_name(&["y"])).unwrap_err() {
        DataError::Csv { line, problem, .. } => {
            assert_eq!(line, 2);
            assert!(matches!(problem, ferrograd_datasets::CsvProblem::NonNumeric { .. }));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let missing = load_csv(dir.path().join("nope.csv"), &by_name(&["y"])).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }), "{missing:?}");
}

#[test]
fn write_rejects_unwritable_names() {
    let dir = TempDir::new("csv-write");
    let m = Matrix::zeros(1, 2).unwrap();
    let path = dir.path().join("w.csv");
    for names in [&["a"][..], &["a", "a"], &["a", "b,c"], &["a", ""]] {
        let err = write_csv(&path, names, &m).unwrap_err();
        assert!(matches!(err, DataError::CsvWrite { .. }), "{err:?}");
    }
    assert!(!path.exists());
}
