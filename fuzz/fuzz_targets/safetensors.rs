//! `ferrograd::io::from_safetensors_bytes` on arbitrary bytes: never panics,
//! and whatever parses re-serialises to the same tensors.
#![no_main]

use ferrograd::io::{from_safetensors_bytes, to_safetensors_bytes};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let origin = Path::new("<fuzz>");
    if let Ok((tensors, metadata)) = from_safetensors_bytes(data, origin) {
        let metadata = if metadata.is_empty() { None } else { Some(metadata) };
        let bytes = to_safetensors_bytes(&tensors, metadata.clone()).expect("parsed tensors serialise");
        let (again, meta_again) = from_safetensors_bytes(&bytes, origin).expect("re-serialised file parses");
        assert_eq!(meta_again, metadata.unwrap_or_default());
        assert_eq!(again.len(), tensors.len());
        for ((n1, t1), (n2, t2)) in tensors.iter().zip(&again) {
            assert_eq!(n1, n2);
            assert_eq!(t1.dims(), t2.dims());
            assert_eq!(t1.dtype(), t2.dtype());
            let bits = |t: &ferrograd::engine::Tensor| t.to_vec_f64().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(t1), bits(t2));
        }
    }
});
