//! The server's counters, read by `/stats` (JSON) and `/metrics` (Prometheus text).

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::cluster::ClusterStats;

/// Counters shared by every part of the server. Cheap to bump: each is one atomic.
#[derive(Debug, Default)]
pub struct Stats {
    /// WebSocket handshakes completed.
    pub connections_accepted: Counter,
    /// Messages published to all clients.
    pub broadcasts: Counter,
    /// Frames accepted for delivery to a client (written or queued).
    pub deliveries_queued: Counter,
    /// Broadcasts split over more than one fan-out thread.
    pub sharded_broadcasts: Counter,
    /// Clients disconnected because their queue was full.
    pub slow_clients_dropped: Counter,
    /// Clients disconnected because nothing arrived from them within the pong timeout.
    pub clients_reaped: Counter,
    /// Connections refused before or during the WebSocket handshake.
    pub handshakes_rejected: Counter,
    /// Side-port connections answered 503 at --http-max-connections.
    pub http_connections_refused: Counter,
    /// Side-port connections closed to make room for a new one.
    pub http_connections_evicted: Counter,
    /// Side-port requests the front door answered 4xx/5xx itself.
    pub http_requests_rejected: Counter,
}

/// A point-in-time copy of the counters, as `/stats` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Clients connected now.
    pub clients: u64,
    /// WebSocket handshakes completed.
    pub connections_accepted: u64,
    /// Messages published to all clients.
    pub broadcasts: u64,
    /// Frames accepted for delivery to a client.
    pub deliveries_queued: u64,
    /// Broadcasts split over more than one fan-out thread.
    pub sharded_broadcasts: u64,
    /// Clients dropped for not keeping up.
    pub slow_clients_dropped: u64,
    /// Clients dropped for silence past the pong timeout.
    pub clients_reaped: u64,
    /// Connections refused at the handshake.
    pub handshakes_rejected: u64,
    /// Side-port connections answered 503 at --http-max-connections.
    pub http_connections_refused: u64,
    /// Side-port connections closed to make room for a new one.
    pub http_connections_evicted: u64,
    /// Side-port requests the front door answered 4xx/5xx itself.
    pub http_requests_rejected: u64,
    /// Threads that could not be created.
    pub thread_spawn_failures: u64,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// With `--redis`: the node id and the Redis figures, flattened into the object.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStats>,
}

impl Stats {
    /// Reads every counter; `clients` and `thread_spawn_failures` come from their owners.
    pub fn snapshot(&self, clients: usize, thread_spawn_failures: u64, started: Instant) -> StatsSnapshot {
        StatsSnapshot {
            clients: clients as u64,
            connections_accepted: self.connections_accepted.get(),
            broadcasts: self.broadcasts.get(),
            deliveries_queued: self.deliveries_queued.get(),
            sharded_broadcasts: self.sharded_broadcasts.get(),
            slow_clients_dropped: self.slow_clients_dropped.get(),
            clients_reaped: self.clients_reaped.get(),
            handshakes_rejected: self.handshakes_rejected.get(),
            http_connections_refused: self.http_connections_refused.get(),
            http_connections_evicted: self.http_connections_evicted.get(),
            http_requests_rejected: self.http_requests_rejected.get(),
            thread_spawn_failures,
            uptime_seconds: started.elapsed().as_secs(),
            cluster: None,
        }
    }
}

impl StatsSnapshot {
    /// The same figures in the Prometheus text format, names prefixed `wspush_`.
    pub fn to_prometheus(&self) -> String {
        let mut registry = Registry::with_prefix("wspush");
        let gauge = |v: u64| {
            let g: Gauge = Gauge::default();
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
            g
        };
        let counter = |v: u64| {
            let c: Counter = Counter::default();
            c.inc_by(v);
            c
        };
        registry.register("clients", "Clients connected now", gauge(self.clients));
        registry.register(
            "uptime_seconds",
            "Seconds since the server started",
            gauge(self.uptime_seconds),
        );
        let mut counters = vec![
            (
                "connections_accepted",
                "WebSocket handshakes completed",
                self.connections_accepted,
            ),
            ("broadcasts", "Messages published to all clients", self.broadcasts),
            (
                "deliveries_queued",
                "Frames accepted for delivery to a client",
                self.deliveries_queued,
            ),
            (
                "sharded_broadcasts",
                "Broadcasts split over more than one fan-out thread",
                self.sharded_broadcasts,
            ),
            (
                "slow_clients_dropped",
                "Clients dropped because their queue was full",
                self.slow_clients_dropped,
            ),
            (
                "clients_reaped",
                "Clients dropped for silence past the pong timeout",
                self.clients_reaped,
            ),
            (
                "handshakes_rejected",
                "Connections refused at the WebSocket handshake",
                self.handshakes_rejected,
            ),
            (
                "http_connections_refused",
                "Side-port connections answered 503 at --http-max-connections",
                self.http_connections_refused,
            ),
            (
                "http_connections_evicted",
                "Side-port connections closed to make room for a new one",
                self.http_connections_evicted,
            ),
            (
                "http_requests_rejected",
                "Side-port requests the front door answered 4xx/5xx itself",
                self.http_requests_rejected,
            ),
            (
                "thread_spawn_failures",
                "Threads that could not be created",
                self.thread_spawn_failures,
            ),
        ];
        if let Some(c) = &self.cluster {
            registry.register(
                "redis_up",
                "1 while the Redis subscription is up, else 0",
                gauge(u64::from(c.redis_up)),
            );
            counters.extend([
                (
                    "redis_publishes",
                    "Messages from publish requests accepted by Redis",
                    c.redis_publishes,
                ),
                (
                    "redis_publish_failures",
                    "Publish requests refused because Redis was unavailable",
                    c.redis_publish_failures,
                ),
                (
                    "redis_reconnects",
                    "Redis subscriptions made again after one was lost",
                    c.redis_reconnects,
                ),
                (
                    "redis_messages_received",
                    "Messages received on the Redis subscription",
                    c.redis_messages_received,
                ),
            ]);
        }
        for (name, help, value) in counters {
            registry.register(name, help, counter(value));
        }
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
