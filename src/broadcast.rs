//! Fan-out: one encoded frame offered to every client, or to one.
//!
//! The frame is encoded once by the caller and shared; each offer is a
//! non-blocking write or a queue push (see `client::outbox`). A client that is
//! not keeping up is dropped by its outbox as a slow consumer, so it never
//! holds up the others.
//!
//! A broadcast to many clients is split into shards offered by parallel
//! threads (`--fanout-threads`): on loopback and on a busy NIC most of a
//! send's cost is the kernel's TCP path, which runs on the sending thread, so
//! one thread per core shortens the time until the last client has its copy.
//! The shards run inside the one registry lock, so the order of broadcasts is
//! still the same for every client.

use std::sync::Arc;
use std::thread;

use crate::client::{Client, ClientId};
use crate::frame::EncodedFrame;
use crate::registry::Registry;
use crate::stats::Stats;

/// Fewest clients worth a shard of their own: below this, starting a thread
/// costs more than the sends it takes over.
const MIN_SHARD_CLIENTS: usize = 1024;

/// Stack of a shard thread; it only makes non-blocking sends and queue pushes.
const SHARD_STACK: usize = 128 * 1024;

/// Offers frames to clients and accounts for what happened.
#[derive(Clone)]
pub struct Fanout {
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    /// Threads a large broadcast is split over, the caller's included.
    threads: usize,
}

impl Fanout {
    /// A fan-out over `registry`, counting into `stats`, splitting large
    /// broadcasts over up to `threads` threads.
    pub fn new(registry: Arc<Registry>, stats: Arc<Stats>, threads: usize) -> Fanout {
        Fanout {
            registry,
            stats,
            threads: threads.max(1),
        }
    }

    /// Sends `frame` to every client; returns how many took it.
    ///
    /// All offers happen under one registry lock, so concurrent broadcasts
    /// reach every client in the same order.
    pub fn broadcast(&self, frame: &EncodedFrame) -> usize {
        let taken = self
            .registry
            .with_all(|clients| self.offer_sharded(clients, &[frame]));
        self.stats.broadcasts.inc();
        self.stats.deliveries_queued.inc_by(taken as u64);
        taken
    }

    /// Offers `frames`, in order, to every client `pick` selects, under one
    /// registry lock and on this thread; returns how many clients took them
    /// all.
    pub fn offer_each(&self, frames: &[&EncodedFrame], pick: impl Fn(&Client) -> bool) -> usize {
        self.registry
            .with_all(|clients| self.offer_part(clients, frames, &pick))
    }

    /// Offers `frames` to all of `clients`, in shards on parallel threads when
    /// there are enough clients. A shard whose thread cannot start (thread
    /// limits) is offered on this thread instead.
    fn offer_sharded(&self, clients: &[&Arc<Client>], frames: &[&EncodedFrame]) -> usize {
        let shards = self.threads.min(clients.len() / MIN_SHARD_CLIENTS).max(1);
        let offer_all = |part: &[&Arc<Client>]| self.offer_part(part, frames, &|_: &Client| true);
        if shards == 1 {
            return offer_all(clients);
        }
        self.stats.sharded_broadcasts.inc();
        let mut parts = clients.chunks(clients.len().div_ceil(shards));
        let own = parts.next().unwrap_or_default();
        thread::scope(|scope| {
            let helpers: Vec<_> = parts
                .map(|part| {
                    let started = thread::Builder::new()
                        .name("fanout".into())
                        .stack_size(SHARD_STACK)
                        .spawn_scoped(scope, move || offer_all(part));
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

    /// Offers `frames` in order to each client of `part` that `pick` selects,
    /// stopping at a client's first refusal; returns how many took them all.
    fn offer_part(
        &self,
        part: &[&Arc<Client>],
        frames: &[&EncodedFrame],
        pick: &impl Fn(&Client) -> bool,
    ) -> usize {
        part.iter()
            .filter(|c| pick(c))
            .filter(|client| frames.iter().all(|frame| self.offer(client, frame)))
            .count()
    }

    /// Sends `frame` to one client; `None` if no such client is connected,
    /// `Some(false)` if it is closing or was just dropped as slow.
    pub fn send_to(&self, id: ClientId, frame: &EncodedFrame) -> Option<bool> {
        let client = self.registry.get(id)?;
        let taken = self.offer(&client, frame);
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
