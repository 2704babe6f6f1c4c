//! Saving and loading named tensors as safetensors (the format PyTorch and
//! candle read), written atomically; and optimizer states on their own
//! ([`save_optimizer_state`], [`load_optimizer_state`]).

use crate::engine::{bytes, DType, Tensor};
use crate::error::{Error, Result};
use crate::optim::ModelLayout;
use crate::optim::{catalog, HyperParams, OptimizerInfo, OptimizerState, TaskOptimizer};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Tensors by name, as read from a safetensors file: in the order they were
/// saved when ferrograd wrote the file (see [`TENSOR_ORDER_KEY`]), otherwise
/// in the order of their data in the file.
pub type NamedTensors = Vec<(String, Tensor)>;

/// The metadata key under which [`to_safetensors_bytes`] records the order
/// of the tensors it was given (a JSON array of names). A safetensors file
/// keeps its tensors in a JSON object and writers lay the data out by dtype
/// and name, so without it the order a list was saved in is lost, and
/// reading a list back by position could swap two tensors of one shape.
/// Readers strip it from the metadata they return.
pub const TENSOR_ORDER_KEY: &str = "ferrograd.tensor_order";

/// A safetensors file's string metadata.
pub type Metadata = HashMap<String, String>;

/// Little-endian bytes of a tensor's elements.
fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    Ok(match t.dtype() {
        DType::F32 => bytes::to_le_bytes(&t.to_vec::<f32>()?).into_owned(),
        DType::F64 => bytes::to_le_bytes(&t.to_vec::<f64>()?).into_owned(),
    })
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
            Ok((name.clone(), dtype, t.dims().to_vec(), tensor_bytes(t)?))
        })
        .collect::<Result<_>>()?;
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::format(Path::new(name), e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    let mut metadata = metadata.unwrap_or_default();
    let order = serde_json::to_string(&names).expect("names serialise");
    metadata.insert(TENSOR_ORDER_KEY.to_string(), order);
    let bytes = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| Error::format(Path::new("<safetensors>"), e.to_string()))?;
    Ok(sorted_metadata(bytes))
}

/// Rewrites the header's `__metadata__` with its keys sorted: the safetensors
/// crate writes them in `HashMap` order, which differs between processes, so
/// identical models would otherwise give different bytes.
fn sorted_metadata(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote JSON");
    let Some(meta) = header.get_mut("__metadata__") else {
        return bytes;
    };
    let sorted: std::collections::BTreeMap<String, serde_json::Value> =
        std::mem::take(meta.as_object_mut().expect("metadata is an object"))
            .into_iter()
            .collect();
    *meta = serde_json::to_value(sorted).expect("strings serialise");
    let mut text = serde_json::to_vec(&header).expect("JSON serialises");
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
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

/// Parses safetensors bytes into named tensors (f32 and f64 only) and metadata,
/// in the order described at [`NamedTensors`]. `origin` names the source in
/// error messages.
pub fn from_safetensors_bytes(bytes: &[u8], origin: &Path) -> Result<(NamedTensors, Metadata)> {
    from_safetensors_bytes_except(bytes, origin, &|_| false)
}

/// [`from_safetensors_bytes`] without the tensors whose name `skip` accepts
/// (not read, so they may have a dtype ferrograd does not read, as
/// PyTorch's int64 `num_batches_tracked`).
pub fn from_safetensors_bytes_except(
    bytes: &[u8],
    origin: &Path,
    skip: &dyn Fn(&str) -> bool,
) -> Result<(NamedTensors, Metadata)> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::format(origin, format!("not a valid safetensors file: {e}")))?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let saved_order = metadata.remove(TENSOR_ORDER_KEY);
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(origin, format!("not a valid safetensors file: {e}")))?;
    let names = tensor_order(&file, saved_order.as_deref(), origin)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names.into_iter().filter(|name| !skip(name)) {
        let view = file
            .tensor(&name)
            .map_err(|e| Error::format(origin, format!("tensor {name}: {e}")))?;
        out.push((name.clone(), view_to_tensor(&view, &name, origin)?));
    }
    Ok((out, metadata))
}

