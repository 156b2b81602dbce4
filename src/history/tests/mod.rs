//! History: ids, replays that are complete or reset, eviction, memory accounting.

mod evictions;
mod memory;
mod model;
mod rebase;
mod recharge;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::channel::ChannelSet;

/// A frame as the integrator would store it: bytes behind an `Arc`.
type Frame = Arc<[u8]>;

const EPOCH: u64 = 0xfeed;

fn limits(size: usize, bytes: usize) -> HistoryLimits {
    HistoryLimits {
        size,
        bytes,
        ..HistoryLimits::default()
    }
}

fn history(limits: HistoryLimits) -> History<Frame> {
    History::with_epoch(limits, Epoch::from_raw(EPOCH))
}

fn name(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn set(segment: &str) -> ChannelSet {
    ChannelSet::parse(segment, 16).unwrap()
}

fn id(seq: u64) -> MessageId {
    MessageId::new(Epoch::from_raw(EPOCH), seq)
}

fn since(seq: u64) -> Since {
    Since::After(id(seq))
}

/// Publishes a `len`-byte frame at `at`; returns its seq.
fn publish(h: &mut History<Frame>, channel: &str, len: usize, at: Instant) -> u64 {
    h.publish(&name(channel), at, |_| vec![b'x'; len].into())
        .id()
        .seq()
}

fn seqs(messages: &[Arc<Stored<Frame>>]) -> Vec<u64> {
    messages.iter().map(|m| m.id().seq()).collect()
}

/// The seqs a replay sends, or the reason it resets (asserting `latest` is the newest id).
fn replay(
    h: &mut History<Frame>,
    channels: &str,
    from: Since,
    now: Instant,
) -> Result<Vec<u64>, ResetReason> {
    match h.replay(&set(channels), &from, now) {
        Replay::Messages(messages) => Ok(seqs(&messages)),
        Replay::Reset { latest, reason } => {
            assert_eq!(latest, h.latest());
            Err(reason)
        }
    }
}

/// The replay result of a resume that lost messages of `channel`.
fn lost(channel: &str) -> Result<Vec<u64>, ResetReason> {
    Err(ResetReason::Evicted {
        channel: name(channel),
    })
}

#[test]
fn ids_follow_one_sequence_across_channels() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    assert_eq!(h.latest(), id(0));
    let stored = h.publish(&name("a"), t, |id| id.to_string().into_bytes().into());
    assert_eq!(&stored.frames()[..], b"000000000000feed-1");
    assert_eq!(stored.channel().as_str(), "a");
    assert_eq!(publish(&mut h, "b", 1, t), 2);
    assert_eq!(publish(&mut h, "all", 1, t), 3);
    assert_eq!(h.latest(), id(3));
    assert_eq!(h.epoch(), Epoch::from_raw(EPOCH));
}

#[test]
fn a_replay_is_every_message_after_since_of_the_clients_channels_in_id_order() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    for channel in ["a", "b", "all", "c", "a", "b", "a", "all"] {
        publish(&mut h, channel, 10, t);
    }
    assert_eq!(replay(&mut h, "a,b", since(0), t), Ok(vec![1, 2, 3, 5, 6, 7, 8]));
    assert_eq!(replay(&mut h, "a", since(3), t), Ok(vec![5, 7, 8]));
    assert_eq!(replay(&mut h, "c", since(4), t), Ok(vec![8]));
}

#[test]
fn resuming_from_the_latest_id_replays_nothing_and_does_not_reset() {
    let mut h = history(limits(1, usize::MAX));
    let t = Instant::now();
    for _ in 0..5 {
        publish(&mut h, "a", 10, t);
    }
    // Four of a's five were evicted, all at or before the latest id.
    assert_eq!(replay(&mut h, "a", since(5), t), Ok(vec![]));
    assert_eq!(replay(&mut h, "a", since(4), t), Ok(vec![5]));
    assert_eq!(replay(&mut h, "b", since(5), t), Ok(vec![]));
}

