//! Publishing through Redis: the cluster's side of `Publish`.
//!
//! A publish is sent on the shared connection (`link`), and answered once its
//! outcome is back:
//! - a message for a channel (`all` included) is appended to the log
//!   (`stream::append`); once Redis took it, the HTTP thread waits for this
//!   node's own reader to deliver it, and answers `{"clients": <subscribers on
//!   this node>, "id": <its id, the same on every node>, "nodes": <nodes
//!   subscribed to the cluster when it was logged>}`. Nothing is answered 200
//!   that is not in the log: with the link down, or no log, it is a 503;
//! - a message for client `NODE-N` is PUBLISHed on NODE's channel. If Redis
//!   hands it to no one, no node NODE is subscribed: 404. Otherwise NODE
//!   offers it to its client and acks `delivered`, `refused` (closing or
//!   dropped as slow: `{"clients": 0}`) or `absent` (404), within
//!   `REPLY_DEADLINE` or 503.

use std::sync::atomic::Ordering::SeqCst;

use crossbeam_channel::Receiver;
use redis::Value;

use super::entry::Entry;
use super::link::LinkError;
use super::stream;
use super::wire::{Body, SendResult};
use super::{Cluster, ClusterError, Outcome, REPLY_DEADLINE};
use crate::channel::ChannelName;
use crate::client::ClientId;
use crate::publish::{Health, Payload, Publish, PublishError, Published};
use crate::stats::Figure;

impl Cluster {
    /// Counts a refused publish.
    fn refuse(&self) -> ClusterError {
        self.counters.publish_failures.fetch_add(1, SeqCst);
        ClusterError::RedisUnavailable
    }

    /// Sends what `build` makes from its number, with a waiter for its outcome
    /// listed before it is sent (the outcome may come back at once).
    fn send_awaited<T: redis::FromRedisValue>(
        &self,
        what: &str,
        build: impl FnOnce(u64) -> redis::Pipeline,
    ) -> Result<(T, Awaited<'_>), ClusterError> {
        if !self.is_up() {
            return Err(self.refuse());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut awaited = None;
        let (_, reply) = self.send::<T>(|seq| {
            self.pending.lock().insert(seq, tx);
            awaited = Some(Awaited {
                cluster: self,
                seq,
                rx,
            });
            build(seq)
        });
        let reply = reply.map_err(|e: LinkError| {
            log::warn!("cluster: {what} failed: {e}");
            self.refuse()
        })?;
        // A reply means `build` ran.
        Ok((reply, awaited.ok_or(ClusterError::RedisUnavailable)?))
    }

    /// Appends a message for every subscriber of `channel` to the log and
    /// waits for this node's reader to deliver it.
    fn broadcast(&self, channel: &ChannelName, msg: &Payload) -> Result<Published, ClusterError> {
        let what = format!("appending a message for {channel} to the log");
        let (reply, awaited) = self.send_awaited::<(Value, Value)>(&what, |seq| {
            let entry = Entry {
                origin: &self.id.node,
                boot: self.id.boot,
                seq,
                channel: channel.clone(),
                kind: msg.kind,
                payload: &msg.bytes,
            };
            stream::append(&self.log, self.log_settings.max_len, &entry, &self.id.prefix)
        })?;
        let (id, nodes) = stream::appended(reply).map_err(|e| {
            log::warn!("cluster: {what}: {e}");
            self.refuse()
        })?;
        let Some(id) = id else {
            log::warn!(
                "cluster: {what}: redis has no log {} (lost); the reader makes a new one",
                self.log.stream
            );
            return Err(self.refuse());
        };
        if id.seq().is_none() {
            log::error!("cluster: the log gave entry id {id}, too large for a message id; refused");
            return Err(self.refuse());
        }
        self.counters.publishes.fetch_add(1, SeqCst);
        match awaited.wait() {
            Some(Outcome::Fanned(delivered)) => Ok(Published {
                clients: delivered.clients,
                id: Some(delivered.id.to_string()),
                nodes: Some(nodes),
            }),
            _ => Err(ClusterError::NotReturned { id: id.to_string() }),
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
        let what = format!("publishing to {channel}");
        let ((receivers,), awaited) = self.send_awaited::<(u64,)>(&what, |seq| {
            let mut pipe = redis::pipe();
            pipe.cmd("PUBLISH").arg(&channel).arg(self.envelope(seq, body));
            pipe
        })?;
        self.counters.publishes.fetch_add(1, SeqCst);
        let id = raw_id.to_owned();
        if receivers == 0 {
            return Err(ClusterError::NoNode {
                id,
                node: node.to_owned(),
            });
        }
        match awaited.wait() {
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
struct Awaited<'a> {
    cluster: &'a Cluster,
    seq: u64,
    rx: Receiver<Outcome>,
}

impl Awaited<'_> {
    /// Its outcome, if it comes within `REPLY_DEADLINE`.
    fn wait(&self) -> Option<Outcome> {
        let outcome = self.rx.recv_timeout(REPLY_DEADLINE).ok();
        if outcome.is_none() {
            log::warn!(
                "cluster: no outcome for message {} within {REPLY_DEADLINE:?}",
                self.seq
            );
        }
        outcome
    }
}

impl Drop for Awaited<'_> {
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
        self.counters.figures(&self.id.node, self.is_up())
    }

    fn cluster_view(&self) -> Option<serde_json::Result<String>> {
        Some(serde_json::to_string(&self.view()))
    }
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
