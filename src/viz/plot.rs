//! The `viz` figure: a heat map and contour lines of `ln(1 + f - f_min)`
//! over the function's window, the known minima, and one trajectory per
//! optimizer with a legend; below it, `f - min f` per step on a log scale,
//! one line per optimizer in its path's colour. Hand-written SVG (see
//! [`crate::svg`]).

use super::{Function, Trajectory};
use crate::svg::{color, escape, tick_label, Scale, Svg};
use std::fmt::Write;

/// Grid nodes per side for the heat map and contours.
const GRID: usize = 81;
/// Contour levels.
const LEVELS: usize = 14;
/// Shades of the heat map.
const SHADES: usize = 24;

const LEFT: f64 = 60.0;
const TOP: f64 = 64.0;
const SIDE: f64 = 560.0;
const LEGEND_WIDTH: f64 = 260.0;
/// Top of the loss panel (below the map's x axis title).
const LOSS_TOP: f64 = TOP + SIDE + 90.0;
/// Height of the loss panel.
const LOSS_HEIGHT: f64 = 240.0;
/// The loss panel shows at most this many decades below its highest value;
/// smaller gaps (and zero or negative ones) are drawn at the floor.
const LOSS_DECADES: i32 = 24;

/// The SVG of `paths` on `function`.
pub fn render(function: Function, paths: &[Trajectory], steps: usize) -> crate::engine::Result<String> {
    let window = function.window();
    let ((x0, x1), (y0, y1)) = window;
    let x = Scale::linear((x0, x1), (LEFT, LEFT + SIDE));
    let y = Scale::linear((y0, y1), (TOP + SIDE, TOP));
    let mut svg = Svg::new(LEFT + SIDE + LEGEND_WIDTH, LOSS_TOP + LOSS_HEIGHT + 50.0);
    let title = format!("{}: f = {}", function.name(), function.formula());
    svg.text((LEFT + SIDE / 2.0, 24.0), "title", &title, 15.0, "middle");
    let subtitle = format!("{steps} steps · shading and contours: ln(1 + f - min f) · ✕: global minima");
    svg.text((LEFT + SIDE / 2.0, 44.0), "subtitle", &subtitle, 11.0, "middle");
    let (heights, lowest) = transformed_grid(function, window)?;
    draw_heat_map(&mut svg, &heights, &x, &y, window);
    draw_contours(&mut svg, &heights, &x, &y, window);
    draw_axes(&mut svg, &x, &y);
    for &(mx, my) in function.minima() {
        draw_minimum(&mut svg, (x.map(mx), y.map(my)));
    }
    svg.raw(&format!(
        "<clipPath id=\"plot-area\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{SIDE}\" height=\"{SIDE}\"/></clipPath>"
    ));
    for (i, path) in paths.iter().enumerate() {
        draw_path(&mut svg, path, color(i), &x, &y);
        draw_legend_entry(&mut svg, i, path);
    }
    draw_loss_panel(&mut svg, function, lowest, paths, steps);
    Ok(svg.finish())
}

/// `ln(1 + f - min f)` on the grid, row-major with row 0 at `y_min`, and
/// the grid's lowest `f`.
fn transformed_grid(function: Function, window: ((f64, f64), (f64, f64))) -> crate::engine::Result<(Vec<f64>, f64)> {
    let values = function.grid(window, GRID, GRID)?;
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((values.into_iter().map(|v| (v - low).ln_1p()).collect(), low))
}

/// The `min f` the loss panel subtracts, and how the panel names it: `f`
/// at the global minima, or, for a function without one (the saddle), the
/// lowest `f` on the window's grid.
fn loss_reference(function: Function, grid_lowest: f64) -> (f64, &'static str) {
    let minima = function.minima();
    if minima.is_empty() {
        return (grid_lowest, "lowest f in the window");
    }
    let best = minima
        .iter()
        .map(|&(x, y)| function.value(x, y))
        .fold(f64::INFINITY, f64::min);
    (best, "f at the global minimum")
}

