//! A history that follows a shared log: ids given from outside, a restart in
//! another epoch, and a floor raised over messages the log lost.

use super::*;

/// Appends a `len`-byte frame as message `seq` on `channel`, published at `at`.
fn append(h: &mut History<Frame>, channel: &str, seq: u64, at: Instant) -> Result<u64, AppendError> {
    let stored = h.append(&name(channel), id(seq), at, at, |_| vec![b'x'; 10].into())?;
    Ok(stored.id().seq())
}

#[test]
fn appended_ids_are_kept_as_given_and_must_increase() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    assert_eq!(append(&mut h, "a", 1 << 20, t), Ok(1 << 20));
    assert_eq!(append(&mut h, "b", (1 << 20) + 7, t), Ok((1 << 20) + 7));
    assert_eq!(h.latest(), id((1 << 20) + 7));
    assert_eq!(
        replay(&mut h, "a,b", since(0), t),
        Ok(vec![1 << 20, (1 << 20) + 7])
    );
    assert_eq!(replay(&mut h, "b", since(1 << 20), t), Ok(vec![(1 << 20) + 7]));
    for seq in [1 << 20, (1 << 20) + 7, 5] {
        assert_eq!(
            append(&mut h, "a", seq, t),
            Err(AppendError {
                id: id(seq),
                latest: id((1 << 20) + 7)
            }),
            "{seq} is not after the latest"
        );
    }
    let other = MessageId::new(Epoch::from_raw(EPOCH + 1), 1 << 30);
    assert!(h.append(&name("a"), other, t, t, |_| vec![].into()).is_err());
    assert_eq!(h.totals().messages, 2, "nothing refused was stored");
}

#[test]
fn an_appended_message_older_than_the_ttl_is_not_kept() {
    let mut h = history(HistoryLimits::default());
    let now = Instant::now() + Duration::from_secs(1000);
    let ttl = h.limits().ttl;
    append(&mut h, "a", 10, now - ttl - Duration::from_secs(1)).unwrap();
    append(&mut h, "a", 20, now - ttl / 2).unwrap();
    h.expire(now);
    assert_eq!(replay(&mut h, "a", since(10), now), Ok(vec![20]));
    assert_eq!(replay(&mut h, "a", since(9), now), lost("a"));
}

#[test]
fn a_restart_drops_everything_and_resets_every_resume_from_before_it() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    h.set_subscribed(&name("a"), true);
    publish(&mut h, "a", 100, t);
    publish(&mut h, "b", 100, t);
    let new_epoch = Epoch::from_raw(EPOCH + 1);
    h.restart(new_epoch, 1000);
    assert_eq!(h.latest(), MessageId::new(new_epoch, 1000));
    assert_eq!(h.epoch(), new_epoch);
    let totals = h.totals();
    assert_eq!((totals.messages, totals.bytes), (0, 0));
    assert_eq!(h.channel_stats("b"), None, "an entry with neither is gone");
    assert_eq!(
        h.channel_stats("a").map(|s| (s.history, s.last_id)),
        Some((0, None)),
        "a subscribed entry stays, empty"
    );
    assert_eq!(replay(&mut h, "a", since(2), t), Err(ResetReason::OtherEpoch));
    let new_since = |seq| Since::After(MessageId::new(new_epoch, seq));
    // Every client is on `all`, the first channel a resume looks at.
    assert_eq!(replay(&mut h, "a", new_since(999), t), lost("all"));
    assert_eq!(replay(&mut h, "c", new_since(999), t), lost("all"));
    assert_eq!(replay(&mut h, "a,c", new_since(1000), t), Ok(vec![]));
    let stored = h.append(&name("a"), MessageId::new(new_epoch, 1001), t, t, |_| {
        vec![1].into()
    });
    assert_eq!(stored.map(|m| m.id().seq()), Ok(1001));
    assert_eq!(replay(&mut h, "a", new_since(1000), t), Ok(vec![1001]));
    assert!(h.totals().bytes > 0);
}

#[test]
fn a_raised_floor_resets_every_channel_from_before_it_and_not_from_it() {
    let mut h = history(HistoryLimits::default());
    let t = Instant::now();
    h.set_subscribed(&name("quiet"), true);
    append(&mut h, "a", 10, t).unwrap();
    append(&mut h, "b", 20, t).unwrap();
    // The log lost whatever came between 20 and 50.
    h.raise_floor(49);
    assert_eq!(h.latest(), id(49), "a client reset now resumes from 49");
    for channels in ["a", "b", "quiet", "never"] {
        assert_eq!(replay(&mut h, channels, since(20), t), lost("all"), "{channels}");
        assert_eq!(replay(&mut h, channels, since(49), t), Ok(vec![]), "{channels}");
    }
    assert_eq!(append(&mut h, "a", 50, t), Ok(50));
    assert_eq!(replay(&mut h, "a,b", since(49), t), Ok(vec![50]));
    assert_eq!(
        seqs(&h.last(&set("a,b"), 10, t)),
        [10, 20, 50],
        "last=N still sends them"
    );
    h.raise_floor(30);
    assert_eq!(h.latest(), id(50), "a floor never goes down, nor the latest");
    assert_eq!(replay(&mut h, "a", since(49), t), Ok(vec![50]));
}
