//! Where messages go: the interface the side port publishes through.
//!
//! The core defines it; this node's fan-out (`broadcast::Fanout`) implements
//! it for a single node, and a relay between nodes (the Redis cluster)
//! implements it around that fan-out. The HTTP side only ever holds an
//! `Arc<dyn Publish>`, so a relay plugs in here without touching the callers.

use std::error::Error;
use std::sync::Arc;

use serde::Serialize;

use crate::channel::ChannelName;
use crate::frame::{self, EncodedFrame, PayloadKind};
use crate::stats::Figure;

/// Where a message is published to.
pub trait Publish: Send + Sync {
    /// Sends `msg` to every client on `channel` (every client is on `all`);
    /// the answer carries the id the message was given (on this node).
    fn publish(&self, channel: &ChannelName, msg: Payload) -> Result<Published, PublishError>;

    /// Sends `msg` to the one client `/clients` shows as `client`.
    fn send_to(&self, client: &str, msg: Payload) -> Result<Published, PublishError>;

    /// Whether publishing works now (`/healthz`).
    fn health(&self) -> Health;

    /// Figures of its own, added to `/stats` and `/metrics`.
    fn figures(&self) -> Vec<Figure>;

    /// The JSON `/cluster` answers, when this publisher is a cluster.
    fn cluster_view(&self) -> Option<serde_json::Result<String>>;
}

/// A message to publish: its bytes, text, binary or JSON, and its raw frame once encoded.
#[derive(Debug, Clone)]
pub struct Payload {
    pub kind: PayloadKind,
    pub bytes: Arc<[u8]>,
    /// The frame for `bytes`, when the caller made it already (the pod list's).
    frame: Option<EncodedFrame>,
}

impl Payload {
    pub fn new(kind: PayloadKind, bytes: impl Into<Arc<[u8]>>) -> Payload {
        Payload {
            kind,
            bytes: bytes.into(),
            frame: None,
        }
    }

    /// A payload whose frame is encoded now, once, for every later publish.
    pub fn encoded(kind: PayloadKind, bytes: impl Into<Arc<[u8]>>) -> Payload {
        let mut payload = Payload::new(kind, bytes);
        payload.frame = Some(frame::data(kind, &payload.bytes));
        payload
    }

    /// The WebSocket frame carrying it (encoded here unless it was already).
    pub fn frame(&self) -> EncodedFrame {
        match &self.frame {
            Some(frame) => Arc::clone(frame),
            None => frame::data(self.kind, &self.bytes),
        }
    }
}

/// What a publish answers: `{"clients":N}`, with `"nodes":M` in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Clients (of this node) the message was written or queued for.
    pub clients: usize,
    /// The message's id (`/publish/{channel}`; `/sendall` and `/send/{id}` leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Nodes a relay handed the message to (this one included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
}

impl Published {
    /// Taken by `clients` clients of this node alone.
    pub fn local(clients: usize) -> Published {
        Published {
            clients,
            id: None,
            nodes: None,
        }
    }
}

/// Whether a publisher can deliver now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Publishes are refused until it recovers (a relay that lost its link).
    Degraded,
}

/// Why a publish was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No client has this id (or it is not even an id).
    #[error("no client with id {0:?}")]
    NoClient(String),
    /// The target is known not to exist, for a reason the publisher gives.
    #[error(transparent)]
    NotFound(Box<dyn Error + Send + Sync>),
    /// The publisher cannot deliver now; the message may or may not arrive.
    #[error(transparent)]
    Unavailable(Box<dyn Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_serialises_to_the_documented_answers() {
        let local = serde_json::to_string(&Published::local(3)).unwrap();
        assert_eq!(local, r#"{"clients":3}"#);
        let cluster = Published {
            nodes: Some(2),
            ..Published::local(1)
        };
        assert_eq!(
            serde_json::to_string(&cluster).unwrap(),
            r#"{"clients":1,"nodes":2}"#
        );
    }

    #[test]
    fn a_payload_frame_is_the_same_encoded_now_or_later() {
        let later = Payload::new(PayloadKind::Text, &b"hi"[..]);
        let now = Payload::encoded(PayloadKind::Text, &b"hi"[..]);
        assert_eq!(later.frame(), now.frame());
        assert!(Arc::ptr_eq(&now.frame(), &now.frame()), "encoded once");
    }
}
