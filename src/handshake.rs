//! The WebSocket handshake on a new connection: path, origin, deadline, bad requests.
//!
//! tungstenite parses the upgrade request; our callback answers 404 for paths
//! other than `/echo`, 403 for a refused origin and 503 while shutting down.
//! Requests tungstenite itself refuses (no key, wrong version, not HTTP) get a
//! 400 or 426 written here, since it answers those with nothing. The whole
//! handshake must finish before a deadline, however slowly bytes trickle in.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::StatusCode;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, WebSocket};

use crate::client::io::ConnIo;
use crate::origin::OriginPolicy;

/// The one path WebSocket clients connect to.
pub const WS_PATH: &str = "/echo";

/// Why a connection did not become a client.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The handshake did not complete in time; the connection was dropped.
    #[error("handshake not completed in time")]
    Timeout,
    /// Answered with an HTTP error status.
    #[error("answered {status}: {reason}")]
    Refused {
        /// The status sent.
        status: u16,
        /// Why.
        reason: String,
    },
    /// The socket failed during the handshake.
    #[error("socket error during handshake: {0}")]
    Io(#[from] io::Error),
}

/// What the handshake checks besides the protocol itself.
pub struct Admission<'a> {
    /// The origin policy.
    pub origins: &'a OriginPolicy,
    /// Whether the server is shutting down.
    pub shutting_down: bool,
}

/// Runs the server side of the handshake on `io`, before its deadline.
// tungstenite's callback type fixes the large error response type.
#[allow(clippy::result_large_err)]
pub fn accept(
    io: ConnIo,
    config: WebSocketConfig,
    admission: Admission<'_>,
) -> Result<WebSocket<ConnIo>, Rejection> {
    let stream = Arc::clone(io.stream());
    let callback = |req: &Request, resp: Response| check(req, resp, &admission);
    let mut attempt = tungstenite::accept_hdr_with_config(io, callback, Some(config));
    loop {
        match attempt {
            Ok(ws) => return Ok(ws),
            // A socket timeout (set by `ConnIo` to the time left) ran out.
            Err(HandshakeError::Interrupted(mid)) => attempt = mid.handshake(),
            Err(HandshakeError::Failure(err)) => return Err(failure(&stream, err)),
        }
    }
}

#[allow(clippy::result_large_err)]
fn check(req: &Request, resp: Response, admission: &Admission<'_>) -> Result<Response, ErrorResponse> {
    if req.uri().path() != WS_PATH {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            &format!(
                "no WebSocket endpoint at {}; connect to {WS_PATH}",
                req.uri().path()
            ),
        ));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if !admission.origins.allows(header("origin"), header("host")) {
        return Err(error_response(
            StatusCode::FORBIDDEN,
            &format!("origin {} is not allowed", header("origin").unwrap_or("?")),
        ));
    }
    if admission.shutting_down {
        return Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is shutting down",
        ));
    }
    Ok(resp)
}

fn error_response(status: StatusCode, reason: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(crate::http_api::error_json(reason)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        tungstenite::http::HeaderValue::from_static("application/json"),
    );
    headers.insert("connection", tungstenite::http::HeaderValue::from_static("close"));
    resp
}

/// Turns a failed handshake into a rejection, answering what tungstenite left unanswered.
fn failure(stream: &TcpStream, err: Error) -> Rejection {
    match err {
        Error::Http(resp) => {
            let reason = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            Rejection::Refused {
                status: resp.status().as_u16(),
                reason,
            }
        }
        Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Rejection::Timeout
        }
        Error::Io(e) => Rejection::Io(e),
        Error::Protocol(tungstenite::error::ProtocolError::MissingSecWebSocketVersionHeader) => refuse(
            stream,
            426,
            "Upgrade Required",
            "Sec-WebSocket-Version: 13 is required",
            "Sec-WebSocket-Version: 13\r\n",
        ),
        other => refuse(
            stream,
            400,
            "Bad Request",
            &format!("not a valid WebSocket upgrade request: {other}"),
            "",
        ),
    }
}

/// Writes a plain HTTP error response (best effort) and describes it.
pub fn refuse(stream: &TcpStream, status: u16, phrase: &str, reason: &str, extra_headers: &str) -> Rejection {
    let body = crate::http_api::error_json(reason);
    // One write, so head and body leave in one segment: a client that reads
    // the response in one go (tungstenite's does) gets the body too.
    let response = format!(
        "HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\nconnection: close\r\n{extra_headers}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut out = stream;
    let _ = out.write_all(response.as_bytes());
    Rejection::Refused {
        status,
        reason: reason.to_owned(),
    }
}
