//! Checking a subscribe token (algorithm, signature, claims, expiry) and what it grants.
//!
//! The algorithm is read from the header before anything else, so that `none`,
//! RS256 (the secret passed off as a public key) and every other algorithm are
//! refused as such, by name; only HS256 tokens reach `jsonwebtoken::decode`,
//! which checks the signature (in constant time) before it parses the claims.
//! Time is checked here rather than by the crate, against the caller's `now`:
//! tests set it, and the connection that closes at `exp` uses the same rule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::claims::{check_sub, Claims};
use super::pattern::Patterns;
use super::secret::Secret;
use crate::channel::{ChannelName, ChannelSet};

/// Clock skew tolerated between whoever mints tokens and this server: a token is
/// accepted until `exp` + leeway, and from `nbf` − leeway.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// Longest token accepted, in bytes (64 long patterns fit in about half of it).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How much of a refused algorithm name, or of a parse error, a reason quotes.
const QUOTED_LEN: usize = 40;
const REASON_LEN: usize = 200;

/// 9999-12-31T23:59:59Z: a later `exp` or `nbf` counts as this, which
/// `SystemTime` can always hold.
const LAST_NUMERIC_DATE: u64 = 253_402_300_799;

/// Checks tokens against the subscribe secret.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    leeway: Duration,
}

/// What a valid token lets its bearer do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who the token was issued to, shown in `/clients` and the logs.
    pub sub: Option<String>,
    /// The channels it may read.
    pub channels: Patterns,
    /// Its `exp` (without the leeway): when the connection is closed with 4001.
    pub expires_at: SystemTime,
}

/// Why a connection is refused: 401 for every variant but `NotCovered` (403).
/// The message is the JSON reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `?token=` and no `wspush_token` cookie.
    #[error("a subscribe token is required: ?token=... or the wspush_token cookie")]
    Missing,
    /// Not a JWT, or its claims are not what wspush needs.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// Signed with another secret, or altered after signing.
    #[error("the token's signature does not match")]
    BadSignature,
    /// Any algorithm but HS256 (quoted as given).
    #[error("the token's algorithm is {0}; only HS256 is accepted")]
    WrongAlgorithm(String),
    /// `exp` + leeway has passed.
    #[error("the token expired at {}", rfc3339(*.exp))]
    Expired {
        /// The token's `exp`.
        exp: u64,
    },
    /// `nbf` − leeway is still to come.
    #[error("the token is not valid before {}", rfc3339(*.nbf))]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
    },
    /// The token is valid but does not cover this channel.
    #[error("the token does not cover channel {0}")]
    NotCovered(ChannelName),
}

impl TokenError {
    /// The HTTP status that refuses the handshake or the stream.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::NotCovered(_) => 403,
            _ => 401,
        }
    }
}

impl Verifier {
    /// A verifier for tokens signed with `secret`, tolerating `leeway` of clock skew.
    pub fn new(secret: &Secret, leeway: Duration) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        // Checked in `grant`, against the caller's clock; `exp` stays required.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Verifier {
            key: secret.decoding_key(),
            validation,
            leeway,
        }
    }

    /// The clock skew tolerated.
    #[cfg(test)]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Checks `token` as of `now` and returns what it grants.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            let len = token.len();
            return Err(malformed(format!(
                "it is {len} bytes long, the limit is {MAX_TOKEN_BYTES}"
            )));
        }
        check_algorithm(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(classify)?;
        self.grant(data.claims, now)
    }

    fn grant(&self, claims: Claims, now: SystemTime) -> Result<Grant, TokenError> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let exp = claims.exp.min(LAST_NUMERIC_DATE);
        if now > Duration::from_secs(exp) + self.leeway {
            return Err(TokenError::Expired { exp });
        }
        if let Some(nbf) = claims.nbf.map(|nbf| nbf.min(LAST_NUMERIC_DATE)) {
            if now + self.leeway < Duration::from_secs(nbf) {
                return Err(TokenError::NotYetValid { nbf });
            }
        }
        if let Some(sub) = &claims.sub {
            check_sub(sub).map_err(|e| malformed(e.to_string()))?;
        }
        let channels = Patterns::parse(&claims.channels).map_err(|e| malformed(e.to_string()))?;
        Ok(Grant {
            sub: claims.sub,
            channels,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        })
    }
}

impl Grant {
    /// Whether the token lets its bearer read `channel`.
    pub fn covers(&self, channel: &ChannelName) -> bool {
        self.channels.covers(channel)
    }

    /// Checks every channel of a subscription; the first one not covered is the error.
    ///
    /// Every connection is on `all`, so naming it beside other channels gains
    /// nothing and is not checked; it is checked when it is all the connection
    /// asks for (`/echo`, `/ws/all`), so those need a token that covers `all`.
    pub fn covers_all(&self, set: &ChannelSet) -> Result<(), ChannelName> {
        let mut asked = set.iter().filter(|channel| !channel.is_all() || set.len() == 1);
        match asked.find(|channel| !self.covers(channel)) {
            Some(channel) => Err(channel.clone()),
            None => Ok(()),
        }
    }
}

/// The part of a JOSE header read before the signature is checked.
#[derive(Deserialize)]
struct AlgorithmOnly {
    alg: String,
}

/// Refuses any token whose header does not say HS256, by the name it gives.
fn check_algorithm(token: &str) -> Result<(), TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT is three base64url parts joined by dots"));
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("its header is not base64url"))?;
    let header: AlgorithmOnly = serde_json::from_slice(&json)
        .map_err(|_| malformed("its header is not a JSON object with an alg string"))?;
    if header.alg != "HS256" {
        let alg: String = header.alg.chars().take(QUOTED_LEN).collect();
        return Err(TokenError::WrongAlgorithm(format!("{alg:?}")));
    }
    Ok(())
}

/// Maps the crate's errors for an HS256 token onto ours.
fn classify(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::MissingRequiredClaim(claim) => malformed(format!("it has no {claim} claim")),
        ErrorKind::Base64(_) => malformed("a part is not base64url"),
        ErrorKind::Json(e) => malformed(format!("its header or claims are not as expected: {e}")),
        ErrorKind::Utf8(_) => malformed("its claims are not UTF-8"),
        _ => malformed(err.to_string()),
    }
}

fn malformed(reason: impl Into<String>) -> TokenError {
    let mut reason = reason.into();
    if let Some((cut, _)) = reason.char_indices().nth(REASON_LEN) {
        reason.truncate(cut);
        reason.push('…');
    }
    TokenError::Malformed(reason)
}

fn rfc3339(secs: u64) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
}
