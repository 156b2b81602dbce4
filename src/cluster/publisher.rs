//! Publishing through Redis: the cluster's side of `Publish`.
//!
//! A publish is PUBLISHed, and answered once its outcome is back:
//! - a message for a channel (`all` included) goes on the shared Redis
//!   channel; the HTTP thread waits for this node's own subscriber to fan it
//!   out, and answers `{"clients": <subscribers on this node>, "id": <the id
//!   this node gave it>, "nodes": <nodes Redis handed it to>}`;
//! - a message for client `NODE-N` goes on NODE's channel. If Redis hands it to
//!   no one, no node NODE is subscribed: 404. Otherwise NODE offers it to its
//!   client and acks `delivered`, `refused` (closing or dropped as slow:
//!   `{"clients": 0}`) or `absent` (404), within `REPLY_DEADLINE` or 503.
//!
//! Publishes share one Redis connection behind a mutex: waiting for it,
//! connecting, and each command have timeouts. Holding it
//! while numbering and sending keeps a node's messages in its own order, so a
//! subscriber can drop a repeated one (same boot, number not above the last).
//! That makes one retry safe: a publish that fails on a connection that was
//! idle in the slot is sent again once on a new connection.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use std::sync::atomic::AtomicU64;

use super::wire::{Body, SendResult};
use super::{Cluster, ClusterError, Outcome, CONNECT_TIMEOUT, IO_TIMEOUT, REPLY_DEADLINE};
use crate::channel::ChannelName;
use crate::client::ClientId;
use crate::publish::{Health, Payload, Publish, PublishError, Published};
use crate::stats::{Figure, FigureValue};

/// How long a publish waits for the shared connection before giving up.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Why a PUBLISH did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
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
    ) -> (u64, Result<u64, LinkError>) {
        let Some(mut held) = self.link.try_lock_for(SLOT_WAIT) else {
            return (0, Err(LinkError::Busy));
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

    /// Counts a refused publish.
    fn refuse(&self) -> ClusterError {
        self.counters.publish_failures.fetch_add(1, SeqCst);
        ClusterError::RedisUnavailable
    }

    /// The skeleton of every publish an HTTP thread waits on: PUBLISH what
    /// `make` builds from its number, then wait for its outcome. Returns how
    /// many subscribers Redis handed it to and, unless that was none, the
    /// outcome if it came within `REPLY_DEADLINE`.
    fn publish_and_wait(
        &self,
        channel: &str,
        make: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<(u64, Option<Outcome>), ClusterError> {
        if !self.is_up() {
            return Err(self.refuse());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut waiting = None;
        let (seq, result) = self.publish(channel, |seq| {
            // Listed before it is sent: the answer may come back at once.
            self.pending.lock().insert(seq, tx);
            waiting = Some(Waiting { cluster: self, seq });
            make(seq)
        });
        let _waiting = waiting;
        let receivers = result.map_err(|e| {
            log::warn!("cluster: publish to {channel} failed: {e}");
            self.refuse()
        })?;
        self.counters.publishes.fetch_add(1, SeqCst);
        if receivers == 0 {
            return Ok((0, None));
        }
        let outcome = rx.recv_timeout(REPLY_DEADLINE).ok();
        if outcome.is_none() {
            log::warn!("cluster: no outcome for message {seq} on {channel} within {REPLY_DEADLINE:?}");
        }
        Ok((receivers, outcome))
    }

    /// Publishes a message for every subscriber of `channel` and waits for it to come back.
    fn broadcast(&self, channel: &ChannelName, msg: &Payload) -> Result<Published, ClusterError> {
        let body = Body::Publish {
            channel: channel.clone(),
            kind: msg.kind,
            payload: &msg.bytes,
        };
        let (receivers, outcome) = self.publish_and_wait(&self.id.prefix, |seq| self.envelope(seq, body))?;
        match outcome {
            _ if receivers == 0 => {
                log::warn!("cluster: redis handed a message to no subscriber, not even this node's");
                Err(self.refuse())
            }
            Some(Outcome::Fanned(delivered)) => Ok(Published {
                clients: delivered.clients,
                id: Some(delivered.id.to_string()),
                nodes: Some(receivers),
            }),
            _ => Err(ClusterError::NotReturned { receivers }),
        }
    }

    /// Publishes a message for client `raw_id` (`NODE-N`, or `N` on this
    /// node) and waits for the holding node's answer.
    fn send_one(&self, raw_id: &str, msg: &Payload) -> Result<Published, ClusterError> {
        let (node, client) = parse_target(&self.id.node, raw_id)?;
        let body = Body::One {
            kind: msg.kind,
            node,
            client: client.0,
            payload: &msg.bytes,
        };
        let channel = super::node_channel(&self.id.prefix, node);
        let (receivers, outcome) = self.publish_and_wait(&channel, |seq| self.envelope(seq, body))?;
        let id = raw_id.to_owned();
        match outcome {
            _ if receivers == 0 => Err(ClusterError::NoNode {
                id,
                node: node.to_owned(),
            }),
            Some(Outcome::Sent(SendResult::Delivered)) => Ok(Published::local(1)),
            Some(Outcome::Sent(SendResult::Refused)) => Ok(Published::local(0)),
            Some(Outcome::Sent(SendResult::Absent)) => Err(ClusterError::NoClient(id)),
            Some(Outcome::Fanned(_)) | None => Err(ClusterError::NoAnswer {
                node: node.to_owned(),
                id,
            }),
        }
    }
}

/// The node and number in a client id as `/clients` shows it: `NODE-N`, or
/// `N` for client N of `own_node`.
fn parse_target<'a>(own_node: &'a str, raw_id: &'a str) -> Result<(&'a str, ClientId), ClusterError> {
    let no_client = || ClusterError::NoClient(raw_id.to_owned());
    let (node, number) = match raw_id.rsplit_once('-') {
        None => (own_node, raw_id),
        Some((node, number)) if !node.is_empty() => (node, number),
        Some(_) => return Err(no_client()),
    };
    Ok((node, ClientId::parse(number).ok_or_else(no_client)?))
}

/// A message an HTTP thread waits on; its entry leaves `pending` with it,
/// however the wait ends.
struct Waiting<'a> {
    cluster: &'a Cluster,
    seq: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.cluster.pending.lock().remove(&self.seq);
    }
}

