//! One connected WebSocket client: who it is, what it subscribed to, and the
//! single writer of its socket.
//!
//! The connection's reader thread is `session`; `outbox` is the only way bytes
//! reach the socket.

pub mod outbox;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Instant, SystemTime};

use tungstenite::protocol::frame::coding::CloseCode;

pub use self::outbox::{Outbox, OutboxConfig};
use crate::channel::ChannelSet;
use crate::frame;

/// How a client is written to, by the URL it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `/echo`: each message as its own raw text or binary frame, on `all` only.
    Echo,
    /// `/ws/…`: each message as a JSON envelope in a text frame (`envelope`).
    Ws,
}

impl Transport {
    /// The name `/clients` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Echo => "echo",
            Transport::Ws => "ws",
        }
    }
}

/// The set of an `/echo` client, shared by all of them: it costs no allocation per client.
static ALL_ONLY: LazyLock<Arc<ChannelSet>> = LazyLock::new(|| Arc::new(ChannelSet::all_only()));

/// What a connection subscribed to: its transport and its channels.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub transport: Transport,
    /// `all` first; shared (not copied) by every map the client is in.
    pub channels: Arc<ChannelSet>,
}

impl Subscription {
    /// An `/echo` client: raw frames, `all` only.
    pub fn echo() -> Subscription {
        Subscription {
            transport: Transport::Echo,
            channels: Arc::clone(&ALL_ONLY),
        }
    }

    /// A `/ws/…` client on `channels` (an `all`-only set is the shared one).
    pub fn ws(channels: ChannelSet) -> Subscription {
        let channels = if channels.len() == 1 {
            Arc::clone(&ALL_ONLY)
        } else {
            Arc::new(channels)
        };
        Subscription {
            transport: Transport::Ws,
            channels,
        }
    }
}

/// What a client's subscribe token said (with `--subscribe-secret`): who it is
/// for, and when the connection must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    /// The token's `sub`, shown in `/clients` and the logs.
    pub user: Option<Box<str>>,
    /// The token's `exp`: the pinger closes the connection with 4001 once it passes.
    pub expires_at: SystemTime,
}

/// A client's number: unique for the life of the server, never reused (addresses are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl ClientId {
    /// A number as `/send/{id}` gives it: plain digits only.
    pub fn parse(s: &str) -> Option<ClientId> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(ClientId)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Milliseconds on a process-wide monotonic clock, for "last heard from" stamps.
pub fn monotonic_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// When a client was last heard from: updated by its reader on every read.
#[derive(Debug)]
pub struct LastSeen(AtomicU64);

impl LastSeen {
    pub fn now() -> LastSeen {
        LastSeen(AtomicU64::new(monotonic_ms()))
    }

    /// Records that bytes arrived.
    pub fn touch(&self) {
        self.0.store(monotonic_ms(), Relaxed);
    }

    /// Milliseconds since bytes last arrived.
    pub fn silent_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.0.load(Relaxed))
    }
}

/// A registered client, shared by the registry, its reader and its writer.
pub struct Client {
    pub id: ClientId,
    /// Shown before the id in `/clients` and logs (`a-7`): a cluster node's id.
    id_prefix: Option<Arc<str>>,
    pub peer: SocketAddr,
    /// When the handshake completed.
    pub connected_at: SystemTime,
    /// When bytes last arrived from the peer.
    pub last_seen: Arc<LastSeen>,
    pub outbox: Arc<Outbox>,
    pub subscription: Subscription,
    /// Its subscribe token's holder and expiry; `None` when tokens are not checked.
    pub token: Option<TokenHolder>,
}

impl Client {
    /// A client whose handshake just completed.
    pub fn new(
        id: ClientId,
        id_prefix: Option<Arc<str>>,
        peer: SocketAddr,
        last_seen: Arc<LastSeen>,
        outbox: Arc<Outbox>,
        subscription: Subscription,
    ) -> Client {
        Client {
            id,
            id_prefix,
            peer,
            connected_at: SystemTime::now(),
            last_seen,
            outbox,
            subscription,
            token: None,
        }
    }

    /// The same client, admitted with a subscribe token.
    pub fn with_token(self, token: Option<TokenHolder>) -> Client {
        Client { token, ..self }
    }

    /// Who its token was issued to (`sub`), if it said.
    pub fn user(&self) -> Option<&str> {
        self.token.as_ref().and_then(|t| t.user.as_deref())
    }

    /// Whether its token has expired by `now` (never, without one).
    pub fn token_expired(&self, now: SystemTime) -> bool {
        self.token.as_ref().is_some_and(|t| now >= t.expires_at)
    }

    /// How it is written to.
    pub fn transport(&self) -> Transport {
        self.subscription.transport
    }

    /// Closes it with 1008 `kicked`, recording `reason` for its log line;
    /// false if the server had already ended it for another reason.
    pub fn kick(&self, reason: impl Into<String>) -> bool {
        let first = self.mark_ended(reason);
        if first {
            self.outbox.close(frame::close(CloseCode::Policy, "kicked"));
        }
        first
    }

    /// Records why the server is ending this connection; true the first time only.
    pub fn mark_ended(&self, reason: impl Into<String>) -> bool {
        self.outbox.mark_ended(reason)
    }

    /// Why the server ended this connection, if it did.
    pub fn ended_reason(&self) -> Option<&str> {
        self.outbox.ended_reason()
    }

    /// The id as `/clients` shows it: `7`, or `a-7` on cluster node `a`.
    pub fn shown_id(&self) -> ShownId<'_> {
        ShownId::new(self.id_prefix.as_deref(), self.id)
    }
}

/// A client id with its node prefix, for display.
pub struct ShownId<'a> {
    prefix: Option<&'a str>,
    id: ClientId,
}

impl<'a> ShownId<'a> {
    pub fn new(prefix: Option<&'a str>, id: ClientId) -> ShownId<'a> {
        ShownId { prefix, id }
    }
}

impl fmt::Display for ShownId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(prefix) => write!(f, "{prefix}-{}", self.id),
            None => self.id.fmt(f),
        }
    }
}

/// `client 7 (127.0.0.1:5555)`, or `client 7 (127.0.0.1:5555, user "alice")`:
/// how every log line names a client.
impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.user() {
            // Quoted and escaped: a `sub` is the token issuer's text.
            Some(user) => write!(f, "client {} ({}, user {user:?})", self.shown_id(), self.peer),
            None => write!(f, "client {} ({})", self.shown_id(), self.peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_numbers() {
        assert_eq!(ClientId::parse("7"), Some(ClientId(7)));
        for bad in ["", "-1", "+7", "a-7", "7 ", "99999999999999999999999"] {
            assert_eq!(ClientId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_shown_id_carries_the_node_prefix() {
        let shown = |prefix| ShownId::new(prefix, ClientId(7)).to_string();
        assert_eq!(shown(None), "7");
        assert_eq!(shown(Some("node-b")), "node-b-7");
    }
}
