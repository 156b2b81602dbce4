//! One connection's life on its own thread: its request head, then a
//! WebSocket (`ws`) or an event stream (`events`), registered on its
//! channels until it ends.
//!
//! The head is read first (`request`), within the handshake deadline, so
//! that one port serves both transports: a plain `GET /events/…` is an event
//! stream, anything else goes to tungstenite's handshake as before. This
//! thread is the connection's reader. Once the client is registered it never
//! writes to the socket: everything, a WebSocket's owed Pong and Close
//! replies included, goes through the client's outbox, the socket's one
//! writer.

mod events;
pub mod handshake;
mod io;
mod request;
pub mod target;
mod ws;

use std::io as stdio;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::handshake::{HandshakeSettings, Rejection};
use self::request::Arrived;
use crate::broadcast::Fanout;
use crate::client::{Client, LastSeen, Outbox, OutboxConfig, ShownId, Subscription, TokenHolder, Transport};
use crate::join::{self, JoinContext, Start};
use crate::message::GoingAway;
use crate::proxy::{ClientAddr, TrustedProxies};
use crate::registry::{Registration, Slot};
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::token::Grant;

/// What a connection's thread needs.
pub struct SessionContext {
    pub handshake: HandshakeSettings,
    /// How long one blocked write may take (`--write-timeout`).
    pub write_timeout: Duration,
    /// How long an event stream's bytes may stay unacknowledged before the
    /// kernel ends the connection (`--pong-timeout`): the silence rule of a
    /// client that never sends.
    pub unacked_timeout: Duration,
    /// `--trusted-proxy`: whose `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
    /// Registers a client on its channels, with what it is owed first.
    pub join: JoinContext,
    /// Where echoes and owed replies are offered.
    pub fanout: Fanout,
    pub stats: Arc<Stats>,
    pub outbox: Arc<OutboxConfig>,
    pub stop: StopToken,
    /// The last bytes of a client that registers during shutdown.
    pub going_away: GoingAway,
}

/// Runs one connection to its end. `slot` is its place under `--max-clients`.
///
/// The head, the handshake and the join run in a frame of their own (`start`)
/// whose stack is given back before the connection is served; what serves
/// it is inlined here and its own callees keep small frames: an idle
/// connection's stack stays at two pages.
pub fn run(stream: TcpStream, peer: SocketAddr, slot: Slot, ctx: &SessionContext) {
    let stream = Arc::new(stream);
    let Some(started) = start(&stream, peer, ctx) else {
        return;
    };
    crate::threads::release_unused_stack();
    match started {
        Started::Ws(open) => ws::serve(&stream, open, slot, ctx),
        Started::Events(registered) => events::serve(&stream, registered, slot),
    }
}

/// A connection registered as a client, ready to be served.
// One per connection, on its thread's stack: boxing the WebSocket would add
// a heap allocation per connection to save stack that is in use anyway.
#[allow(clippy::large_enum_variant)]
enum Started {
    Ws(ws::Open),
    Events(Registered),
}

/// Reads the request head (within the handshake deadline) and opens a
/// WebSocket or an event stream on it; `None` (answered and logged) if it
/// did not become a client.
#[inline(never)]
fn start(stream: &Arc<TcpStream>, peer: SocketAddr, ctx: &SessionContext) -> Option<Started> {
    let deadline = Instant::now() + ctx.handshake.timeout;
    let arrived = match request::read(stream, deadline) {
        Ok(arrived) => arrived,
        Err(e) if e.kind() == stdio::ErrorKind::TimedOut => {
            rejected(ctx, &ClientAddr::Direct(peer), &Rejection::Timeout);
            return None;
        }
        Err(e) => {
            rejected(ctx, &ClientAddr::Direct(peer), &Rejection::Io(e));
            return None;
        }
    };
    let from = match &arrived.head {
        Some(head) => ctx
            .proxies
            .client_addr(peer, head.forwarded_for.iter().map(Vec::as_slice)),
        None => ClientAddr::Direct(peer),
    };
    let Arrived { bytes, head } = arrived;
    match head {
        Some(head) if !head.upgrade && target::is_events(&head.path) => {
            // Nothing the client sent after its head matters to a stream.
            drop(bytes);
            events::open(stream, head, from, deadline, ctx).map(Started::Events)
        }
        head => {
            // tungstenite reads the head again: this copy would live as long as the connection.
            drop(head);
            ws::open(stream, bytes, from, deadline, ctx).map(Started::Ws)
        }
    }
}

