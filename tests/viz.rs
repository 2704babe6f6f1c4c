//! `ferrograd viz`: its `--json` trajectories are the optimizers' own
//! recurrences (SGD and Adam rewritten independently here), the test
//! functions' autograd gradients match finite differences and closed forms,
//! their minima are where documented, and the SVG holds one path per
//! optimizer and one loss curve per optimizer on a log axis.
#![cfg(feature = "cli")]

use ferrograd::race::grid::Entrant;
use ferrograd::viz::{self, Function};
use std::process::{Command, Output};

fn ferrograd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .output()
        .expect("the ferrograd binary runs")
}

fn viz_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["viz", "--json"];
    all.extend_from_slice(args);
    let o = ferrograd(&all);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

/// `(x, y)` of every point of trajectory `index`.
fn points(doc: &serde_json::Value, index: usize) -> Vec<(f64, f64)> {
    doc["trajectories"][index]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| (p["x"].as_f64().unwrap(), p["y"].as_f64().unwrap()))
        .collect()
}

/// The Rosenbrock gradient in closed form.
fn rosenbrock_gradient(x: f64, y: f64) -> [f64; 2] {
    [-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)]
}

fn assert_close(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        approx::abs_diff_eq!(a, b, epsilon = tolerance * (1.0 + b.abs())),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn sgd_json_trajectory_is_x_minus_lr_times_the_clipped_gradient() {
    let doc = viz_json(&[
        "--function",
        "rosenbrock",
        "--optimizers",
        "sgd",
        "--hp",
        "sgd.lr=0.002,0.01",
        "--hp",
        "sgd.clip=1000",
        "--steps",
        "60",
        "--start",
        "-1.5,2.5",
    ]);
    for (index, lr) in [(0, 0.002), (1, 0.01)] {
        assert_eq!(
            doc["trajectories"][index]["entrant"],
            format!("sgd(clip=1e3,lr={})", if lr == 0.002 { "2e-3" } else { "0.01" })
        );
        let path = points(&doc, index);
        assert_eq!(path.len(), 61);
        let (mut x, mut y) = (-1.5, 2.5);
        for (k, &(px, py)) in path.iter().enumerate() {
            assert_close(px, x, 1e-12, &format!("lr {lr} step {k} x"));
            assert_close(py, y, 1e-12, &format!("lr {lr} step {k} y"));
            let g = rosenbrock_gradient(x, y).map(|g| g.clamp(-1000.0, 1000.0));
            x -= lr * g[0];
            y -= lr * g[1];
        }
    }
}

#[test]
fn adam_json_trajectory_is_the_adam_recurrence() {
    let (lr, b1, b2, eps, clip) = (0.05, 0.9, 0.999, 1e-8, 1.0);
    let doc = viz_json(&[
        "--function",
        "rosenbrock",
        "--optimizers",
        "clipped_adam",
        "--lr",
        "0.05",
        "--steps",
        "80",
    ]);
    let (mut x, mut y) = Function::Rosenbrock.default_start();
    let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
    for (k, &(px, py)) in points(&doc, 0).iter().enumerate() {
        assert_close(px, x, 1e-10, &format!("step {k} x"));
        assert_close(py, y, 1e-10, &format!("step {k} y"));
        let g = rosenbrock_gradient(x, y).map(|g: f64| g.clamp(-clip, clip));
        let t = (k + 1) as f64;
        let mut step = [0.0; 2];
        for i in 0..2 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let m_hat = m[i] / (1.0 - b1.powf(t));
            let v_hat = v[i] / (1.0 - b2.powf(t));
            step[i] = -lr * m_hat / (v_hat.sqrt() + eps);
        }
        x += step[0];
        y += step[1];
    }
}

