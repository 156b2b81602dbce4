//! A request head: parsed with httparse, then checked for size, version and framing.
//!
//! A head either passes every check here or is refused: nothing ambiguous
//! about where its body ends reaches the router, so no bytes of a body can
//! ever be read as a request of their own.

use httparse::Status;

use super::inbound::MAX_BUFFERED;
use super::refusal::{shown, Refusal};

/// The largest request head accepted.
pub const MAX_HEAD_BYTES: usize = MAX_BUFFERED;
/// The most header fields in a head (and in a chunked body's trailer).
pub const MAX_HEADERS: usize = 100;

/// Headers that describe one hop, not the request: the front door sets its
/// own framing and connection handling towards the router.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "expect",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];
/// The header that numbers each request the router gets, so that the thread
/// that sent it picks it up (`pickup`); a client's own is dropped.
pub const REQUEST_HEADER: &str = "X-Wspush-Request";

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes (0 without the header).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, its blank line included.
    pub len: usize,
    /// What of it goes on to the router: the request line (as HTTP/1.1), then
    /// the client's end-to-end header fields (no hop-by-hop ones), each line
    /// ending in CRLF; copied once, checked ASCII.
    pub forward: Vec<u8>,
    /// A HEAD request: its response has no body.
    pub is_head: bool,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Where the body ends.
    pub framing: Framing,
    /// `Expect: 100-continue` on HTTP/1.1.
    pub expects_continue: bool,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
}

impl Head {
    /// The request has a body to read.
    pub fn has_body(&self) -> bool {
        self.framing != Framing::Length(0)
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse(buf: &[u8], max_body: usize) -> Result<Option<Head>, Refusal> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(too_large()),
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                431,
                format!("more than {MAX_HEADERS} header fields"),
            ))
        }
        Err(httparse::Error::Version) => return Err(version_refusal(buf)),
        Err(e) => return Err(Refusal::bad(format!("malformed request head: {e}"))),
    };
    if len > MAX_HEAD_BYTES {
        return Err(too_large());
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version) else {
        return Err(Refusal::bad("malformed request line"));
    };
    // The router reads heads as ASCII text: anything else would end its connection.
    if !target.is_ascii() {
        return Err(Refusal::bad("the request target is not ASCII: percent-encode it"));
    }
    if let Some(h) = request.headers.iter().find(|h| !h.value.is_ascii()) {
        return Err(Refusal::bad(format!(
            "header {} has a value that is not ASCII",
            h.name
        )));
    }
    let headers = request.headers;
    Ok(Some(Head {
        len,
        forward: forward(method, target, headers),
        is_head: method == "HEAD",
        minor,
        framing: framing(headers, minor, max_body)?,
        expects_continue: expects_continue(headers, minor)?,
        keep_alive: keep_alive(headers, minor),
    }))
}

/// The request line as HTTP/1.1 and the end-to-end fields, in one buffer.
fn forward(method: &str, target: &str, headers: &[httparse::Header]) -> Vec<u8> {
    let kept = || {
        headers
            .iter()
            .filter(|h| !is_hop_by_hop(h.name) && !h.name.eq_ignore_ascii_case(REQUEST_HEADER))
    };
    let size = kept().map(|h| h.name.len() + h.value.len() + 4).sum::<usize>();
    let mut out = Vec::with_capacity(method.len() + target.len() + 12 + size);
    for part in [method.as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1\r\n"] {
        out.extend_from_slice(part);
    }
    for h in kept() {
        for part in [h.name.as_bytes(), b": ", h.value, b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    out
}

/// The 431 of a head that does not fit.
pub(super) fn too_large() -> Refusal {
    Refusal::new(431, format!("request head larger than {MAX_HEAD_BYTES} bytes"))
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// httparse reports any version but HTTP/1.0 and 1.1 as a version error: an
/// `HTTP/x` one is a version we do not speak (505), anything else is not HTTP (400).
fn version_refusal(buf: &[u8]) -> Refusal {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    let version = version.strip_suffix(b"\r").unwrap_or(version);
    if version.starts_with(b"HTTP/") {
        Refusal::new(
            505,
            format!("{} is not supported: use HTTP/1.1 or HTTP/1.0", shown(version)),
        )
    } else {
        Refusal::bad("malformed request line: no HTTP version")
    }
}

/// The one way the body is delimited, or a refusal if there is not exactly one.
fn framing(headers: &[httparse::Header], minor: u8, max_body: usize) -> Result<Framing, Refusal> {
    let named = |name: &str| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
            .collect()
    };
    let (lengths, codings) = (named("content-length"), named("transfer-encoding"));
    match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Ok(Framing::Length(0)),
        ([_, ..], [_, ..]) => Err(Refusal::bad(
            "both Content-Length and Transfer-Encoding: the body's end is ambiguous",
        )),
        ([_, _, ..], _) => Err(Refusal::bad("more than one Content-Length")),
        (_, [_, _, ..]) => Err(Refusal::bad("more than one Transfer-Encoding")),
        ([length], []) => {
            let n = content_length(length)?;
            if n > max_body as u64 {
                return Err(Refusal::new(
                    413,
                    format!("Content-Length {n} is over the limit of {max_body} bytes (--max-body-bytes)"),
                ));
            }
            // n <= max_body, which is a usize.
            Ok(Framing::Length(n as usize))
        }
        ([], [coding]) if minor == 0 => Err(Refusal::bad(format!(
            "Transfer-Encoding {} in an HTTP/1.0 request",
            shown(coding)
        ))),
        ([], [coding]) if coding.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
        ([], [coding]) => Err(Refusal::bad(format!(
            "Transfer-Encoding {} is not supported: only chunked",
            shown(coding)
        ))),
    }
}

/// A Content-Length value: decimal digits only, within 64 bits.
fn content_length(value: &[u8]) -> Result<u64, Refusal> {
    let bad = || Refusal::bad(format!("Content-Length {} is not a number", shown(value)));
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(bad)
    })
}

