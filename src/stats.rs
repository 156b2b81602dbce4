//! The server's counters, defined once in one table: the `Stats` every part
//! bumps, the `StatsSnapshot` `/stats` shows, and the `/metrics` registration
//! (`metrics`) all come from `counters!` below.
//!
//! Figures owned by someone else (the cluster's Redis figures) are `Figure`s,
//! asked for when a snapshot or a scrape is made.

use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry as PromRegistry;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One table, four uses: the `Stats` field, the snapshot field (same name, in
/// this order in `/stats`), the Prometheus counter `wspush_<name>_total`, and
/// its help text (also the field's doc).
macro_rules! counters {
    ($($name:ident: $help:literal,)*) => {
        /// The server's counters. Cheap to bump: each is one atomic.
        #[derive(Debug)]
        pub struct Stats {
            $(#[doc = $help] pub $name: Counter,)*
            started: Instant,
        }

        impl Default for Stats {
            fn default() -> Stats {
                Stats { $($name: Counter::default(),)* started: Instant::now() }
            }
        }

        /// A point-in-time copy of the figures, as `/stats` shows them.
        #[derive(Debug, Clone, Serialize, PartialEq, Eq)]
        pub struct StatsSnapshot {
            /// Clients connected now.
            pub clients: u64,
            $(#[doc = $help] pub $name: u64,)*
            /// Seconds since the server started.
            pub uptime_seconds: u64,
            /// Figures of the publisher (with `--redis`: the node id and the Redis figures).
            #[serde(flatten)]
            pub extra: Figures,
        }

        impl Stats {
            /// Every figure now; `clients` and `extra` come from their owners.
            pub fn snapshot(&self, clients: usize, extra: Vec<Figure>) -> StatsSnapshot {
                StatsSnapshot {
                    clients: clients as u64,
                    $($name: self.$name.get(),)*
                    uptime_seconds: self.uptime_seconds(),
                    extra: Figures(extra),
                }
            }

            /// Registers every counter (shared, not copied) under its name.
            pub fn register(&self, registry: &mut PromRegistry) {
                $(registry.register(stringify!($name), $help, self.$name.clone());)*
            }
        }
    };
}

counters! {
    connections_accepted: "WebSocket handshakes completed",
    broadcasts: "Messages published to all clients",
    messages_published: "Messages published, to any channel (`all` included)",
    deliveries_queued: "Frames accepted for delivery to a client (written or queued)",
    sharded_broadcasts: "Broadcasts split over more than one fan-out thread",
    slow_clients_dropped: "Clients dropped as slow consumers (queue over --queue-len or --queue-bytes, or a write blocked past --write-timeout)",
    clients_reaped: "Clients dropped for silence past the pong timeout",
    clients_kicked: "Clients closed by DELETE /clients/{id}",
    resumes: "Subscriptions with ?since= that were replayed what they missed (even nothing)",
    resets: "Subscriptions with ?since= sent a reset instead (history gone, unknown or unreadable since, too much to replay)",
    messages_replayed: "Stored messages sent to joining clients (?since= replays and ?last=N)",
    handshakes_rejected: "Connections refused before or during the WebSocket handshake",
    tokens_rejected: "Subscriptions refused for their subscribe token (401: missing, malformed, badly signed, wrong algorithm, expired; 403: a channel not covered)",
    tokens_expired: "Connections closed with 4001 when their subscribe token expired",
    tokens_minted: "Subscribe tokens made by POST /tokens",
    http_connections_refused: "Side-port connections answered 503 at --http-max-connections",
    http_connections_evicted: "Side-port connections closed to make room for a new one",
    http_requests_rejected: "Side-port requests the front door answered 4xx/5xx itself",
    thread_spawn_failures: "Threads that could not be created",
}

impl Stats {
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// A figure someone other than `Stats` owns, shown by `/stats` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// The `/stats` key; `/metrics` adds the `wspush_` prefix.
    pub name: &'static str,
    /// The `/metrics` help text.
    pub help: &'static str,
    pub value: FigureValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FigureValue {
    /// Only counts up: a Prometheus counter.
    Count(u64),
    /// A yes/no state: `true`/`false` in `/stats`, a 1/0 gauge in `/metrics`.
    Flag(bool),
    /// A level that goes up and down: a Prometheus gauge.
    Gauge(u64),
    /// A name (the node id): in `/stats` only.
    Text(String),
}

/// The extra figures, serialised as keys of the `/stats` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures(pub Vec<Figure>);

impl Figures {
    pub fn get(&self, name: &str) -> Option<&FigureValue> {
        self.0.iter().find(|f| f.name == name).map(|f| &f.value)
    }
}

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for figure in &self.0 {
            match &figure.value {
                FigureValue::Count(n) | FigureValue::Gauge(n) => map.serialize_entry(figure.name, n)?,
                FigureValue::Flag(b) => map.serialize_entry(figure.name, b)?,
                FigureValue::Text(s) => map.serialize_entry(figure.name, s)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_shows_counters_then_the_extra_figures_in_order() {
        let stats = Stats::default();
        stats.broadcasts.inc();
        stats.thread_spawn_failures.inc_by(2);
        let extra = vec![
            Figure {
                name: "node",
                help: "",
                value: FigureValue::Text("a".into()),
            },
            Figure {
                name: "redis_up",
                help: "",
                value: FigureValue::Flag(true),
            },
        ];
        let json = serde_json::to_string(&stats.snapshot(3, extra)).unwrap();
        assert_eq!(
            json,
            r#"{"clients":3,"connections_accepted":0,"broadcasts":1,"messages_published":0,"deliveries_queued":0,"sharded_broadcasts":0,"slow_clients_dropped":0,"clients_reaped":0,"clients_kicked":0,"resumes":0,"resets":0,"messages_replayed":0,"handshakes_rejected":0,"tokens_rejected":0,"tokens_expired":0,"tokens_minted":0,"http_connections_refused":0,"http_connections_evicted":0,"http_requests_rejected":0,"thread_spawn_failures":2,"uptime_seconds":0,"node":"a","redis_up":true}"#
        );
    }
}
