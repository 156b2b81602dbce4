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

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::client::{Client, Transport};
use crate::frame::EncodedFrame;
use crate::history::{MessageId, Replay, ResetReason, Since, Stored};
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
    /// `?last=N`: the newest messages (fewer than asked when the rest would
    /// not fit its queue), then `subscribed`.
    Last { sent: usize, asked: usize },
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
            Joined::Last { sent, asked } if sent < asked => write!(
                f,
                "; last {asked} asked, the newest {sent} sent (more would not fit the client's queue)"
            ),
            Joined::Last { sent, .. } => write!(f, "; last {sent} message(s) sent"),
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
}

/// Sends `client` what it is owed first and registers it on its channels.
pub fn join(ctx: &JoinContext, client: Arc<Client>, start: &Start) -> (Registration, Joined) {
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
    if client.transport() == Transport::Echo {
        return Joined::Echo;
    }
    let now = Instant::now();
    let channels = &client.subscription.channels;
    let latest = hub.history.latest();
    let subscribed = message::subscribed(&latest, channels);
    let fits = |stored: &[Arc<Stored<Frames>>]| ctx.newest_that_fit(stored, &subscribed);
    let (first, joined): (Vec<EncodedFrame>, Joined) = match start {
        Start::Live => (Vec::new(), Joined::Live),
        Start::Since(since) => match hub.history.replay(channels, since, now) {
            Replay::Messages(stored) if fits(&stored) == stored.len() => (
                envelopes(&stored),
                Joined::Resumed {
                    replayed: stored.len(),
                },
            ),
            Replay::Messages(stored) => reset(
                &latest,
                ResetCause::Queue {
                    missed: stored.len(),
                    queue_len: ctx.queue_len,
                    queue_bytes: ctx.queue_bytes,
                },
            ),
            Replay::Reset { latest, reason } => reset(&latest, ResetCause::History(reason)),
        },
        Start::Last(asked) => {
            let mut stored = hub.history.last(channels, *asked, now);
            stored.drain(..stored.len() - fits(&stored));
            let sent = stored.len();
            (envelopes(&stored), Joined::Last { sent, asked: *asked })
        }
    };
    for frame in first.into_iter().chain([subscribed]) {
        if !client.outbox.offer(frame).accepted() {
            break;
        }
    }
    joined
}

impl JoinContext {
    /// How many of the newest of `stored` fit an empty queue with `last`
    /// after them. The outbox takes one frame of any size when nothing
    /// waits, more only within both bounds; counted as if the socket took
    /// none of them at once.
    fn newest_that_fit(&self, stored: &[Arc<Stored<Frames>>], last: &EncodedFrame) -> usize {
        let mut bytes = last.len();
        let mut fitting = 0;
        for message in stored.iter().rev() {
            bytes += message.frames().envelope().len();
            if fitting + 2 > self.queue_len || bytes > self.queue_bytes {
                break;
            }
            fitting += 1;
        }
        fitting
    }
}

fn envelopes(stored: &[Arc<Stored<Frames>>]) -> Vec<EncodedFrame> {
    stored.iter().map(|m| Arc::clone(m.frames().envelope())).collect()
}

fn reset(latest: &MessageId, cause: ResetCause) -> (Vec<EncodedFrame>, Joined) {
    (vec![message::reset(latest)], Joined::Reset(cause))
}
