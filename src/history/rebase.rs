//! Ids given from outside: a history that follows a shared log (a cluster's
//! Redis stream) is told where the log starts and where it lost messages.
//!
//! Such a history does not number messages itself (`append` takes the log's
//! id); it starts over when the log is a new one (`restart`: another epoch),
//! and when messages of the log were lost before this node read them
//! (`raise_floor`), every resume from before the loss becomes a reset.

use std::collections::BTreeMap;

use super::{Epoch, HeldBytes, History, MessageId};

/// A message id that cannot be appended: another epoch, or not after the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message id {id} cannot follow {latest}: ids must be of the same epoch and increasing")]
pub struct AppendError {
    /// The id refused.
    pub id: MessageId,
    /// The newest id of the history.
    pub latest: MessageId,
}

impl<F: HeldBytes> History<F> {
    /// Starts over in `epoch`, as if every message up to seq `floor` had been
    /// published and evicted: every stored message is dropped, `latest` becomes
    /// `epoch-floor`, and a resume from before it is a reset (from another
    /// epoch: `OtherEpoch`; from this one, below `floor`: `Evicted`).
    /// Subscribed channels keep their entries.
    pub fn restart(&mut self, epoch: Epoch, floor: u64) {
        self.epoch = epoch;
        self.last_seq = floor;
        self.dropped_floor = floor;
        self.fronts = BTreeMap::new();
        self.stored_messages = 0;
        self.channels
            .retain(|name, entry| entry.subscribed || name.is_all());
        for entry in self.channels.values_mut() {
            entry.messages = Default::default();
            entry.evicted_up_to = floor;
            entry.last_seq = 0;
            // An entry without messages holds nothing (see `evict::entry_cost`).
            entry.counted = 0;
        }
        self.stored_bytes = 0;
    }

    /// Messages up to seq `floor` may have been lost before they were stored:
    /// a resume from before `floor` is a reset on every channel, and `latest`
    /// is at least `floor` (so a client reset now resumes from there
    /// completely). Stored messages stay (`?last=N` may still send them).
    pub fn raise_floor(&mut self, floor: u64) {
        self.last_seq = self.last_seq.max(floor);
        self.dropped_floor = self.dropped_floor.max(floor);
        for entry in self.channels.values_mut() {
            entry.evicted_up_to = entry.evicted_up_to.max(floor);
        }
    }
}
