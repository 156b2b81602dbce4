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
        let mut taken = 0;
        self.registry.for_each(|client| {
            if self.offer(client, frame) {
                taken += 1;
            }
        });
        self.stats.broadcasts.inc();
        self.stats.deliveries_queued.inc_by(taken as u64);
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

    /// Offers one frame to one client, dropping the client if it is not keeping up.
    pub fn offer(&self, client: &Arc<Client>, frame: &EncodedFrame) -> bool {
        match client.outbox.offer(Arc::clone(frame)) {
            Offer::Written | Offer::Queued => true,
            Offer::Full => {
                if client.mark_ended("slow consumer: queue full") {
                    self.stats.slow_clients_dropped.inc();
                    log::warn!("{client} dropped: slow consumer (queue full)");
                    client.outbox.abort(Some(Arc::clone(&self.slow_close)));
                }
                false
            }
            Offer::Closed | Offer::Failed => false,
        }
    }
}
