//! Subscribe tokens for the token tests: signed here with the `jsonwebtoken`
//! crate, forged the ways an attacker would, or minted by `POST /tokens`.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::TestServer;

/// The subscribe secret of the token tests' servers.
pub const SECRET: &str = "wspush-integration-secret-7f3a9c";

/// Seconds since 1970 now, on this machine's clock (the server's too).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// An HS256 token for `claims`, signed with `secret`.
pub fn sign_with(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign a token")
}

/// An HS256 token for `claims`, signed with `SECRET`.
pub fn sign(claims: &Value) -> String {
    sign_with(SECRET, claims)
}

/// A token for `channels` that expires `ttl` seconds from now.
pub fn token_for(channels: &[&str], ttl: u64) -> String {
    sign(&json!({ "channels": channels, "exp": now_secs() + ttl }))
}

/// `header` and `claims` signed HS256 with `SECRET` all the same: what an
/// attacker who confuses the secret with an RS256 public key sends.
pub fn forge(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", part(header), part(claims));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{message}.{signature}")
}

/// `alg: none`, no signature: the classic forgery.
pub fn unsigned(claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        part(&json!({ "alg": "none", "typ": "JWT" })),
        part(claims)
    )
}

/// A server that checks tokens against `SECRET`, with `extra` flags.
pub fn checking_server(extra: &[&str]) -> TestServer {
    let mut args = vec!["--subscribe-secret", SECRET];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// `POST /tokens` with `body` and these headers: status and answer.
pub fn mint_with(server: &TestServer, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, answer) = server.request("POST", "/tokens", headers, body.as_bytes());
    let answer = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    (status, answer)
}

/// `POST /tokens` with `body`: the answer, which must be 200.
pub fn mint(server: &TestServer, body: &Value) -> Value {
    let (status, answer) = mint_with(server, &[], &body.to_string());
    assert_eq!(status, 200, "{answer}");
    answer
}
