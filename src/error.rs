//! The facade's error type: engine and data errors, plus file and format
//! problems of checkpoints and saved models.

use std::path::{Path, PathBuf};

/// Everything that can go wrong above the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// Loading or generating data failed.
    #[error(transparent)]
    Data(#[from] crate::datasets::DataError),
    /// A module and its tensors do not fit (an input or a state dict of
    /// the wrong shape, a missing gradient).
    #[error(transparent)]
    Module(#[from] crate::module::ModuleError),
    /// A data loader was set up wrongly, or a batch read as what it is not.
    #[error(transparent)]
    Loader(#[from] crate::data::LoaderError),
    /// A file could not be read or written.
    #[error("cannot {action} {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The system's message.
        message: String,
    },
    /// A file was read but its contents are not what was expected.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The facade's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] from a `std::io::Error`.
    pub fn io(path: &Path, action: &'static str, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            message: e.to_string(),
        }
    }

    /// An [`Error::Format`].
    pub fn format(path: &Path, message: impl Into<String>) -> Error {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
