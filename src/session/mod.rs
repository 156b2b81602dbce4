//! One connection's life on its own thread: handshake, register, read, close.
//!
//! This thread is the connection's reader. It never writes to the socket: the
//! echo of a message, and the Pong and Close replies tungstenite owes, all go
//! through the client's outbox, the socket's one writer.

pub mod handshake;
mod io;
pub mod target;

use std::io::{self as stdio, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message, WebSocket};

use self::handshake::HandshakeSettings;
use self::io::ConnIo;
use self::target::Wanted;
use crate::broadcast::Fanout;
use crate::client::{Client, LastSeen, Outbox, OutboxConfig, ShownId, TokenHolder, Transport};
use crate::frame::{self, EncodedFrame, PayloadKind};
use crate::join::{self, JoinContext};
use crate::message;
use crate::registry::{Registration, Slot};
use crate::stats::Stats;
use crate::stop::StopToken;

/// How long to wait for the peer to close TCP after the Close handshake.
const LINGER: Duration = Duration::from_secs(2);

/// What a connection's thread needs.
pub struct SessionContext {
    pub handshake: HandshakeSettings,
    /// How long one blocked write may take (`--write-timeout`).
    pub write_timeout: Duration,
    /// Registers a client on its channels, with what it is owed first.
    pub join: JoinContext,
    /// Where echoes and owed replies are offered.
    pub fanout: Fanout,
    pub stats: Arc<Stats>,
    pub outbox: Arc<OutboxConfig>,
    pub stop: StopToken,
    /// Close 1001, sent to a client that registers during shutdown.
    pub going_away: EncodedFrame,
}

/// A connection past its handshake, registered on its channels.
struct Open {
    ws: WebSocket<ConnIo>,
    client: Arc<Client>,
    registration: Registration,
}

/// Runs one connection to its end. `slot` is its place under `--max-clients`.
///
/// The handshake and the join run in their own (not inlined) frames and
/// their stack is given back before the read loop, whose own frames are
/// kept small: an idle connection's stack stays at two pages.
pub fn run(stream: TcpStream, peer: SocketAddr, slot: Slot, ctx: &SessionContext) {
    let stream = Arc::new(stream);
    let Some(Open {
        mut ws,
        client,
        registration,
    }) = open(&stream, peer, ctx)
    else {
        return;
    };
    crate::threads::release_unused_stack();
    let ending = read_until_closed(&mut ws, &client, &ctx.fanout);
    // Closing: no longer a client to send to, though the socket (and its
    // slot) lives on until the peer has seen our Close.
    drop(registration);
    if client.outbox.is_closing() {
        linger(&stream);
    }
    client.outbox.kill();
    drop(slot);
    match client.ended_reason() {
        // The one line of a slow-consumer drop, whichever bound it passed.
        Some(reason) if client.outbox.dropped_slow() => log::warn!("{client} dropped: {reason}"),
        Some(reason) => log::info!("{client} disconnected: {reason}"),
        None => log::info!("{client} disconnected: {ending}"),
    }
}

/// The handshake, the client made and joined to its channels (its
/// `connected` line logged); `None` (logged) if refused or failed.
#[inline(never)]
fn open(stream: &Arc<TcpStream>, peer: SocketAddr, ctx: &SessionContext) -> Option<Open> {
    let last_seen = Arc::new(LastSeen::now());
    let (ws, wanted) = handshake(stream, peer, &last_seen, ctx)?;
    let client = new_client(stream, peer, last_seen, &wanted, ctx);
    let (registration, joined) = join::join(&ctx.join, Arc::clone(&client), &wanted.start);
    ctx.stats.connections_accepted.inc();
    log::info!(
        "{client} connected{}{joined}{}",
        on_channels(&client),
        token_until(&client)
    );
    if ctx.stop.is_stopped() {
        // Registered after shutdown sent its Close frames: send ours.
        client.mark_ended("server shutting down");
        client.outbox.close(ctx.going_away.clone());
    }
    Some(Open {
        ws,
        client,
        registration,
    })
}

/// ` on all,orders` for a `/ws/…` client, nothing for `/echo`.
fn on_channels(client: &Client) -> String {
    match client.transport() {
        Transport::Echo => String::new(),
        Transport::Ws => {
            let names: Vec<&str> = client.subscription.channels.iter().map(|c| c.as_str()).collect();
            format!(" on {}", names.join(","))
        }
    }
}

/// ` (token until 2026-12-02T12:10:00Z)` for a client admitted with a token.
fn token_until(client: &Client) -> String {
    match &client.token {
        Some(token) => format!(
            " (token until {})",
            humantime::format_rfc3339_seconds(token.expires_at)
        ),
        None => String::new(),
    }
}

/// The handshake, and the socket made ready for a client; `None` (logged) if refused or failed.
fn handshake(
    stream: &Arc<TcpStream>,
    peer: SocketAddr,
    last_seen: &Arc<LastSeen>,
    ctx: &SessionContext,
) -> Option<(WebSocket<ConnIo>, Wanted)> {
    let deadline = Instant::now() + ctx.handshake.timeout;
    let io = ConnIo::handshaking(Arc::clone(stream), Arc::clone(last_seen), deadline);
    let (mut ws, wanted) = match handshake::accept(io, &ctx.handshake, ctx.stop.is_stopped()) {
        Ok(ws) => ws,
        Err(rejection) => {
            ctx.stats.handshakes_rejected.inc();
            log::info!("connection from {peer} rejected: {rejection}");
            return None;
        }
    };
    if let Err(e) = prepare_socket(stream, ctx.write_timeout) {
        log::info!("connection from {peer} dropped after handshake: {e}");
        return None;
    }
    ws.get_mut().handshake_done();
    Some((ws, wanted))
}

fn new_client(
    stream: &Arc<TcpStream>,
    peer: SocketAddr,
    last_seen: Arc<LastSeen>,
    wanted: &Wanted,
    ctx: &SessionContext,
) -> Arc<Client> {
    let registry = &ctx.join.registry;
    let id = registry.next_id();
    let prefix = registry.id_prefix();
    let label = ShownId::new(prefix.as_deref(), id).to_string();
    let outbox = Arc::new(Outbox::new(Arc::clone(stream), Arc::clone(&ctx.outbox), label));
    let subscription = wanted.subscription.clone();
    let token = wanted.grant.as_ref().map(|grant| TokenHolder {
        user: grant.sub.as_deref().map(Box::from),
        expires_at: grant.expires_at,
    });
    Arc::new(Client::new(id, prefix, peer, last_seen, outbox, subscription).with_token(token))
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
