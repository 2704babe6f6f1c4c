//! A small hand-written SVG writer shared by `ferrograd race` and
//! `ferrograd viz` plots: shapes, text, axis scales with "nice" ticks, and a
//! colour-blind-safe palette. No dependencies: an SVG is just text.
//!
//! Why not `plotters` (issue 28, plotters 0.3.7): its SVG backend alone (5
//! crates) would replace only this writer, not the race and viz layouts
//! (bootstrap intervals, log ticks, paired panels) built on it, and it would
//! change the bytes of every committed figure (docs/img, bench/races). PNG
//! output, the feature that would serve users, needs its bitmap backend and
//! text through `font-kit`: 42 crates, among them the C libraries freetype
//! and fontconfig, which a `cargo install` on a bare machine cannot build.
//! An SVG opens in every browser; `rsvg-convert` or `inkscape` make PNGs.
//!
//! ```
//! use ferrograd::svg::{Scale, Svg};
//!
//! let x = Scale::linear((0.0, 10.0), (40.0, 240.0));
//! let mut svg = Svg::new(280.0, 100.0);
//! svg.line((x.map(0.0), 50.0), (x.map(10.0), 50.0), "#000", 1.0);
//! svg.text((x.map(5.0), 40.0), "middle", "a <label>", 12.0, "middle");
//! let text = svg.finish();
//! assert!(text.starts_with("<svg") && text.contains("a &lt;label&gt;"));
//! ```

use std::fmt::Write;

/// Okabe-Ito colours (distinguishable with the common colour-vision
/// deficiencies), then a few extra; series cycle through them.
pub const PALETTE: [&str; 10] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442", "#7F3C8D", "#8C564B",
];

/// The colour of series number `index`.
pub fn color(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// A point in SVG coordinates (pixels, y pointing down).
pub type Point = (f64, f64);

/// An SVG document being written.
#[derive(Debug, Clone)]
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

/// Escapes `&`, `<`, `>` and `"` for SVG text and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number with at most 2 decimals, for compact coordinates.
fn n(v: f64) -> String {
    let rounded = (v * 100.0).round() / 100.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

impl Svg {
    /// An empty, white canvas of `width` x `height` pixels.
    pub fn new(width: f64, height: f64) -> Svg {
        let mut svg = Svg {
            width,
            height,
            body: String::new(),
        };
        svg.rect((0.0, 0.0), (width, height), "#ffffff", None);
        svg
    }

    /// The canvas width in pixels.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// The canvas height in pixels.
    pub fn height(&self) -> f64 {
        self.height
    }

    /// Appends raw SVG markup (for elements this helper does not cover).
    pub fn raw(&mut self, markup: &str) {
        self.body.push_str(markup);
        self.body.push('\n');
    }

    /// A filled rectangle from corner `at` with `size`, optionally outlined.
    pub fn rect(&mut self, at: Point, size: (f64, f64), fill: &str, stroke: Option<&str>) {
        let stroke = stroke.map_or(String::new(), |s| format!(" stroke=\"{s}\""));
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"{stroke}/>",
            n(at.0),
            n(at.1),
            n(size.0),
            n(size.1)
        );
    }

    /// A straight line.
    pub fn line(&mut self, from: Point, to: Point, stroke: &str, width: f64) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
            n(from.0),
            n(from.1),
            n(to.0),
            n(to.1),
            n(width)
        );
    }

    /// A dashed straight line.
    pub fn dashed_line(&mut self, from: Point, to: Point, stroke: &str, width: f64) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{}\" \
             stroke-dasharray=\"4 3\"/>",
            n(from.0),
            n(from.1),
            n(to.0),
            n(to.1),
            n(width)
        );
    }

    /// An open polyline through `points` (skipped if fewer than 2).
    pub fn polyline(&mut self, points: &[Point], stroke: &str, width: f64) {
        if points.len() < 2 {
            return;
        }
        let _ = writeln!(
            self.body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{}\" \
             stroke-linejoin=\"round\"/>",
            points_attr(points),
            n(width)
        );
    }

    /// A closed, filled polygon with `opacity` in [0, 1].
    pub fn polygon(&mut self, points: &[Point], fill: &str, opacity: f64) {
        if points.len() < 3 {
            return;
        }
        let _ = writeln!(
            self.body,
            "<polygon points=\"{}\" fill=\"{fill}\" fill-opacity=\"{}\" stroke=\"none\"/>",
            points_attr(points),
            n(opacity)
        );
    }

    /// A filled circle.
    pub fn circle(&mut self, center: Point, radius: f64, fill: &str) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\"/>",
            n(center.0),
            n(center.1),
            n(radius)
        );
    }

    /// An outlined circle with a white fill (a "start" marker).
    pub fn ring(&mut self, center: Point, radius: f64, stroke: &str) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"#ffffff\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
            n(center.0),
            n(center.1),
            n(radius)
        );
    }

    /// Text at `at`; `anchor` is `start`, `middle` or `end`; `class` is a
    /// free label kept as an attribute (useful for tests and styling).
    pub fn text(&mut self, at: Point, class: &str, text: &str, size: f64, anchor: &str) {
        let _ = writeln!(
            self.body,
            "<text class=\"{}\" x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" \
             font-family=\"sans-serif\">{}</text>",
            escape(class),
            n(at.0),
            n(at.1),
            n(size),
            escape(text)
        );
    }

    /// Text rotated 90 degrees counter-clockwise (a y-axis title).
    pub fn vertical_text(&mut self, at: Point, text: &str, size: f64) {
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\" font-family=\"sans-serif\" \
             transform=\"rotate(-90 {} {})\">{}</text>",
            n(at.0),
            n(at.1),
            n(size),
            n(at.0),
            n(at.1),
            escape(text)
        );
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">\n{}</svg>\n",
            n(self.width),
            n(self.height),
            n(self.width),
            n(self.height),
            self.body
        )
    }
}

