//! What `/channels` and `/stats` show of the history.

use super::{Channel, Epoch, HeldBytes, History, MessageId};
use crate::channel::ChannelName;

/// One channel's history, for `/channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStats {
    /// Messages stored.
    pub history: usize,
    /// Its newest message while it has had an entry (`None`: none since).
    pub last_id: Option<MessageId>,
}

/// The whole history, for `/stats` and BENCHMARKS.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryTotals {
    /// Channel entries (holding messages or subscribed).
    pub channels: usize,
    /// Messages stored.
    pub messages: usize,
    /// Heap they and their channel entries hold (what `--history-bytes` caps).
    pub bytes: usize,
    /// `bytes / messages` (0 when there are none).
    pub bytes_per_message: usize,
}

impl<F> Channel<F> {
    fn stats(&self, epoch: Epoch) -> ChannelStats {
        ChannelStats {
            history: self.messages.len(),
            last_id: (self.last_seq > 0).then(|| MessageId::new(epoch, self.last_seq)),
        }
    }
}

impl<F: HeldBytes> History<F> {
    /// The stats of `channel`, or `None` when it has no entry (no history, no subscribers).
    pub fn channel_stats(&self, channel: &str) -> Option<ChannelStats> {
        self.channels.get(channel).map(|entry| entry.stats(self.epoch))
    }

    /// Every channel with an entry and its stats, in no particular order.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelName, ChannelStats)> + '_ {
        self.channels
            .iter()
            .map(|(name, entry)| (name, entry.stats(self.epoch)))
    }

    /// Totals over all channels.
    pub fn totals(&self) -> HistoryTotals {
        HistoryTotals {
            channels: self.channels.len(),
            messages: self.stored_messages,
            bytes: self.stored_bytes,
            bytes_per_message: self.stored_bytes.checked_div(self.stored_messages).unwrap_or(0),
        }
    }
}
