//! Atomic file writes: write a temporary file beside the target, then rename.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::DataError;

/// Distinguishes temporary files of concurrent writes within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers see either the old file or the
/// complete new one, never a partial write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let temp = temp_path(path);
    let result = write_and_sync(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| DataError::io(path, "rename a temporary file onto", e)));
    if result.is_err() {
        // Best effort: the temporary file may not exist if creating it failed.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates `temp`, writes `bytes` and flushes them to disk.
fn write_and_sync(temp: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut file = fs::File::create(temp).map_err(|e| DataError::io(temp, "create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| DataError::io(temp, "write", e))
}

/// A hidden, unique temporary name in the same directory as `path`
/// (same file system, so the rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp_name = format!(".{name}.tmp-{}-{unique}", std::process::id());
    path.with_file_name(temp_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_leave_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("ferrograd-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no-such-dir").join("y.bin");
        let err = write_atomic(&missing, b"z").unwrap_err();
        assert!(err.to_string().contains("could not create"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