#[test]
fn json_updates_link_consecutive_points() {
    let doc = viz_json(&[
        "--function",
        "himmelblau",
        "--optimizers",
        "lion,sgdm",
        "--lr",
        "0.01",
        "--steps",
        "25",
    ]);
    assert_eq!(doc["function"], "himmelblau");
    assert_eq!(doc["minima"].as_array().unwrap().len(), 4);
    for t in doc["trajectories"].as_array().unwrap() {
        let pts = t["points"].as_array().unwrap();
        assert_eq!(pts.len(), 26);
        for (k, pair) in pts.windows(2).enumerate() {
            assert_eq!(pair[0]["step"], k);
            let u = pair[0]["update"].as_array().expect("an update before the last point");
            for (axis, key) in ["x", "y"].iter().enumerate() {
                let expected = pair[0][key].as_f64().unwrap() + u[axis].as_f64().unwrap();
                assert_eq!(pair[1][key].as_f64().unwrap(), expected);
            }
            let f = Function::Himmelblau.value(pair[0]["x"].as_f64().unwrap(), pair[0]["y"].as_f64().unwrap());
            assert_eq!(pair[0]["f"].as_f64().unwrap(), f);
        }
        assert!(pts.last().unwrap()["update"].is_null());
    }
}

#[test]
fn gradients_match_central_differences() {
    let h = 1e-6;
    let points = [(0.3, -0.7), (-1.2, 1.1), (2.1, 0.4), (-0.05, 0.45)];
    for function in Function::ALL {
        for &(x, y) in &points {
            let (f, g) = function.value_and_gradient(x, y).unwrap();
            assert_eq!(f, function.value(x, y));
            let dx = (function.value(x + h, y) - function.value(x - h, y)) / (2.0 * h);
            let dy = (function.value(x, y + h) - function.value(x, y - h)) / (2.0 * h);
            let what = format!("{} at ({x}, {y})", function.name());
            assert_close(g[0], dx, 1e-6, &format!("{what} df/dx"));
            assert_close(g[1], dy, 1e-6, &format!("{what} df/dy"));
        }
    }
    let (_, g) = Function::Rosenbrock.value_and_gradient(-1.2, 1.1).unwrap();
    assert_eq!(g, rosenbrock_gradient(-1.2, 1.1));
}

#[test]
fn minima_are_where_documented() {
    for function in Function::ALL {
        for &(x, y) in function.minima() {
            let (f, g) = function.value_and_gradient(x, y).unwrap();
            let what = format!("{} at ({x}, {y})", function.name());
            assert!(f.abs() < 1e-20, "{what}: f = {f}");
            assert!(g[0].abs() < 1e-9 && g[1].abs() < 1e-9, "{what}: gradient {g:?}");
            for k in 0..8 {
                let angle = k as f64 * std::f64::consts::FRAC_PI_4;
                let near = function.value(x + 1e-3 * angle.cos(), y + 1e-3 * angle.sin());
                assert!(near > f, "{what}: f is lower nearby ({near})");
            }
        }
    }
    assert_eq!(Function::Beale.minima(), &[(3.0, 0.5)]);
    assert_eq!(Function::Rosenbrock.minima(), &[(1.0, 1.0)]);
    // The saddle: a stationary point that is a minimum along x and a
    // maximum along y.
    let (f, g) = Function::Saddle.value_and_gradient(0.0, 0.0).unwrap();
    assert_eq!((f, g), (0.0, [0.0, 0.0]));
    assert!(Function::Saddle.value(0.1, 0.0) > 0.0 && Function::Saddle.value(0.0, 0.1) < 0.0);
    // Rastrigin's local minima are higher than its global one.
    assert!(Function::Rastrigin.value(1.0, 1.0) > 1.9);
}

