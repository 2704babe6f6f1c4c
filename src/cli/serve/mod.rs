//! `ferrograd serve`: a local web server for one self-contained page (HTML,
//! CSS and JS compiled into the binary, nothing fetched from elsewhere)
//! with three views: an optimizer playground on the `viz` surfaces, a
//! training monitor, and a race viewer. See docs/guide/serve.md.
//!
//! Every request is checked and a bad one gets a 4xx JSON `{"error"}`
//! saying what was wrong; each request runs on its own thread, so a slow
//! or vanished client holds up no one else; Ctrl-C stops the training runs
//! at an epoch boundary with their files written, then exits.

mod files;
mod http;
mod playground;
mod runs;

use http::{error_reply, json, ApiError, EventStream, Reply};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tiny_http::{Method, Request, Server};

/// The page, its script and its style, compiled in.
const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// The most requests handled at once; more get a 503 at once.
const MAX_HANDLERS: usize = 128;

/// Set by Ctrl-C: runs and streams end at their next check.
static STOP: AtomicBool = AtomicBool::new(false);

/// Whether the server is shutting down.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Options of `ferrograd serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on; the default serves this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The directory the page may read (race results, `train --out`
    /// directories) and where runs started from the page write theirs
    /// (created if missing).
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    /// The most training runs at once; more are refused until one ends.
    #[arg(long, default_value_t = 2)]
    max_runs: usize,
}

/// What every request handler shares.
struct App {
    dir: PathBuf,
    runs: runs::Runs,
    handlers: AtomicUsize,
}

/// Runs `ferrograd serve` until Ctrl-C.
pub fn run(args: &Args) -> i32 {
    if args.max_runs == 0 {
        return super::usage("--max-runs must be at least 1");
    }
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        return super::usage(format!("--dir {}: cannot create it: {e}", args.dir.display()));
    }
    let server = match Server::http((args.host.as_str(), args.port)) {
        Ok(server) => Arc::new(server),
        Err(e) => return super::usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)),
    };
    let unblock = server.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        STOP.store(true, Ordering::SeqCst);
        unblock.unblock();
    }) {
        eprintln!("warning: Ctrl-C will not stop runs cleanly: {e}");
    }
    let address = server.server_addr().to_ip().map(|a| a.to_string()).unwrap_or_default();
    eprintln!(
        "serving http://{address}/ (files under {}); Ctrl-C stops",
        args.dir.display()
    );
    let app = Arc::new(App {
        dir: args.dir.clone(),
        runs: runs::Runs::new(&args.dir, args.max_runs),
        handlers: AtomicUsize::new(0),
    });
    while !stopping() {
        match server.recv() {
            Ok(request) => dispatch(&app, request),
            Err(_) if stopping() => break,
            Err(e) => eprintln!("warning: a connection failed: {e}"),
        }
    }
    eprintln!("stopping: waiting for running training runs to write their files");
    app.runs.join_all();
    0
}

/// Hands `request` to a thread of its own, or refuses it when too many are
/// being handled.
fn dispatch(app: &Arc<App>, request: Request) {
    if app.handlers.fetch_add(1, Ordering::SeqCst) >= MAX_HANDLERS {
        app.handlers.fetch_sub(1, Ordering::SeqCst);
        let busy = ApiError {
            status: 503,
            message: format!("the server is handling {MAX_HANDLERS} requests; try again"),
        };
        let _ = request.respond(error_reply(&busy));
        return;
    }
    let app = app.clone();
    std::thread::spawn(move || {
        handle(&app, request);
        app.handlers.fetch_sub(1, Ordering::SeqCst);
    });
}

/// Answers one request: a stream, or one reply.
fn handle(app: &App, mut request: Request) {
    let url = request.url().to_string();
    let path = http::path_of(&url).to_string();
    let is_get = *request.method() == Method::Get;
    if is_get {
        if let Some(id) = path.strip_prefix("/api/runs/").and_then(|r| r.strip_suffix("/events")) {
            return stream_run(app, request, id);
        }
        if path == "/api/watch" {
            return stream_watch(app, request, &url);
        }
    }
    let reply = match (is_get, *request.method() == Method::Post, path.as_str()) {
        (true, _, "/") => Ok(http::content(PAGE.as_bytes(), "text/html; charset=utf-8")),
        (true, _, "/app.js") => Ok(http::content(SCRIPT.as_bytes(), "text/javascript; charset=utf-8")),
        (true, _, "/style.css") => Ok(http::content(STYLE.as_bytes(), "text/css; charset=utf-8")),
        (true, _, "/api/functions") => Ok(json(&playground::functions())),
        (true, _, "/api/optimizers") => Ok(json(&playground::optimizers())),
        (true, _, "/api/contour") => contour(&url),
        (_, true, "/api/playground") => http::body_json(&mut request)
            .and_then(|body| playground::PlaygroundRequest::parse(&body))
            .and_then(|r| playground::playground(&r))
            .map(|v| json(&v)),
        (true, _, "/api/runs") => Ok(json(&app.runs.list())),
        (_, true, "/api/runs") => http::body_json(&mut request)
            .and_then(|body| app.runs.start(&body))
            .map(|v| json(&v)),
        (true, _, "/api/files") => Ok(json(&files::list(&app.dir))),
        (true, _, "/api/race") => http::query_of(&url)
            .and_then(|q| files::race(&app.dir, &q))
            .map(|v| json(&v)),
        _ => Err(ApiError::not_found(format!(
            "no {} {path} here; the page is at /, the API under /api/",
            request.method()
        ))),
    };
    respond(request, reply);
}

fn respond(request: Request, reply: Reply) {
    let response = reply.unwrap_or_else(|e| error_reply(&e));
    // A client that has gone away is not the server's error.
    let _ = request.respond(response);
}

fn contour(url: &str) -> Reply {
    let query = http::query_of(url)?;
    let name = query
        .get("function")
        .ok_or_else(|| ApiError::bad_request("give ?function=NAME (see /api/functions)"))?;
    playground::contour(name).map(|v| json(&v))
}

fn stream_run(app: &App, request: Request, id: &str) {
    let checked = id
        .parse::<usize>()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a run number")))
        .and_then(|id| app.runs.check(id).map(|()| id));
    match checked {
        Ok(id) => {
            if let Ok(events) = EventStream::open(request) {
                app.runs.stream(id, events);
            }
        }
        Err(e) => respond(request, Err(e)),
    }
}

fn stream_watch(app: &App, request: Request, url: &str) {
    let dir = http::query_of(url).and_then(|q| {
        let rel = q
            .get("dir")
            .ok_or_else(|| ApiError::bad_request("give ?dir=PATH, a `train --out` directory under --dir"))?;
        files::resolve_under(&app.dir, rel)
    });
    match dir {
        Ok(dir) => {
            if let Ok(events) = EventStream::open(request) {
                runs::watch(&dir, events);
            }
        }
        Err(e) => respond(request, Err(e)),
    }
}
