//! Benchmarks for ferrograd (see `benches/` and `src/bin/`), and the
//! arithmetic they report against: the task model's floating-point
//! operations per epoch.
#![deny(missing_docs)]

/// The task model's widths: `[inputs, 256 x n_hidden, outputs]`.
pub fn task_widths(inputs: usize, outputs: usize, n_hidden: usize) -> Vec<usize> {
    let mut widths = vec![inputs];
    widths.extend(std::iter::repeat_n(256, n_hidden));
    widths.push(outputs);
    widths
}

/// Floating-point operations (multiply and add counted separately) of the
/// matrix products in one epoch of the task protocol: a training step per
/// batch (forward, then backward: the input gradient of every layer but the
/// first, the weight gradient of every trained layer; the last `frozen`
/// layers are not trained) and one inference forward over the validation
/// split. Elementwise work (bias, ReLU, BatchNorm, the optimizer) is a few
/// percent of this and not counted.
pub fn flops_per_epoch(widths: &[usize], frozen: usize, n_train: usize, batch: usize, n_val: usize) -> f64 {
    let layers: Vec<f64> = widths.windows(2).map(|w| (w[0] * w[1]) as f64).collect();
    let trained = layers.len() - frozen;
    let per_sample_forward: f64 = layers.iter().sum();
    let per_sample_input_grads: f64 = layers[1..].iter().sum();
    let per_sample_weight_grads: f64 = layers[..trained].iter().sum();
    let per_sample_step = per_sample_forward + per_sample_input_grads + per_sample_weight_grads;
    // Every sample is in exactly one batch, whatever the batch size.
    let _ = batch;
    2.0 * (n_train as f64 * per_sample_step + n_val as f64 * per_sample_forward)
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// This process's peak resident memory in bytes (`VmHWM` in
/// `/proc/self/status`), or `None` where that file does not exist.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_count_the_products_of_track_4() {
        // Track 4: 1->256, three 256x256, 256->2; the last two layers frozen.
        let w = task_widths(1, 2, 4);
        let (a, h, o) = (256.0, 65536.0, 512.0);
        let step = (a + 3.0 * h + o) + (3.0 * h + o) + (a + 2.0 * h);
        let want = 2.0 * (1000.0 * step + 200.0 * (a + 3.0 * h + o));
        assert_eq!(flops_per_epoch(&w, 2, 1000, 128, 200), want);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
