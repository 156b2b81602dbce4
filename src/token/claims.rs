//! The claims of a subscribe token as JSON, shared by the minter and the verifier,
//! and the rules for `sub`.
//!
//! `exp` and `nbf` are NumericDates: seconds since the epoch. RFC 7519 allows
//! fractions; they are rounded down, so a fraction never extends a token.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest `sub`, in bytes: it is shown in `/clients` and in log lines.
pub const MAX_SUB_LEN: usize = 128;

/// The claims wspush reads (others, such as `iss` or `jti`, are ignored).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Claims {
    #[serde(deserialize_with = "numeric_date")]
    pub exp: u64,
    #[serde(
        default,
        deserialize_with = "optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<u64>,
    /// Written by the minter; never read, so a bad one does not refuse a token.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub channels: Vec<String>,
}

/// Why a `sub` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubError {
    /// `""`.
    #[error("sub is empty (leave it out instead)")]
    Empty,
    /// Over `MAX_SUB_LEN` bytes.
    #[error("sub is {len} bytes long, the limit is {MAX_SUB_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A control character would break the one-line-per-event logs.
    #[error("sub contains a control character")]
    Control,
}

/// Checks a `sub` before it is signed or shown.
pub fn check_sub(sub: &str) -> Result<(), SubError> {
    if sub.is_empty() {
        return Err(SubError::Empty);
    }
    if sub.len() > MAX_SUB_LEN {
        return Err(SubError::TooLong { len: sub.len() });
    }
    if sub.chars().any(char::is_control) {
        return Err(SubError::Control);
    }
    Ok(())
}

fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_u64().or_else(|| {
        let secs = number.as_f64()?;
        // 1e15 s is far past year 9999; the bound keeps the cast exact.
        (secs.is_finite() && (0.0..1e15).contains(&secs)).then(|| secs.floor() as u64)
    });
    whole.ok_or_else(|| D::Error::custom(format!("{number} is not a time in seconds since 1970")))
}

fn optional_numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    numeric_date(deserializer).map(Some)
}
