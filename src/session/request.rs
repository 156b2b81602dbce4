//! The request head on the public port, read before it is known which
//! transport it is for: a WebSocket upgrade or an event stream.
//!
//! The head is parsed with httparse as bytes arrive, within the handshake
//! deadline and tungstenite's own caps (64 KiB, 124 header fields), so that
//! the WebSocket port accepts what it accepted before. What is not a complete
//! head within them (garbage, a head too large, a peer that closed) is
//! handed to tungstenite as it is, which answers it as it always has. Every
//! byte read is kept: a WebSocket handshake replays them to tungstenite,
//! first frames sent right after the upgrade request included.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Instant;

use httparse::Status;

/// The largest head read before it is handed over unparsed (tungstenite's limit).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields parsed (tungstenite's limit).
pub const MAX_HEADERS: usize = 124;
/// Bytes read at a time.
const CHUNK: usize = 1024;

/// What the transports need to know of a request head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The target up to `?`.
    pub path: String,
    /// The target after `?`, if it has one.
    pub query: Option<String>,
    /// It has an `Upgrade` header (of any value): a WebSocket handshake, or a bad one.
    pub upgrade: bool,
    /// `Origin`, `Host` and `Last-Event-ID` (the first of each, if UTF-8).
    pub origin: Option<String>,
    pub host: Option<String>,
    pub last_event_id: Option<String>,
    /// Every `X-Forwarded-For` value, in order.
    pub forwarded_for: Vec<Vec<u8>>,
    /// Every `Cookie` value, in order (where a `wspush_token` may be).
    pub cookies: Vec<Vec<u8>>,
}

/// A head read off a new connection.
#[derive(Debug)]
pub struct Arrived {
    /// Every byte read: the head (if complete) and whatever followed it.
    pub bytes: Vec<u8>,
    /// The head, when httparse read a complete one within the caps.
    pub head: Option<RequestHead>,
}

/// Reads until a complete head, the caps, an error or the end of the
/// peer's bytes; an error only when the socket fails or `deadline` passes
/// (`TimedOut`). Out of line: its buffers must not stay in the frame of the
/// connection's thread, whose unused stack is given back after the join.
#[inline(never)]
pub fn read(stream: &TcpStream, deadline: Instant) -> io::Result<Arrived> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; CHUNK];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match (&*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, e))
            }
            Err(e) => return Err(e),
        };
        bytes.extend_from_slice(&chunk[..n]);
        match parse(&bytes) {
            Parsed::Partial if n > 0 && bytes.len() < MAX_HEAD_BYTES => continue,
            Parsed::Partial | Parsed::Invalid => return Ok(Arrived { bytes, head: None }),
            Parsed::Complete(head) => {
                return Ok(Arrived {
                    bytes,
                    head: Some(head),
                })
            }
        }
    }
}

enum Parsed {
    Complete(RequestHead),
    Partial,
    Invalid,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(bytes) {
        Ok(Status::Complete(len)) if len <= MAX_HEAD_BYTES => {}
        Ok(Status::Partial) => return Parsed::Partial,
        _ => return Parsed::Invalid,
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Parsed::Invalid;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let all = |name: &str| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.to_vec())
            .collect()
    };
    let first = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_owned())
    };
    Parsed::Complete(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        upgrade: first("upgrade").is_some(),
        origin: first("origin"),
        host: first("host"),
        last_event_id: first("last-event-id"),
        forwarded_for: all("x-forwarded-for"),
        cookies: all("cookie"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8]) -> Option<RequestHead> {
        match parse(bytes) {
            Parsed::Complete(head) => Some(head),
            _ => None,
        }
    }

    #[test]
    fn the_fields_the_transports_need_are_read() {
        let got = head(
            b"GET /events/a,b?since=x-1&last=3 HTTP/1.1\r\nHost: h:1\r\nlast-event-id: e-7\r\n\
              X-Forwarded-For: 1.2.3.4\r\nOrigin: http://o\r\nx-forwarded-for: 5.6.7.8, 9.9.9.9\r\n\
              Cookie: a=1\r\ncookie: wspush_token=t\r\n\r\nextra",
        )
        .unwrap();
        assert_eq!(
            got,
            RequestHead {
                method: "GET".into(),
                path: "/events/a,b".into(),
                query: Some("since=x-1&last=3".into()),
                upgrade: false,
                origin: Some("http://o".into()),
                host: Some("h:1".into()),
                last_event_id: Some("e-7".into()),
                forwarded_for: vec![b"1.2.3.4".to_vec(), b"5.6.7.8, 9.9.9.9".to_vec()],
                cookies: vec![b"a=1".to_vec(), b"wspush_token=t".to_vec()],
            }
        );
        let upgrade = head(b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").unwrap();
        assert!(upgrade.upgrade);
        assert_eq!(upgrade.query, None);
    }

    #[test]
    fn partial_and_invalid_heads_are_told_apart() {
        assert!(matches!(
            parse(b"GET /events/a HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        ));
        assert!(matches!(parse(b""), Parsed::Partial));
        for bad in [
            &b"\x16\x03\x01garbage\r\n\r\n"[..],
            b"GET /echo HTTP/9.9\r\n\r\n",
            b"GET\r\n\r\n",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid), "{bad:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let too_many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(too_many.as_bytes()), Parsed::Invalid));
    }
}
