//! Unit tests of subscribe tokens: tokens made here with the crate's encoder,
//! and literal tokens from PyJWT and Node's jsonwebtoken (`external`).

mod carrier;
mod external;
mod flags;
mod gate;
mod mint;
mod pattern;
mod secret;
mod timing;
mod verify;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::carrier::find_token;
use super::claims::MAX_SUB_LEN;
use super::pattern::{PatternError, MAX_PATTERNS};
use super::secret::MAX_SECRET_FILE_BYTES;
use super::verify::{Verifier, DEFAULT_LEEWAY, MAX_TOKEN_BYTES};
use super::*;
use crate::channel::{ChannelName, ChannelSet};

/// The secret of every token below, PyJWT's and Node's included.
const SECRET: &str = "wspush-test-secret-0123456789abcdef";

/// 2026-12-02T12:00:00Z, the `exp` of most tokens here.
const EXP: u64 = 1_796_212_800;

fn secret() -> Secret {
    parse_secret(SECRET).expect("a test secret")
}

fn verifier() -> Verifier {
    Verifier::new(&secret(), DEFAULT_LEEWAY)
}

/// The instant `secs` seconds after the epoch.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A token for `claims`, HS256 with `SECRET`, by the crate's encoder.
fn sign(claims: Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode")
}

/// A token with any header, signed HS256 with `SECRET` all the same (as an attacker
/// who knows the secret, or confuses it with a public key, would).
fn sign_with_header(header: Value, claims: Value) -> String {
    sign_raw(&format!("{}.{}", b64(&header), b64(&claims)))
}

/// `message` (header.payload, as given) with a valid HS256 signature.
fn sign_raw(message: &str) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{message}.{signature}")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

/// The grant of a token for these patterns (no expiry concerns).
fn grant_for(patterns: &[&str]) -> Grant {
    let token = sign(json!({ "channels": patterns, "exp": EXP }));
    verifier().verify(&token, at(EXP)).expect("a valid token")
}
