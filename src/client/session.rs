//! One connection's life on its own thread: handshake, register, read, close.
//!
//! This thread is the connection's reader. It never writes to the socket: the
//! echo of a message, and the Pong and Close replies tungstenite owes, all go
//! through the client's outbox, the socket's one writer.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message, WebSocket};

use super::io::ConnIo;
use super::{Client, LastSeen, Outbox};
use crate::frame::{self, PayloadKind};
use crate::handshake::{self, Admission};
use crate::registry::Slot;
use crate::server::Shared;

/// How long to wait for the peer to close TCP after the Close handshake.
const LINGER: Duration = Duration::from_secs(2);

/// Runs one connection to its end. `slot` is its place under `--max-clients`.
pub fn run(stream: TcpStream, peer: SocketAddr, slot: Slot, shared: Arc<Shared>) {
    let stream = Arc::new(stream);
    let last_seen = Arc::new(LastSeen::now());
    let admission = Admission {
        origins: &shared.origins,
        shutting_down: shared.is_shutting_down(),
    };
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let io = ConnIo::handshaking(Arc::clone(&stream), Arc::clone(&last_seen), deadline);
    let mut ws = match handshake::accept(io, shared.ws_config, admission) {
        Ok(ws) => ws,
        Err(rejection) => {
            shared.stats.handshakes_rejected.inc();
            log::info!("connection from {peer} rejected: {rejection}");
            return;
        }
    };
    if let Err(e) = prepare_socket(&stream, &shared) {
        log::info!("connection from {peer} dropped after handshake: {e}");
        return;
    }
    ws.get_mut().handshake_done();

    let id = shared.registry.next_id();
    let outbox = Arc::new(Outbox::new(
        Arc::clone(&stream),
        Arc::clone(&shared.outbox_config),
        id.to_string(),
    ));
    let client = Arc::new(Client::new(id, peer, last_seen, outbox));
    let registration = shared.registry.register(Arc::clone(&client));
    shared.stats.connections_accepted.inc();
    log::info!("{client} connected");
    if shared.is_shutting_down() {
        // Registered after shutdown sent its Close frames: send ours.
        client.mark_ended("server shutting down");
        client.outbox.close(shared.going_away.clone());
    }

    crate::threads::release_unused_stack();
    let ending = read_until_closed(&mut ws, &client, &shared);
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

fn prepare_socket(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(shared.config.write_timeout))?;
    stream.set_nodelay(true)
}

/// Reads and answers frames until the connection ends; returns why it ended.
fn read_until_closed(ws: &mut WebSocket<ConnIo>, client: &Arc<Client>, shared: &Shared) -> String {
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
                    shared.fanout.offer(client, &reply.into());
                }
            }
        }
        match result {
            Ok(Message::Text(text)) => {
                shared
                    .fanout
                    .offer(client, &frame::data(PayloadKind::Text, text.as_bytes()));
            }
            Ok(Message::Binary(data)) => {
                shared
                    .fanout
                    .offer(client, &frame::data(PayloadKind::Binary, &data));
            }
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
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}
