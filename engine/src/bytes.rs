//! Typed buffers as little-endian bytes and back, for the file formats
//! (safetensors, NPY) that store little-endian elements.
//!
//! The casts are `bytemuck`'s: only plain-old-data types qualify (checked at
//! compile time: no padding, every bit pattern valid), so there is no unsafe
//! code here and no hand-written per-element loop. On a big-endian host the
//! bytes of each element are reversed after the cast.

use bytemuck::Pod;
use std::borrow::Cow;

/// The little-endian bytes of `values` (borrowed, no copy, on a
/// little-endian host).
pub fn to_le_bytes<T: Pod>(values: &[T]) -> Cow<'_, [u8]> {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    if cfg!(target_endian = "little") {
        return Cow::Borrowed(bytes);
    }
    let mut owned = bytes.to_vec();
    reverse_each(&mut owned, std::mem::size_of::<T>());
    Cow::Owned(owned)
}

/// The elements stored little-endian in `bytes` (which need not be aligned),
/// or `None` when `bytes` is not a whole number of elements.
pub fn from_le_bytes<T: Pod>(bytes: &[u8]) -> Option<Vec<T>> {
    if bytes.len().checked_rem(std::mem::size_of::<T>()) != Some(0) {
        return None;
    }
    let mut values: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
    if cfg!(target_endian = "big") {
        reverse_each(bytemuck::cast_slice_mut(&mut values), std::mem::size_of::<T>());
    }
    Some(values)
}

/// Reverses the bytes of each `width`-byte element (endianness swap).
fn reverse_each(bytes: &mut [u8], width: usize) {
    bytes.chunks_exact_mut(width).for_each(<[u8]>::reverse);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ieee_encodings() {
        // IEEE 754: 1.0f32 is 0x3F800000, -2.0f64 is 0xC000000000000000.
        assert_eq!(&*to_le_bytes(&[1.0f32]), &[0x00, 0x00, 0x80, 0x3F]);
        assert_eq!(&*to_le_bytes(&[-2.0f64]), &[0, 0, 0, 0, 0, 0, 0, 0xC0]);
        assert_eq!(from_le_bytes::<f32>(&[0x00, 0x00, 0x80, 0x3F]), Some(vec![1.0f32]));
    }

    #[test]
    fn round_trips_from_an_unaligned_slice() {
        let values = [1.5f64, -0.0, f64::MAX, 3e-310];
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&to_le_bytes(&values));
        let back: Vec<f64> = from_le_bytes(&bytes[1..]).expect("whole elements");
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.map(f64::to_bits)
        );
    }

    #[test]
    fn partial_element_is_none() {
        assert_eq!(from_le_bytes::<f32>(&[0, 0, 0]), None);
        assert_eq!(from_le_bytes::<f64>(&[]), Some(vec![]));
    }
}