#[test]
fn adam_reaches_the_rosenbrock_minimum_and_newton_cg_runs_with_curvature() {
    let adam = Entrant {
        optimizer: "clipped_adam".into(),
        hp: [("lr".to_string(), "0.02".to_string())].into(),
    };
    let path = viz::trajectory(Function::Rosenbrock, &adam, (-1.5, 2.5), 6000).unwrap();
    let end = path.points.last().unwrap();
    assert!(
        (end.x - 1.0).abs() < 0.05 && (end.y - 1.0).abs() < 0.1,
        "adam ended at ({}, {})",
        end.x,
        end.y
    );
    // A curvature optimizer runs through the same calls, with Hessian-vector
    // products of f. Undamped and uncapped, Newton-CG is Newton's method,
    // which lands on a quadratic's minimum in one step (CG is exact in two
    // iterations on two unknowns): 0.5 x^2 + 50 y^2 from (-8, 6) to (0, 0).
    let hp = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let newton = Entrant {
        optimizer: "newton_cg".into(),
        hp: hp(&[("damping", "0"), ("max_norm", "0"), ("cg_iters", "2"), ("tol", "1e-12")]),
    };
    let path = viz::trajectory(Function::Quadratic, &newton, (-8.0, 6.0), 1).unwrap();
    let end = path.points.last().unwrap();
    assert!(path.stopped.is_none(), "{:?}", path.stopped);
    assert!(
        end.x.abs() < 1e-10 && end.y.abs() < 1e-10,
        "one Newton step ended at ({}, {})",
        end.x,
        end.y
    );
}

#[test]
fn the_svg_has_one_path_per_optimizer_and_a_legend() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rosen.svg");
    let o = ferrograd(&[
        "viz",
        "--function",
        "rosenbrock",
        "--optimizers",
        "sgd,adam,lion",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g class=\"trajectory\"").count(), 3);
    // Without --lr each optimizer runs at the function's suggested rate.
    for name in ["sgd(lr=0.02)", "adam(lr=0.02)", "lion(lr=0.02)"] {
        assert!(svg.contains(&format!("data-entrant=\"{name}\"")), "{name}");
        assert!(svg.contains(&format!(">{name}</text>")), "legend {name}");
    }
    assert!(svg.contains("<path d=\"M"), "contour lines");
}

/// The value of a tick label (`1e-6`, `0.02`, `10k`, `1M`).
fn tick_value(label: &str) -> f64 {
    let (number, scale) = match label.strip_suffix('M') {
        Some(n) => (n, 1e6),
        None => match label.strip_suffix('k') {
            Some(n) => (n, 1e3),
            None => (label, 1.0),
        },
    };
    number.parse::<f64>().unwrap_or_else(|_| panic!("tick label {label:?}")) * scale
}

/// The value of attribute `name` in `element`.
fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
    element
        .split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {element}"))
}

/// The first `<polyline` element after `marker`.
fn polyline_after<'a>(svg: &'a str, marker: &str) -> &'a str {
    let rest = svg.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker}"));
    let start = rest.find("<polyline").expect("a polyline");
    &rest[start..start + rest[start..].find("/>").unwrap()]
}

