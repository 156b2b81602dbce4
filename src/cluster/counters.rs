//! The cluster's own figures in `/stats` and `/metrics` (`redis_*`).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use crate::stats::{Figure, FigureValue};

/// What the cluster counts. Each is one atomic, bumped by its threads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes appended to the log.
    pub publishes: AtomicU64,
    /// Publishes refused (503) because the link or the log was not there.
    pub publish_failures: AtomicU64,
    /// Links (the log reader's, the subscription) made again after one was lost.
    pub reconnects: AtomicU64,
    /// Links that were up and were lost.
    pub link_drops: AtomicU64,
    /// Log entries read and delivered to this node's clients.
    pub received: AtomicU64,
    /// Of those, the ones read after a reconnect that were logged while the
    /// reader's link was down: what the node's clients would have missed.
    pub recovered: AtomicU64,
    /// Clients sent a `reset` because the log lost entries before this node
    /// read them (trimmed while its link was down) or was lost altogether.
    pub resets: AtomicU64,
}

impl Counters {
    /// The figures, with this node's id and whether it is up.
    pub fn figures(&self, node: &str, up: bool) -> Vec<Figure> {
        let count = |name: &'static str, help: &'static str, n: &AtomicU64| Figure {
            name,
            help,
            value: FigureValue::Count(n.load(SeqCst)),
        };
        vec![
            Figure {
                name: "node",
                help: "This node's id",
                value: FigureValue::Text(node.to_owned()),
            },
            Figure {
                name: "redis_up",
                help: "1 while the node reads the Redis log and is subscribed, else 0",
                value: FigureValue::Flag(up),
            },
            count(
                "redis_publishes",
                "Publishes sent through Redis: appended to the log, or a /send/{id} to the node of its client",
                &self.publishes,
            ),
            count(
                "redis_publish_failures",
                "Publish requests refused because Redis or its log was unavailable",
                &self.publish_failures,
            ),
            count(
                "redis_reconnects",
                "Redis links (log reader, subscription) made again after one was lost",
                &self.reconnects,
            ),
            count(
                "redis_link_drops",
                "Redis links (log reader, subscription) that were up and were lost",
                &self.link_drops,
            ),
            count(
                "redis_messages_received",
                "Messages read from the Redis log and delivered to this node's clients",
                &self.received,
            ),
            count(
                "redis_messages_recovered",
                "Messages read from the Redis log after a reconnect that were logged while the link was down",
                &self.recovered,
            ),
            count(
                "redis_resets",
                "Clients sent a reset because the Redis log lost messages before this node read them",
                &self.resets,
            ),
        ]
    }
}
