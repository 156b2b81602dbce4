//! A client joining its channels: what it is sent before live messages, and
//! its entry in the hub, both under the one registry lock.
//!
//! A `/ws/…` client is sent, in this order: a `reset` if its `?since=` cannot
//! be resumed from, else every stored message of its channels after `since`
//! (or with `?last=N` the newest N), then `subscribed` with the latest id,
//! then live messages. Publishes take the same lock, so a message published
//! while a client joins is either in what it is sent first or offered to it
//! live afterwards: exactly once.
//!
//! What is sent first must fit the client's queue bounds (`--queue-len`,
//! `--queue-bytes`), or its outbox would drop it as slow and it would
//! reconnect into the same replay forever: a replay that does not fit is a
//! reset, and `last=N` sends the newest messages that fit. An `/echo` client
//! is sent nothing first.
//!
//! In a cluster, a client may resume on this node with an id another node
//! gave it a moment ago: a `since` this node has not read from the shared log
//! yet waits for it a little (`catch_up`) rather than be taken as from the
//! future and reset.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Client, Transport};
use crate::frame::EncodedFrame;
use crate::history::{Replay, ResetReason, Since, Stored};
use crate::message::{self, Frames};
use crate::registry::{Hub, Registration, Registry};
use crate::stats::Stats;

/// Where a joining client starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// With live messages only.
    Live,
    /// After the message it saw last (`?since=`).
    Since(Since),
    /// With the newest N stored messages of its channels (`?last=N`).
    Last(usize),
}

/// What a join sent first, for the connection's log line and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// An `/echo` client: nothing.
    Echo,
    /// Only `subscribed`.
    Live,
    /// `?since=`: every message it missed, then `subscribed`.
    Resumed { replayed: usize },
    /// `?last=N`: the newest `sent` of the `stored` ones (at most N) there
    /// are, fewer when the rest would not fit its queue, then `subscribed`.
    Last {
        asked: usize,
        stored: usize,
        sent: usize,
    },
    /// A reset, then `subscribed`.
    Reset(ResetCause),
}

/// Why a join was reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetCause {
    /// The history cannot replay it completely.
    History(ResetReason),
    /// The replay would not fit the client's queue.
    Queue {
        missed: usize,
        queue_len: usize,
        queue_bytes: usize,
    },
}

impl fmt::Display for ResetCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetCause::History(reason) => reason.fmt(f),
            ResetCause::Queue {
                missed,
                queue_len,
                queue_bytes,
            } => write!(
                f,
                "{missed} missed messages would not fit the client's queue \
                 (--queue-len {queue_len}, --queue-bytes {queue_bytes})"
            ),
        }
    }
}

impl fmt::Display for Joined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Joined::Echo | Joined::Live => Ok(()),
            Joined::Resumed { replayed } => write!(f, "; resumed, {replayed} missed message(s) replayed"),
            Joined::Last { asked, stored, sent } if sent < stored => write!(
                f,
                "; last {asked} asked, the newest {sent} of {stored} sent (more would not fit the client's queue)"
            ),
            Joined::Last { asked, sent, .. } => write!(f, "; last {asked} asked, {sent} sent"),
            Joined::Reset(cause) => write!(f, "; reset: {cause}"),
        }
    }
}

/// What joins need besides the client.
pub struct JoinContext {
    pub registry: Arc<Registry>,
    pub stats: Arc<Stats>,
    /// `--queue-len`: frames a client's queue may hold.
    pub queue_len: usize,
    /// `--queue-bytes`: bytes a client's queue may hold.
    pub queue_bytes: usize,
    /// How long a `since` newer than this node's latest id (of the same
    /// epoch) waits for it: a cluster node may be a few milliseconds behind
    /// the node the client comes from. Zero on a single node.
    pub catch_up: Duration,
}

/// `JoinContext::catch_up` of a cluster node.
pub const CLUSTER_CATCH_UP: Duration = Duration::from_secs(5);