#[test]
fn the_loss_panel_has_one_curve_per_optimizer_in_its_colour_on_a_log_axis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quadratic.svg");
    // sgd at lr 0.05 > 2/L = 2/101 diverges along y; sgdm at 0.015 converges.
    let doc = viz_json(&[
        "--function",
        "quadratic",
        "--optimizers",
        "sgd,sgdm",
        "--lr",
        "0.015",
        "--hp",
        "sgd.lr=0.05",
        "--hp",
        "sgd.clip=1e9",
        "--steps",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_eq!(svg.matches("<g class=\"loss-curve\"").count(), 2);
    for name in ["sgd(clip=1e9,lr=0.05)", "sgdm(lr=0.015)"] {
        let path = polyline_after(&svg, &format!("<g class=\"trajectory\" data-entrant=\"{name}\""));
        let loss = polyline_after(&svg, &format!("<g class=\"loss-curve\" data-entrant=\"{name}\""));
        assert_eq!(
            attribute(loss, "stroke"),
            attribute(path, "stroke"),
            "{name}: same colour"
        );
    }
    // The diverged run is drawn up to its last (finite) point.
    let sgd = &doc["trajectories"][0];
    assert!(sgd["stopped"].is_string(), "sgd at lr 0.05 diverges: {sgd}");
    let drawn = polyline_after(&svg, "<g class=\"loss-curve\" data-entrant=\"sgd(clip=1e9,lr=0.05)\"");
    let n = sgd["points"].as_array().unwrap().len();
    assert_eq!(attribute(drawn, "points").split(' ').count(), n);
    // Log axis: pixels per decade are the same between any two ticks.
    let ticks: Vec<(f64, f64)> = svg
        .split("<text class=\"loss-tick\"")
        .skip(1)
        .map(|t| {
            let label = t.split('>').nth(1).unwrap().split('<').next().unwrap();
            (tick_value(label), attribute(t, "y").parse::<f64>().unwrap())
        })
        .collect();
    assert!(ticks.len() >= 4, "{ticks:?}");
    let per_decade = |a: (f64, f64), b: (f64, f64)| (a.1 - b.1) / (b.0 / a.0).log10();
    let first = per_decade(ticks[0], ticks[1]);
    assert!(first > 0.0, "larger values are higher up: {ticks:?}");
    for pair in ticks.windows(2) {
        assert!((per_decade(pair[0], pair[1]) - first).abs() < 0.05, "{ticks:?}");
    }
}

#[test]
fn usage_errors_are_one_line() {
    for args in [
        vec!["viz", "--function", "sphere"],
        vec!["viz", "--start", "1"],
        vec!["viz", "--optimizers", "adamm"],
        vec!["viz", "--hp", "adam.momentum=1"],
        vec!["viz", "--steps", "0"],
    ] {
        let o = ferrograd(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error:") && stderr.trim_end().lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_override_without_an_optimizers_name_sets_every_listed_optimizer_that_has_it() {
    let base = ["--function", "rosenbrock", "--optimizers", "adam,sgd", "--steps", "20"];
    let with = |hps: &[&str]| {
        let mut args = base.to_vec();
        for hp in hps {
            args.extend(["--hp", hp]);
        }
        viz_json(&args)
    };
    let unnamed = with(&["lr=0.003"]);
    assert_eq!(unnamed, with(&["adam.lr=0.003", "sgd.lr=0.003"]));
    assert_ne!(
        points(&unnamed, 0),
        points(&with(&["sgd.lr=0.003"]), 0),
        "adam's lr was not set"
    );
    // beta1 is adam's alone: sgd keeps its path.
    let beta = with(&["beta1=0.5"]);
    assert_eq!(beta, with(&["adam.beta1=0.5"]));
    let o = ferrograd(&["viz", "--optimizers", "adam,sgd", "--hp", "nosuch=1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no optimizer in --optimizers has a hyperparameter"),
        "{stderr}"
    );
}

#[test]
fn without_lr_each_function_uses_its_suggested_rate_and_default_keeps_the_catalogs() {
    let doc = viz_json(&["--function", "rosenbrock", "--optimizers", "clipped_adam"]);
    let label = doc["trajectories"][0]["entrant"].to_string();
    assert!(label.contains("lr=0.02"), "{label}");
    let (x, y) = *points(&doc, 0).last().unwrap();
    assert!(
        (x - 1.0).abs() < 0.05 && (y - 1.0).abs() < 0.05,
        "clipped_adam ends at ({x}, {y})"
    );
    let doc = viz_json(&[
        "--function",
        "rosenbrock",
        "--optimizers",
        "clipped_adam",
        "--lr",
        "default",
    ]);
    let label = doc["trajectories"][0]["entrant"].to_string();
    assert!(!label.contains("lr="), "{label}");
    let o = ferrograd(&["viz", "--lr", "-1"]);
    assert_eq!(o.status.code(), Some(2));
}
