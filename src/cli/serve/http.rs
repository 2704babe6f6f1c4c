//! The HTTP plumbing of `ferrograd serve`: JSON replies, the one error type
//! every handler returns (a 4xx with a message that says what was wrong),
//! query strings and request bodies, and server-sent event streams.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use tiny_http::{Header, Request, Response, StatusCode};

/// The largest request body accepted (a playground or run request is a few
/// hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request refused, as a status code and a message for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status (4xx for the client's mistakes, 5xx for ours).
    pub status: u16,
    /// What was wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// 400: the request is malformed or a value is out of range.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    /// 404: no such page, run or file.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }

    /// 429: the server is busy (too many training runs); try again later.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 429,
            message: message.into(),
        }
    }

    /// 500: something failed on the server's side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            message: message.into(),
        }
    }
}

/// What a handler answers.
pub type Reply = Result<Response<std::io::Cursor<Vec<u8>>>, ApiError>;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header names and values are ASCII")
}

/// A 200 reply of `body` with content type `mime`.
pub fn content(body: &[u8], mime: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body.to_vec())
        .with_header(header("Content-Type", mime))
        .with_header(header("Cache-Control", "no-store"))
}

/// A 200 reply of a JSON value.
pub fn json(value: &serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    content(value.to_string().as_bytes(), "application/json")
}

/// The reply for an error: its status and `{"error": message}`.
pub fn error_reply(error: &ApiError) -> Response<std::io::Cursor<Vec<u8>>> {
    json(&serde_json::json!({ "error": error.message, "status": error.status }))
        .with_status_code(StatusCode(error.status))
}

/// The path of the request's URL, without its query string.
pub fn path_of(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

/// The query string's `key=value` pairs, percent-decoded.
pub fn query_of(url: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(BTreeMap::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space) of a query string part.
fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("the query string {text:?} has a malformed %-escape"));
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The request's body as JSON (at most [`MAX_BODY_BYTES`]).
pub fn body_json(request: &mut Request) -> Result<serde_json::Value, ApiError> {
    let mut bytes = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A server-sent event stream written straight to the client's socket, so
/// that each event reaches the page as soon as it is sent. To an HTTP/1.1
/// client each event is one chunk of a chunked response, and dropping the
/// stream ends the response, so the client sees a finished stream, not a
/// cut connection; to an HTTP/1.0 client (which knows no chunks) the events
/// are sent as they are and the connection is closed at the end.
pub struct EventStream {
    writer: Box<dyn Write + Send>,
    chunked: bool,
}

impl EventStream {
    /// Takes over `request`'s connection and sends the stream's headers.
    pub fn open(request: Request) -> std::io::Result<EventStream> {
        let chunked = *request.http_version() > tiny_http::HTTPVersion(1, 0);
        let framing = if chunked {
            "Transfer-Encoding: chunked"
        } else {
            "Connection: close"
        };
        let mut writer = request.into_writer();
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n{framing}\r\n\r\n"
        )?;
        writer.flush()?;
        Ok(EventStream { writer, chunked })
    }

    fn write_part(&mut self, text: &str) -> std::io::Result<()> {
        if self.chunked {
            write!(self.writer, "{:x}\r\n{text}\r\n", text.len())?;
        } else {
            self.writer.write_all(text.as_bytes())?;
        }
        self.writer.flush()
    }

    /// Sends one event named `name` carrying `data`. An error means the
    /// client has gone: the caller ends the stream.
    pub fn send(&mut self, name: &str, data: &serde_json::Value) -> std::io::Result<()> {
        self.write_part(&format!("event: {name}\ndata: {data}\n\n"))
    }

    /// Sends a comment line, which the page ignores: how a stream with
    /// nothing new finds out that its client has gone.
    pub fn keep_alive(&mut self) -> std::io::Result<()> {
        self.write_part(": keep-alive\n\n")
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if self.chunked {
            // The last, empty chunk; a client that has gone does not need it.
            let _ = self.writer.write_all(b"0\r\n\r\n").and_then(|()| self.writer.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_split_and_decoded() {
        let q = query_of("/api/race?file=a%2Fb.jsonl&baseline=adam+x").unwrap();
        assert_eq!(q["file"], "a/b.jsonl");
        assert_eq!(q["baseline"], "adam x");
        assert_eq!(path_of("/api/race?file=x"), "/api/race");
        assert_eq!(query_of("/x?bad=%g1").unwrap_err().status, 400);
    }
}
