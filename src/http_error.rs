//! The error both ports answer with: `{"error": reason}`, and the raw HTTP
//! response the WebSocket port writes around it when it refuses a connection.

/// `{"error": reason}` as a JSON string.
pub fn error_json(reason: &str) -> String {
    serde_json::json!({ "error": reason }).to_string()
}

/// A whole HTTP/1.1 error response with a JSON body, to be written in one go:
/// head and body leave in one segment, so a client that reads the response in
/// one read (tungstenite's does) gets the body too. `extra_headers` are
/// complete lines, each ending in `\r\n`.
pub fn error_response(status: u16, phrase: &str, reason: &str, extra_headers: &str) -> String {
    let body = error_json(reason);
    format!(
        "HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\nconnection: close\r\n{extra_headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_carries_the_json_reason_with_its_length() {
        let r = error_response(503, "Service Unavailable", "full \"now\"", "retry-after: 1\r\n");
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(r.contains("\r\nretry-after: 1\r\n"));
        let (_, body) = r.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"error":"full \"now\""}"#);
        assert!(r.contains(&format!("content-length: {}\r\n", body.len())));
    }
}