fn points_attr(points: &[Point]) -> String {
    let parts: Vec<String> = points.iter().map(|&(x, y)| format!("{},{}", n(x), n(y))).collect();
    parts.join(" ")
}

/// Maps data values to pixels, linearly or on a log10 scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    domain: (f64, f64),
    range: (f64, f64),
    log: bool,
}

impl Scale {
    /// `domain.0 -> range.0`, `domain.1 -> range.1`, linearly. A zero-width
    /// domain is widened by 1 on each side so that mapping stays finite.
    pub fn linear(domain: (f64, f64), range: (f64, f64)) -> Scale {
        let domain = if domain.0 == domain.1 {
            (domain.0 - 1.0, domain.1 + 1.0)
        } else {
            domain
        };
        Scale {
            domain,
            range,
            log: false,
        }
    }

    /// Like [`Scale::linear`] on log10 of the values; the domain must be
    /// positive (non-positive values are clamped to the domain's low end).
    pub fn log(domain: (f64, f64), range: (f64, f64)) -> Scale {
        let low = domain.0.max(f64::MIN_POSITIVE);
        let high = if domain.1 > low { domain.1 } else { low * 10.0 };
        Scale {
            domain: (low, high),
            range,
            log: true,
        }
    }

    /// The data interval.
    pub fn domain(&self) -> (f64, f64) {
        self.domain
    }

    /// The pixel position of `value`.
    pub fn map(&self, value: f64) -> f64 {
        let (a, b, v) = if self.log {
            (
                self.domain.0.log10(),
                self.domain.1.log10(),
                value.max(self.domain.0).log10(),
            )
        } else {
            (self.domain.0, self.domain.1, value)
        };
        self.range.0 + (v - a) / (b - a) * (self.range.1 - self.range.0)
    }

    /// About `count` round tick values inside the domain (powers of ten on
    /// a log scale).
    pub fn ticks(&self, count: usize) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.domain.0.log10().floor() as i32,
                self.domain.1.log10().ceil() as i32,
            );
            let inside = |v: &f64| *v >= self.domain.0 * 0.999 && *v <= self.domain.1 * 1.001;
            // Few decades: label 1, 2 and 5 of each; many: every k-th power of ten.
            let multiples: &[f64] = if b - a <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            let step = ((b - a) as usize / count.max(1)).max(1);
            return (a..=b)
                .step_by(step)
                .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
                .filter(inside)
                .collect();
        }
        nice_ticks(self.domain.0, self.domain.1, count)
    }
}

/// Round tick values (multiples of 1, 2 or 5 times a power of ten) covering
/// `[low, high]`, about `count` of them.
pub fn nice_ticks(low: f64, high: f64, count: usize) -> Vec<f64> {
    let (low, high) = if low <= high { (low, high) } else { (high, low) };
    let span = high - low;
    if span <= 0.0 || !span.is_finite() {
        return vec![low];
    }
    let rough = span / count.max(1) as f64;
    let exponent = rough.log10().floor() as i32;
    let magnitude = 10f64.powi(exponent);
    let multiple = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= rough)
        .unwrap_or(10.0);
    let step = multiple * magnitude;
    // i * multiple is an exact integer; dividing by an exact power of ten
    // (rather than multiplying by 0.1) keeps 0.6 from printing as 0.6000000000000001.
    let value = |i: i64| {
        let units = i as f64 * multiple;
        if exponent < 0 {
            units / 10f64.powi(-exponent)
        } else {
            units * magnitude
        }
    };
    let first = (low / step - 1e-9).ceil() as i64;
    let last = (high / step + 1e-9).floor() as i64;
    (first..=last).map(value).collect()
}

/// A short label for a tick value: `1.2k`, `750k`, `-3M`, `0.001`, `1e-6`.
pub fn tick_label(value: f64) -> String {
    let abs = value.abs();
    if abs == 0.0 {
        return "0".to_string();
    }
    if abs >= 1e6 {
        return format!("{}M", trim(value / 1e6));
    }
    if abs >= 1e4 {
        return format!("{}k", trim(value / 1e3));
    }
    if abs < 1e-3 {
        return format!("{value:e}");
    }
    trim(value)
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_scale_maps_ends_and_middle() {
        let s = Scale::linear((0.0, 4.0), (100.0, 0.0));
        assert_eq!(s.map(0.0), 100.0);
        assert_eq!(s.map(4.0), 0.0);
        assert_eq!(s.map(1.0), 75.0);
    }

    #[test]
    fn log_scale_puts_decades_evenly() {
        let s = Scale::log((0.01, 1.0), (0.0, 200.0));
        assert!((s.map(0.1) - 100.0).abs() < 1e-9);
        assert_eq!(s.ticks(5), vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]);
        let wide = Scale::log((1e-4, 1.0), (0.0, 200.0));
        assert_eq!(wide.ticks(5), vec![1e-4, 1e-3, 0.01, 0.1, 1.0]);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(-2.0, 2.0, 4), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        assert_eq!(nice_ticks(3.0, 3.0, 4), vec![3.0]);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(750_000.0), "750k");
        assert_eq!(tick_label(-3_000_000.0), "-3M");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn text_is_escaped() {
        let mut svg = Svg::new(10.0, 10.0);
        svg.text((1.0, 1.0), "t", "a<b & \"c\"", 10.0, "start");
        let out = svg.finish();
        assert!(out.contains("a&lt;b &amp; &quot;c&quot;"), "{out}");
        assert!(out.ends_with("</svg>\n"));
    }
}
