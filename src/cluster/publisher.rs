//! Publishing: what the HTTP side port calls to send a message.
//!
//! `Publisher::Local` (no `--redis`) offers the frame to this node's clients
//! at once, exactly as a single node does. `Publisher::Redis` PUBLISHes it and
//! answers once it is back:
//! - a message for every client goes on the shared channel; the HTTP thread
//!   waits for this node's own subscriber to fan it out, and answers
//!   `{"clients": <clients on this node>, "nodes": <nodes Redis handed it to>}`;
//! - a message for client `NODE-N` goes on NODE's channel. If Redis hands it to
//!   no one, no node NODE is subscribed: 404. Otherwise NODE offers it to its
//!   client and acks `delivered`, `refused` (closing or dropped as slow:
//!   `{"clients": 0}`) or `absent` (404), within `REPLY_DEADLINE` or 503.
//!
//! Publishes share one Redis connection, held through a one-slot channel:
//! waiting for it, connecting, and each command have timeouts. Holding it
//! while numbering and sending keeps a node's messages in its own order, so a
//! subscriber can drop a repeated one (same boot, number not above the last).
//! That makes one retry safe: a publish that fails on a connection that was
//! idle in the slot is sent again once on a new connection.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use serde::Serialize;

use super::wire::{Body, SendResult};
use super::{Cluster, Outcome, CONNECT_TIMEOUT, IO_TIMEOUT, REPLY_DEADLINE};
use crate::broadcast::Fanout;
use crate::client::ClientId;
use crate::error::ApiError;
use crate::frame::{self, EncodedFrame, PayloadKind};

/// How long a publish waits for the shared connection before giving up.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a publish request answers: `{"clients": N}`, plus `"nodes"` in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Clients the message was written or queued for (on this node, in a cluster).
    pub clients: usize,
    /// Nodes Redis handed a broadcast to (this one included); absent without `--redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
}

/// Where publishes go: this node's clients only, or every node through Redis.
#[derive(Clone)]
pub enum Publisher {
    /// A single node: straight to the fan-out.
    Local(Fanout),
    /// One node of several: through Redis.
    Redis(Arc<Cluster>),
}

fn redis_unavailable() -> ApiError {
    ApiError::Unavailable("redis unavailable".into())
}

impl Publisher {
    /// The cluster, with `--redis`.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        match self {
            Publisher::Local(_) => None,
            Publisher::Redis(cluster) => Some(cluster),
        }
    }

    /// Whether publishing works now (always, without `--redis`).
    pub fn is_healthy(&self) -> bool {
        self.cluster().is_none_or(|c| c.is_up())
    }

    /// Sends a message to every client (of every node). `encoded` is the frame
    /// already made for `payload`, if the caller has it.
    pub fn broadcast(
        &self,
        kind: PayloadKind,
        payload: &[u8],
        encoded: Option<&EncodedFrame>,
    ) -> Result<Delivery, ApiError> {
        match self {
            Publisher::Local(fanout) => {
                let clients = match encoded {
                    Some(frame) => fanout.broadcast(frame),
                    None => fanout.broadcast(&frame::data(kind, payload)),
                };
                Ok(Delivery { clients, nodes: None })
            }
            Publisher::Redis(cluster) => cluster.broadcast(kind, payload),
        }
    }

    /// Sends a message to the client whose id (as `/clients` shows it) is
    /// `raw_id`. Checks the id before reading the body: `target` then `send_to`.
    pub fn target(&self, raw_id: &str) -> Result<Target, ApiError> {
        let (node, seq) = ClientId::parse_parts(raw_id).ok_or_else(|| no_client(raw_id))?;
        match (self, node) {
            (Publisher::Local(_), Some(_)) => Err(no_client(raw_id)),
            (Publisher::Local(_), None) => Ok(Target {
                raw: raw_id.to_owned(),
                node: None,
                seq,
            }),
            (Publisher::Redis(cluster), node) => Ok(Target {
                raw: raw_id.to_owned(),
                node: Some(node.unwrap_or(cluster.node.as_str()).to_owned()),
                seq,
            }),
        }
    }

    /// Sends a message to one client (see `target`).
    pub fn send_to(&self, target: &Target, kind: PayloadKind, payload: &[u8]) -> Result<Delivery, ApiError> {
        let fanout = match (self, &target.node) {
            (Publisher::Redis(cluster), Some(node)) => return cluster.send_to(target, node, kind, payload),
            (Publisher::Redis(cluster), None) => &cluster.fanout,
            (Publisher::Local(fanout), _) => fanout,
        };
        match fanout.send_to(ClientId::local(target.seq), &frame::data(kind, payload)) {
            None => Err(target.not_found()),
            Some(taken) => Ok(Delivery {
                clients: usize::from(taken),
                nodes: None,
            }),
        }
    }
}

/// A client id from a `/send/{id}` path, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    raw: String,
    node: Option<String>,
    seq: u64,
}

impl Target {
    fn not_found(&self) -> ApiError {
        no_client(&self.raw)
    }
}

fn no_client(raw_id: &str) -> ApiError {
    ApiError::NotFound(format!("no client with id {raw_id:?}"))
}

/// Why a PUBLISH did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum PublishError {
    /// Other publishes held the connection too long.
    #[error("the redis connection stayed busy for {SLOT_WAIT:?}")]
    Busy,
    /// Connecting or the command failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// The node's publishing connection and its message counter.
pub(super) struct Link {
    conn: Option<redis::Connection>,
    /// The subscription epoch when `conn` was made: a newer epoch means the
    /// subscriber lost Redis meanwhile, so `conn` may be stale.
    epoch: u64,
    seq: u64,
}

