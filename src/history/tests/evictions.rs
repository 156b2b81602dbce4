//! Evictions (size cap, byte cap, TTL, dropped entries) turn exactly the resumes
//! that lost something into resets.

use super::*;

/// Bytes `publishes` (channel, frame length) hold, measured in an uncapped history.
fn bytes_of(publishes: &[(&str, usize)]) -> usize {
    let mut h = history(HistoryLimits::default());
    for (channel, len) in publishes {
        publish(&mut h, channel, *len, Instant::now());
    }
    h.totals().bytes
}

#[test]
fn the_size_cap_evicts_per_channel_and_resets_only_that_channels_resumes() {
    let mut h = history(limits(2, usize::MAX));
    let t = Instant::now();
    for channel in ["a", "b", "a", "a"] {
        publish(&mut h, channel, 10, t);
    }
    // a kept 3 and 4; 1 is gone.
    assert_eq!(replay(&mut h, "a", since(0), t), lost("a"));
    assert_eq!(replay(&mut h, "a", since(1), t), Ok(vec![3, 4]));
    assert_eq!(replay(&mut h, "b", since(0), t), Ok(vec![2]));
    assert_eq!(h.totals().messages, 3);
}

#[test]
fn the_byte_cap_evicts_the_oldest_of_all_and_resets_clients_of_that_channel_only() {
    // Room for the two channel entries and three messages, not four.
    let mut h = history(limits(100, bytes_of(&[("a", 100), ("b", 100), ("a", 100)])));
    let t = Instant::now();
    assert_eq!(publish(&mut h, "a", 100, t), 1);
    assert_eq!(publish(&mut h, "b", 100, t), 2);
    assert_eq!(publish(&mut h, "a", 100, t), 3);
    assert_eq!(h.totals().messages, 3);
    publish(&mut h, "b", 100, t);
    // Message 1 (on a), the oldest of all, made room for 4.
    assert_eq!(h.totals().messages, 3);
    assert!(h.totals().bytes <= h.limits().bytes);
    assert_eq!(replay(&mut h, "a", since(0), t), lost("a"));
    assert_eq!(replay(&mut h, "b", since(0), t), Ok(vec![2, 4]));
    assert_eq!(replay(&mut h, "a", since(1), t), Ok(vec![3]));
}

#[test]
fn a_channel_emptied_by_the_byte_cap_is_dropped_and_raises_the_floor_of_channels_without_entry() {
    let mut h = history(limits(100, bytes_of(&[("a", 100)])));
    let t = Instant::now();
    publish(&mut h, "a", 100, t);
    publish(&mut h, "b", 100, t);
    assert_eq!(
        h.channel_stats("a"),
        None,
        "a lost its only message and was dropped"
    );
    assert_eq!(replay(&mut h, "a", since(0), t), lost("a"));
    // b has its own entry and its own floor; c has none, so it cannot know it lost nothing.
    assert_eq!(replay(&mut h, "b", since(0), t), Ok(vec![2]));
    assert_eq!(replay(&mut h, "c", since(0), t), lost("c"));
    assert_eq!(replay(&mut h, "c", since(1), t), Ok(vec![]));
}

#[test]
fn a_message_larger_than_the_byte_cap_is_not_kept_and_its_resume_resets() {
    let mut h = history(limits(100, 1000));
    let t = Instant::now();
    h.set_subscribed(&name("a"), true);
    publish(&mut h, "a", 2000, t);
    assert_eq!(h.totals().messages, 0);
    assert_eq!(h.totals().bytes, 0);
    assert_eq!(replay(&mut h, "a", since(0), t), lost("a"));
    assert_eq!(replay(&mut h, "a", since(1), t), Ok(vec![]));
}

#[test]
fn a_channel_dropped_after_its_ttl_resets_a_resume_from_before_its_last_eviction() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    let ttl = h.limits().ttl;
    publish(&mut h, "a", 10, t);
    publish(&mut h, "a", 10, t);
    publish(&mut h, "b", 10, t + ttl / 2);
    assert_eq!(h.expire(t + ttl - Duration::from_millis(1)), 0);
    assert_eq!(h.expire(t + ttl), 2);
    assert_eq!(h.channel_stats("a"), None);
    let later = t + ttl;
    assert_eq!(replay(&mut h, "a", since(1), later), lost("a"));
    assert_eq!(replay(&mut h, "a", since(2), later), Ok(vec![]));
    // b kept its entry (it still holds 3), so a's drop does not touch it.
    assert_eq!(replay(&mut h, "b", since(0), later), Ok(vec![3]));
    // A new entry for a (a publish, or a subscriber) still knows it cannot replay from 1.
    publish(&mut h, "a", 10, later);
    assert_eq!(replay(&mut h, "a", since(1), later), lost("a"));
    assert_eq!(replay(&mut h, "a", since(2), later), Ok(vec![4]));
}

#[test]
fn a_subscribed_channel_keeps_its_own_floor_when_others_are_dropped() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    let ttl = h.limits().ttl;
    h.set_subscribed(&name("quiet"), true);
    publish(&mut h, "busy", 10, t);
    h.expire(t + ttl);
    // busy is gone and the global floor is 1, but quiet's entry says it lost nothing.
    assert_eq!(replay(&mut h, "quiet", since(0), t + ttl), Ok(vec![]));
    assert_eq!(replay(&mut h, "other", since(0), t + ttl), lost("other"));
    h.set_subscribed(&name("quiet"), false);
    assert_eq!(replay(&mut h, "quiet", since(0), t + ttl), lost("quiet"));
}

#[test]
fn replay_and_publish_expire_without_waiting_for_the_tick() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    let ttl = h.limits().ttl;
    publish(&mut h, "a", 10, t);
    publish(&mut h, "a", 10, t + ttl / 2);
    assert_eq!(replay(&mut h, "a", since(1), t + ttl), Ok(vec![2]));
    assert_eq!(replay(&mut h, "a", since(0), t + ttl), lost("a"));
    publish(&mut h, "b", 10, t + ttl + ttl / 2);
    assert_eq!(h.totals().messages, 1);
    assert_eq!(seqs(&h.last(&set("a,b"), 10, t + ttl + ttl / 2)), [3]);
}

#[test]
fn when_everything_is_evicted_no_memory_is_counted_and_no_entry_is_left() {
    let mut h = history(limits(3, 64 << 10));
    let t = Instant::now();
    for i in 0..2_000 {
        publish(&mut h, &format!("c{}", i % 50), 100, t + Duration::from_millis(i));
    }
    let totals = h.totals();
    assert!(totals.bytes <= 64 << 10 && totals.messages > 0, "{totals:?}");
    h.expire(t + Duration::from_secs(3600));
    assert_eq!(
        h.totals(),
        HistoryTotals {
            channels: 1,
            messages: 0,
            bytes: 0,
            bytes_per_message: 0
        }
    );
    assert!(h.fronts.is_empty());
    assert!(h.channels.capacity() <= 64, "the map's table is given back");
}
