//! The JSON text a `/ws/…` client gets for each message, encoded once per publish.
//!
//! Every frame on `/ws/…` is one text frame holding one JSON object:
//!
//! | what | shape |
//! |---|---|
//! | a channel message | `{"channel":"orders","id":"<id>","data":<data>}` |
//! | a direct message (`/send/{id}`: one client, not stored, no id) | `{"type":"direct","data":<data>}` |
//! | the echo of what the client sent | `{"type":"echo","data":<data>}` |
//! | a resume that cannot be complete | `{"type":"reset","id":"<latest id>"}` |
//! | the join is done: live messages follow | `{"type":"subscribed","id":"<latest id>","channels":[…]}` |
//!
//! A channel message is the only shape without `"type"`. `<data>` is the
//! published JSON value itself (embedded as sent, never re-serialised), a JSON
//! string for text, and `{"base64":"…"}` for binary. Channel names and ids need
//! no escaping (their characters are `[A-Za-z0-9_.:@-]`); text goes through
//! serde_json's string escaping, so the output is always valid JSON.
//!
//! `Data` owns the encoded `<data>`: build it outside the hub lock, then under
//! the lock `message` only copies it around the id the publish was given.

use std::fmt::Write as _;
use std::io;

use base64::Engine as _;

use crate::channel::{ChannelName, ChannelSet};
use crate::history::MessageId;

/// What a publish or a client sent, before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A JSON text the caller has validated (`/sendall` with `application/json`).
    Json(&'a str),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Binary(&'a [u8]),
}

/// The encoded `data` member of an envelope: valid JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data(String);

impl Data {
    /// Encodes `payload`: JSON as sent (outer whitespace trimmed), text as a
    /// JSON string, binary as `{"base64":"…"}`.
    pub fn new(payload: Payload<'_>) -> Data {
        match payload {
            Payload::Json(json) => Data(json.trim_matches([' ', '\t', '\n', '\r']).to_owned()),
            Payload::Text(text) => Data(json_string(text)),
            Payload::Binary(bytes) => {
                const OPEN: &str = r#"{"base64":""#;
                let engine = &base64::engine::general_purpose::STANDARD;
                let mut out = String::with_capacity(OPEN.len() + bytes.len().div_ceil(3) * 4 + 2);
                out.push_str(OPEN);
                engine.encode_string(bytes, &mut out);
                out.push_str("\"}");
                Data(out)
            }
        }
    }

    /// The JSON text.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` as a JSON string, escaped by serde_json.
fn json_string(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    // Writing a str into a Vec cannot fail, and serde_json writes UTF-8; the
    // fallback only keeps the output valid JSON should either ever change.
    let _ = serde_json::to_writer(&mut out, text);
    String::from_utf8(out).unwrap_or_else(|_| String::from(r#""""#))
}

/// The pieces around a channel message's three values.
const MESSAGE_PARTS: [&str; 4] = [r#"{"channel":""#, r#"","id":""#, r#"","data":"#, "}"];

/// `{"channel":"<channel>","id":"<id>","data":<data>}`, in one allocation
/// (the server writes it straight into its frame: `write_message`).
#[cfg(test)]
pub fn message(channel: &ChannelName, id: &MessageId, data: &Data) -> String {
    let len = message_len(channel, id, data);
    let mut out = Vec::with_capacity(len);
    // Writing into a Vec cannot fail.
    let _ = write_message(&mut out, channel, id, data);
    debug_assert_eq!(out.len(), len);
    // Every piece is UTF-8 (`Data` and the names are strings, the id ASCII).
    String::from_utf8(out).unwrap_or_default()
}

/// Bytes of `message(channel, id, data)`, without building it.
pub fn message_len(channel: &ChannelName, id: &MessageId, data: &Data) -> usize {
    MESSAGE_PARTS.iter().map(|p| p.len()).sum::<usize>()
        + channel.as_str().len()
        + id.wire_len()
        + data.0.len()
}

/// Writes `message(channel, id, data)` into `out` (the frame's own buffer).
pub fn write_message(
    out: &mut impl io::Write,
    channel: &ChannelName,
    id: &MessageId,
    data: &Data,
) -> io::Result<()> {
    out.write_all(MESSAGE_PARTS[0].as_bytes())?;
    out.write_all(channel.as_str().as_bytes())?;
    out.write_all(MESSAGE_PARTS[1].as_bytes())?;
    write!(out, "{id}")?;
    out.write_all(MESSAGE_PARTS[2].as_bytes())?;
    out.write_all(data.0.as_bytes())?;
    out.write_all(MESSAGE_PARTS[3].as_bytes())
}

/// `{"type":"direct","data":<data>}`: a message to one client, not stored.
pub fn direct(data: &Data) -> String {
    typed("direct", data)
}

/// `{"type":"echo","data":<data>}`: what the client sent, back to it alone.
pub fn echo(data: &Data) -> String {
    typed("echo", data)
}

fn typed(kind: &str, data: &Data) -> String {
    let mut out = String::with_capacity(25 + data.0.len());
    out.push_str(r#"{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","data":"#);
    out.push_str(&data.0);
    out.push('}');
    out
}

/// `{"type":"reset","id":"<latest>"}`: what was missed cannot be replayed; resume from `latest`.
pub fn reset(latest: &MessageId) -> String {
    format!(r#"{{"type":"reset","id":"{latest}"}}"#)
}

/// `{"type":"subscribed","id":"<latest>","channels":["all",…]}`: the join is
/// done (after any replay), live messages follow; a client that has seen no
/// message yet resumes from `latest`.
pub fn subscribed(latest: &MessageId, channels: &ChannelSet) -> String {
    let mut out = format!(r#"{{"type":"subscribed","id":"{latest}","channels":["#);
    for (n, channel) in channels.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        // Names need no escaping: their characters are [A-Za-z0-9_.:@-].
        let _ = write!(out, "\"{channel}\"");
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests;
