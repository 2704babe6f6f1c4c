//! Saving and loading named tensors as safetensors (the format PyTorch and
//! candle read), written atomically.

use crate::engine::{DType, Tensor};
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Tensors by name, in file order, as read from a safetensors file.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A safetensors file's string metadata.
pub type Metadata = HashMap<String, String>;

/// Little-endian bytes of a tensor's elements.
fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F64 => t.to_vec::<f64>().iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Serialises named tensors (and string metadata) to safetensors bytes.
pub fn to_safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let dtype = if t.dtype() == DType::F32 {
                Dtype::F32
            } else {
                Dtype::F64
            };
            (name.clone(), dtype, t.dims().to_vec(), tensor_bytes(t))
        })
        .collect();
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::format(Path::new(name), e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &metadata).map_err(|e| Error::format(Path::new("<safetensors>"), e.to_string()))
}

/// Writes named tensors to `path` atomically (temporary file, then rename).
pub fn save_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = to_safetensors_bytes(tensors, metadata)?;
    crate::datasets::atomic::write_atomic(path, &bytes)?;
    Ok(())
}

/// Parses safetensors bytes into named tensors (f32 and f64 only) and metadata.
/// `origin` names the source in error messages.
pub fn from_safetensors_bytes(bytes: &[u8], origin: &Path) -> Result<(NamedTensors, Metadata)> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::format(origin, format!("not a valid safetensors file: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(origin, format!("not a valid safetensors file: {e}")))?;
    let mut names: Vec<String> = file.names().into_iter().cloned().collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let view = file
            .tensor(&name)
            .map_err(|e| Error::format(origin, format!("tensor {name}: {e}")))?;
        out.push((name.clone(), view_to_tensor(&view, &name, origin)?));
    }
    Ok((out, metadata))
}

fn view_to_tensor(view: &TensorView<'_>, name: &str, origin: &Path) -> Result<Tensor> {
    let data = view.data();
    let shape = view.shape().to_vec();
    let tensor = match view.dtype() {
        Dtype::F32 => Tensor::from_vec(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect::<Vec<_>>(),
            shape,
        ),
        Dtype::F64 => Tensor::from_vec(
            data.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect::<Vec<_>>(),
            shape,
        ),
        other => {
            return Err(Error::format(
                origin,
                format!("tensor {name} has dtype {other:?}; ferrograd reads F32 and F64 only"),
            ))
        }
    };
    tensor.map_err(|e| Error::format(origin, format!("tensor {name}: {e}")))
}

/// Reads named tensors and metadata from a safetensors file.
pub fn load_safetensors(path: &Path) -> Result<(NamedTensors, Metadata)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    from_safetensors_bytes(&bytes, path)
}
