//! Errors the HTTP side port answers with, each mapped to one status code here
//! (a publisher's errors included).

use std::io;

use crate::publish::PublishError;
use crate::token::MintError;

/// A request the side port refuses; the message is sent as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or its body does not fit its type (400).
    #[error("{0}")]
    BadRequest(String),
    /// A publishing request without the right bearer token (401).
    #[error("missing or wrong bearer token: send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// A static path that tries to leave the html folder (403).
    #[error("path {0:?} leaves the html folder")]
    Traversal(String),
    /// No such path, file or client (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not for this method (405).
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    /// The body is over `--max-body-bytes` (413).
    #[error("request body is larger than the limit of {limit} bytes (--max-body-bytes)")]
    TooLarge { limit: usize },
    /// Reading the request failed (400).
    #[error("could not read the request body: {0}")]
    Io(#[from] io::Error),
    /// The publisher did not deliver (404 for no such client, else 503).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A `POST /tokens` that cannot be made (400; 500 if signing failed).
    #[error(transparent)]
    Mint(#[from] MintError),
    /// The server failed at its own work (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error: the one place errors meet statuses.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::Io(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Traversal(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::TooLarge { .. } => 413,
            ApiError::Publish(PublishError::NoClient(_) | PublishError::NotFound(_)) => 404,
            ApiError::Publish(PublishError::Unavailable(_)) => 503,
            ApiError::Mint(e) => e.status(),
            ApiError::Internal(_) => 500,
        }
    }

    /// The `Allow` header value for a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allowed, .. } => Some(allowed),
            _ => None,
        }
    }
}
