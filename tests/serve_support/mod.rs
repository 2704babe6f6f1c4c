//! Helpers of the `ferrograd serve` tests (`serve`, `serve_browser`): start
//! the real binary on a free port, and talk HTTP to it with nothing but
//! the standard library.
#![allow(dead_code)] // each test crate uses a different subset

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ferrograd serve`, stopped when dropped.
pub struct Served {
    /// The server process.
    pub child: Child,
    /// `host:port` it listens on.
    pub address: String,
}

impl Served {
    /// Starts `ferrograd serve --port 0 --dir DIR` with `extra` options and
    /// waits for the address it prints.
    pub fn start(dir: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
            .args(["serve", "--port", "0", "--dir"])
            .arg(dir)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferrograd serve starts");
        let mut line = String::new();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        stderr.read_line(&mut line).expect("the server prints its address");
        // Keep reading what the server says (into the test's output), so
        // that its later messages never meet a closed pipe.
        std::thread::spawn(move || {
            for said in stderr.lines().map_while(Result::ok) {
                eprintln!("server: {said}");
            }
        });
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Served { child, address }
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// `GET path`: the status and the body as JSON.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body: the status and the body as JSON.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request("POST", path, Some(body))
    }

    /// One HTTP/1.0 request (so the server answers with a plain body and
    /// closes): the status and the body as JSON (`Null` if it is not JSON).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, text) = self.raw(method, path, body.map(|b| b.to_string()).unwrap_or_default().as_bytes());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// One HTTP/1.0 request with a raw body: the status and the body text.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).expect("the server accepts connections");
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("the server answers");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        (status, body.to_string())
    }

    /// Polls `GET /api/runs` until run `id` satisfies `done` (or panics
    /// after `limit`).
    pub fn wait_for_run(&self, id: u64, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, runs) = self.get("/api/runs");
            if let Some(run) = runs.as_array().and_then(|l| l.iter().find(|r| r["id"] == id)) {
                if done(run) {
                    return run.clone();
                }
            }
            assert!(
                started.elapsed() < limit,
                "run {id} did not get there in {limit:?}: {runs}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ferrograd ARGS` and parses its stdout as JSON.
pub fn ferrograd_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .output()
        .expect("ferrograd runs");
    assert!(
        out.status.success(),
        "ferrograd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the output is JSON")
}
