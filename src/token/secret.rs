//! The subscribe secret: from `--subscribe-secret`, or read from the file of
//! `--subscribe-secret-file` at startup. Never shown.
//!
//! Both are clap value parsers, so an empty secret, or a file that cannot be
//! read or holds nothing, stops the server before it starts (exit 2), as an
//! empty `--publish-token` does.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider};
use jsonwebtoken::{DecodingKey, EncodingKey};

/// Largest secret file read, in bytes: it holds a secret, not a document.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The HMAC key subscribe tokens are signed with.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key tokens are checked with.
    pub fn decoding_key(&self) -> DecodingKey {
        install_crypto();
        DecodingKey::from_secret(&self.0)
    }

    /// The key tokens are signed with.
    pub fn encoding_key(&self) -> EncodingKey {
        install_crypto();
        EncodingKey::from_secret(&self.0)
    }
}

/// Names the crate's pure-Rust backend as the process default. It would pick it
/// from its features alone, but with a second backend's feature switched on by
/// some other dependency it would pick none and panic on first use.
fn install_crypto() {
    // Err means a default is installed already, by an earlier call.
    let _ = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER);
}

/// Keeps the secret out of `{:?}` (of `Config`, say).
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(hidden)")
    }
}

/// `--subscribe-secret`: any non-empty text.
pub fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("the secret must not be empty (leave the flag out to let anyone subscribe)".into());
    }
    Ok(Secret(text.as_bytes().into()))
}

/// `--subscribe-secret-file`: the file's bytes, without trailing line breaks.
pub fn read_secret_file(path: &str) -> Result<Secret, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "{path} is over {MAX_SECRET_FILE_BYTES} bytes; it should hold just the secret"
        ));
    }
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(format!("{path} holds no secret"));
    }
    Ok(Secret(bytes.into()))
}
