//! Server-Sent Events on the wire: the response head of `GET /events/…` and
//! the bytes of each event, encoded once per message and shared by every client.
//!
//! A stream is the head, then [`STREAM_START`] (`retry: 2000`), then events:
//!
//! | what | bytes |
//! |---|---|
//! | a channel message | `id: <id>\ndata: <envelope>\n\n` |
//! | a control message (`reset`, `subscribed`, `direct`, `kicked`, `expired`) | `event: <type>\n[id: <latest>\n]data: <envelope>\n\n` |
//! | a keep-alive | `: ping\n\n` (a comment: EventSource dispatches nothing) |
//! | the end of a stream the server ends (shutdown, slow consumer) | a comment saying why |
//! | the end of a stream whose subscribe token expired | `event: expired` |
//!
//! `<envelope>` is the same JSON text a `/ws/…` client gets in its frame.
//! EventSource sends the last `id:` it saw as `Last-Event-ID` when it
//! reconnects, so `reset` and `subscribed` carry the server's latest id too:
//! they are resume points, and without the id a quiet client would reconnect
//! from an id that is older than the reset and be reset again. A message
//! without an id (`direct`) has no `id:` line at all, because an empty `id:`
//! would clear the client's resume point.
//!
//! The body is delimited by the end of the connection (no `Content-Length`,
//! no chunked encoding, `Connection: close`). A stream only ever ends with its
//! connection (client gone, dropped as slow, shutdown), so chunked framing
//! would buy a reusable connection nobody reuses, at the price of a second
//! encoding for HTTP/1.0 clients, which must not get chunks. With close
//! delimiting, an event is its SSE bytes for every client and every HTTP
//! version; a stream cut inside an event is still read correctly (the SSE
//! parser drops an unfinished event at the end of the stream); nginx streams
//! such a body with `proxy_buffering off` and chunks it itself towards an
//! HTTP/1.1 client (tests/proxy.rs); HTTP/2 has its own framing.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::history::MessageId;

/// The bytes of one event (or of the stream start or a ping), shared by every
/// client it goes to: the same representation as `frame::EncodedFrame`, so a
/// client's outbox takes either.
pub type EncodedEvent = Arc<[u8]>;

/// The first bytes of every stream's body: EventSource waits this many
/// milliseconds before it reconnects (its default is browser-defined, often 3 s).
pub const STREAM_START: &[u8] = b"retry: 2000\n\n";

/// A comment that keeps proxies from timing an idle stream out and shows a
/// half-closed client by the write that fails; EventSource ignores it.
pub const PING: &[u8] = b": ping\n\n";

/// The last bytes of every stream when the server shuts down (EventSource
/// then reconnects, after `retry`, to whatever serves the URL next).
pub const GOING_AWAY: &[u8] = b": server shutting down\n\n";

/// The last bytes of a stream dropped as a slow consumer, when they fit.
pub const SLOW_CONSUMER: &[u8] = b": dropped: slow consumer\n\n";

/// The envelope of the last event of a kicked client's stream.
pub const KICKED_ENVELOPE: &str = r#"{"type":"kicked"}"#;

/// The envelope of the last event of a stream whose subscribe token expired.
pub const EXPIRED_ENVELOPE: &str = r#"{"type":"expired"}"#;

/// An event that is not a channel message, sent as `event: <type>`, so
/// EventSource hands it to `addEventListener("<type>", …)` and never to
/// `onmessage`. The names match the envelope's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// What was missed cannot be replayed; resume from the id it carries.
    Reset,
    /// The stream is live from the id it carries (after any replay).
    Subscribed,
    /// A message to this one client (`/send/{id}`): no id, not stored.
    Direct,
    /// `DELETE /clients/{id}` closed the stream (the last event; no id).
    Kicked,
    /// The subscribe token's `exp` passed (the last event; no id): fetch a
    /// fresh token and reconnect with `Last-Event-ID`.
    Expired,
}

impl Control {
    /// The `event:` name.
    pub fn name(self) -> &'static str {
        match self {
            Control::Reset => "reset",
            Control::Subscribed => "subscribed",
            Control::Direct => "direct",
            Control::Kicked => "kicked",
            Control::Expired => "expired",
        }
    }
}

