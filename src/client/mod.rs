//! One connected WebSocket client: who it is, and the reader and writer of its socket.
//!
//! `session` runs a connection from handshake to close on the connection's own
//! thread (its reader); `outbox` is the only way bytes reach its socket.

pub(crate) mod io;
pub mod outbox;
pub mod session;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

pub use self::outbox::{Offer, Outbox, OutboxConfig};
use crate::cluster::NodeName;

/// A client's id: unique for the life of the server, never reused (addresses are).
///
/// A single node numbers its clients `1`, `2`, ...; a node of a cluster
/// (`--redis`) prefixes the number with its node id, `NODE-N`, so ids are
/// unique across nodes and name the node that holds the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    /// The node, in a cluster.
    pub node: Option<NodeName>,
    /// The client's number on its node.
    pub seq: u64,
}

impl ClientId {
    /// Client `seq` of a single node.
    pub const fn local(seq: u64) -> ClientId {
        ClientId { node: None, seq }
    }

    /// Client `seq` of `node`.
    pub const fn on(node: NodeName, seq: u64) -> ClientId {
        ClientId {
            node: Some(node),
            seq,
        }
    }

    /// Splits an id as displayed, `N` or `NODE-N`, into node and number.
    pub fn parse_parts(s: &str) -> Option<(Option<&str>, u64)> {
        match s.rsplit_once('-') {
            None => s.parse().ok().map(|seq| (None, seq)),
            Some((node, seq)) if !node.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => {
                seq.parse().ok().map(|seq| (Some(node), seq))
            }
            Some(_) => None,
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(node) => write!(f, "{node}-{}", self.seq),
            None => self.seq.fmt(f),
        }
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
    /// Stamped now.
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
    /// Unique id.
    pub id: ClientId,
    /// The peer's address.
    pub peer: SocketAddr,
    /// When the handshake completed.
    pub connected_at: SystemTime,
    /// When bytes last arrived from the peer.
    pub last_seen: Arc<LastSeen>,
    /// The socket's single writer.
    pub outbox: Arc<Outbox>,
}

impl Client {
    /// A client whose handshake just completed.
    pub fn new(id: ClientId, peer: SocketAddr, last_seen: Arc<LastSeen>, outbox: Arc<Outbox>) -> Client {
        Client {
            id,
            peer,
            connected_at: SystemTime::now(),
            last_seen,
            outbox,
        }
    }

    /// Records why the server is ending this connection; true the first time only.
    pub fn mark_ended(&self, reason: impl Into<String>) -> bool {
        self.outbox.mark_ended(reason)
    }

    /// Why the server ended this connection, if it did.
    pub fn ended_reason(&self) -> Option<&str> {
        self.outbox.ended_reason()
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} ({})", self.id, self.peer)
    }
}
