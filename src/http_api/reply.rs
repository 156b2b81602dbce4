//! What a side-port handler answers, and how it goes on the wire.

use std::io::Cursor;

use tiny_http::{Header, Response, StatusCode};

use super::error::ApiError;
use crate::http_error::error_json;

/// A response: status, content type and body.
#[derive(Debug)]
pub struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    extra: Vec<(&'static str, String)>,
}

impl Reply {
    /// 200 with a JSON body; a value that does not serialise is a 500.
    pub fn json(value: &impl serde::Serialize) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ApiError::Internal(format!("cannot encode the answer: {e}")))?;
        Ok(Reply::with_type(200, "application/json", body))
    }

    /// 200 with a JSON body already encoded.
    pub fn raw_json(json: String) -> Reply {
        Reply::with_type(200, "application/json", json.into_bytes())
    }

    pub fn with_type(status: u16, content_type: impl Into<String>, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: content_type.into(),
            body,
            extra: Vec::new(),
        }
    }

    /// The error as `{"error": "..."}` with its status.
    pub fn error(err: &ApiError) -> Reply {
        let mut reply = Reply::with_type(
            err.status(),
            "application/json",
            error_json(&err.to_string()).into_bytes(),
        );
        if let Some(allow) = err.allow() {
            reply.extra.push(("Allow", allow.to_owned()));
        }
        if matches!(err, ApiError::Unauthorized) {
            reply.extra.push(("WWW-Authenticate", "Bearer".to_owned()));
        }
        reply
    }

    /// The reply as tiny_http writes it: always with a Content-Length, never
    /// chunked, since the front door relays one whole response.
    pub fn into_response(self) -> Response<Cursor<Vec<u8>>> {
        let mut response = Response::from_data(self.body)
            .with_status_code(StatusCode(self.status))
            .with_chunked_threshold(usize::MAX);
        let headers = std::iter::once(("Content-Type", self.content_type))
            .chain(std::iter::once(("Cache-Control", "no-store".to_owned())))
            .chain(self.extra);
        for (name, value) in headers {
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        response
    }
}