fn expects_continue(headers: &[httparse::Header], minor: u8) -> Result<bool, Refusal> {
    match headers.iter().find(|h| h.name.eq_ignore_ascii_case("expect")) {
        None => Ok(false),
        Some(h) if h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") => Ok(minor == 1),
        Some(h) => Err(Refusal::new(
            417,
            format!("Expect: {} is not supported", shown(h.value)),
        )),
    }
}

/// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 closes unless told `keep-alive`.
fn keep_alive(headers: &[httparse::Header], minor: u8) -> bool {
    let has = |token: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    !has("close") && (minor == 1 || has("keep-alive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Refusal> {
        parse(text.as_bytes(), 1000)
    }

    fn status(text: &str) -> u16 {
        head(text).expect_err("refused").status
    }

    #[test]
    fn a_plain_request_passes_without_its_hop_by_hop_headers() {
        let text = "POST /sendall?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\
                    X-Wspush-Request: 1\r\nContent-Type: text/plain\r\n\r\nabcGET";
        let h = head(text).unwrap().unwrap();
        assert_eq!(h.len, text.len() - "abcGET".len());
        assert_eq!(h.minor, 1);
        assert_eq!(h.framing, Framing::Length(3));
        assert!(h.keep_alive && !h.expects_continue && !h.is_head);
        assert_eq!(
            String::from_utf8(h.forward).unwrap(),
            "POST /sendall?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
        );
    }

    #[test]
    fn an_incomplete_head_waits_until_it_is_too_large() {
        assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse(&big, 10).unwrap_err().status, 431);
    }

    #[test]
    fn too_many_headers_are_431() {
        let mut text = "GET / HTTP/1.1\r\n".to_owned();
        for i in 0..=MAX_HEADERS {
            text.push_str(&format!("X-{i}: y\r\n"));
        }
        assert_eq!(status(&text), 431);
    }

    #[test]
    fn versions_other_than_1_0_and_1_1_are_505_and_garbage_is_400() {
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/9.9\r\nHost\r\n\r\n"), 505);
        assert_eq!(status("GET / FOO\r\n\r\n"), 400);
        assert_eq!(status("HELLO THERE\r\n\r\n"), 400);
        assert_eq!(status("\x16\x03\x01\x02\x00\r\n\r\n"), 400);
    }

    #[test]
    fn ambiguous_framing_is_400() {
        for extra in [
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 3\r\nContent-Length: 3\r\n",
            "Content-Length: 3\r\nContent-Length: 4\r\n",
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: +3\r\n",
            "Content-Length: 3 4\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: \r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            assert_eq!(status(&format!("POST / HTTP/1.1\r\n{extra}\r\n")), 400, "{extra}");
        }
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn a_declared_length_over_the_limit_is_413() {
        for n in ["1001", "1000000000000000", "18446744073709551615"] {
            assert_eq!(
                status(&format!("GET /healthz HTTP/1.1\r\nContent-Length: {n}\r\n\r\n")),
                413
            );
        }
        let ok = head("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(ok.framing, Framing::Length(1000));
        let chunked = head("POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(chunked.framing, Framing::Chunked);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let alive = |text: &str| head(text).unwrap().unwrap().keep_alive;
        assert!(alive("GET / HTTP/1.1\r\n\r\n"));
        assert!(!alive("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!alive("GET / HTTP/1.0\r\n\r\n"));
        assert!(alive("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn expect_is_100_continue_or_417() {
        let h = head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(h.unwrap().unwrap().expects_continue);
        assert_eq!(status("POST / HTTP/1.1\r\nExpect: teapot\r\n\r\n"), 417);
    }

    #[test]
    fn non_ascii_targets_and_values_are_400() {
        assert_eq!(
            parse(b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 10).unwrap_err().status,
            400
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", 10)
                .unwrap_err()
                .status,
            400
        );
    }
}
