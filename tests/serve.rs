//! `ferrograd serve` as a server, over plain HTTP (the page itself is
//! tested in a browser by `serve_browser`): bad requests get a 4xx that
//! says what was wrong and the server keeps serving; many clients at once
//! all get answers; runs beyond `--max-runs` are refused; a client that
//! goes away harms no one; Ctrl-C leaves a run's files resumable.

mod serve_support;

use serde_json::json;
use serve_support::Served;
use std::io::Read;
use std::time::Duration;

fn playground_body(steps: u64, lr: f64) -> serde_json::Value {
    json!({"function": "rosenbrock", "steps": steps, "optimizers": [{"name": "adam", "hp": {"lr": lr}}]})
}

#[test]
fn bad_requests_get_a_4xx_saying_what_was_wrong_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let unknown = json!({"function": "rosenbrock", "steps": 10, "optimizers": [{"name": "adamm"}]});
    let cases = [
        (server.post("/api/playground", &unknown), "unknown optimizer \"adamm\""),
        (
            server.post("/api/playground", &playground_body(1_000_000_000, 0.1)),
            "steps must be",
        ),
        (
            server.post("/api/playground", &playground_body(10, -1.0)),
            "lr of adam must be",
        ),
        (
            server.post("/api/runs", &json!({"optimizer": "adamm"})),
            "unknown optimizer",
        ),
        (
            server.post("/api/runs", &json!({"max_epochs": 1_000_000_000u64})),
            "max_epochs must be",
        ),
        (server.get("/api/race?file=../../etc/passwd"), "not allowed"),
        (server.get("/api/watch?dir=../"), "not allowed"),
        (server.get("/api/race?file=/etc/passwd"), "not allowed"),
        (server.get("/api/contour?function=nope"), "nope"),
        (server.get("/api/runs/7/events"), "no run 7"),
        (server.get("/no/such/page"), "no GET /no/such/page"),
    ];
    for ((status, body), expected) in cases {
        assert!((400..500).contains(&status), "{expected}: status {status}, {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "expected {expected:?} in {message:?}");
    }
    let (status, text) = server.raw("POST", "/api/playground", b"{not json");
    assert_eq!(status, 400, "{text}");
    let (status, functions) = server.get("/api/functions");
    assert_eq!(status, 200, "the server still serves after bad requests");
    assert_eq!(functions.as_array().map(Vec::len), Some(6));
}

#[test]
fn fifty_concurrent_playground_requests_all_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let server = &server;
                scope.spawn(move || server.post("/api/playground", &playground_body(100, 0.002 * (i + 1) as f64)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "request {i}: {body}");
        assert_eq!(
            body["paths"][0]["points"].as_array().map(Vec::len),
            Some(101),
            "request {i}"
        );
        assert_eq!(
            body["paths"][0]["hp"]["lr"],
            json!(0.002 * (i + 1) as f64),
            "request {i}"
        );
    }
}

#[test]
fn runs_beyond_the_limit_are_refused_a_lost_client_harms_no_one_and_ctrl_c_leaves_resumable_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Served::start(dir.path(), &["--max-runs", "1"]);
    let (status, run) = server.post("/api/runs", &json!({"max_epochs": 1000, "seed": 3}));
    assert_eq!(status, 200, "{run}");
    let (status, refused) = server.post("/api/runs", &json!({"max_epochs": 5}));
    assert_eq!(status, 429, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("--max-runs 1"), "{refused}");

    // A client that reads the start of the stream and goes away.
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /api/runs/1/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut start = [0u8; 64];
    stream.read_exact(&mut start).unwrap();
    assert!(String::from_utf8_lossy(&start).starts_with("HTTP/1.1 200"));
    drop(stream);

    let epochs = |n: u64| move |r: &serde_json::Value| r["epochs"].as_u64().unwrap_or(0) >= n;
    server.wait_for_run(1, Duration::from_secs(120), epochs(2));
    assert_eq!(
        server.get("/api/functions").0,
        200,
        "the server serves on after the client left"
    );

    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends the server cleanly: {status:?}");

    let run_dir = dir.path().join("serve-runs/run-1");
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 2);
    for line in metrics.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every line of metrics.jsonl is whole");
    }
    assert!(run_dir.join("checkpoint.json").is_file());
    assert!(!run_dir.join("summary.json").exists(), "the run did not finish");
    let resumed = std::process::Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(["train", "--quiet", "--stop-after", "1", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "the interrupted run resumes: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    // A later server in the same directory writes its runs beside, not over.
    let resumed_metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let later = Served::start(dir.path(), &[]);
    let (status, run) = later.post("/api/runs", &json!({"max_epochs": 1}));
    assert_eq!(status, 200, "{run}");
    later.wait_for_run(1, Duration::from_secs(120), |r| r["over"] == true);
    assert!(dir.path().join("serve-runs/run-2/summary.json").is_file());
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap(),
        resumed_metrics
    );
}

#[test]
fn a_train_out_directory_is_streamed_epoch_by_epoch_with_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by-train");
    let train =
        serve_support::ferrograd_json(&["train", "--json", "--max-epochs", "3", "--out", out.to_str().unwrap()]);
    let server = Served::start(dir.path(), &[]);
    let (status, files) = server.get("/api/files");
    assert_eq!((status, &files["runs"]), (200, &json!(["by-train"])));
    let (status, stream) = server.raw("GET", "/api/watch?dir=by-train", b"");
    assert_eq!(status, 200, "{stream}");
    assert_eq!(stream.matches("event: epoch").count(), 3, "{stream}");
    let summary_line = stream
        .lines()
        .skip_while(|l| *l != "event: summary")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no summary in {stream}"));
    let summary: serde_json::Value = serde_json::from_str(summary_line).unwrap();
    for field in ["quality", "recalibrated_quality", "test_loss", "best_epoch"] {
        assert_eq!(summary[field], train[field], "{field}");
    }
}