/// Counts and logs a connection that did not become a client.
fn rejected(ctx: &SessionContext, from: &ClientAddr, rejection: &Rejection) {
    ctx.stats.handshakes_rejected.inc();
    log::info!("connection from {from} rejected: {rejection}");
}

/// A client for a connection whose handshake or stream head is done;
/// `grant`: what its subscribe token allows, when tokens are checked.
fn new_client(
    stream: &Arc<TcpStream>,
    from: ClientAddr,
    last_seen: Arc<LastSeen>,
    subscription: Subscription,
    grant: Option<Grant>,
    ctx: &SessionContext,
) -> Arc<Client> {
    let registry = &ctx.join.registry;
    let id = registry.next_id();
    let prefix = registry.id_prefix();
    let label = ShownId::new(prefix.as_deref(), id).to_string();
    let framing = subscription.transport.framing();
    let outbox = Arc::new(Outbox::new(
        Arc::clone(stream),
        Arc::clone(&ctx.outbox),
        framing,
        label,
    ));
    let token = grant.map(|grant| TokenHolder {
        user: grant.sub.map(Box::from),
        expires_at: grant.expires_at,
    });
    Arc::new(Client::new(id, prefix, from, last_seen, outbox, subscription).with_token(token))
}

/// A client registered on its channels, until its connection ends.
struct Registered {
    client: Arc<Client>,
    registration: Registration,
}

impl Registered {
    /// Ends the connection: the client is unregistered first (no longer one
    /// to send to), then `before_close` runs (a WebSocket waits there for the
    /// peer's Close), the socket is shut and its slot given back, and the
    /// last line logged. Not inlined: its formatting would widen the frame
    /// of `run`, which is on an idle connection's stack.
    #[inline(never)]
    fn end(self, slot: Slot, ending: &str, before_close: impl FnOnce(&Client)) {
        drop(self.registration);
        before_close(&self.client);
        self.client.outbox.kill();
        drop(slot);
        log_end(&self.client, ending);
    }
}

/// Joins `client` to its channels (what it is owed first, then live), and
/// logs its `connected` line. A client that registers after shutdown sent
/// everyone their last bytes is sent its own.
fn register(ctx: &SessionContext, client: Arc<Client>, start: &Start) -> Registered {
    let (registration, joined) = join::join(&ctx.join, Arc::clone(&client), start);
    ctx.stats.connections_accepted.inc();
    log::info!(
        "{client} connected{}{joined}{}",
        on_channels(&client),
        token_until(&client)
    );
    if ctx.stop.is_stopped() {
        client.mark_ended("server shutting down");
        client
            .outbox
            .close(ctx.going_away.for_transport(client.transport()));
    }
    Registered { client, registration }
}

/// ` on all,orders` for a `/ws/…` client (` (event stream) on …` for one on
/// `/events/…`), nothing for `/echo`.
fn on_channels(client: &Client) -> String {
    let names = || {
        let names: Vec<&str> = client.subscription.channels.iter().map(|c| c.as_str()).collect();
        names.join(",")
    };
    match client.transport() {
        Transport::Echo => String::new(),
        Transport::Ws => format!(" on {}", names()),
        Transport::Sse => format!(" (event stream) on {}", names()),
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

/// The connection's last line: why it ended.
fn log_end(client: &Client, ending: &str) {
    match client.ended_reason() {
        // The one line of a slow-consumer drop, whichever bound it passed.
        Some(reason) if client.outbox.dropped_slow() => log::warn!("{client} dropped: {reason}"),
        Some(reason) => log::info!("{client} disconnected: {reason}"),
        None => log::info!("{client} disconnected: {ending}"),
    }
}
