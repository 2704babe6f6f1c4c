//! The race's figures, as hand-written SVG: the quality of every seed per
//! entrant (with the median and its interval), and validation-loss curves
//! (median and quartile band over seeds).

use super::report::{thousands, TrackTable};
use super::stats;
use crate::svg::{color, tick_label, Scale, Svg};

/// Qualities below this are drawn clipped at the left edge (a diverged run
/// at -10,000,000 would otherwise squash every other point together).
pub const QUALITY_FLOOR: f64 = -1_000_000.0;

const LEFT_PAD: f64 = 20.0;
const CHAR_WIDTH: f64 = 7.0;

/// A strip plot: one row per entrant, a dot per seed, the median as a
/// vertical tick and its bootstrap interval as a bar.
pub fn quality_plot(table: &TrackTable) -> String {
    let label_width = table.rows.iter().map(|r| r.entrant.len()).max().unwrap_or(8) as f64 * CHAR_WIDTH;
    let (left, right, top, row_height) = (label_width + LEFT_PAD, 30.0, 56.0, 30.0);
    let width = left + 560.0 + right;
    let height = top + row_height * table.rows.len() as f64 + 50.0;
    let all: Vec<f64> = table.rows.iter().flat_map(|r| r.qualities()).map(|(_, q)| q).collect();
    let low = all.iter().copied().fold(f64::INFINITY, f64::min).max(QUALITY_FLOOR);
    let high = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.05 * (high - low).max(1.0);
    let x = Scale::linear((low - pad, high + pad), (left, width - right));
    let mut svg = Svg::new(width, height);
    svg.text(
        (width / 2.0, 20.0),
        "title",
        &format!("Quality per seed, track n_hidden={}", table.n_hidden),
        15.0,
        "middle",
    );
    svg.text(
        (width / 2.0, 38.0),
        "subtitle",
        "dots: seeds · bar: 95% bootstrap interval of the median · tick: median",
        11.0,
        "middle",
    );
    let bottom = top + row_height * table.rows.len() as f64;
    draw_quality_axis(&mut svg, &x, top, bottom);
    for (i, row) in table.rows.iter().enumerate() {
        let y = top + row_height * (i as f64 + 0.5);
        let c = color(i);
        svg.text((left - 8.0, y + 4.0), "label", &row.entrant, 12.0, "end");
        let interval = row.quality.interval;
        svg.line((x.map(interval.lower), y), (x.map(interval.upper), y), c, 4.0);
        svg.line(
            (x.map(row.quality.median), y - 9.0),
            (x.map(row.quality.median), y + 9.0),
            "#000000",
            2.0,
        );
        for (k, (_, q)) in row.qualities().into_iter().enumerate() {
            // Spread dots a little vertically so equal qualities stay visible.
            let jitter = ((k % 5) as f64 - 2.0) * 2.0;
            if q < low {
                let px = x.map(low - pad);
                svg.raw(&format!(
                    "<polygon points=\"{},{} {},{} {},{}\" fill=\"{c}\"><title>{}</title></polygon>",
                    px,
                    y + jitter,
                    px + 8.0,
                    y + jitter - 4.0,
                    px + 8.0,
                    y + jitter + 4.0,
                    thousands(q)
                ));
            } else {
                svg.circle((x.map(q), y + jitter), 3.5, c);
            }
        }
    }
    svg.finish()
}

fn draw_quality_axis(svg: &mut Svg, x: &Scale, top: f64, bottom: f64) {
    let (low, high) = x.domain();
    for tick in x.ticks(6) {
        let px = x.map(tick);
        svg.line((px, top), (px, bottom), "#e5e5e5", 1.0);
        svg.text((px, bottom + 16.0), "tick", &tick_label(tick), 11.0, "middle");
    }
    if low < 0.0 && high > 0.0 {
        svg.dashed_line((x.map(0.0), top), (x.map(0.0), bottom), "#888888", 1.0);
    }
    svg.line((x.map(low), bottom), (x.map(high), bottom), "#000000", 1.0);
    svg.text(
        ((x.map(low) + x.map(high)) / 2.0, bottom + 36.0),
        "axis",
        &format!(
            "quality (higher is better; below {} drawn as triangles at the edge)",
            thousands(QUALITY_FLOOR)
        ),
        12.0,
        "middle",
    );
}

