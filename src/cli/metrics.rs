//! `metrics.jsonl`: one JSON object per epoch, rewritten atomically.

use ferrograd::train::EpochMetrics;
use ferrograd::Error;
use std::path::Path;

/// One epoch as the JSON object of one line of metrics.jsonl.
pub fn to_json(m: &EpochMetrics) -> serde_json::Value {
    serde_json::json!({
        "epoch": m.epoch,
        "train_loss": m.train_loss,
        "val_loss": m.val_loss,
        "best_val_loss": m.best_val_loss,
        "best_epoch": m.best_epoch,
        "seconds": m.seconds,
    })
}

/// Writes every epoch's metrics, one line each.
pub fn write_history(path: &Path, history: &[EpochMetrics]) -> Result<(), Error> {
    let mut text = String::new();
    for m in history {
        text.push_str(&to_json(m).to_string());
        text.push('\n');
    }
    ferrograd::datasets::atomic::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Reads back the first `epochs` lines written by [`write_history`].
/// Fewer lines than `epochs` is an error: the resumed run's metrics would
/// miss epochs.
pub fn read_history(path: &Path, epochs: usize) -> Result<Vec<EpochMetrics>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    parse_history(path, &text, epochs)
}

/// Reads every epoch written by [`write_history`] so far (the file is
/// replaced whole, so it never holds half an epoch).
pub fn read_every_epoch(path: &Path) -> Result<Vec<EpochMetrics>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    parse_history(path, &text, text.lines().count())
}

fn parse_history(path: &Path, text: &str, epochs: usize) -> Result<Vec<EpochMetrics>, Error> {
    let found = text.lines().count();
    if found < epochs {
        return Err(Error::format(
            path,
            format!(
                "{found} epochs of metrics, but the checkpoint is at epoch {epochs}; \
                 the directory is damaged: start the run again with --out"
            ),
        ));
    }
    text.lines()
        .take(epochs)
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| Error::format(path, format!("line {}: {e}", i + 1)))?;
            let num = |k: &str| {
                v[k].as_f64()
                    .ok_or_else(|| Error::format(path, format!("line {}: missing {k}", i + 1)))
            };
            Ok(EpochMetrics {
                epoch: num("epoch")? as usize,
                train_loss: num("train_loss")?,
                val_loss: num("val_loss")?,
                best_val_loss: num("best_val_loss")?,
                best_epoch: num("best_epoch")? as usize,
                seconds: num("seconds")?,
            })
        })
        .collect()
}
