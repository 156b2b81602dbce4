//! A WebSocket connection (`/echo`, `/ws/{channels}`): tungstenite's
//! handshake on the bytes read so far and the socket, then frames read and
//! answered until the connection ends.

use std::io::{self as stdio, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message, WebSocket};

use super::handshake::{self, Rejection};
use super::io::ConnIo;
use super::target::Wanted;
use super::{new_client, register, rejected, Registered, SessionContext};
use crate::broadcast::Fanout;
use crate::client::{Client, LastSeen};
use crate::frame::{self, PayloadKind};
use crate::message;
use crate::proxy::ClientAddr;
use crate::registry::Slot;

/// How long to wait for the peer to close TCP after the Close handshake.
const LINGER: Duration = Duration::from_secs(2);

/// A connection past its handshake, registered on its channels.
pub(super) struct Open {
    ws: WebSocket<ConnIo>,
    registered: Registered,
}

/// Reads frames until the connection ends, then ends it.
// Inlined into `session::run`, whose frame then holds the connection: a frame
// of its own on an idle connection's stack can make it three pages instead of
// two (15.7 instead of 11.7 KiB per idle connection at 10,000 clients).
#[inline(always)]
pub(super) fn serve(stream: &TcpStream, open: Open, slot: Slot, ctx: &SessionContext) {
    let Open { mut ws, registered } = open;
    let ending = read_until_closed(&mut ws, &registered.client, &ctx.fanout);
    // Closing: no longer a client to send to, though the socket (and its
    // slot) lives on until the peer has seen our Close.
    registered.end(slot, &ending, |client| {
        if client.outbox.is_closing() {
            linger(stream);
        }
    });
}

/// The handshake, the client made and joined to its channels (its
/// `connected` line logged); `None` (logged) if refused or failed.
pub(super) fn open(
    stream: &Arc<TcpStream>,
    read: Vec<u8>,
    from: ClientAddr,
    deadline: Instant,
    ctx: &SessionContext,
) -> Option<Open> {
    let last_seen = Arc::new(LastSeen::now());
    let io = ConnIo::handshaking(Arc::clone(stream), Arc::clone(&last_seen), deadline, read);
    let (ws, wanted) = match handshake(stream, io, ctx) {
        Ok(done) => done,
        Err(rejection) => {
            rejected(ctx, &from, &rejection);
            return None;
        }
    };
    let client = new_client(stream, from, last_seen, wanted.subscription, wanted.grant, ctx);
    Some(Open {
        ws,
        registered: register(ctx, client, &wanted.start),
    })
}

/// The handshake, and the socket made ready for a client.
fn handshake(
    stream: &TcpStream,
    io: ConnIo,
    ctx: &SessionContext,
) -> Result<(WebSocket<ConnIo>, Wanted), Rejection> {
    let (mut ws, wanted) = handshake::accept(io, &ctx.handshake, ctx.stop.is_stopped())?;
    prepare_socket(stream, ctx.write_timeout)?;
    ws.get_mut().handshake_done();
    Ok((ws, wanted))
}

fn prepare_socket(stream: &TcpStream, write_timeout: Duration) -> stdio::Result<()> {
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(write_timeout))?;
    stream.set_nodelay(true)
}

/// Reads and answers frames until the connection ends; returns why it ended.
#[inline(never)]
fn read_until_closed(ws: &mut WebSocket<ConnIo>, client: &Arc<Client>, fanout: &Fanout) -> String {
    loop {
        let result = ws.read();
        // tungstenite keeps owed Pong/Close replies until a flush; flushing
        // into the capture buffer hands them to us to forward. After a Close
        // the flush reports ConnectionClosed but has written the reply.
        let _ = ws.flush();
        let owed = ws.get_mut().take_captured();
        match result {
            Ok(Message::Close(frame)) => {
                if let Some(reply) = owed {
                    client.outbox.close(reply.into());
                }
                return format!("client closed ({})", describe_close(frame.as_ref()));
            }
            _ => {
                if let Some(reply) = owed {
                    fanout.offer(client, &reply.into());
                }
            }
        }
        match result {
            Ok(Message::Text(text)) => echo(fanout, client, PayloadKind::Text, text.as_bytes()),
            Ok(Message::Binary(data)) => echo(fanout, client, PayloadKind::Binary, &data),
            Ok(_) => {}
            Err(err) => {
                let why = describe_error(&err);
                if let Some((code, reason)) = close_for(&err) {
                    log::info!(
                        "{client} sent a bad frame: {why}; closing with {}",
                        u16::from(code)
                    );
                    client.outbox.close(frame::close(code, &reason));
                }
                return why;
            }
        }
    }
}

/// Sends what the client sent back to it alone. Out of line: encoding an
/// envelope needs stack the idle read loop should not keep resident.
#[inline(never)]
fn echo(fanout: &Fanout, client: &Client, kind: PayloadKind, bytes: &[u8]) {
    fanout.offer(client, &message::echo(kind, bytes, client.transport()));
}

/// The close code and reason a read error calls for; `None` when the peer is simply gone.
fn close_for(err: &Error) -> Option<(CloseCode, String)> {
    match err {
        Error::Capacity(e) => Some((CloseCode::Size, e.to_string())),
        Error::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8 in text".to_owned())),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        Error::Protocol(e) => Some((CloseCode::Protocol, e.to_string())),
        Error::Io(_) | Error::ConnectionClosed | Error::AlreadyClosed => None,
        other => Some((CloseCode::Error, other.to_string())),
    }
}

fn describe_error(err: &Error) -> String {
    match err {
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "connection dropped without a Close".to_owned()
        }
        Error::Io(e) => format!("socket error: {e}"),
        Error::ConnectionClosed | Error::AlreadyClosed => "connection closed".to_owned(),
        other => other.to_string(),
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if f.reason.is_empty() => format!("code {}", u16::from(f.code)),
        Some(f) => format!("code {}, {:?}", u16::from(f.code), f.reason.as_str()),
        None => "no code".to_owned(),
    }
}

/// After a Close, lets the peer close TCP first (reading and dropping what it
/// still sends), for at most `LINGER`.
fn linger(stream: &TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::CapacityError;

    #[test]
    fn read_errors_map_to_close_codes() {
        let too_big = Error::Capacity(CapacityError::MessageTooLong { size: 9, max_size: 8 });
        assert_eq!(close_for(&too_big).map(|(c, _)| c), Some(CloseCode::Size));
        let bad_utf8 = Error::Utf8("x".into());
        assert_eq!(
            close_for(&bad_utf8),
            Some((CloseCode::Invalid, "invalid UTF-8 in text".to_owned()))
        );
        let unmasked = Error::Protocol(ProtocolError::UnmaskedFrameFromClient);
        assert_eq!(close_for(&unmasked).map(|(c, _)| c), Some(CloseCode::Protocol));
        // The peer is gone: nothing to close.
        for gone in [
            Error::ConnectionClosed,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
            Error::Io(stdio::ErrorKind::BrokenPipe.into()),
        ] {
            assert_eq!(close_for(&gone), None, "{gone}");
        }
    }

    #[test]
    fn endings_are_described_for_the_log() {
        let reset = Error::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(describe_error(&reset), "connection dropped without a Close");
        assert_eq!(describe_close(None), "no code");
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        assert_eq!(describe_close(Some(&frame)), "code 1000, \"bye\"");
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        };
        assert_eq!(describe_close(Some(&frame)), "code 1001");
    }
}