/// `(step, f - reference)` along `path`, up to its last finite value: a
/// run that diverged is drawn until it did.
pub fn loss_gaps(path: &Trajectory, reference: f64) -> Vec<(usize, f64)> {
    path.points
        .iter()
        .map(|p| (p.step, p.f - reference))
        .take_while(|(_, gap)| gap.is_finite())
        .collect()
}

/// The log axis's `(floor, top)`: `top` is the largest gap, `floor` the
/// smallest positive one but at most `LOSS_DECADES` (24) decades below `top`.
/// Without any positive gap the axis is one decade above `1e-16`.
pub fn loss_domain(gaps: &[Vec<(usize, f64)>]) -> (f64, f64) {
    let positive = || gaps.iter().flatten().map(|&(_, g)| g).filter(|&g| g > 0.0);
    let top = positive().fold(0.0, f64::max);
    if top <= 0.0 {
        return (1e-16, 1e-15);
    }
    let smallest = positive().fold(f64::INFINITY, f64::min);
    let floor = smallest.max(top * 10f64.powi(-LOSS_DECADES));
    if floor >= top {
        (top / 10.0, top * 10.0)
    } else {
        (floor, top)
    }
}

/// The second panel: `f - min f` against the step, log y axis, one line
/// per optimizer in its path's colour; gaps at or below the floor (zero and
/// negative ones included) are drawn at the floor.
fn draw_loss_panel(svg: &mut Svg, function: Function, grid_lowest: f64, paths: &[Trajectory], steps: usize) {
    let (reference, what) = loss_reference(function, grid_lowest);
    let gaps: Vec<Vec<(usize, f64)>> = paths.iter().map(|p| loss_gaps(p, reference)).collect();
    let x = Scale::linear((0.0, steps as f64), (LEFT, LEFT + SIDE));
    let y = Scale::log(loss_domain(&gaps), (LOSS_TOP + LOSS_HEIGHT, LOSS_TOP));
    let title = format!("f - min f per step, log scale (min f = {what}; smaller values drawn at the floor)");
    svg.text(
        (LEFT + SIDE / 2.0, LOSS_TOP - 12.0),
        "loss-title",
        &title,
        11.0,
        "middle",
    );
    svg.rect((LEFT, LOSS_TOP), (SIDE, LOSS_HEIGHT), "none", Some("#000000"));
    for tick in x.ticks(8) {
        let px = x.map(tick);
        svg.line(
            (px, LOSS_TOP + LOSS_HEIGHT),
            (px, LOSS_TOP + LOSS_HEIGHT + 5.0),
            "#000000",
            1.0,
        );
        svg.text(
            (px, LOSS_TOP + LOSS_HEIGHT + 18.0),
            "tick",
            &tick_label(tick),
            11.0,
            "middle",
        );
    }
    for tick in y.ticks(6) {
        let py = y.map(tick);
        svg.line((LEFT - 5.0, py), (LEFT, py), "#000000", 1.0);
        svg.line((LEFT, py), (LEFT + SIDE, py), "#e4e4e4", 0.7);
        svg.text((LEFT - 8.0, py + 4.0), "loss-tick", &tick_label(tick), 11.0, "end");
    }
    svg.text(
        (LEFT + SIDE / 2.0, LOSS_TOP + LOSS_HEIGHT + 38.0),
        "axis",
        "step",
        13.0,
        "middle",
    );
    svg.vertical_text((18.0, LOSS_TOP + LOSS_HEIGHT / 2.0), "f - min f", 13.0);
    for (i, (path, gaps)) in paths.iter().zip(&gaps).enumerate() {
        let points: Vec<(f64, f64)> = gaps.iter().map(|&(s, g)| (x.map(s as f64), y.map(g))).collect();
        svg.raw(&format!(
            "<g class=\"loss-curve\" data-entrant=\"{}\">",
            escape(&path.entrant)
        ));
        svg.polyline(&points, color(i), 1.8);
        // A lone point has no line; a stopped run gets a dot where it ended.
        if let (Some(&last), true) = (points.last(), points.len() == 1 || path.stopped.is_some()) {
            svg.circle(last, 3.5, color(i));
        }
        svg.raw("</g>");
    }
}