/// Sends `client` what it is owed first and registers it on its channels.
pub fn join(ctx: &JoinContext, client: Arc<Client>, start: &Start) -> (Registration, Joined) {
    if let Start::Since(Since::After(id)) = start {
        if !ctx.catch_up.is_zero() {
            ctx.registry.wait_stored(*id, ctx.catch_up);
        }
    }
    let (registration, joined) = ctx
        .registry
        .register(client, |hub, client| first_frames(ctx, hub, client, start));
    match &joined {
        Joined::Resumed { replayed } => {
            ctx.stats.resumes.inc();
            ctx.stats.messages_replayed.inc_by(*replayed as u64);
        }
        Joined::Last { sent, .. } => {
            ctx.stats.messages_replayed.inc_by(*sent as u64);
        }
        Joined::Reset(_) => {
            ctx.stats.resets.inc();
        }
        Joined::Echo | Joined::Live => {}
    }
    (registration, joined)
}

/// Under the lock: works out and offers what `client` is sent before live messages.
fn first_frames(ctx: &JoinContext, hub: &mut Hub, client: &Arc<Client>, start: &Start) -> Joined {
    let transport = client.transport();
    if transport == Transport::Echo {
        return Joined::Echo;
    }
    let now = Instant::now();
    let channels = &client.subscription.channels;
    let latest = hub.history.latest();
    let subscribed = message::subscribed(&latest, channels, transport);
    // Every stored message looked at: an event-stream client's look encodes
    // their events, which the history must then count.
    let mut looked_at = Vec::new();
    let (first, joined) = match start {
        Start::Live => (Vec::new(), Joined::Live),
        Start::Since(since) => match hub.history.replay(channels, since, now) {
            Replay::Messages(stored) => {
                let fitting = ctx.newest_that_fit(&stored, &subscribed, transport);
                looked_at = stored;
                if fitting == looked_at.len() {
                    let replayed = looked_at.len();
                    (ctx.outgoing(&looked_at, transport), Joined::Resumed { replayed })
                } else {
                    let cause = ctx.queue_cause(looked_at.len());
                    (vec![message::reset(&latest, transport)], Joined::Reset(cause))
                }
            }
            Replay::Reset { latest, reason } => (
                vec![message::reset(&latest, transport)],
                Joined::Reset(ResetCause::History(reason)),
            ),
        },
        Start::Last(asked) => {
            looked_at = hub.history.last(channels, *asked, now);
            let stored = looked_at.len();
            let sent = ctx.newest_that_fit(&looked_at, &subscribed, transport);
            let joined = Joined::Last {
                asked: *asked,
                stored,
                sent,
            };
            (ctx.outgoing(&looked_at[stored - sent..], transport), joined)
        }
    };
    for frame in first.into_iter().chain([subscribed]) {
        if !client.outbox.offer(frame).accepted() {
            break;
        }
    }
    // Only an event-stream client's look encodes (their events).
    if transport == Transport::Sse {
        for stored in &looked_at {
            hub.history.recharge(stored);
        }
    }
    joined
}

impl JoinContext {
    /// How many of the newest of `stored` fit an empty queue with `last`
    /// after them, as `transport` sends them. The outbox takes one frame of
    /// any size when nothing waits, more only within both bounds; counted as
    /// if the socket took none of them at once.
    fn newest_that_fit(
        &self,
        stored: &[Arc<Stored<Frames>>],
        last: &EncodedFrame,
        transport: Transport,
    ) -> usize {
        self.fit(
            stored.iter().rev().map(|m| self.outgoing_len(m, transport)),
            last.len(),
        )
    }

    /// How many of `lens` (newest first) fit with `last` bytes after them.
    fn fit(&self, lens: impl Iterator<Item = usize>, last: usize) -> usize {
        let mut bytes = last;
        let mut fitting = 0;
        for len in lens {
            bytes += len;
            if fitting + 2 > self.queue_len || bytes > self.queue_bytes {
                break;
            }
            fitting += 1;
        }
        fitting
    }

    fn outgoing_len(&self, stored: &Stored<Frames>, transport: Transport) -> usize {
        message::outgoing(stored, transport, &self.stats.sse_events_encoded).map_or(0, |f| f.len())
    }

