//! A request the front door refuses: its status, its reason, and the response bytes.

use crate::http_error::error_response;

/// A refusal decided by the front door; the connection is closed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// Why, sent as `{"error": reason}` and logged.
    pub reason: String,
}

impl Refusal {
    /// A refusal with this status and reason.
    pub fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad(reason: impl Into<String>) -> Refusal {
        Refusal::new(400, reason)
    }

    /// The whole response: JSON error body, `connection: close`.
    pub fn response(&self) -> Vec<u8> {
        let retry = if self.status == 503 {
            "retry-after: 1\r\n"
        } else {
            ""
        };
        let extra = format!("cache-control: no-store\r\n{retry}");
        error_response(self.status, phrase(self.status), &self.reason, &extra).into_bytes()
    }
}

/// The reason phrase of the statuses the front door answers with.
fn phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Up to 40 characters of untrusted bytes, printable, for a reason or a log line.
pub fn shown(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(40)
        .collect();
    if bytes.len() > 40 {
        format!("{text}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_is_json_and_closes() {
        let text = String::from_utf8(Refusal::new(413, "too \"big\"").response()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 413 Content Too Large\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "too \"big\"");
    }

    #[test]
    fn shown_bytes_are_short_and_printable() {
        assert_eq!(shown(b"HTTP/2.0"), "HTTP/2.0");
        assert_eq!(shown(b"a\r\n\xff"), "a??\u{fffd}");
        assert_eq!(shown(&[b'x'; 50]), format!("{}...", "x".repeat(40)));
    }
}