/// The median and quartiles, over the runs still training at each epoch,
/// drawn while at least half of the entrant's runs are still training.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveBand {
    /// The entrant.
    pub entrant: String,
    /// `(epoch, q25, median, q75)`.
    pub points: Vec<(usize, f64, f64, f64)>,
}

/// The bands of every entrant of `table`.
pub fn curve_bands(table: &TrackTable) -> Vec<CurveBand> {
    table
        .rows
        .iter()
        .map(|row| {
            let curves: Vec<&Vec<f64>> = row.runs.iter().map(|(_, r)| &r.val_loss).collect();
            let needed = curves.len().div_ceil(2);
            let mut points = Vec::new();
            for epoch in 0.. {
                let values: Vec<f64> = curves.iter().filter_map(|c| c.get(epoch).copied()).collect();
                if values.len() < needed || values.is_empty() {
                    break;
                }
                let q = |p| stats::quantile(&values, p).expect("values is not empty");
                points.push((epoch, q(0.25), q(0.5), q(0.75)));
            }
            CurveBand {
                entrant: row.entrant.clone(),
                points,
            }
        })
        .collect()
}

/// Validation loss per epoch (log scale): a median line and an
/// interquartile band per entrant, with a legend.
pub fn curves_plot(table: &TrackTable) -> String {
    let bands = curve_bands(table);
    let (left, right, top, bottom_pad) = (70.0, 20.0, 50.0, 60.0);
    let legend_height = 18.0 * bands.len() as f64;
    let (width, plot_height) = (760.0, 380.0);
    let height = top + plot_height + bottom_pad + legend_height;
    let last_epoch = bands
        .iter()
        .filter_map(|b| b.points.last())
        .map(|p| p.0)
        .max()
        .unwrap_or(1);
    let values = bands.iter().flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.3]));
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let (low, high) = if low.is_finite() { (low, high) } else { (0.01, 1.0) };
    let x = Scale::linear((0.0, last_epoch.max(1) as f64), (left, width - right));
    let y = Scale::log((low * 0.9, high * 1.1), (top + plot_height, top));
    let mut svg = Svg::new(width, height);
    svg.text(
        (width / 2.0, 22.0),
        "title",
        &format!("Validation loss, track n_hidden={}", table.n_hidden),
        15.0,
        "middle",
    );
    svg.text(
        (width / 2.0, 40.0),
        "subtitle",
        "line: median over seeds still training · band: quartiles · drawn while at least half the seeds run",
        11.0,
        "middle",
    );
    draw_curve_axes(&mut svg, &x, &y, top, top + plot_height);
    for (i, band) in bands.iter().enumerate() {
        let c = color(i);
        let upper = band.points.iter().map(|p| (x.map(p.0 as f64), y.map(p.3)));
        let lower = band.points.iter().rev().map(|p| (x.map(p.0 as f64), y.map(p.1)));
        svg.polygon(&upper.chain(lower).collect::<Vec<_>>(), c, 0.18);
        let median: Vec<_> = band.points.iter().map(|p| (x.map(p.0 as f64), y.map(p.2))).collect();
        svg.polyline(&median, c, 2.0);
        let ly = top + plot_height + 50.0 + 18.0 * i as f64;
        svg.line((left, ly - 4.0), (left + 24.0, ly - 4.0), c, 3.0);
        svg.text((left + 32.0, ly), "legend", &band.entrant, 12.0, "start");
    }
    svg.finish()
}

fn draw_curve_axes(svg: &mut Svg, x: &Scale, y: &Scale, top: f64, bottom: f64) {
    let (x0, x1) = (x.map(x.domain().0), x.map(x.domain().1));
    for tick in x.ticks(8) {
        svg.line((x.map(tick), top), (x.map(tick), bottom), "#eeeeee", 1.0);
        svg.text((x.map(tick), bottom + 16.0), "tick", &tick_label(tick), 11.0, "middle");
    }
    for tick in y.ticks(6) {
        svg.line((x0, y.map(tick)), (x1, y.map(tick)), "#eeeeee", 1.0);
        svg.text((x0 - 6.0, y.map(tick) + 4.0), "tick", &tick_label(tick), 11.0, "end");
    }
    svg.line((x0, bottom), (x1, bottom), "#000000", 1.0);
    svg.line((x0, top), (x0, bottom), "#000000", 1.0);
    svg.text(((x0 + x1) / 2.0, bottom + 34.0), "axis", "epoch", 12.0, "middle");
    svg.vertical_text((18.0, (top + bottom) / 2.0), "validation MSE (log scale)", 12.0);
}
