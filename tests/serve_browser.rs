//! `ferrograd serve`'s page in a real browser: Debian's headless Chromium
//! (installed by scripts/install-chromium.sh), driven over the DevTools
//! protocol by `headless_chrome`. Each number the page shows is checked
//! against the library's own independent path: `ferrograd viz --json`, the
//! optimizer stepped by hand, `ferrograd train --json`, the race report.
//!
//! Without Chromium the tests skip with a message, unless
//! `FERROGRAD_REQUIRE_BROWSER=1` (as in CI), where a skip is a failure.
//! With `FERROGRAD_UPDATE_DOCS=1` the screenshots are written to
//! docs/img/ (else under the target directory).

mod serve_support;

use ferrograd::engine::Shape;
use ferrograd::optim::{catalog, HyperParams, ModelLayout, StepContext};
use ferrograd::race::record::read_records;
use ferrograd::race::report;
use ferrograd::race::stats::Bootstrap;
use ferrograd::viz::functions::point_tensor;
use ferrograd::viz::Function;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;
use serve_support::{ferrograd_json, Served};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set (to 1) where the browser tests must run: a missing Chromium fails.
const REQUIRE_ENV: &str = "FERROGRAD_REQUIRE_BROWSER";

/// Where Chromium should be: `FERROGRAD_CHROMIUM`, else Debian's.
fn chromium_path() -> PathBuf {
    std::env::var_os("FERROGRAD_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// A headless Chromium with a fresh profile, or `None` (a skip) where
/// there is none and none is required.
fn browser() -> Option<(Browser, tempfile::TempDir)> {
    let path = chromium_path();
    if !path.is_file() {
        let message = format!(
            "Chromium not found at {}: run scripts/install-chromium.sh (or set FERROGRAD_CHROMIUM)",
            path.display()
        );
        assert!(
            std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
            "{message}; {REQUIRE_ENV}=1 forbids skipping"
        );
        eprintln!("skipped: {message}");
        return None;
    }
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .window_size(Some((1320, 860)))
        .user_data_dir(Some(profile.path().to_path_buf()))
        .args(flags.iter().map(OsStr::new).collect())
        .idle_browser_timeout(Duration::from_secs(300))
        .build()
        .expect("launch options");
    let browser = Browser::new(options).expect("headless Chromium starts");
    Some((browser, profile))
}

/// A tab showing the page of `server`, its catalog loaded.
fn open_page(browser: &Browser, server: &Served) -> Arc<Tab> {
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(60));
    tab.navigate_to(&server.url()).unwrap().wait_until_navigated().unwrap();
    wait_until(
        &tab,
        "document.body.dataset.ready === 'yes' && Number(document.body.dataset.draws) >= 1",
    );
    tab
}

/// The value of a JavaScript expression, through JSON.
fn eval(tab: &Tab, expression: &str) -> Value {
    let result = tab
        .evaluate(&format!("JSON.stringify({expression})"), false)
        .unwrap_or_else(|e| panic!("{expression}: {e}"));
    let text = result
        .value
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Waits (up to two minutes) until a JavaScript condition holds.
fn wait_until(tab: &Tab, condition: &str) {
    let started = Instant::now();
    while eval(tab, &format!("Boolean({condition})")) != Value::Bool(true) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the page never got to: {condition}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets an input as a user would (its value, then an `input` event).
fn set_input(tab: &Tab, selector: &str, value: &str) {
    let script = format!(
        "(() => {{ const i = document.querySelector({selector:?}); i.value = {value:?}; \
         i.dispatchEvent(new Event('input', {{ bubbles: true }})); i.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()"
    );
    assert_eq!(eval(tab, &script), Value::Bool(true), "{selector}");
}

fn click(tab: &Tab, selector: &str) {
    tab.find_element(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .unwrap();
}

/// Where screenshots go: docs/img/ when updating the docs, else the
/// target directory.
fn screenshot(tab: &Tab, name: &str) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    let dir = if std::env::var("FERROGRAD_UPDATE_DOCS").is_ok() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    std::fs::write(dir.join(name), png).unwrap();
}

/// The points of the drawn path of `optimizer`, as the SVG holds them.
fn drawn_points(tab: &Tab, optimizer: &str) -> Vec<(f64, f64)> {
    let text = eval(
        tab,
        &format!("document.querySelector('#pg-svg polyline[data-optimizer={optimizer}]').getAttribute('points')"),
    );
    text.as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(|pair| {
            let (x, y) = pair.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// Adds Adam to the playground (on Rosenbrock, 200 steps) and sets its
/// `lr` control; returns after the page has redrawn.
fn adam_with_lr(tab: &Tab, lr: &str) {
    if eval(tab, "document.querySelector('.card[data-optimizer=adam]') !== null") != Value::Bool(true) {
        set_input(tab, "#pg-add", "adam");
        click(tab, "#pg-add-button");
        wait_until(
            tab,
            "document.querySelector('#pg-svg polyline[data-optimizer=adam]') !== null",
        );
    }
    let draws = eval(tab, "Number(document.body.dataset.draws)").as_u64().unwrap();
    set_input(tab, ".card[data-optimizer=adam] input[data-hp=lr]", lr);
    wait_until(tab, &format!("Number(document.body.dataset.draws) > {draws}"));
}

#[test]
fn the_playground_draws_the_paths_of_viz_json_and_lr_changes_them() {
    let Some((browser, _profile)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let tab = open_page(&browser, &server);
    assert!(eval(&tab, "document.querySelectorAll('#pg-svg polyline.path').length").as_u64() >= Some(2));
    let contour_drawn = "(() => { const c = document.querySelector('#pg-canvas').getContext('2d'); \
                         return c.getImageData(260, 260, 1, 1).data[3]; })()";
    assert_eq!(
        eval(&tab, contour_drawn),
        Value::from(255),
        "the contour map is painted"
    );

    adam_with_lr(&tab, "0.02");
    let before = drawn_points(&tab, "adam");
    adam_with_lr(&tab, "0.05");
    let after = drawn_points(&tab, "adam");
    assert_ne!(before, after, "changing lr redraws a different path");

    let viz = ferrograd_json(&[
        "viz",
        "--json",
        "--function",
        "rosenbrock",
        "--optimizers",
        "adam",
        "--hp",
        "lr=0.05",
        "--steps",
        "200",
        "--start",
        "-1.5,2.5",
    ]);
    let expected: Vec<(f64, f64)> = viz["trajectories"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["x"].as_f64().unwrap(), p["y"].as_f64().unwrap()))
        .collect();
    assert_eq!(after.len(), 201);
    assert_eq!(after, expected, "the drawn points are viz --json's, exactly");
}

/// Adam's state after `k + 1` steps from Rosenbrock's default start,
/// stepped here by hand through the catalog, as the harness steps it.
fn adam_state_by_hand(lr: f64, k: usize) -> (BTreeMap<String, Vec<f64>>, BTreeMap<String, u64>) {
    let function = Function::Rosenbrock;
    let info = catalog::lookup("adam").unwrap();
    let mut optimizer = (info.build)(&HyperParams::defaults(info).with("lr", lr).unwrap()).unwrap();
    optimizer.init_state(0, &ModelLayout::any(&[Shape::new([2])])).unwrap();
    let (mut x, mut y) = function.default_start();
    let mut previous = None;
    for step in 0..=k {
        let (f, g) = function.value_and_gradient(x, y).unwrap();
        let ctx = StepContext {
            epoch: step,
            step,
            train_loss: previous,
            val_loss: previous,
            steps_per_epoch: Some(1),
        };
        let update = optimizer
            .step(&[point_tensor(x, y)], &[point_tensor(g[0], g[1])], &ctx)
            .unwrap()[0]
            .to_vec_f64()
            .unwrap();
        x += update[0];
        y += update[1];
        previous = Some(f);
    }
    let state = optimizer.state();
    let tensors = state
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_vec_f64().unwrap()))
        .collect();
    (tensors, state.counters)
}

#[test]
fn the_side_panel_shows_the_optimizer_state_the_library_computes_at_step_k() {
    let Some((browser, _profile)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let tab = open_page(&browser, &server);
    adam_with_lr(&tab, "0.05");
    click(&tab, ".card[data-optimizer=adam] .head");
    let k = 60;
    set_input(&tab, "#pg-step", &k.to_string());
    wait_until(
        &tab,
        &format!("document.querySelector('#pg-panel h3').textContent.endsWith('step {k}')"),
    );
    let shown = |selector: &str| {
        eval(&tab, &format!("[...document.querySelectorAll('#pg-values tr[{selector}]')].map(r => [r.getAttribute('{selector}'), JSON.parse(r.dataset.values)])"))
    };
    let tensors: BTreeMap<String, Vec<f64>> = serde_json::from_value(Value::Object(
        shown("data-tensor")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].clone()))
            .collect(),
    ))
    .unwrap();
    let counters: BTreeMap<String, u64> = serde_json::from_value(Value::Object(
        shown("data-counter")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].clone()))
            .collect(),
    ))
    .unwrap();
    screenshot(&tab, "serve-playground.png");
    let (expected_tensors, expected_counters) = adam_state_by_hand(0.05, k);
    assert!(!tensors.is_empty(), "the panel shows Adam's moments");
    assert_eq!(tensors, expected_tensors, "m and v at step {k}, exactly");
    assert_eq!(counters, expected_counters);
    assert!(eval(&tab, "document.querySelector('#pg-panel .equation').textContent")
        .as_str()
        .unwrap()
        .contains('√'));
}

