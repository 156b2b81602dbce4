//! Message ids and the per-channel history that lets a reconnecting client resume.
//!
//! `History` owns, per channel, the last `--history-size` messages younger than
//! `--history-ttl` (each an `Arc<Stored<F>>`, shared with the clients it is
//! written to), under one total `--history-bytes` cap that evicts the oldest
//! message of any channel first. It also owns what makes resumes honest: per
//! channel the highest seq ever evicted, and for channels whose entry is gone a
//! global floor, so that a replay is either complete or a `Reset`, never a
//! partial replay that looks complete.
//!
//! It has no lock and never blocks: the caller holds the one hub lock that orders
//! publishes, and under it publishes (`publish`: next id, store), resumes
//! (`replay` or `last`, then subscribes the client) and ticks (`expire`, about
//! once a second). Every operation costs O(log c) per message it stores or
//! evicts (c: channels holding messages), never O(all channels), but the rare
//! `restart` and `raise_floor`.
//!
//! A single node numbers its messages itself (`publish`); a cluster node takes
//! the ids of the shared log instead (`append`, `restart`, `raise_floor`: see
//! `rebase`).
//!
//! A channel's entry exists while it holds messages or the caller says it has
//! subscribers (`set_subscribed`); without either it is dropped, and its highest
//! evicted seq is folded into the global floor. A new entry starts from that
//! floor, since what its channel lost before is no longer known. `all` keeps its
//! entry for good: every client is on it, so its floor must not be the global one.

mod evict;
mod id;
mod rebase;
mod replay;
mod stats;
mod stored;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::ChannelName;

pub use id::{Epoch, MessageId, Since};
pub use rebase::AppendError;
pub use replay::{Replay, ResetReason};
pub use stats::{ChannelStats, HistoryTotals};
pub use stored::{heap_cost, HeldBytes, Stored};

/// How much history is kept, and how much of it one resume may replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Messages kept per channel (`--history-size`, default 100).
    pub size: usize,
    /// Age at which a message is dropped (`--history-ttl`, default 300 s).
    pub ttl: Duration,
    /// Heap all stored messages may hold together (`--history-bytes`, default 64 MiB).
    pub bytes: usize,
    /// Most messages one resume or `last` replays (`--recovery-max`, default 1,000);
    /// a resume that needs more is reset.
    pub recovery_max: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            size: 100,
            ttl: Duration::from_secs(300),
            bytes: 64 << 20,
            recovery_max: 1_000,
        }
    }
}

/// One channel's stored messages and what it has lost.
#[derive(Debug)]
struct Channel<F> {
    /// Oldest first; every message of the channel from the front's seq on.
    messages: VecDeque<Arc<Stored<F>>>,
    /// No message of this channel with a higher seq was ever evicted.
    evicted_up_to: u64,
    /// Its newest message since the entry was made (0: none).
    last_seq: u64,
    /// The caller says it has subscribers: keep the entry when it is empty.
    subscribed: bool,
    /// Bytes of this entry itself counted in the history's total (0 while empty).
    counted: usize,
}

impl<F> Channel<F> {
    fn new(floor: u64) -> Channel<F> {
        Channel {
            messages: VecDeque::new(),
            evicted_up_to: floor,
            last_seq: 0,
            subscribed: false,
            counted: 0,
        }
    }
}

/// The stored messages of every channel, and the server's message ids.
#[derive(Debug)]
pub struct History<F> {
    epoch: Epoch,
    /// The newest id's seq (0 before the first publish).
    last_seq: u64,
    limits: HistoryLimits,
    channels: HashMap<ChannelName, Channel<F>>,
    /// Seq of the oldest stored message of each channel that holds any: its first
    /// key is the oldest message of all, the one the byte cap and TTL evict next.
    fronts: BTreeMap<u64, ChannelName>,
    /// No message of a channel without an entry with a higher seq was ever evicted.
    dropped_floor: u64,
    stored_bytes: usize,
    stored_messages: usize,
    /// Publish time of the newest message, so that stored times never go back.
    last_at: Option<Instant>,
}

impl<F: HeldBytes> History<F> {
    /// An empty history with a fresh random epoch.
    pub fn new(limits: HistoryLimits) -> History<F> {
        History::with_epoch(limits, Epoch::random())
    }

    /// An empty history whose ids are in `epoch`.
    pub fn with_epoch(limits: HistoryLimits, epoch: Epoch) -> History<F> {
        let mut all = Channel::new(0);
        all.subscribed = true;
        History {
            epoch,
            last_seq: 0,
            limits,
            channels: HashMap::from([(ChannelName::all(), all)]),
            fronts: BTreeMap::new(),
            dropped_floor: 0,
            stored_bytes: 0,
            stored_messages: 0,
            last_at: None,
        }
    }