/// The keep-alive comment as a shareable event.
pub fn ping() -> EncodedEvent {
    Arc::from(PING)
}

/// The last event of a kicked client's stream.
pub fn kicked() -> EncodedEvent {
    control(Control::Kicked, None, KICKED_ENVELOPE)
}

/// The last event of a stream whose subscribe token expired.
pub fn expired() -> EncodedEvent {
    control(Control::Expired, None, EXPIRED_ENVELOPE)
}

/// A channel message: `id: <id>` and the envelope as `data:`.
pub fn message(id: &MessageId, envelope: &str) -> EncodedEvent {
    encode(None, Some(id), envelope).into()
}

/// A control message: `event: <type>`, `id: <id>` when given (the resume
/// point of `reset` and `subscribed`), and the envelope as `data:`.
pub fn control(kind: Control, id: Option<&MessageId>, envelope: &str) -> EncodedEvent {
    encode(Some(kind.name()), id, envelope).into()
}

/// The event's bytes. `data` may be any text: each of its lines (ended by
/// CRLF, LF or CR, as the SSE parser splits them) becomes one `data:` line,
/// and the parser joins them with LF again. So a line break inside the data
/// (a pretty-printed JSON body, say) arrives as LF, whichever it was: SSE
/// cannot carry a CR, and to JSON all three are the same whitespace.
fn encode(event: Option<&str>, id: Option<&MessageId>, data: &str) -> Vec<u8> {
    const DATA: &str = "data: ";
    let head =
        event.map_or(0, |e| "event: \n".len() + e.len()) + id.map_or(0, |id| "id: \n".len() + id.wire_len());
    // Exact for data without line breaks (every envelope serde_json wrote).
    let mut out = String::with_capacity(head + DATA.len() + data.len() + 2);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = id {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    for line in lines(data) {
        // The parser strips one space after the colon, so data starting with
        // spaces keeps them all.
        out.push_str(DATA);
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.into_bytes()
}

/// The lines of `text` as the SSE parser will see them: split at CRLF, LF and
/// CR; an empty text is one empty line (so an event with empty data is still
/// dispatched), and a text ending in a line break ends with an empty line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(i) => {
                let skip = if current[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The `Access-Control-*` headers of a stream opened by a page of another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cors<'a> {
    /// The request's `Origin`, already allowed by the origin policy.
    pub origin: &'a str,
    /// Whether the page may send its cookies (`new EventSource(url, {withCredentials: true})`):
    /// adds `Access-Control-Allow-Credentials: true`. Only when subscribe
    /// tokens are checked, since then a token may be in a cookie.
    pub credentials: bool,
}

/// The response head of a stream, up to and including the blank line.
///
/// With `cors`, the allowed origin is echoed back (never `*`, which a request
/// with credentials may not get), and `Vary: Origin` is always there, since
/// the answer depends on it. EventSource sends no preflight, even with
/// `Last-Event-ID` (the Fetch standard exempts it), so no `OPTIONS` answer is
/// needed. An origin that is not plain visible ASCII (a serialised origin
/// always is) gets no CORS headers rather than a broken head.
pub fn response_head(cors: Option<Cors<'_>>) -> String {
    let mut head = String::from(concat!(
        "HTTP/1.1 200 OK\r\n",
        "Content-Type: text/event-stream\r\n",
        "Cache-Control: no-cache\r\n",
        "X-Accel-Buffering: no\r\n",
        "Connection: close\r\n",
        "Vary: Origin\r\n",
    ));
    if let Some(cors) =
        cors.filter(|c| !c.origin.is_empty() && c.origin.bytes().all(|b| b.is_ascii_graphic()))
    {
        head.push_str("Access-Control-Allow-Origin: ");
        head.push_str(cors.origin);
        head.push_str("\r\n");
        if cors.credentials {
            head.push_str("Access-Control-Allow-Credentials: true\r\n");
        }
    }
    head.push_str("\r\n");
    head
}

#[cfg(test)]
mod tests;
