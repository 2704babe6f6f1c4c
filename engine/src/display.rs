//! Pretty printing of tensors, NumPy style: nested brackets, aligned columns,
//! long axes elided with `...`.

use crate::Tensor;
use std::fmt;

/// Axes longer than this show their first and last `EDGE` entries only.
const SUMMARISE_ABOVE: usize = 10;
const EDGE: usize = 3;

fn format_value(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.4e}")
    }
}

fn shown(len: usize) -> Vec<Option<usize>> {
    if len > SUMMARISE_ABOVE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((len - EDGE..len).map(Some))
            .collect()
    } else {
        (0..len).map(Some).collect()
    }
}

fn write_axis(out: &mut String, values: &[String], dims: &[usize], offset: usize, depth: usize, width: usize) {
    let Some((&len, rest)) = dims.split_first() else {
        out.push_str(&format!("{:>width$}", values[offset]));
        return;
    };
    let inner: usize = rest.iter().product();
    out.push('[');
    for (k, item) in shown(len).into_iter().enumerate() {
        if k > 0 {
            out.push(',');
            if rest.is_empty() {
                out.push(' ');
            } else {
                out.push_str(&"\n".repeat(rest.len()));
                out.push_str(&" ".repeat(depth + 1));
            }
        }
        match item {
            Some(i) => write_axis(out, values, rest, offset + i * inner, depth + 1, width),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A GPU tensor whose copy to the host fails cannot show its values.
        let values: Vec<String> = self
            .to_vec_f64()
            .map_err(|_| fmt::Error)?
            .into_iter()
            .map(format_value)
            .collect();
        let width = values.iter().map(String::len).max().unwrap_or(0);
        let mut body = String::new();
        write_axis(&mut body, &values, self.dims(), 0, 0, width);
        write!(
            f,
            "{body}\nTensor(shape={}, dtype={}, device={})",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn display_nests_and_elides() {
        let a = Tensor::from_vec(vec![1.0f32, 2.5, -3.0, 4.0], [2, 2]).unwrap();
        let s = a.to_string();
        assert!(s.starts_with("[[  1, 2.5],\n [ -3,   4]]"), "{s}");
        assert!(s.contains("shape=[2, 2], dtype=f32"));
        let long = Tensor::arange(0.0, 100.0, 1.0, DType::F64).unwrap().to_string();
        assert!(long.contains("..."));
        assert!(long.contains("99"));
        assert!(!long.contains("50"));
    }
}
