//! The way to the router: one Unix socket to tiny_http per client connection,
//! the checked request going in, and its response coming back for the client.
//!
//! The request is written while the response is read (one `poll` loop), so a
//! route that answers before reading a large body cannot wedge either side,
//! and the whole response is taken before the client is written to, so a
//! client slow to read never holds one of the router's workers.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httparse::Status;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::head::{Head, PEER_HEADER};

/// The longest a route may take; only a stuck router ever reaches it.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response head taken from the router.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The largest response taken from the router (a static file, /clients).
const MAX_RESPONSE_BYTES: usize = 1 << 30;
/// Bytes read from the router per call.
const READ_CHUNK: usize = 64 * 1024;

/// One client connection's way to the router, opened on its first request.
pub struct Backend {
    path: Arc<PathBuf>,
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
    pub fn new(path: Arc<PathBuf>) -> Backend {
        Backend { path, stream: None }
    }

    /// Sends the request to the router and returns the response for the client,
    /// which keeps its connection (`keep_alive`) or not.
    pub fn route(
        &mut self,
        head: &Head,
        peer: SocketAddr,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<Answer, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            none => none.insert(connect(&self.path).map_err(|e| format!("cannot reach the router: {e}"))?),
        };
        let request = request_head(head, peer, body.len());
        let deadline = Instant::now() + ROUTER_TIMEOUT;
        match exchange(stream, [&request, body], head.is_head(), deadline) {
            Ok((raw, parsed)) => {
                let connection = match (keep_alive, head.minor) {
                    (false, _) => Some("close"),
                    (true, 0) => Some("keep-alive"),
                    (true, _) => None,
                };
                Ok(Answer {
                    status: parsed.status,
                    bytes: client_response(&raw, &parsed, connection),
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

fn connect(path: &Path) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// The request as the router gets it: HTTP/1.1, the client's end-to-end
/// headers, who the client is, and the exact length of the body.
pub fn request_head(head: &Head, peer: SocketAddr, body_len: usize) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", head.method, head.target);
    for (name, value) in &head.end_to_end {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "{PEER_HEADER}: {peer}\r\nContent-Length: {body_len}\r\n\r\n"
    ));
    out.into_bytes()
}

/// A response head from the router.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The status.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the head.
    pub head_len: usize,
    /// Bytes of the head and the body.
    pub total_len: usize,
}

/// Parses the response head at the start of `buf`: `Ok(None)` while incomplete.
pub fn parse_response(buf: &[u8], request_was_head: bool) -> Result<Option<Parsed>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(buf) {
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => return Err("response head too large".into()),
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let no_body = request_was_head || matches!(status, 100..=199 | 204 | 304);
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok());
    let body_len = match (no_body, length) {
        (true, _) => 0,
        (false, Some(n)) if n <= MAX_RESPONSE_BYTES => n,
        (false, Some(n)) => return Err(format!("response of {n} bytes is too large")),
        (false, None) => return Err("response without a Content-Length".into()),
    };
    Ok(Some(Parsed {
        status,
        reason: response.reason.unwrap_or_default().to_owned(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        head_len,
        total_len: head_len + body_len,
    }))
}

/// The response for the client: the router's, with its own `Connection` header.
pub fn client_response(raw: &[u8], parsed: &Parsed, connection: Option<&str>) -> Vec<u8> {
    let body = &raw[parsed.head_len..parsed.total_len];
    let mut out = format!("HTTP/1.1 {} {}\r\n", parsed.status, parsed.reason).into_bytes();
    for (name, value) in &parsed.headers {
        if ["connection", "keep-alive"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(connection) = connection {
        out.extend_from_slice(format!("Connection: {connection}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Writes `request` (head and body) while reading the response, until both are done.
fn exchange(
    stream: &mut UnixStream,
    request: [&[u8]; 2],
    request_was_head: bool,
    deadline: Instant,
) -> Result<(Vec<u8>, Parsed), String> {
    let to_send = request[0].len() + request[1].len();
    // A request usually fits in the socket at once: write before waiting.
    let mut sent = send_some(stream, request, 0)?;
    let mut response = Incoming::default();
    while sent < to_send || !response.is_complete() {
        let events = if sent < to_send {
            PollFlags::IN | PollFlags::OUT
        } else {
            PollFlags::IN
        };
        let ready = poll(stream, events, deadline)?;
        if sent < to_send && ready.contains(PollFlags::OUT) {
            sent = send_some(stream, request, sent)?;
        }
        if ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            response.receive(stream, request_was_head)?;
        }
    }
    response
        .parsed
        .map(|p| (response.bytes, p))
        .ok_or_else(|| "no response".into())
}

/// Writes what the socket takes of `request` from byte `sent` on; returns the new count.
fn send_some(stream: &mut UnixStream, request: [&[u8]; 2], sent: usize) -> Result<usize, String> {
    let (part, offset) = match sent.checked_sub(request[0].len()) {
        None => (request[0], sent),
        Some(offset) => (request[1], offset),
    };
    if offset >= part.len() {
        return Ok(sent);
    }
    let n = nonblocking(stream.write(&part[offset..])).map_err(|e| format!("writing to the router: {e}"))?;
    Ok(sent + n)
}

/// A response arriving from the router.
#[derive(Default)]
struct Incoming {
    bytes: Vec<u8>,
    parsed: Option<Parsed>,
}

impl Incoming {
    fn is_complete(&self) -> bool {
        self.parsed
            .as_ref()
            .is_some_and(|p| self.bytes.len() >= p.total_len)
    }

    /// Reads what has come: a small first read for the head, then exactly the
    /// rest of the body (anything past it is an error).
    fn receive(&mut self, stream: &mut UnixStream, request_was_head: bool) -> Result<(), String> {
        let want = match &self.parsed {
            Some(p) => p.total_len.saturating_sub(self.bytes.len()).clamp(1, READ_CHUNK),
            None => 4096,
        };
        let old = self.bytes.len();
        self.bytes.resize(old + want, 0);
        let n = stream.read(&mut self.bytes[old..]);
        self.bytes.truncate(old + *n.as_ref().unwrap_or(&0));
        match n {
            Ok(0) => return Err("the router closed the connection".into()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(format!("reading from the router: {e}")),
        }
        if self.parsed.is_none() {
            self.parsed = parse_response(&self.bytes, request_was_head)?;
        }
        match &self.parsed {
            Some(p) if self.bytes.len() > p.total_len => Err("the router sent more than one response".into()),
            _ => Ok(()),
        }
    }
}

/// A non-blocking call's result, with "would block" as 0 bytes.
fn nonblocking(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
        other => other,
    }
}

/// Waits until the stream is ready for `events`, or fails at `deadline`.
fn poll(stream: &UnixStream, events: PollFlags, deadline: Instant) -> Result<PollFlags, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer within {} s", ROUTER_TIMEOUT.as_secs()));
        }
        let timeout = Timespec::try_from(left).ok();
        let mut fds = [PollFd::new(stream, events)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(fds[0].revents()),
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::{self, Framing};
    use super::*;

    #[test]
    fn the_router_gets_a_canonical_request() {
        let text =
            "POST /sendall HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Wspush-Peer: 1.2.3.4:5\r\n\
                    Connection: keep-alive\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\n\r\n";
        let err = head::parse(text.as_bytes(), 100).unwrap_err();
        assert_eq!(err.status, 400, "chunked in HTTP/1.0");
        let text = text.replace("HTTP/1.0", "HTTP/1.1");
        let head = head::parse(text.as_bytes(), 100).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let out = String::from_utf8(request_head(&head, peer, 11)).unwrap();
        assert_eq!(
            out,
            "POST /sendall HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\
             X-Wspush-Peer: 127.0.0.1:4000\r\nContent-Length: 11\r\n\r\n"
        );
    }

    #[test]
    fn the_response_gets_the_clients_connection_header() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parse_response(&raw[..20], false), Ok(None));
        let parsed = parse_response(raw, false).unwrap().unwrap();
        assert_eq!((parsed.status, parsed.total_len), (200, raw.len()));
        let out = client_response(raw, &parsed, Some("close"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let out = client_response(raw, &parsed, None);
        assert!(!String::from_utf8(out).unwrap().contains("Connection"));
    }

    #[test]
    fn a_head_response_has_no_body_and_one_without_length_is_refused() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        let parsed = parse_response(raw, true).unwrap().unwrap();
        assert_eq!(parsed.total_len, raw.len());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", false)
            .unwrap()
            .is_some());
    }
}
