//! The way to the router: one Unix socket to tiny_http per client connection,
//! the checked request going in, and its response coming back for the client.
//!
//! A request that goes into the socket at once (nearly all of them) is then
//! routed on the connection's own thread (`Router::answer_here`); a larger one
//! is routed by a helper while this thread writes the rest and reads the
//! response (`exchange`).

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exchange::{exchange, send_some};
use super::head::{Head, REQUEST_HEADER};
use super::response::{client_response, parse_response, Parsed};
use super::router::Router;

/// The longest a route may take; only a stuck router ever reaches it.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(60);

/// One client connection's way to the router, opened on its first request.
pub struct Backend {
    router: Arc<Router>,
    /// The client's address, for the routes.
    peer: SocketAddr,
    stream: Option<UnixStream>,
}

/// What the router answered.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The response for the client, its `Connection` header set.
    pub bytes: Vec<u8>,
}

impl Backend {
    /// Not connected until the first request.
    pub fn new(router: Arc<Router>, peer: SocketAddr) -> Backend {
        Backend {
            router,
            peer,
            stream: None,
        }
    }

    /// Sends the request to the router and returns the response for the client,
    /// which keeps its connection (`keep_alive`) or not.
    pub fn route(&mut self, head: &Head, body: &[u8], keep_alive: bool) -> Result<Answer, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            none => {
                none.insert(connect(self.router.path()).map_err(|e| format!("cannot reach the router: {e}"))?)
            }
        };
        match round_trip(&self.router, stream, self.peer, head, body) {
            Ok((raw, parsed)) => {
                let connection = match (keep_alive, head.minor) {
                    (false, _) => Some("close"),
                    (true, 0) => Some("keep-alive"),
                    (true, _) => None,
                };
                Ok(Answer {
                    status: parsed.status,
                    bytes: client_response(raw, &parsed, connection),
                })
            }
            Err(e) => {
                // The stream may be mid-message: the next request opens a new one.
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// Sends the request and has it routed, here if it went in whole, else on a helper.
fn round_trip(
    router: &Arc<Router>,
    stream: &mut UnixStream,
    peer: SocketAddr,
    head: &Head,
    body: &[u8],
) -> Result<(Vec<u8>, Parsed), String> {
    let deadline = Instant::now() + ROUTER_TIMEOUT;
    // Expected before it is sent, so that no other thread takes it for a stray.
    let ticket = router.expect();
    let request_head = request_head(head, ticket.key(), body.len());
    let request = [&request_head[..], body];
    let sent = send_some(stream, request, 0)?;
    if sent == request[0].len() + request[1].len() {
        return match router.answer_here(ticket, peer, stream, deadline)? {
            Some(raw) => whole_response(raw, head.is_head),
            None => exchange(stream, request, sent, head.is_head, deadline),
        };
    }
    let done = Arc::new(AtomicBool::new(false));
    router.answer_elsewhere(ticket, peer, Arc::clone(&done), deadline)?;
    let result = exchange(stream, request, sent, head.is_head, deadline);
    done.store(true, SeqCst);
    result
}

/// A response rendered in memory: one whole message, parsed.
fn whole_response(raw: Vec<u8>, request_was_head: bool) -> Result<(Vec<u8>, Parsed), String> {
    match parse_response(&raw, request_was_head)? {
        Some(parsed) if parsed.total_len == raw.len() => Ok((raw, parsed)),
        _ => Err("the router's response is not one whole message".into()),
    }
}

fn connect(path: &Path) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// The request as the router gets it: HTTP/1.1, the client's end-to-end
/// headers, its number, and the exact length of the body.
pub fn request_head(head: &Head, id: u64, body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.forward.len() + 64);
    out.extend_from_slice(&head.forward);
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{REQUEST_HEADER}: {id}\r\nContent-Length: {body_len}\r\n\r\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::head::{self, Framing};
    use super::*;

    #[test]
    fn the_router_gets_a_canonical_request() {
        let text =
            "POST /sendall HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\nx-wspush-request: 5\r\n\
                    Connection: keep-alive\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\n\r\n";
        let err = head::parse(text.as_bytes(), 100).unwrap_err();
        assert_eq!(err.status, 400, "chunked in HTTP/1.0");
        let text = text.replace("HTTP/1.0", "HTTP/1.1");
        let head = head::parse(text.as_bytes(), 100).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let out = String::from_utf8(request_head(&head, 7, 11)).unwrap();
        assert_eq!(
            out,
            "POST /sendall HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\
             X-Wspush-Request: 7\r\nContent-Length: 11\r\n\r\n"
        );
    }
}
