//! Making subscribe tokens for `POST /tokens` on the side port.
//!
//! The request is `{"channels":[…],"sub":"…","ttl":600}`: `channels` as in a
//! token (names, `prefix*`, `*`; at least one), `sub` optional, `ttl` in whole
//! seconds, at most `--max-token-ttl` (omitted: that maximum). A ttl over the
//! maximum is refused, not shortened: a caller that asked for a day and got an
//! hour would only learn it when its clients are closed with 4001. Unknown
//! fields are refused too, so a misspelt `chanels` is an error, not a token
//! that covers nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;

use super::claims::{check_sub, Claims, SubError};
use super::pattern::{PatternError, Patterns};
use super::secret::Secret;

/// Default of `--max-token-ttl`, in seconds.
pub const DEFAULT_MAX_TOKEN_TTL: u64 = 3600;

/// Highest `--max-token-ttl` accepted: a year, in seconds.
pub const MAX_TOKEN_TTL: u64 = 365 * 24 * 3600;

/// Signs tokens with the subscribe secret.
pub struct Minter {
    key: EncodingKey,
    header: Header,
    max_ttl: u64,
}

/// The body of `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// Channel patterns the token covers.
    pub channels: Vec<String>,
    /// Who the token is for.
    #[serde(default)]
    pub sub: Option<String>,
    /// Lifetime in seconds [default: `--max-token-ttl`].
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// A token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// The JWT.
    pub token: String,
    /// Its `exp`.
    pub expires_at: SystemTime,
}

/// Why `POST /tokens` is refused: 400, but 500 for `Signing`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// Not JSON, or not the request's shape.
    #[error("the body is not a token request ({0}); send {{\"channels\":[\"orders\"],\"sub\":\"alice\",\"ttl\":600}}")]
    BadJson(String),
    /// `channels` is empty.
    #[error("channels must name at least one channel or pattern")]
    NoChannels,
    /// A pattern is invalid, or there are too many.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// `sub` is empty, too long or has a control character.
    #[error(transparent)]
    Sub(#[from] SubError),
    /// `ttl` is 0.
    #[error("ttl must be at least 1 second")]
    ZeroTtl,
    /// `ttl` is over `--max-token-ttl`.
    #[error("ttl {ttl} is over the limit of {max} seconds (--max-token-ttl)")]
    TtlOverMax {
        /// What was asked.
        ttl: u64,
        /// `--max-token-ttl`.
        max: u64,
    },
    /// The crate could not sign (not expected with an HMAC key).
    #[error("the token could not be signed: {0}")]
    Signing(String),
}

impl MintError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            MintError::Signing(_) => 500,
            _ => 400,
        }
    }
}

impl MintRequest {
    /// Parses the body of `POST /tokens`.
    pub fn from_json(body: &[u8]) -> Result<MintRequest, MintError> {
        serde_json::from_slice(body).map_err(|e| MintError::BadJson(e.to_string()))
    }
}

impl Minter {
    /// A minter signing with `secret`; no token lives longer than `max_ttl` seconds.
    pub fn new(secret: &Secret, max_ttl: u64) -> Minter {
        Minter {
            key: secret.encoding_key(),
            header: Header::new(Algorithm::HS256),
            max_ttl,
        }
    }

    /// Checks `request` and signs a token valid from `now` for its ttl.
    pub fn mint(&self, request: &MintRequest, now: SystemTime) -> Result<Minted, MintError> {
        let ttl = self.ttl(request.ttl)?;
        if request.channels.is_empty() {
            return Err(MintError::NoChannels);
        }
        let channels = Patterns::parse(&request.channels)?;
        if let Some(sub) = &request.sub {
            check_sub(sub)?;
        }
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            exp: iat + ttl,
            nbf: None,
            iat: Some(iat),
            sub: request.sub.clone(),
            channels: channels.to_strings(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| MintError::Signing(e.to_string()))?;
        Ok(Minted {
            token,
            expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp),
        })
    }

    fn ttl(&self, asked: Option<u64>) -> Result<u64, MintError> {
        match asked {
            None => Ok(self.max_ttl),
            Some(0) => Err(MintError::ZeroTtl),
            Some(ttl) if ttl > self.max_ttl => Err(MintError::TtlOverMax {
                ttl,
                max: self.max_ttl,
            }),
            Some(ttl) => Ok(ttl),
        }
    }
}

impl Minted {
    /// The answer of `POST /tokens` (the route may add the URLs to connect to).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "token": self.token,
            "expires": humantime::format_rfc3339_seconds(self.expires_at).to_string(),
        })
    }
}
