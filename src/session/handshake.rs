//! The WebSocket handshake on a new connection: path, origin, token, deadline, bad requests.
//!
//! tungstenite parses the upgrade request; our callback reads its target
//! (`target`: `/echo` or `/ws/{channels}`), and answers 404 for other paths,
//! 400 for a bad channel list or `last`, 403 for a refused origin, 401 or 403
//! for a subscribe token the `token::Gate` refuses, and 503 while shutting
//! down.
//! Requests tungstenite itself refuses (no key, wrong version, not HTTP) get a
//! 400 or 426 written here, since it answers those with nothing. The whole
//! handshake must finish before a deadline, however slowly bytes trickle in.

use std::cell::Cell;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, WebSocket};

use super::io::ConnIo;
use super::target::{self, BadTarget, TargetLimits, Wanted, ECHO_PATH};
use crate::http_error::{error_json, error_response};
use crate::origin::OriginPolicy;
use crate::token::{Gate, TokenError};

/// The path of raw-frame clients (the page's `/config.json` names it).
pub const WS_PATH: &str = ECHO_PATH;

/// What the handshake checks besides the protocol itself.
pub struct HandshakeSettings {
    pub origins: OriginPolicy,
    /// Who may subscribe (`--subscribe-secret`).
    pub gate: Gate,
    /// The caps on a `/ws/…` target.
    pub targets: TargetLimits,
    pub ws_config: WebSocketConfig,
    /// The whole handshake must finish within this (`--handshake-timeout`).
    pub timeout: Duration,
}

/// Why a connection did not become a client.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("handshake not completed in time")]
    Timeout,
    /// Answered with an HTTP error status.
    #[error("answered {status}: {0}", status = .0.status())]
    Refused(Refusal),
    #[error("socket error during handshake: {0}")]
    Io(#[from] io::Error),
}

/// Why a handshake was answered with an error status; its text is the body's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no WebSocket endpoint at {0}; connect to {WS_PATH} or /ws/{{channel}}")]
    NoEndpoint(String),
    /// The channels or `last` of a `/ws/…` target; the reason.
    #[error("{0}")]
    BadTarget(String),
    #[error("origin {0} is not allowed")]
    Origin(String),
    /// The subscribe token is missing, invalid, or does not cover a channel.
    #[error(transparent)]
    Token(TokenError),
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("Sec-WebSocket-Version: 13 is required")]
    Version,
    #[error("not a valid WebSocket upgrade request: {0}")]
    BadUpgrade(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoEndpoint(_) => 404,
            Refusal::Origin(_) => 403,
            Refusal::Token(e) => e.status(),
            Refusal::ShuttingDown => 503,
            Refusal::Version => 426,
            Refusal::BadUpgrade(_) | Refusal::BadTarget(_) => 400,
        }
    }
}

/// Runs the server side of the handshake on `io`, before its deadline;
/// returns the connection and what its target asked for.
// tungstenite's callback type fixes the large error response type.
#[allow(clippy::result_large_err)]
pub fn accept(
    io: ConnIo,
    settings: &HandshakeSettings,
    shutting_down: bool,
) -> Result<(WebSocket<ConnIo>, Wanted), Rejection> {
    let stream = Arc::clone(io.stream());
    // The callback's typed outcome, kept beside tungstenite's HTTP response.
    let refused = Cell::new(None);
    let wanted = Cell::new(None);
    let callback = |req: &Request, resp: Response| match check(req, settings, shutting_down) {
        Ok(target) => {
            wanted.set(Some(target));
            Ok(resp)
        }
        Err(refusal) => {
            let answer = refusal_response(&refusal);
            refused.set(Some(refusal));
            Err(answer)
        }
    };
    let mut attempt = tungstenite::accept_hdr_with_config(io, callback, Some(settings.ws_config));
    loop {
        match attempt {
            Ok(ws) => {
                // The callback ran and accepted, or there would be no WebSocket.
                let target = wanted
                    .take()
                    .ok_or_else(|| Rejection::Refused(Refusal::BadUpgrade("no request target".into())))?;
                return Ok((ws, target));
            }
            // A socket timeout (set by `ConnIo` to the time left) ran out.
            Err(HandshakeError::Interrupted(mid)) => attempt = mid.handshake(),
            Err(HandshakeError::Failure(err)) => return Err(failure(&stream, err, refused.take())),
        }
    }
}

fn check(req: &Request, settings: &HandshakeSettings, shutting_down: bool) -> Result<Wanted, Refusal> {
    let path = req.uri().path();
    let mut wanted = target::parse(path, req.uri().query(), &settings.targets).map_err(|bad| match bad {
        BadTarget::NoEndpoint => Refusal::NoEndpoint(path.to_owned()),
        BadTarget::Invalid(reason) => Refusal::BadTarget(reason),
    })?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if !settings.origins.allows(header("origin"), header("host")) {
        return Err(Refusal::Origin(header("origin").unwrap_or("?").to_owned()));
    }
    let cookies = req.headers().get_all("cookie").iter().map(|v| v.as_bytes());
    wanted.grant = settings
        .gate
        .admit(
            &wanted.subscription.channels,
            req.uri().query(),
            cookies,
            SystemTime::now(),
        )
        .map_err(Refusal::Token)?;
    if shutting_down {
        return Err(Refusal::ShuttingDown);
    }
    Ok(wanted)
}

fn refusal_response(refusal: &Refusal) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(error_json(&refusal.to_string())));
    *resp.status_mut() = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("connection", HeaderValue::from_static("close"));
    resp
}

/// Turns a failed handshake into a rejection, answering what tungstenite left
/// unanswered. `refused` is what our callback refused, if it did.
fn failure(stream: &TcpStream, err: Error, refused: Option<Refusal>) -> Rejection {
    match (err, refused) {
        (Error::Http(_), Some(refusal)) => Rejection::Refused(refusal),
        // tungstenite answers with an HTTP error only through our callback.
        (Error::Http(resp), None) => Rejection::Refused(Refusal::BadUpgrade(resp.status().to_string())),
        (Error::Io(e), _) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Rejection::Timeout
        }
        (Error::Io(e), _) => Rejection::Io(e),
        (Error::Protocol(tungstenite::error::ProtocolError::MissingSecWebSocketVersionHeader), _) => refuse(
            stream,
            Refusal::Version,
            "Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
        ),
        (other, _) => refuse(stream, Refusal::BadUpgrade(other.to_string()), "Bad Request", ""),
    }
}

/// Writes the refusal as an HTTP error response (best effort).
fn refuse(stream: &TcpStream, refusal: Refusal, phrase: &str, extra_headers: &str) -> Rejection {
    let response = error_response(refusal.status(), phrase, &refusal.to_string(), extra_headers);
    let mut out = stream;
    let _ = out.write_all(response.as_bytes());
    Rejection::Refused(refusal)
}
