//! Fan-out: one publish offered to every subscriber of its channel, or a
//! message to one client.
//!
//! Each message is encoded once per transport (`message::Prepared`), before
//! the registry lock where it does not depend on the id, and shared (an
//! event-stream client's event by the first such client: `message::outgoing`); each
//! offer is a non-blocking write or a queue push (see `client::outbox`). A
//! client that is not keeping up is dropped by its outbox as a slow consumer,
//! so it never holds up the others.
//!
//! A publish to many clients is split into shards offered by parallel
//! threads (`--fanout-threads`): on loopback and on a busy NIC most of a
//! send's cost is the kernel's TCP path, which runs on the sending thread, so
//! one thread per core shortens the time until the last client has its copy.
//! The shards run inside the one registry lock, so the order of publishes is
//! still the same for every client.
//!
//! A cluster node publishes what its shared log gives instead, with the log's
//! ids (`logged`).

mod logged;

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::channel::ChannelName;
use crate::client::{Client, ClientId, Transport};
use crate::frame::EncodedFrame;
use crate::history::{MessageId, Stored};
use crate::message::{self, Frames, Prepared};
use crate::publish::{Health, Payload, Publish, PublishError, Published};
use crate::registry::{Hub, Registry};
use crate::stats::{Figure, Stats};
use crate::threads::{Role, ThreadSpawner};

/// Fewest clients worth a shard of their own: below this, starting a thread
/// costs more than the sends it takes over.
const MIN_SHARD_CLIENTS: usize = 1024;

/// Offers frames to clients and accounts for what happened.
#[derive(Clone)]
pub struct Fanout {
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    /// Threads a large publish is split over, the caller's included.
    threads: usize,
    spawner: ThreadSpawner,
}

/// What one publish on this node came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Subscribers that took the message (written or queued).
    pub clients: usize,
    /// The id this node gave it.
    pub id: MessageId,
}

impl Fanout {
    /// A fan-out over `registry`, counting into `stats`, splitting large
    /// publishes over up to `threads` threads started by `spawner`.
    pub fn new(registry: Arc<Registry>, stats: Arc<Stats>, threads: usize, spawner: ThreadSpawner) -> Fanout {
        Fanout {
            registry,
            stats,
            threads: threads.max(1),
            spawner,
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.registry.len()
    }

    /// Publishes `msg` on `channel` to this node's clients: gives it the next
    /// id, stores it in the history and offers it to every subscriber of the
    /// channel, all under one registry lock, so concurrent publishes and
    /// joins reach every client in the same order.
    pub fn publish_local(&self, channel: &ChannelName, msg: &Payload) -> Delivered {
        let prepared = Prepared::new(channel, msg);
        let now = Instant::now();
        let delivered = self.registry.with_hub(|hub| {
            let stored = hub.history.publish(channel, now, |id| prepared.frames(id));
            self.offer_stored(hub, &stored, prepared.raw())
        });
        self.count_published(channel, &delivered);
        delivered
    }

    /// Offers a message just stored to its channel's subscribers (under the
    /// lock; `raw` to `/echo` clients), then counts in the history the event
    /// an event-stream subscriber made for it.
    fn offer_stored(&self, hub: &mut Hub, stored: &Stored<Frames>, raw: Option<&EncodedFrame>) -> Delivered {
        let subscribers = hub.subscribers(stored.channel());
        let encoded = &self.stats.sse_events_encoded;
        let clients = self.offer_sharded(&subscribers, &|client: &Client| {
            let frame = match client.transport() {
                Transport::Echo => raw,
                transport => message::outgoing(stored, transport, encoded),
            };
            frame.is_some_and(|frame| self.offer(client, frame))
        });
        hub.history.recharge(stored);
        Delivered {
            clients,
            id: stored.id(),
        }
    }

    fn count_published(&self, channel: &ChannelName, delivered: &Delivered) {
        self.stats.messages_published.inc();
        if channel.is_all() {
            self.stats.broadcasts.inc();
        }
        self.stats.deliveries_queued.inc_by(delivered.clients as u64);
    }

    /// Runs `offer` for every client under one registry lock, on this
    /// thread; returns how many it returned true for.
    pub fn offer_each(&self, offer: impl Fn(&Client) -> bool) -> usize {
        self.registry
            .with_hub(|hub| hub.clients().filter(|client| offer(client)).count())
    }

    /// Runs `offer` for each of `clients`, in shards on parallel threads when
    /// there are enough clients; returns how many it returned true for. A
    /// shard whose thread cannot start (thread limits) is offered on this
    /// thread instead.
    fn offer_sharded(&self, clients: &[&Arc<Client>], offer: &(impl Fn(&Client) -> bool + Sync)) -> usize {
        let shards = shard_count(clients.len(), self.threads);
        let offer_all = |part: &[&Arc<Client>]| part.iter().filter(|client| offer(client)).count();
        if shards == 1 {
            return offer_all(clients);
        }
        self.stats.sharded_broadcasts.inc();
        let mut parts = clients.chunks(clients.len().div_ceil(shards));
        let own = parts.next().unwrap_or_default();
        thread::scope(|scope| {
            let helpers: Vec<_> = parts
                .map(|part| {
                    let started = self
                        .spawner
                        .spawn_scoped(scope, Role::Shard, "fanout".into(), move || offer_all(part));
                    (part, started)
                })
                .collect();
            let mut total = offer_all(own);
            for (part, started) in helpers {
                total += match started {
                    Ok(helper) => helper.join().unwrap_or_else(|_| {
                        log::error!("a fan-out shard thread panicked; its clients may miss this message");
                        0
                    }),
                    Err(_) => offer_all(part),
                };
            }
            total
        })
    }

    /// Sends `msg` to one client, not stored (a direct message on `/ws/…`,
    /// the raw frame on `/echo`); `None` if no such client is connected,
    /// `Some(false)` if it is closing or was just dropped as slow.
    pub fn send_to_id(&self, id: ClientId, msg: &Payload) -> Option<bool> {
        let client = self.registry.get(id)?;
        let taken = self.offer(&client, &message::direct(msg, client.transport()));
        if taken {
            self.stats.deliveries_queued.inc();
        }
        Some(taken)
    }

    /// Offers one frame to one client; never blocks, so it may run under the
    /// registry lock. A client not keeping up is dropped by its outbox.
    pub fn offer(&self, client: &Client, frame: &EncodedFrame) -> bool {
        client.outbox.offer(Arc::clone(frame)).accepted()
    }
}

/// A single node's publishing: straight to this node's clients.
impl Publish for Fanout {
    fn publish(&self, channel: &ChannelName, msg: Payload) -> Result<Published, PublishError> {
        let delivered = self.publish_local(channel, &msg);
        Ok(Published {
            id: Some(delivered.id.to_string()),
            ..Published::local(delivered.clients)
        })
    }

