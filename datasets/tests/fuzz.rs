//! Property tests: the parsers never panic, whatever the input.

use ferrograd_datasets::{parse_csv, NpyArray, NpyData, TargetColumn};
use proptest::prelude::*;

fn valid_npy() -> Vec<u8> {
    let data = NpyData::F64((0..12).map(f64::from).collect());
    NpyArray::new(vec![2, 3, 2], data).unwrap().to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn npy_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = NpyArray::from_bytes(&bytes);
    }

    #[test]
    fn npy_random_bytes_after_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend(tail);
        let _ = NpyArray::from_bytes(&bytes);
    }

    #[test]
    fn npy_mutations_of_a_valid_file_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_npy();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(array) = NpyArray::from_bytes(&bytes) {
            // Whatever parsed must be self-consistent and re-serialisable.
            prop_assert_eq!(array.shape().iter().product::<usize>(), array.data().len());
            // (Compared as bytes: a mutation may have produced NaN values.)
            let reparsed = NpyArray::from_bytes(&array.to_bytes()).unwrap();
            prop_assert_eq!(reparsed.to_bytes(), array.to_bytes());
        }
    }

    #[test]
    fn npy_header_text_mutations_never_panic(header in "[{}()\\[\\]':,<>fi0-9 TrueFalsNn\"\\\\-]{0,120}") {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        let _ = NpyArray::from_bytes(&bytes);
    }

    #[test]
    fn csv_random_text_never_panics(text in "\\PC{0,200}", index in 0usize..4) {
        let _ = parse_csv(&text, &[TargetColumn::Index(index)]);
        let _ = parse_csv(&text, &[TargetColumn::from("y")]);
    }

    #[test]
    fn csv_csv_like_text_never_panics(text in "[a-z0-9.,eE+\\-\" \r\n]{0,200}") {
        if let Ok(table) = parse_csv(&text, &[TargetColumn::Index(0)]) {
            prop_assert_eq!(table.inputs.rows(), table.targets.rows());
            prop_assert!(table.inputs.rows() > 0);
        }
    }
}
