//! Early stopping on the validation loss: an epoch improves if
//! `val < best - min_delta`; training stops after `patience` epochs in a row
//! without improvement.

/// What an epoch's validation loss means for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: keep this model.
    Improved,
    /// No improvement, keep going.
    NoImprovement,
    /// The `patience`-th epoch in a row without improvement: stop.
    Stop,
}

/// The early-stopping counters.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: f64,
    best_epoch: usize,
    since_best: usize,
}

impl EarlyStopping {
    /// A fresh rule.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            best: f64::INFINITY,
            best_epoch: 0,
            since_best: 0,
        }
    }

    /// Rebuilds the state from saved counters (for resuming).
    pub fn restore(patience: usize, min_delta: f64, best: f64, best_epoch: usize, since_best: usize) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            best,
            best_epoch,
            since_best,
        }
    }

    /// Records epoch `epoch`'s validation loss.
    pub fn observe(&mut self, epoch: usize, val_loss: f64) -> Verdict {
        if val_loss < self.best - self.min_delta {
            self.best = val_loss;
            self.best_epoch = epoch;
            self.since_best = 0;
            return Verdict::Improved;
        }
        self.since_best += 1;
        if self.since_best >= self.patience {
            Verdict::Stop
        } else {
            Verdict::NoImprovement
        }
    }

    /// The best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The epoch of the best validation loss.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Epochs since the last improvement.
    pub fn since_best(&self) -> usize {
        self.since_best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_exactly_patience_non_improving_epochs() {
        let mut rule = EarlyStopping::new(50, 1e-7);
        assert_eq!(rule.observe(0, 1.0), Verdict::Improved);
        assert_eq!(rule.observe(1, 0.5), Verdict::Improved);
        // 49 epochs that fail to beat 0.5 - 1e-7 (one of them by less than min_delta)
        for e in 2..51 {
            let v = if e == 10 { 0.5 - 0.5e-7 } else { 0.6 };
            assert_eq!(rule.observe(e, v), Verdict::NoImprovement, "epoch {e}");
        }
        assert_eq!(rule.observe(51, 0.7), Verdict::Stop);
        assert_eq!(rule.best_epoch(), 1);
        assert_eq!(rule.best(), 0.5);
    }

    #[test]
    fn an_improvement_resets_the_count() {
        let mut rule = EarlyStopping::new(3, 0.0);
        rule.observe(0, 1.0);
        rule.observe(1, 2.0);
        rule.observe(2, 2.0);
        assert_eq!(rule.observe(3, 0.9), Verdict::Improved);
        assert_eq!(rule.observe(4, 1.0), Verdict::NoImprovement);
        assert_eq!(rule.observe(5, 1.0), Verdict::NoImprovement);
        assert_eq!(rule.observe(6, 1.0), Verdict::Stop);
    }
}
