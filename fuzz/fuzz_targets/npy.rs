//! `NpyArray::from_bytes` on arbitrary bytes: never panics, never allocates
//! beyond the input, and whatever parses re-serialises to an equal array.
#![no_main]

use ferrograd_datasets::NpyArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = NpyArray::from_bytes(data) {
        assert_eq!(array.data().len(), array.shape().iter().product::<usize>());
        let bytes = array.to_bytes();
        let again = NpyArray::from_bytes(&bytes).expect("re-serialised array parses");
        assert_eq!(again.shape(), array.shape());
        assert_eq!(again.to_bytes(), bytes);
    }
});
