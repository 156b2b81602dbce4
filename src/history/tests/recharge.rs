//! An encoding made after a message was stored (an SSE event, made by the
//! first event-stream client it goes to) is counted, and the byte cap holds.

use std::sync::OnceLock;

use super::*;

/// A frame with a second encoding filled in later, as `message::Frames` has.
#[derive(Debug)]
struct Lazy {
    first: Frame,
    later: OnceLock<Frame>,
}

impl HeldBytes for Lazy {
    fn held_bytes(&self) -> usize {
        self.first.held_bytes() + self.later.get().map_or(0, HeldBytes::held_bytes)
    }
}

fn lazy(len: usize) -> Lazy {
    Lazy {
        first: vec![b'x'; len].into(),
        later: OnceLock::new(),
    }
}

fn fill(stored: &Stored<Lazy>, len: usize) {
    let _ = stored.frames().later.set(vec![b'y'; len].into());
}

#[test]
fn a_later_encoding_is_counted_once_and_only_while_stored() {
    let mut h: History<Lazy> = History::with_epoch(limits(2, usize::MAX), Epoch::from_raw(EPOCH));
    let t = Instant::now();
    let a = name("a");
    let first = h.publish(&a, t, |_| lazy(100));
    let before = h.totals().bytes;
    fill(&first, 100);
    h.recharge(&first);
    let grown = h.totals().bytes - before;
    let event: Frame = vec![b'y'; 100].into();
    assert_eq!(grown, event.held_bytes());
    h.recharge(&first);
    assert_eq!(h.totals().bytes - before, grown, "counted once");

    // Evicted by the size cap, then filled: no longer the history's to count.
    let second = h.publish(&a, t, |_| lazy(100));
    h.publish(&a, t, |_| lazy(100));
    h.publish(&a, t, |_| lazy(100));
    let stored = h.totals().bytes;
    fill(&second, 100);
    h.recharge(&second);
    assert_eq!(h.totals().bytes, stored);
    // Expiring the rest gives back exactly what was counted.
    assert_eq!(h.expire(t + Duration::from_secs(3600)), 2);
    assert_eq!(h.totals().bytes, 0);
}

#[test]
fn a_later_encoding_past_the_byte_cap_evicts_the_oldest() {
    let t = Instant::now();
    let mut sized: History<Lazy> = History::with_epoch(limits(100, usize::MAX), Epoch::from_raw(EPOCH));
    for _ in 0..2 {
        sized.publish(&name("a"), t, |_| lazy(100));
    }
    let cap = sized.totals().bytes + 50;
    let mut h: History<Lazy> = History::with_epoch(limits(100, cap), Epoch::from_raw(EPOCH));
    h.publish(&name("a"), t, |_| lazy(100));
    let newest = h.publish(&name("a"), t, |_| lazy(100));
    assert_eq!(h.totals().messages, 2);
    fill(&newest, 100);
    h.recharge(&newest);
    assert_eq!(h.totals().messages, 1, "the oldest made room");
    assert!(h.totals().bytes <= cap);
    assert_eq!(h.last(&set("a"), 5, t)[0].id(), newest.id());
}