#[test]
fn a_training_run_streams_every_epoch_and_ends_with_train_json_numbers() {
    let Some((browser, _profile)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let tab = open_page(&browser, &server);
    click(&tab, "nav button[data-tab=monitor]");
    set_input(&tab, "#mon-epochs", "10");
    for seed in ["1", "2"] {
        set_input(&tab, "#mon-seed", seed);
        click(&tab, "#mon-start");
        wait_until(
            &tab,
            &format!("document.querySelectorAll('#mon-runs tbody tr').length === {seed}"),
        );
    }
    wait_until(
        &tab,
        "document.querySelectorAll('#mon-runs tr[data-done=yes]').length === 2",
    );
    screenshot(&tab, "serve-monitor.png");

    let out = dir.path().join("by-train");
    let out_text = out.to_str().unwrap();
    let train = ferrograd_json(&[
        "train",
        "--json",
        "--max-epochs",
        "10",
        "--seed",
        "1",
        "--out",
        out_text,
    ]);
    let metrics: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for series in ["train_loss", "val_loss"] {
        let shown = eval(
            &tab,
            &format!("JSON.parse(document.querySelector('#mon-chart polyline[data-run=run-1][data-series={series}]').dataset.values)"),
        );
        let expected: Vec<Value> = metrics.iter().map(|m| m[series].clone()).collect();
        assert_eq!(shown, Value::Array(expected), "every epoch's {series} reached the page");
    }
    for field in ["quality", "recalibrated_quality", "best_epoch"] {
        let shown = eval(
            &tab,
            &format!("JSON.parse(document.querySelector('#mon-runs tr[data-run=run-1] td[data-field={field}]').dataset.value)"),
        );
        assert_eq!(shown, train[field], "{field}");
    }
}

#[test]
fn the_race_viewer_shows_the_race_reports_paired_differences() {
    let Some((browser, _profile)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let race = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/races/all-defaults/race.jsonl");
    std::fs::create_dir_all(dir.path().join("races")).unwrap();
    std::fs::copy(&race, dir.path().join("races/all-defaults.jsonl")).unwrap();
    let server = Served::start(dir.path(), &[]);
    let tab = open_page(&browser, &server);
    click(&tab, "nav button[data-tab=race]");
    wait_until(&tab, "document.querySelector('#race-file').options.length > 0");
    click(&tab, "#race-load");
    wait_until(&tab, "document.querySelector('.track') !== null");
    screenshot(&tab, "serve-race.png");

    let records = read_records(&race).unwrap().records;
    let tables = report::tables(&records, None, &Bootstrap::default(), &BTreeMap::new()).unwrap();
    for table in &tables {
        for (entrant, comparison) in &table.paired {
            let shown = eval(
                &tab,
                &format!(
                    "JSON.parse([...document.querySelectorAll('.track[data-track=\"{}\"] tr')].find(r => r.dataset.entrant === {entrant:?}).querySelector('[data-field=median]').dataset.value)",
                    table.n_hidden
                ),
            );
            let expected = comparison.estimate.as_ref().map(|e| e.median);
            assert_eq!(shown.as_f64(), expected, "n_hidden={} {entrant}", table.n_hidden);
        }
    }
}