/// The names of `file`'s tensors in the order they were saved (`saved`, the
/// [`TENSOR_ORDER_KEY`] entry, which must name each tensor once), or without
/// it in the order of their data.
fn tensor_order(file: &SafeTensors<'_>, saved: Option<&str>, origin: &Path) -> Result<Vec<String>> {
    let mut by_offset: Vec<(usize, String)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (view.data().as_ptr() as usize, name))
        .collect();
    by_offset.sort();
    let in_data_order: Vec<String> = by_offset.into_iter().map(|(_, name)| name).collect();
    let Some(saved) = saved else {
        return Ok(in_data_order);
    };
    let order: Vec<String> = serde_json::from_str(saved).map_err(|e| {
        Error::format(
            origin,
            format!("metadata {TENSOR_ORDER_KEY} is not a list of names: {e}"),
        )
    })?;
    let mut sorted_saved = order.clone();
    sorted_saved.sort();
    let mut sorted_present = in_data_order;
    sorted_present.sort();
    if sorted_saved != sorted_present {
        return Err(Error::format(
            origin,
            format!("metadata {TENSOR_ORDER_KEY} does not name each tensor of the file once; the file was edited or is damaged"),
        ));
    }
    Ok(order)
}

/// A tensor's elements from its little-endian bytes.
fn le_values<T: bytemuck::Pod>(data: &[u8], name: &str, origin: &Path) -> Result<Vec<T>> {
    bytes::from_le_bytes(data).ok_or_else(|| {
        Error::format(
            origin,
            format!(
                "tensor {name} has {} data bytes, not a whole number of {}-byte elements; the file is damaged",
                data.len(),
                std::mem::size_of::<T>()
            ),
        )
    })
}

