//! Reading a publish request into the message it asks to send.
//!
//! `?msg=` or a body; a JSON body must parse, a binary body goes out as a
//! binary frame, anything else must be UTF-8 text. Bodies over the limit are
//! refused before (Content-Length) or while (chunked) they are read.

use std::io::Read;

use tiny_http::Request;

use super::error::ApiError;
use crate::frame::PayloadKind;
use crate::publish::Payload;

/// The value of `key` in a query string, percent- and `+`-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The message a `/sendall`, `/publish/{channel}` or `/send/{id}` request carries.
/// `path` is the request's, for the usage hint.
pub fn publication(
    request: &mut Request,
    path: &str,
    query: &str,
    max_body: usize,
) -> Result<Payload, ApiError> {
    let body = read_body(request, max_body)?;
    if body.is_empty() {
        return match query_param(query, "msg") {
            Some(msg) => Ok(Payload::new(PayloadKind::Text, msg.into_bytes())),
            None => Err(ApiError::BadRequest(format!(
                "nothing to send: use GET {path}?msg=TEXT, or POST the message as the body \
                 (application/json, application/octet-stream, or text)"
            ))),
        };
    }
    let content_type = header(request, "Content-Type").unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => {
            // Checked first: parsing into IgnoredAny skips the strings' UTF-8,
            // and a text frame that is not UTF-8 makes every client close.
            std::str::from_utf8(&body)
                .map_err(|e| ApiError::BadRequest(format!("JSON body is not valid UTF-8 ({e})")))?;
            serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
            Ok(Payload::new(PayloadKind::Json, body))
        }
        "application/octet-stream" => Ok(Payload::new(PayloadKind::Binary, body)),
        _ => match String::from_utf8(body) {
            Ok(text) => Ok(Payload::new(PayloadKind::Text, text.into_bytes())),
            Err(e) => Err(ApiError::BadRequest(format!(
                "body is not valid UTF-8 ({e}); send binary data as application/octet-stream"
            ))),
        },
    }
}

/// Reads the whole body, refusing more than `max` bytes.
pub fn read_body(request: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > max) {
        return Err(ApiError::TooLarge { limit: max });
    }
    let mut body = Vec::new();
    request.as_reader().take(max as u64 + 1).read_to_end(&mut body)?;
    if body.len() > max {
        return Err(ApiError::TooLarge { limit: max });
    }
    Ok(body)
}

/// A request header's value.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_owned())
}
