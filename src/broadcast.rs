//! Fan-out: one encoded frame offered to every client, or to one.
//!
//! The frame is encoded once by the caller and shared; each offer is a
//! non-blocking write or a queue push (see `client::outbox`). A client whose
//! queue is full is dropped here as a slow consumer, so it never holds up the
//! others.

use std::sync::Arc;

use tungstenite::protocol::frame::coding::CloseCode;

use crate::client::{Client, ClientId, Offer};
use crate::frame::{self, EncodedFrame};
use crate::registry::Registry;
use crate::stats::Stats;

/// Offers frames to clients and accounts for what happened.
#[derive(Clone)]
pub struct Fanout {
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    slow_close: EncodedFrame,
}

impl Fanout {
    /// A fan-out over `registry`, counting into `stats`.
    pub fn new(registry: Arc<Registry>, stats: Arc<Stats>) -> Fanout {
        Fanout {
            registry,
            stats,
            slow_close: frame::close(CloseCode::Policy, "slow consumer"),
        }
    }

    /// Sends `frame` to every client; returns how many took it.
    ///
    /// All offers happen under one registry lock, so concurrent broadcasts
    /// reach every client in the same order.
    pub fn broadcast(&self, frame: &EncodedFrame) -> usize {
        let taken = self.offer_each(&[frame], |_| true);
        self.stats.broadcasts.inc();
        self.stats.deliveries_queued.inc_by(taken as u64);
        taken
    }

    /// Offers `frames`, in order, to every client `pick` selects, under one
    /// registry lock; returns how many clients took them all. Clients dropped
    /// as slow meanwhile are logged once the lock is released.
    pub fn offer_each(&self, frames: &[&EncodedFrame], pick: impl Fn(&Client) -> bool) -> usize {
        let mut taken = 0;
        let mut dropped = Vec::new();
        self.registry.for_each(|client| {
            if !pick(client) {
                return;
            }
            for frame in frames {
                match self.deliver(client, frame) {
                    Delivery::Taken => {}
                    Delivery::DroppedSlow => return dropped.push(Arc::clone(client)),
                    Delivery::Refused => return,
                }
            }
            taken += 1;
        });
        for client in dropped {
            log_slow(&client);
        }
        taken
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

    /// Offers one frame to one client (not under the registry lock), dropping
    /// the client if it is not keeping up.
    pub fn offer(&self, client: &Arc<Client>, frame: &EncodedFrame) -> bool {
        match self.deliver(client, frame) {
            Delivery::Taken => true,
            Delivery::DroppedSlow => {
                log_slow(client);
                false
            }
            Delivery::Refused => false,
        }
    }

    /// The offer itself; never blocks and never logs, so it may run under the lock.
    fn deliver(&self, client: &Client, frame: &EncodedFrame) -> Delivery {
        match client.outbox.offer(Arc::clone(frame)) {
            Offer::Written | Offer::Queued => Delivery::Taken,
            Offer::Full if client.mark_ended("slow consumer: queue full") => {
                self.stats.slow_clients_dropped.inc();
                client.outbox.abort(Some(Arc::clone(&self.slow_close)));
                Delivery::DroppedSlow
            }
            Offer::Full | Offer::Closed | Offer::Failed => Delivery::Refused,
        }
    }
}

/// What one offer came to.
enum Delivery {
    Taken,
    /// Not taken, and the client was dropped as slow by this very offer.
    DroppedSlow,
    Refused,
}

fn log_slow(client: &Client) {
    log::warn!("{client} dropped: slow consumer (queue full)");
}