fn view_to_tensor(view: &TensorView<'_>, name: &str, origin: &Path) -> Result<Tensor> {
    let data = view.data();
    let shape = view.shape().to_vec();
    let tensor = match view.dtype() {
        Dtype::F32 => Tensor::from_vec(le_values::<f32>(data, name, origin)?, shape),
        Dtype::F64 => Tensor::from_vec(le_values::<f64>(data, name, origin)?, shape),
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

// ----- optimizer states -------------------------------------------------

/// The file of an optimizer state directory holding the tensors.
pub const OPTIMIZER_TENSORS_FILE: &str = "optimizer.safetensors";

/// The file of an optimizer state directory holding the name,
/// hyperparameters and counters.
pub const OPTIMIZER_JSON_FILE: &str = "optimizer.json";

/// The `format` field of `optimizer.json`.
const OPTIMIZER_FORMAT: &str = "ferrograd-optimizer";

/// What can go wrong reading a saved optimizer state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptimizerStateError {
    /// A file of the state is missing.
    #[error("{}: no such file; save the optimizer state first (save_optimizer_state writes {OPTIMIZER_JSON_FILE} and {OPTIMIZER_TENSORS_FILE})", path.display())]
    Missing {
        /// The missing file.
        path: std::path::PathBuf,
    },
    /// The state was saved by a different optimizer.
    #[error("{}: the state is for optimizer {found:?}, not {expected:?}; resume with --optimizer {found}", path.display())]
    WrongOptimizer {
        /// `optimizer.json`.
        path: std::path::PathBuf,
        /// The optimizer asked for.
        expected: String,
        /// The optimizer that saved the state.
        found: String,
    },
    /// `optimizer.json` and `optimizer.safetensors` come from different
    /// saves (a save interrupted between the two files, or files copied
    /// from elsewhere).
    #[error("{}: {OPTIMIZER_JSON_FILE} and {OPTIMIZER_TENSORS_FILE} are from different saves; save the state again", dir.display())]
    Mismatch {
        /// The state directory.
        dir: std::path::PathBuf,
    },
    /// A file could not be read or is malformed, or the optimizer refused
    /// the state.
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<OptimizerStateError> for Error {
    fn from(e: OptimizerStateError) -> Error {
        match e {
            OptimizerStateError::Missing { ref path } => Error::Io {
                path: path.clone(),
                action: "read",
                message: e.to_string(),
            },
            OptimizerStateError::WrongOptimizer { ref path, .. } => Error::format(path, e.to_string()),
            OptimizerStateError::Mismatch { ref dir } => Error::format(dir, e.to_string()),
            OptimizerStateError::Other(inner) => inner,
        }
    }
}

/// The contents of `optimizer.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct OptimizerFile {
    /// Always [`OPTIMIZER_FORMAT`].
    format: String,
    /// The layout's version (1).
    version: u32,
    /// The optimizer's catalog name.
    optimizer: String,
    /// Hyperparameters, readable (non-finite values as `null`).
    hyperparameters: BTreeMap<String, Option<f64>>,
    /// The same, as `f64` bits: what loading uses, so values survive exactly.
    hyperparameter_bits: BTreeMap<String, u64>,
    /// The optimizer's counters.
    counters: BTreeMap<String, u64>,
    /// The names of the tensors in `optimizer.safetensors`.
    tensors: Vec<String>,
    /// Shared with the safetensors metadata, to detect mixed saves.
    save_id: String,
}

/// A value unique to one save (time, process, and a per-process counter).
fn new_save_id() -> String {
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

/// Writes an optimizer's state into `dir` (created if missing):
/// `optimizer.safetensors` holds the state's tensors under their
/// [`OptimizerState`] names, `optimizer.json` the optimizer's `name`, its
/// hyperparameters (`hps`, exactly, as bits beside the readable values) and
/// the state's counters. Each file is written atomically, the tensors
/// first; both carry one save id, so a reader never mixes two saves.
pub fn save_optimizer_state(dir: &Path, name: &str, hps: &HyperParams, state: &OptimizerState) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    let save_id = new_save_id();
    let tensors: Vec<(String, Tensor)> = state.tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let metadata = HashMap::from([
        ("format".to_string(), OPTIMIZER_FORMAT.to_string()),
        ("optimizer".to_string(), name.to_string()),
        ("save_id".to_string(), save_id.clone()),
    ]);
    save_safetensors(&dir.join(OPTIMIZER_TENSORS_FILE), &tensors, Some(metadata))?;
    let values = hps.values();
    let file = OptimizerFile {
        format: OPTIMIZER_FORMAT.to_string(),
        version: 1,
        optimizer: name.to_string(),
        hyperparameters: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.is_finite().then_some(*v)))
            .collect(),
        hyperparameter_bits: values.iter().map(|(k, v)| (k.to_string(), v.to_bits())).collect(),
        counters: state.counters.clone(),
        tensors: state.tensors.keys().cloned().collect(),
        save_id,
    };
    let json = serde_json::to_vec_pretty(&file).expect("an optimizer file serialises");
    crate::datasets::atomic::write_atomic(&dir.join(OPTIMIZER_JSON_FILE), &json)?;
    Ok(())
}

/// Reads `path`, reporting a missing file as [`OptimizerStateError::Missing`].
fn read_state_file(path: &Path) -> std::result::Result<Vec<u8>, OptimizerStateError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OptimizerStateError::Missing {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, "read", e).into(),
    })
}

/// A saved optimizer state: the optimizer's name, its hyperparameters, and
/// the state to pass to `TaskOptimizer::load_state`.
pub type SavedOptimizer = (String, BTreeMap<String, f64>, OptimizerState);

