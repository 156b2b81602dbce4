//! Who may subscribe: signed subscribe tokens (HS256 JWTs) and what they grant.
//!
//! With `--subscribe-secret`, a connection to `/ws/…`, `/events/…` or `/echo`
//! carries a token (`carrier`: `?token=` first, then the `wspush_token`
//! cookie) that `Verifier` must accept; the `Grant` it yields must then cover
//! every channel the connection asks for (`pattern`: a name, a prefix ending in
//! `*`, or `*`). `Minter` makes tokens for `POST /tokens`; `secret` reads the
//! secret flags. Signatures and the JWT format are the `jsonwebtoken` crate's;
//! this module decides what a token must say and why it is refused: 401 for a
//! token that is missing, malformed, badly signed, of another algorithm or
//! expired, 403 for a valid token that does not cover a channel. `Gate` puts
//! these together into the one check each transport makes before it starts.

mod carrier;
mod claims;
mod gate;
mod mint;
mod pattern;
mod secret;
mod verify;

pub use carrier::{strip_query, TOKEN_PARAM};
pub use gate::Gate;
pub use mint::{MintError, MintRequest, Minter, DEFAULT_MAX_TOKEN_TTL, MAX_TOKEN_TTL};
pub use pattern::{Pattern, Patterns};
pub use secret::{parse_secret, read_secret_file, Secret};
pub use verify::{Grant, TokenError};

#[cfg(test)]
mod tests;