#[test]
fn a_since_that_is_no_position_of_this_run_resets_with_the_latest_id() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    publish(&mut h, "a", 10, t);
    assert_eq!(
        replay(&mut h, "a", Since::parse("nonsense"), t),
        Err(ResetReason::Unreadable)
    );
    let other = Since::After(MessageId::new(Epoch::from_raw(EPOCH + 1), 0));
    assert_eq!(replay(&mut h, "a", other, t), Err(ResetReason::OtherEpoch));
    assert_eq!(replay(&mut h, "a", since(2), t), Err(ResetReason::Future));
    match h.replay(&set("a"), &Since::Unreadable, t) {
        Replay::Reset { latest, .. } => assert_eq!(latest.to_string(), "000000000000feed-1"),
        Replay::Messages(_) => panic!("an unreadable since must reset"),
    }
}

#[test]
fn more_than_recovery_max_to_replay_resets() {
    let mut h = history(HistoryLimits {
        recovery_max: 3,
        ..HistoryLimits::default()
    });
    let t = Instant::now();
    for channel in ["a", "b", "a", "b"] {
        publish(&mut h, channel, 10, t);
    }
    assert_eq!(replay(&mut h, "a,b", since(1), t), Ok(vec![2, 3, 4]));
    assert_eq!(
        replay(&mut h, "a,b", since(0), t),
        Err(ResetReason::TooMany { count: 4, max: 3 })
    );
    assert_eq!(replay(&mut h, "a", since(0), t), Ok(vec![1, 3]));
}

#[test]
fn last_is_the_newest_n_of_the_clients_channels_in_order() {
    let mut h = history(HistoryLimits {
        recovery_max: 4,
        ..HistoryLimits::default()
    });
    let t = Instant::now();
    for channel in ["a", "b", "a", "c", "b", "a", "all"] {
        publish(&mut h, channel, 10, t);
    }
    assert_eq!(seqs(&h.last(&set("a,b"), 3, t)), [5, 6, 7]);
    assert_eq!(seqs(&h.last(&set("a"), 2, t)), [6, 7]);
    assert_eq!(
        seqs(&h.last(&set("a,b"), 100, t)),
        [3, 5, 6, 7],
        "cut to recovery_max"
    );
    assert_eq!(seqs(&h.last(&set("x"), 3, t)), [7]);
    assert!(h.last(&set("a"), 0, t).is_empty());
}

#[test]
fn stats_count_per_channel_and_in_total() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    publish(&mut h, "a", 100, t);
    publish(&mut h, "a", 100, t);
    publish(&mut h, "b", 100, t);
    let a = h.channel_stats("a").unwrap();
    assert_eq!((a.history, a.last_id), (2, Some(id(2))));
    assert_eq!(h.channel_stats("nope"), None);
    let mut listed: Vec<_> = h.channels().map(|(n, s)| (n.to_string(), s.history)).collect();
    listed.sort();
    assert_eq!(
        listed,
        [("a".to_string(), 2), ("all".to_string(), 0), ("b".to_string(), 1)]
    );
    let totals = h.totals();
    assert_eq!((totals.channels, totals.messages), (3, 3));
    let messages: usize = h.last(&set("a,b"), 10, t).iter().map(|m| m.cost()).sum();
    assert!(totals.bytes > messages, "channel entries count too: {totals:?}");
    assert_eq!(totals.bytes_per_message, totals.bytes / 3);
}

#[test]
fn a_subscribed_channel_keeps_its_entry_and_stats_without_history() {
    let mut h = history(limits(100, usize::MAX));
    let t = Instant::now();
    h.set_subscribed(&name("a"), true);
    assert_eq!(h.channel_stats("a").unwrap().last_id, None);
    publish(&mut h, "a", 10, t);
    h.expire(t + h.limits().ttl);
    let a = h.channel_stats("a").unwrap();
    assert_eq!((a.history, a.last_id), (0, Some(id(1))));
    assert_eq!(h.totals().bytes, 0, "an empty channel holds no history memory");
    h.set_subscribed(&name("a"), false);
    assert_eq!(h.channel_stats("a"), None);
    assert_eq!(h.totals().channels, 1, "only all");
    h.set_subscribed(&ChannelName::all(), false);
    assert!(h.channel_stats("all").is_some(), "all keeps its entry");
}

#[test]
fn stored_times_never_go_back() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now() + Duration::from_secs(10);
    publish(&mut h, "a", 10, t);
    publish(&mut h, "b", 10, t - Duration::from_secs(5));
    assert_eq!(h.last(&set("b"), 1, t)[0].at(), t);
}