/// Reads what [`save_optimizer_state`] wrote into `dir`: the optimizer's
/// name (a state saved as `adam` with a `clip`, before the catalog's rename,
/// is read as `clipped_adam`), its hyperparameters by name, and its state.
/// Build a fresh optimizer
/// from the name and hyperparameters ([`restore_optimizer`] does), call
/// `init_state` with the model's shapes, then `load_state`.
pub fn load_optimizer_state(dir: &Path) -> std::result::Result<SavedOptimizer, OptimizerStateError> {
    let json_path = dir.join(OPTIMIZER_JSON_FILE);
    let tensor_path = dir.join(OPTIMIZER_TENSORS_FILE);
    let text = read_state_file(&json_path)?;
    let file: OptimizerFile = serde_json::from_slice(&text)
        .map_err(|e| Error::format(&json_path, format!("not a ferrograd optimizer state: {e}")))?;
    if file.format != OPTIMIZER_FORMAT || file.version != 1 {
        return Err(Error::format(
            &json_path,
            format!(
                "format {:?} version {}; this build reads {OPTIMIZER_FORMAT:?} version 1",
                file.format, file.version
            ),
        )
        .into());
    }
    let bytes = read_state_file(&tensor_path)?;
    let (tensors, metadata) = from_safetensors_bytes(&bytes, &tensor_path)?;
    let mut names: Vec<&String> = tensors.iter().map(|(n, _)| n).collect();
    names.sort();
    let mut listed: Vec<&String> = file.tensors.iter().collect();
    listed.sort();
    if metadata.get("save_id") != Some(&file.save_id) || names != listed {
        return Err(OptimizerStateError::Mismatch { dir: dir.to_path_buf() });
    }
    let mut hps = BTreeMap::new();
    for (name, readable) in &file.hyperparameters {
        let value = match (file.hyperparameter_bits.get(name), readable) {
            (Some(bits), _) => f64::from_bits(*bits),
            (None, Some(v)) => *v,
            (None, None) => {
                return Err(Error::format(&json_path, format!("hyperparameter {name} has no value")).into());
            }
        };
        hps.insert(name.clone(), value);
    }
    let state = OptimizerState {
        tensors: tensors.into_iter().collect(),
        counters: file.counters,
    };
    Ok((current_name(file.optimizer, &hps), hps, state))
}

/// The catalog name today of an optimizer saved as `name` with these
/// hyperparameters: a state saved before the catalog's rename as `adam`
/// with a `clip` is the task's clipped Adam, now `clipped_adam` (`adam` is
/// `torch.optim.Adam`, which has no `clip`); every other name is unchanged.
pub(crate) fn current_name(name: String, hps: &BTreeMap<String, f64>) -> String {
    if name == "adam" && hps.contains_key("clip") {
        return "clipped_adam".to_string();
    }
    name
}

/// [`load_optimizer_state`], failing with
/// [`OptimizerStateError::WrongOptimizer`] unless the state was saved by the
/// optimizer named `expected`.
pub fn load_optimizer_state_for(
    dir: &Path,
    expected: &str,
) -> std::result::Result<(BTreeMap<String, f64>, OptimizerState), OptimizerStateError> {
    let (found, hps, state) = load_optimizer_state(dir)?;
    if found != expected {
        return Err(OptimizerStateError::WrongOptimizer {
            path: dir.join(OPTIMIZER_JSON_FILE),
            expected: expected.to_string(),
            found,
        });
    }
    Ok((hps, state))
}

/// Hyperparameter values for `info` from a saved map (every saved name must
/// be one `info` declares; names it declares but the map lacks keep their
/// defaults).
pub fn hyperparams_from_map(info: &OptimizerInfo, values: &BTreeMap<String, f64>) -> Result<HyperParams> {
    let mut hps = HyperParams::defaults(info);
    for (name, value) in values {
        hps.set(name, *value)?;
    }
    Ok(hps)
}

/// Rebuilds the catalog optimizer whose state is saved in `dir`: looks its
/// name up in the catalog, builds it with the saved hyperparameters, calls
/// `init_state(seed, layout)` and loads the saved state, ready to continue
/// exactly where the saved one stopped. `layout` is the model's, as the
/// optimizer was first given it (`Mlp::layout`, or `ModelLayout::any` for
/// bare tensors).
pub fn restore_optimizer(
    dir: &Path,
    seed: u64,
    layout: &ModelLayout,
) -> std::result::Result<Box<dyn TaskOptimizer>, OptimizerStateError> {
    let (name, values, state) = load_optimizer_state(dir)?;
    let json_path = dir.join(OPTIMIZER_JSON_FILE);
    let info = catalog::lookup(&name).map_err(|e| Error::format(&json_path, e.to_string()))?;
    let hps = hyperparams_from_map(info, &values).map_err(|e| Error::format(&json_path, e.to_string()))?;
    let mut optimizer = (info.build)(&hps).map_err(Error::from)?;
    optimizer.init_state(seed, layout).map_err(Error::from)?;
    optimizer.load_state(&state).map_err(Error::from)?;
    Ok(optimizer)
}
