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

#[cfg(test)]
mod tests {
    use super::*;

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