fn node(window: ((f64, f64), (f64, f64)), i: f64, j: f64) -> (f64, f64) {
    let ((x0, x1), (y0, y1)) = window;
    let t = (GRID - 1) as f64;
    (x0 + (x1 - x0) * i / t, y0 + (y1 - y0) * j / t)
}

/// A pale blue (low) to white to pale orange (high) ramp, `t` in [0, 1].
fn shade(t: f64) -> String {
    let stops = [
        (0.0, [198.0, 219.0, 239.0]),
        (0.5, [247.0, 247.0, 247.0]),
        (1.0, [253.0, 208.0, 162.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let (a, b) = if t <= 0.5 {
        (stops[0], stops[1])
    } else {
        (stops[1], stops[2])
    };
    let u = (t - a.0) / (b.0 - a.0);
    let c: Vec<u8> = (0..3).map(|k| (a.1[k] + u * (b.1[k] - a.1[k])).round() as u8).collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Cells coloured by the mean of their corners, quantised to [`SHADES`]
/// shades; runs of equal shade in a row become one rectangle.
fn draw_heat_map(svg: &mut Svg, heights: &[f64], x: &Scale, y: &Scale, window: ((f64, f64), (f64, f64))) {
    let high = heights.iter().copied().fold(0.0, f64::max).max(1e-12);
    let at = |i: usize, j: usize| heights[j * GRID + i];
    for j in 0..GRID - 1 {
        let level = |i: usize| {
            let mean = (at(i, j) + at(i + 1, j) + at(i, j + 1) + at(i + 1, j + 1)) / 4.0;
            ((mean / high) * (SHADES - 1) as f64).round() as usize
        };
        let mut start = 0;
        while start < GRID - 1 {
            let current = level(start);
            let mut end = start + 1;
            while end < GRID - 1 && level(end) == current {
                end += 1;
            }
            let (px0, py1) = pixel(x, y, node(window, start as f64, j as f64));
            let (px1, py0) = pixel(x, y, node(window, end as f64, (j + 1) as f64));
            // Half a pixel of overlap hides seams between rectangles.
            svg.rect(
                (px0, py0),
                (px1 - px0 + 0.5, py1 - py0 + 0.5),
                &shade(current as f64 / (SHADES - 1) as f64),
                None,
            );
            start = end;
        }
    }
}

fn pixel(x: &Scale, y: &Scale, (dx, dy): (f64, f64)) -> (f64, f64) {
    (x.map(dx), y.map(dy))
}

/// Marching squares: for each level and cell, the segment(s) where the
/// interpolated surface crosses the level; one path per level.
fn draw_contours(svg: &mut Svg, heights: &[f64], x: &Scale, y: &Scale, window: ((f64, f64), (f64, f64))) {
    let high = heights.iter().copied().fold(0.0, f64::max);
    let at = |i: usize, j: usize| heights[j * GRID + i];
    for k in 1..=LEVELS {
        let level = high * k as f64 / (LEVELS + 1) as f64;
        let mut d = String::new();
        for j in 0..GRID - 1 {
            for i in 0..GRID - 1 {
                let corners = [
                    (i as f64, j as f64, at(i, j)),
                    (i as f64 + 1.0, j as f64, at(i + 1, j)),
                    (i as f64 + 1.0, j as f64 + 1.0, at(i + 1, j + 1)),
                    (i as f64, j as f64 + 1.0, at(i, j + 1)),
                ];
                for (a, b) in cell_segments(&corners, level) {
                    let (ax, ay) = pixel(x, y, node(window, a.0, a.1));
                    let (bx, by) = pixel(x, y, node(window, b.0, b.1));
                    let _ = write!(d, "M{ax:.1} {ay:.1}L{bx:.1} {by:.1}");
                }
            }
        }
        if !d.is_empty() {
            svg.raw(&format!(
                "<path d=\"{d}\" fill=\"none\" stroke=\"#8a8a8a\" stroke-width=\"0.7\" stroke-opacity=\"0.8\"/>"
            ));
        }
    }
}

type GridPoint = (f64, f64);

/// The crossings of `level` on a cell's edges (corners counter-clockwise),
/// paired into segments in edge order (which resolves the two ambiguous
/// saddle cases one fixed way).
fn cell_segments(corners: &[(f64, f64, f64); 4], level: f64) -> Vec<(GridPoint, GridPoint)> {
    let mut crossings = Vec::with_capacity(4);
    for e in 0..4 {
        let (ax, ay, av) = corners[e];
        let (bx, by, bv) = corners[(e + 1) % 4];
        if (av < level) != (bv < level) {
            let t = (level - av) / (bv - av);
            crossings.push((ax + t * (bx - ax), ay + t * (by - ay)));
        }
    }
    crossings.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

fn draw_axes(svg: &mut Svg, x: &Scale, y: &Scale) {
    svg.rect((LEFT, TOP), (SIDE, SIDE), "none", Some("#000000"));
    for tick in x.ticks(8) {
        let px = x.map(tick);
        svg.line((px, TOP + SIDE), (px, TOP + SIDE + 5.0), "#000000", 1.0);
        svg.text((px, TOP + SIDE + 18.0), "tick", &tick_label(tick), 11.0, "middle");
    }
    for tick in y.ticks(8) {
        let py = y.map(tick);
        svg.line((LEFT - 5.0, py), (LEFT, py), "#000000", 1.0);
        svg.text((LEFT - 8.0, py + 4.0), "tick", &tick_label(tick), 11.0, "end");
    }
    svg.text((LEFT + SIDE / 2.0, TOP + SIDE + 38.0), "axis", "x", 13.0, "middle");
    svg.vertical_text((18.0, TOP + SIDE / 2.0), "y", 13.0);
}

fn draw_minimum(svg: &mut Svg, (px, py): (f64, f64)) {
    for (stroke, width) in [("#ffffff", 4.0), ("#000000", 2.0)] {
        svg.line((px - 6.0, py - 6.0), (px + 6.0, py + 6.0), stroke, width);
        svg.line((px - 6.0, py + 6.0), (px + 6.0, py - 6.0), stroke, width);
    }
}

fn draw_path(svg: &mut Svg, path: &Trajectory, stroke: &str, x: &Scale, y: &Scale) {
    let points: Vec<(f64, f64)> = path.points.iter().map(|p| (x.map(p.x), y.map(p.y))).collect();
    svg.raw(&format!(
        "<g class=\"trajectory\" data-entrant=\"{}\" clip-path=\"url(#plot-area)\">",
        escape(&path.entrant)
    ));
    svg.polyline(&points, stroke, 2.0);
    if points.len() <= 300 {
        for &p in &points {
            svg.circle(p, 1.6, stroke);
        }
    }
    if let Some(&first) = points.first() {
        svg.ring(first, 5.0, "#000000");
    }
    if let Some(&last) = points.last() {
        svg.circle(last, 4.5, stroke);
    }
    svg.raw("</g>");
}

fn draw_legend_entry(svg: &mut Svg, index: usize, path: &Trajectory) {
    let (lx, ly) = (LEFT + SIDE + 24.0, TOP + 12.0 + 40.0 * index as f64);
    svg.line((lx, ly - 4.0), (lx + 26.0, ly - 4.0), color(index), 3.0);
    svg.text((lx + 34.0, ly), "legend", &path.entrant, 13.0, "start");
    let summary = match (path.points.last(), &path.stopped) {
        (_, Some(why)) => why.clone(),
        (Some(last), None) => format!("end ({:.3}, {:.3}), f = {}", last.x, last.y, short(last.f)),
        (None, None) => String::new(),
    };
    svg.text((lx + 34.0, ly + 16.0), "legend-detail", &summary, 10.5, "start");
}

fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::TrajectoryPoint;

    fn path_with(fs: &[f64], stopped: Option<&str>) -> Trajectory {
        Trajectory {
            optimizer: "sgd".into(),
            entrant: "sgd(lr=1)".into(),
            hp: Default::default(),
            points: fs
                .iter()
                .enumerate()
                .map(|(step, &f)| TrajectoryPoint {
                    step,
                    x: 0.0,
                    y: 0.0,
                    f,
                    update: None,
                })
                .collect(),
            stopped: stopped.map(String::from),
        }
    }

    /// The `points` attribute of the loss curve of `entrant`, as pixels.
    fn loss_curve(svg: &str, entrant: &str) -> Vec<(f64, f64)> {
        let group = svg
            .split(&format!("<g class=\"loss-curve\" data-entrant=\"{entrant}\">"))
            .nth(1)
            .expect("a loss curve for the entrant");
        let attr = group
            .split("points=\"")
            .nth(1)
            .expect("a polyline")
            .split('"')
            .next()
            .unwrap();
        attr.split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn gaps_stop_at_the_first_non_finite_value() {
        let gaps = loss_gaps(&path_with(&[5.0, 3.0, f64::NAN, 1.0], None), 1.0);
        assert_eq!(gaps, vec![(0, 4.0), (1, 2.0)]);
        let gaps = loss_gaps(&path_with(&[5.0, f64::INFINITY], None), 1.0);
        assert_eq!(gaps, vec![(0, 4.0)]);
    }

    #[test]
    fn the_domain_spans_positive_gaps_and_at_most_24_decades() {
        assert_eq!(
            loss_domain(&[vec![(0, 100.0), (1, 0.5), (2, 0.0), (3, -2.0)]]),
            (0.5, 100.0)
        );
        let (floor, top) = loss_domain(&[vec![(0, 1.0), (1, 1e-40)]]);
        assert_eq!(top, 1.0);
        assert!((floor - 1e-24).abs() < 1e-38, "{floor}");
        assert_eq!(loss_domain(&[vec![(0, 0.0)], vec![]]), (1e-16, 1e-15));
        assert_eq!(loss_domain(&[vec![(0, 2.0), (1, 2.0)]]), (0.2, 20.0));
    }

    #[test]
    fn zero_and_negative_gaps_sit_on_the_floor_and_a_diverged_run_ends_at_its_last_finite_value() {
        // The quadratic's minimum is f = 0, so f is the gap itself.
        let converged = path_with(&[8.0, 1.0, 0.0, -1e-18, 2.0], None);
        let diverged = path_with(&[8.0, 80.0, f64::NAN], Some("stopped at step 2"));
        let diverged = Trajectory {
            entrant: "sgd(lr=9)".into(),
            ..diverged
        };
        let svg = render(Function::Quadratic, &[converged, diverged], 4).unwrap();
        assert_eq!(svg.matches("<g class=\"loss-curve\"").count(), 2);
        let floor_px = LOSS_TOP + LOSS_HEIGHT;
        let converged = loss_curve(&svg, "sgd(lr=1)");
        assert_eq!(converged.len(), 5);
        assert_eq!(converged[2].1, floor_px, "f - min f = 0 is drawn at the floor");
        assert_eq!(converged[3].1, floor_px, "a negative gap is drawn at the floor");
        assert!(converged[4].1 < floor_px && converged[4].1 > converged[0].1);
        let diverged = loss_curve(&svg, "sgd(lr=9)");
        assert_eq!(diverged.len(), 2, "drawn up to the last finite value");
        assert_eq!(diverged[1].1, LOSS_TOP, "80 is the panel's top");
    }
}