/// A node of a cluster publishes through Redis.
impl Publish for Cluster {
    fn publish(&self, channel: &ChannelName, msg: Payload) -> Result<Published, PublishError> {
        Ok(self.broadcast(channel, &msg)?)
    }

    fn send_to(&self, client: &str, msg: Payload) -> Result<Published, PublishError> {
        Ok(self.send_one(client, &msg)?)
    }

    fn health(&self) -> Health {
        if self.is_up() {
            Health::Ok
        } else {
            Health::Degraded
        }
    }

    fn figures(&self) -> Vec<Figure> {
        let c = &self.counters;
        let count = |name: &'static str, help: &'static str, n: &AtomicU64| Figure {
            name,
            help,
            value: FigureValue::Count(n.load(SeqCst)),
        };
        vec![
            Figure {
                name: "node",
                help: "This node's id",
                value: FigureValue::Text(self.id.node.to_string()),
            },
            Figure {
                name: "redis_up",
                help: "1 while the Redis subscription is up, else 0",
                value: FigureValue::Flag(self.is_up()),
            },
            count(
                "redis_publishes",
                "Messages from publish requests accepted by Redis",
                &c.publishes,
            ),
            count(
                "redis_publish_failures",
                "Publish requests refused because Redis was unavailable",
                &c.publish_failures,
            ),
            count(
                "redis_reconnects",
                "Redis subscriptions made again after one was lost",
                &c.reconnects,
            ),
            count(
                "redis_messages_received",
                "Messages received on the Redis subscription",
                &c.received,
            ),
        ]
    }

    fn cluster_view(&self) -> Option<serde_json::Result<String>> {
        Some(serde_json::to_string(&self.view()))
    }
}

pub(super) fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

fn publish_on(conn: &mut redis::Connection, channel: &str, bytes: &[u8]) -> redis::RedisResult<u64> {
    redis::cmd("PUBLISH").arg(channel).arg(bytes).query(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_name_their_node_or_this_one() {
        let parsed = |raw| parse_target("here", raw).map(|(node, id)| (node.to_owned(), id.0));
        assert_eq!(parsed("node-b-7").unwrap(), ("node-b".to_owned(), 7));
        assert_eq!(parsed("7").unwrap(), ("here".to_owned(), 7));
        for bad in ["", "-7", "node-", "node-x", "node-+7", "x"] {
            assert!(matches!(parsed(bad), Err(ClusterError::NoClient(_))), "{bad:?}");
        }
    }
}