/// The `Link`, locked with a timeout: a publish waits at most `SLOT_WAIT` for it.
pub(super) type LinkSlot = parking_lot::Mutex<Link>;

/// A slot holding a fresh `Link`.
pub(super) fn link_slot() -> LinkSlot {
    parking_lot::Mutex::new(Link {
        conn: None,
        epoch: 0,
        seq: 0,
    })
}

impl Cluster {
    /// PUBLISHes the message `build` makes from its number; returns that number
    /// (0 if none was taken) and how many subscribers Redis handed it to.
    pub(super) fn publish(
        &self,
        channel: &str,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> (u64, Result<u64, PublishError>) {
        let Some(mut held) = self.link.try_lock_for(SLOT_WAIT) else {
            return (0, Err(PublishError::Busy));
        };
        let link = &mut *held;
        link.seq += 1;
        let seq = link.seq;
        let bytes = build(seq);
        let epoch = self.epoch.load(SeqCst);
        if link.epoch != epoch {
            link.conn = None;
        }
        let mut retried = false;
        loop {
            let reused = link.conn.is_some();
            let result = match &mut link.conn {
                Some(conn) => publish_on(conn, channel, &bytes),
                None => connect(&self.client).and_then(|mut conn| {
                    link.epoch = epoch;
                    let result = publish_on(&mut conn, channel, &bytes);
                    link.conn = Some(conn);
                    result
                }),
            };
            match result {
                Ok(receivers) => return (seq, Ok(receivers)),
                Err(e) => {
                    link.conn = None;
                    if reused && !retried {
                        log::info!("cluster: publish on an idle redis connection failed ({e}); retrying once on a new one");
                        retried = true;
                        continue;
                    }
                    return (seq, Err(e.into()));
                }
            }
        }
    }

    fn refuse(&self) -> ApiError {
        self.counters.publish_failures.fetch_add(1, SeqCst);
        redis_unavailable()
    }

    /// Publishes a message for every client and waits for it to come back.
    fn broadcast(&self, kind: PayloadKind, payload: &[u8]) -> Result<Delivery, ApiError> {
        if !self.is_up() {
            return Err(self.refuse());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (seq, result) = self.publish(&self.prefix, |seq| {
            self.pending().insert(seq, tx);
            self.envelope(seq, Body::All { kind, payload })
        });
        let receivers = match result {
            Ok(n) => n,
            Err(e) => {
                self.pending().remove(&seq);
                log::warn!("cluster: publish to {} failed: {e}", self.prefix);
                return Err(self.refuse());
            }
        };
        self.counters.publishes.fetch_add(1, SeqCst);
        if receivers == 0 {
            self.pending().remove(&seq);
            log::warn!("cluster: redis handed message {seq} to no subscriber, not even this node's");
            return Err(self.refuse());
        }
        match rx.recv_timeout(REPLY_DEADLINE) {
            Ok(Outcome::Fanned(clients)) => Ok(Delivery {
                clients,
                nodes: Some(receivers),
            }),
            _ => {
                self.pending().remove(&seq);
                log::warn!(
                    "cluster: message {seq} was published to {receivers} node(s) but did not come back to this node within {REPLY_DEADLINE:?}"
                );
                Err(ApiError::Unavailable(format!(
                    "redis unavailable: the message reached {receivers} node(s) but not this one's \
                     subscription within {REPLY_DEADLINE:?}"
                )))
            }
        }
    }

    /// Publishes a message for client `target` of `node` and waits for that node's answer.
    fn send_to(
        &self,
        target: &Target,
        node: &str,
        kind: PayloadKind,
        payload: &[u8],
    ) -> Result<Delivery, ApiError> {
        if !self.is_up() {
            return Err(self.refuse());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let channel = super::node_channel(&self.prefix, node);
        let (seq, result) = self.publish(&channel, |seq| {
            self.pending().insert(seq, tx);
            self.envelope(
                seq,
                Body::One {
                    kind,
                    node,
                    client: target.seq,
                    payload,
                },
            )
        });
        let receivers = match result {
            Ok(n) => n,
            Err(e) => {
                self.pending().remove(&seq);
                log::warn!("cluster: publish to {channel} failed: {e}");
                return Err(self.refuse());
            }
        };
        self.counters.publishes.fetch_add(1, SeqCst);
        if receivers == 0 {
            self.pending().remove(&seq);
            return Err(ApiError::NotFound(format!(
                "no client with id {:?}: no node {node:?} is in the cluster",
                target.raw
            )));
        }
        match rx.recv_timeout(REPLY_DEADLINE) {
            Ok(Outcome::Sent(SendResult::Delivered)) => Ok(Delivery {
                clients: 1,
                nodes: None,
            }),
            Ok(Outcome::Sent(SendResult::Refused)) => Ok(Delivery {
                clients: 0,
                nodes: None,
            }),
            Ok(Outcome::Sent(SendResult::Absent)) => Err(target.not_found()),
            Ok(Outcome::Fanned(_)) | Err(_) => {
                self.pending().remove(&seq);
                log::warn!(
                    "cluster: node {node} did not answer about message {seq} within {REPLY_DEADLINE:?}"
                );
                Err(ApiError::Unavailable(format!(
                    "node {node:?} did not answer within {REPLY_DEADLINE:?}; the message may still reach client {:?}",
                    target.raw
                )))
            }
        }
    }
}

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

fn publish_on(conn: &mut redis::Connection, channel: &str, bytes: &[u8]) -> redis::RedisResult<u64> {
    redis::cmd("PUBLISH").arg(channel).arg(bytes).query(conn)
}
