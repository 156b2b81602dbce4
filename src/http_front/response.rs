//! A response from the router: its head parsed with httparse (the status
//! and the exact length of what follows), and the bytes the client gets.

use httparse::Status;

/// The largest response head taken from the router.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The largest response taken from the router (a static file, /clients).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// A response head from the router.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The status.
    pub status: u16,
    /// Bytes of the head.
    pub head_len: usize,
    /// Bytes of the head and the body.
    pub total_len: usize,
    /// It has a `Connection` or `Keep-Alive` field (its own, not the client's).
    pub hop_by_hop: bool,
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
        head_len,
        total_len: head_len + body_len,
        hop_by_hop: response.headers.iter().any(|h| is_hop_by_hop(h.name.as_bytes())),
    }))
}

fn is_hop_by_hop(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive")
}

/// The response for the client: the router's, with the client's own
/// `Connection` header if it needs one. Most responses need no change, and
/// are returned as they are.
pub fn client_response(mut raw: Vec<u8>, parsed: &Parsed, connection: Option<&str>) -> Vec<u8> {
    raw.truncate(parsed.total_len);
    if !parsed.hop_by_hop && connection.is_none() {
        return raw;
    }
    let (head, body) = raw.split_at(parsed.head_len);
    let mut out = Vec::with_capacity(raw.len() + 32);
    // The head's lines (httparse checked them), without the blank one that ends it.
    let mut lines = head.split_inclusive(|&b| b == b'\n');
    out.extend(lines.next().unwrap_or_default());
    for line in lines {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if line.trim_ascii().is_empty() || is_hop_by_hop(name) {
            continue;
        }
        out.extend_from_slice(line);
    }
    if let Some(connection) = connection {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_gets_the_clients_connection_header() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parse_response(&raw[..20], false), Ok(None));
        let parsed = parse_response(raw, false).unwrap().unwrap();
        assert_eq!((parsed.status, parsed.total_len), (200, raw.len()));
        let out = client_response(raw.to_vec(), &parsed, Some("close"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let out = client_response(raw.to_vec(), &parsed, None);
        assert!(!String::from_utf8(out).unwrap().contains("Connection"));
    }

    #[test]
    fn a_response_that_needs_no_change_is_passed_on_as_it_is() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let parsed = parse_response(&raw, false).unwrap().unwrap();
        assert!(!parsed.hop_by_hop);
        let at = raw.as_ptr();
        let expected = raw.clone();
        let moved = client_response(raw, &parsed, None);
        assert_eq!(moved, expected);
        assert_eq!(moved.as_ptr(), at, "not copied");
        let out = client_response(moved, &parsed, Some("keep-alive"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        );
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
