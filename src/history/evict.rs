//! Eviction: the per-channel size cap, the TTL, the total byte cap, and dropping
//! an entry that holds nothing — each recording what a resume can no longer get.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::Arc;
use std::time::Instant;

use super::{heap_cost, Channel, HeldBytes, History, Stored};
use crate::channel::ChannelName;

/// Bytes of one channel entry outside its deque buffer: its `HashMap` slot (the
/// map is between 7/16 and 7/8 full, about 2/3 on average) and its `fronts`
/// entry (B-tree nodes are at least half full).
pub(super) fn entry_bytes<F>() -> usize {
    let map_slot = size_of::<(ChannelName, Channel<F>)>() + 1;
    map_slot * 3 / 2 + 2 * size_of::<(u64, ChannelName)>()
}

/// Sets the bytes `entry` itself counts in `total`: its map entries and deque
/// buffer while it holds messages, nothing once it is empty.
pub(super) fn recount<F>(total: &mut usize, entry: &mut Channel<F>) {
    let now = entry_cost(entry);
    *total = *total - entry.counted + now;
    entry.counted = now;
}

/// The bytes `entry` itself holds while it holds messages; 0 once it is empty.
pub(super) fn entry_cost<F>(entry: &Channel<F>) -> usize {
    if entry.messages.is_empty() {
        return 0;
    }
    entry_bytes::<F>() + heap_cost(entry.messages.capacity() * size_of::<Arc<Stored<F>>>())
}

impl<F: HeldBytes> History<F> {
    /// Drops every message as old as the TTL or older. The caller calls it about
    /// once a second; `publish`, `replay` and `last` call it too, so an expired
    /// message is never replayed. Returns how many it dropped.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(at) = self.oldest().map(|m| m.at()) {
            if now.saturating_duration_since(at) < self.limits.ttl {
                break;
            }
            self.evict_oldest();
            dropped += 1;
        }
        self.shrink_map();
        dropped
    }

    /// The oldest stored message of all.
    fn oldest(&self) -> Option<&Arc<Stored<F>>> {
        let (_, name) = self.fronts.first_key_value()?;
        self.channels.get(name.as_str())?.messages.front()
    }

    fn evict_oldest(&mut self) {
        if let Some((_, name)) = self.fronts.first_key_value() {
            let name = name.clone();
            self.evict_front(name.as_str());
        }
    }

    pub(super) fn enforce_byte_cap(&mut self) {
        while self.stored_bytes > self.limits.bytes && !self.fronts.is_empty() {
            self.evict_oldest();
        }
    }

    /// Evicts the oldest message of `channel`, remembering its seq as lost.
    pub(super) fn evict_front(&mut self, channel: &str) {
        let Some(entry) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(old) = entry.messages.pop_front() else {
            return;
        };
        let seq = old.id().seq();
        self.fronts.remove(&seq);
        entry.evicted_up_to = entry.evicted_up_to.max(seq);
        self.stored_messages -= 1;
        self.stored_bytes -= old.cost();
        match entry.messages.front() {
            Some(next) => {
                self.fronts.insert(next.id().seq(), old.channel().clone());
            }
            // Give the deque's buffer back: an empty channel holds no memory.
            None => entry.messages = VecDeque::new(),
        }
        recount(&mut self.stored_bytes, entry);
        if entry.messages.is_empty() && !entry.subscribed {
            self.drop_channel(channel);
        }
    }

    /// Removes an entry, keeping what it lost in the global floor.
    pub(super) fn drop_channel(&mut self, channel: &str) {
        if let Some(mut entry) = self.channels.remove(channel) {
            debug_assert!(entry.messages.is_empty());
            recount(&mut self.stored_bytes, &mut entry);
            self.dropped_floor = self.dropped_floor.max(entry.evicted_up_to);
        }
    }

    /// Gives back the map's table after many channels went away.
    fn shrink_map(&mut self) {
        let (len, capacity) = (self.channels.len(), self.channels.capacity());
        if capacity > 64 && len * 4 < capacity {
            self.channels.shrink_to(len * 2);
        }
    }
}