    /// What `transport` sends for each of `stored`.
    fn outgoing(&self, stored: &[Arc<Stored<Frames>>], transport: Transport) -> Vec<EncodedFrame> {
        stored
            .iter()
            .filter_map(|m| message::outgoing(m, transport, &self.stats.sse_events_encoded).cloned())
            .collect()
    }

    fn queue_cause(&self, missed: usize) -> ResetCause {
        ResetCause::Queue {
            missed,
            queue_len: self.queue_len,
            queue_bytes: self.queue_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;
    use crate::frame::PayloadKind;
    use crate::history::{History, HistoryLimits};
    use crate::message::Prepared;
    use crate::publish::Payload;

    fn context(queue_len: usize, queue_bytes: usize) -> JoinContext {
        JoinContext {
            registry: Registry::new(1, None, HistoryLimits::default()),
            stats: Arc::new(Stats::default()),
            queue_len,
            queue_bytes,
            catch_up: Duration::ZERO,
        }
    }

    /// `n` (< 10: ids of one digit) stored messages whose envelope frames are `len` bytes each.
    fn stored(n: usize, len: usize) -> Vec<Arc<Stored<Frames>>> {
        let mut history = History::new(HistoryLimits::default());
        let channel = ChannelName::new("c").unwrap();
        let payload = Payload::new(PayloadKind::Text, vec![b'x'; 1]);
        let prepared = Prepared::new(&channel, &payload);
        let one = prepared.frames(history.latest()).envelope().len();
        let payload = Payload::new(PayloadKind::Text, vec![b'x'; 1 + len - one]);
        let prepared = Prepared::new(&channel, &payload);
        (0..n)
            .map(|_| history.publish(&channel, Instant::now(), |id| prepared.frames(id)))
            .inspect(|m| assert_eq!(context(1, 1).outgoing_len(m, Transport::Ws), len))
            .collect()
    }

    #[test]
    fn what_is_sent_first_fits_both_queue_bounds_with_subscribed() {
        let last: EncodedFrame = vec![0u8; 100].into();
        let nine = stored(9, 100);
        let fit = |ctx: JoinContext| ctx.newest_that_fit(&nine, &last, Transport::Ws);
        // Frames: n messages and `subscribed` must be at most --queue-len.
        assert_eq!(fit(context(10, usize::MAX)), 9);
        assert_eq!(fit(context(5, usize::MAX)), 4);
        // Bytes: 100 each, `subscribed` included.
        assert_eq!(fit(context(1024, 1000)), 9);
        assert_eq!(fit(context(1024, 999)), 8);
        assert_eq!(fit(context(1024, 199)), 0);
        assert_eq!(fit(context(1, usize::MAX)), 0);
    }

    #[test]
    fn an_event_stream_is_fitted_by_its_events_which_are_made_once() {
        let last: EncodedFrame = vec![0u8; 100].into();
        let nine = stored(9, 100);
        let ctx = context(1024, 1000);
        // An event is longer than its frame (`id:` and `data:` lines): fewer fit.
        let fits = ctx.newest_that_fit(&nine, &last, Transport::Sse);
        let event_len = ctx.outgoing_len(&nine[8], Transport::Sse);
        assert!(event_len > 100, "{event_len}");
        assert_eq!(fits, (1000 - 100) / event_len);
        // Made for those that fit and the first that did not; only once.
        let made = ctx.stats.sse_events_encoded.get();
        assert_eq!(made, fits as u64 + 1);
        ctx.newest_that_fit(&nine, &last, Transport::Sse);
        assert_eq!(ctx.stats.sse_events_encoded.get(), made, "not again");
    }

    #[test]
    fn the_log_line_says_what_was_sent() {
        let trimmed = Joined::Last {
            asked: 50,
            stored: 30,
            sent: 20,
        };
        assert!(trimmed.to_string().contains("newest 20 of 30"), "{trimmed}");
        let fewer = Joined::Last {
            asked: 50,
            stored: 3,
            sent: 3,
        };
        assert_eq!(fewer.to_string(), "; last 50 asked, 3 sent");
        assert_eq!(Joined::Live.to_string(), "");
    }
}
