//! What a resuming or first-connecting client is sent before live messages:
//! everything after its `since`, complete and in id order, or a reset.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{HeldBytes, History, MessageId, Since, Stored};
use crate::channel::{ChannelName, ChannelSet};

/// The answer to a resume.
#[derive(Debug)]
pub enum Replay<F> {
    /// Every stored message of the client's channels after `since`, oldest first
    /// (empty when it has seen everything).
    Messages(Vec<Arc<Stored<F>>>),
    /// Completeness cannot be promised: send `{"type":"reset","id":latest}`, then live messages.
    Reset {
        /// The newest id of the server, where the client resumes from next time.
        latest: MessageId,
        /// Why, for the log line.
        reason: ResetReason,
    },
}

/// Why a resume was reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetReason {
    /// `since` is not an id.
    Unreadable,
    /// `since` is from another server run.
    OtherEpoch,
    /// `since` is after the newest id.
    Future,
    /// A message of this channel after `since` was evicted, or may have been
    /// (a channel without an entry only knows the global floor).
    Evicted {
        /// The channel.
        channel: ChannelName,
    },
    /// More than `--recovery-max` messages to replay.
    TooMany {
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetReason::Unreadable => write!(f, "since is not a message id"),
            ResetReason::OtherEpoch => write!(f, "since is from another server run"),
            ResetReason::Future => write!(f, "since is after the newest message"),
            ResetReason::Evicted { channel } => {
                write!(
                    f,
                    "messages of channel {channel} after since are no longer stored"
                )
            }
            ResetReason::TooMany { count, max } => {
                write!(f, "{count} messages to replay, more than --recovery-max {max}")
            }
        }
    }
}

impl<F: HeldBytes> History<F> {
    /// What a client on `channels` that has seen everything up to `since` is
    /// sent before live messages. Call it and subscribe the client under the same
    /// lock as publishes, so nothing falls between replay and live.
    pub fn replay(&mut self, channels: &ChannelSet, since: &Since, now: Instant) -> Replay<F> {
        self.expire(now);
        match self.resume_point(channels, since) {
            Ok(after) => Replay::Messages(self.collect(channels, after, usize::MAX)),
            Err(reason) => Replay::Reset {
                latest: self.latest(),
                reason,
            },
        }
    }

    /// The newest `n` stored messages of `channels`, oldest first (`?last=N` on
    /// a first connect); `n` is cut to `--recovery-max`.
    pub fn last(&mut self, channels: &ChannelSet, n: usize, now: Instant) -> Vec<Arc<Stored<F>>> {
        self.expire(now);
        self.collect(channels, 0, n.min(self.limits.recovery_max))
    }

    /// The seq after which replay is complete, or why there is none.
    fn resume_point(&self, channels: &ChannelSet, since: &Since) -> Result<u64, ResetReason> {
        let Since::After(id) = since else {
            return Err(ResetReason::Unreadable);
        };
        if id.epoch() != self.epoch {
            return Err(ResetReason::OtherEpoch);
        }
        let after = id.seq();
        if after > self.last_seq {
            return Err(ResetReason::Future);
        }
        let mut count = 0;
        for channel in channels {
            let entry = self.channels.get(channel.as_str());
            let floor = entry.map_or(self.dropped_floor, |e| e.evicted_up_to);
            if floor > after {
                return Err(ResetReason::Evicted {
                    channel: channel.clone(),
                });
            }
            if let Some(entry) = entry {
                count += entry.messages.len() - entry.messages.partition_point(|m| m.id().seq() <= after);
            }
        }
        let max = self.limits.recovery_max;
        if count > max {
            return Err(ResetReason::TooMany { count, max });
        }
        Ok(after)
    }

    /// The newest `n` messages of `channels` with a seq above `after`, merged in id order.
    fn collect(&self, channels: &ChannelSet, after: u64, n: usize) -> Vec<Arc<Stored<F>>> {
        let mut out = Vec::new();
        for entry in channels.iter().filter_map(|c| self.channels.get(c.as_str())) {
            let messages = &entry.messages;
            let first = messages.partition_point(|m| m.id().seq() <= after);
            let first = first.max(messages.len().saturating_sub(n));
            out.extend(messages.range(first..).cloned());
        }
        // A replay has at most --recovery-max (resume_point counted them), `last` at most channels x n.
        out.sort_unstable_by_key(|m| m.id().seq());
        let excess = out.len().saturating_sub(n);
        out.drain(..excess);
        out
    }
}