    fn send_to(&self, client: &str, msg: Payload) -> Result<Published, PublishError> {
        let no_client = || PublishError::NoClient(client.to_owned());
        let id = ClientId::parse(client).ok_or_else(no_client)?;
        let taken = self.send_to_id(id, &msg).ok_or_else(no_client)?;
        Ok(Published::local(usize::from(taken)))
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    fn figures(&self) -> Vec<Figure> {
        Vec::new()
    }

    fn cluster_view(&self) -> Option<serde_json::Result<String>> {
        None
    }
}

/// How many shards a broadcast to `clients` clients is split into, with up to `threads` threads.
fn shard_count(clients: usize, threads: usize) -> usize {
    threads.min(clients / MIN_SHARD_CLIENTS).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    fn fanout() -> (Fanout, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        let spawner = ThreadSpawner::new(64 * 1024, 64 * 1024, Counter::default());
        let registry = Registry::new(4, None, crate::history::HistoryLimits::default());
        (Fanout::new(registry, Arc::clone(&stats), 4, spawner), stats)
    }

    #[test]
    fn shards_only_for_a_thousand_clients_each() {
        assert_eq!(shard_count(0, 4), 1);
        assert_eq!(shard_count(2047, 4), 1);
        assert_eq!(shard_count(2048, 4), 2);
        assert_eq!(shard_count(100_000, 4), 4);
        assert_eq!(shard_count(100_000, 1), 1);
    }

    #[test]
    fn a_publish_to_nobody_counts_one_broadcast_and_no_delivery() {
        let (fanout, stats) = fanout();
        let msg = Payload::new(crate::frame::PayloadKind::Text, &b"x"[..]);
        let published = fanout.publish(&ChannelName::all(), msg.clone()).unwrap();
        assert_eq!(published.clients, 0);
        assert!(published.id.is_some_and(|id| id.ends_with("-1")));
        assert_eq!((stats.broadcasts.get(), stats.deliveries_queued.get()), (1, 0));
        let orders = ChannelName::new("orders").unwrap();
        let published = fanout.publish(&orders, msg).unwrap();
        assert!(published.id.is_some_and(|id| id.ends_with("-2")), "one sequence");
        assert_eq!((stats.broadcasts.get(), stats.messages_published.get()), (1, 2));
    }

    #[test]
    fn send_to_refuses_ids_that_are_not_plain_numbers_or_not_connected() {
        let (fanout, _) = fanout();
        for id in ["7", "a-7", "", "x"] {
            let msg = Payload::new(crate::frame::PayloadKind::Text, &b"x"[..]);
            match fanout.send_to(id, msg) {
                Err(PublishError::NoClient(shown)) => assert_eq!(shown, id),
                other => panic!("{id:?}: {other:?}"),
            }
        }
    }
}