    /// Gives the next id to `encode` (which builds the frames that carry it),
    /// stores the result on `channel` and returns it for the caller to offer to
    /// the channel's subscribers. Evicts what the size and byte caps and the TTL
    /// no longer allow, the new message included if it alone is over the byte cap.
    pub fn publish(
        &mut self,
        channel: &ChannelName,
        now: Instant,
        encode: impl FnOnce(MessageId) -> F,
    ) -> Arc<Stored<F>> {
        let at = self.last_at.map_or(now, |last| last.max(now));
        self.expire(at);
        let id = MessageId::new(self.epoch, self.last_seq + 1);
        self.store(channel, id, at, encode(id))
    }

    /// Stores a message whose id was given elsewhere (a cluster's shared log),
    /// published at `at` (clamped so that stored times never go back), as
    /// `publish` does. The id must be in this history's epoch and after the
    /// latest: ids given from outside must keep the one order.
    pub fn append(
        &mut self,
        channel: &ChannelName,
        id: MessageId,
        at: Instant,
        now: Instant,
        encode: impl FnOnce(MessageId) -> F,
    ) -> Result<Arc<Stored<F>>, AppendError> {
        if id.epoch() != self.epoch || id.seq() <= self.last_seq {
            return Err(AppendError {
                id,
                latest: self.latest(),
            });
        }
        self.expire(now);
        let at = self.last_at.map_or(at, |last| last.max(at));
        Ok(self.store(channel, id, at, encode(id)))
    }

    /// Stores `frames` as message `id` (after the latest) and applies the caps.
    fn store(&mut self, channel: &ChannelName, id: MessageId, at: Instant, frames: F) -> Arc<Stored<F>> {
        self.last_at = Some(at);
        self.last_seq = id.seq();
        let stored = Stored::new(id, channel.clone(), at, frames);
        let floor = self.dropped_floor;
        let entry = self
            .channels
            .entry(channel.clone())
            .or_insert_with(|| Channel::new(floor));
        if entry.messages.is_empty() {
            self.fronts.insert(id.seq(), channel.clone());
        }
        entry.messages.push_back(Arc::clone(&stored));
        entry.last_seq = id.seq();
        self.stored_messages += 1;
        self.stored_bytes += stored.cost();
        evict::recount(&mut self.stored_bytes, entry);
        if entry.messages.len() > self.limits.size {
            self.evict_front(channel.as_str());
        }
        self.enforce_byte_cap();
        stored
    }

    /// Counts what `stored` came to hold since it was stored (an encoding
    /// made later, for another transport), if it is still stored, and evicts
    /// what the byte cap then no longer allows. A message no longer stored
    /// is not counted: its bytes go with the last client holding it.
    pub fn recharge(&mut self, stored: &Stored<F>) {
        // The common case, no new encoding: no lookup.
        if !stored.has_grown() {
            return;
        }
        let seq = stored.id().seq();
        let held = self.channels.get(stored.channel().as_str()).is_some_and(|entry| {
            entry
                .messages
                .binary_search_by_key(&seq, |m| m.id().seq())
                .is_ok_and(|i| std::ptr::eq(&*entry.messages[i], stored))
        });
        if !held {
            return;
        }
        let grown = stored.recharge();
        if grown > 0 {
            self.stored_bytes += grown;
            self.enforce_byte_cap();
        }
    }

    /// The caller tells whether `channel` has subscribers (call it when its count
    /// goes from 0 to 1 and from 1 to 0). A subscribed channel keeps its entry,
    /// and so its own eviction floor, while its history is empty; an unsubscribed
    /// one without history is dropped. `all` always counts as subscribed.
    pub fn set_subscribed(&mut self, channel: &ChannelName, subscribed: bool) {
        if channel.is_all() {
            return;
        }
        if subscribed {
            let floor = self.dropped_floor;
            let entry = self
                .channels
                .entry(channel.clone())
                .or_insert_with(|| Channel::new(floor));
            entry.subscribed = true;
        } else if let Some(entry) = self.channels.get_mut(channel.as_str()) {
            entry.subscribed = false;
            if entry.messages.is_empty() {
                self.drop_channel(channel.as_str());
            }
        }
    }

    /// The newest id of the server (seq 0 before the first publish): where a
    /// reset client resumes from.
    pub fn latest(&self) -> MessageId {
        MessageId::new(self.epoch, self.last_seq)
    }

    /// The epoch of its ids: this server run's, or the shared log's.
    #[cfg(test)]
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The limits it keeps.
    #[cfg(test)]
    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests;
