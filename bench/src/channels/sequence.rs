//! Checks one client's deliveries against its channel's publish sequence —
//! lost, duplicated, out of order, across any reconnects — and orders
//! message ids.
//!
//! Every publish of a run has a global sequence number (the payload carries
//! it) and belongs to one channel; each channel's publishes go out one after
//! another on one connection, so a channel's sequence is its publishes in
//! sequence-number order, and a client of that channel must receive exactly
//! that sequence: each message once, in order, whatever happened to its
//! connection in between.

use std::cmp::Ordering;

/// Orders message ids "naturally": runs of digits compare as numbers, the
/// rest byte by byte. wspush's ids are opaque (`<epoch>-<seq>` today) and
/// Nchan's are `<time>:<n>`; within one server's lifetime both increase in
/// this order, while a plain string order would put `e-10` before `e-9`.
pub fn cmp_ids(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let (ta, tb) = (trim_zeros(na), trim_zeros(nb));
                let by_value = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                match by_value.then_with(|| na.len().cmp(&nb.len())) {
                    Ordering::Equal => (a, b) = (ra, rb),
                    unequal => return unequal,
                }
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

/// Where each accepted publish belongs: its channel and its place in that
/// channel's sequence, by global sequence number.
#[derive(Debug, Clone)]
pub struct Expected {
    /// By sequence number: (channel, position in the channel's sequence).
    slots: Vec<Option<(u32, u32)>>,
    /// Each channel's sequence length.
    lens: Vec<u32>,
}

impl Expected {
    /// `accepted`: (sequence number, channel) of every publish answered 2xx,
    /// in the order each channel's publishes were made.
    pub fn new(channels: usize, accepted: impl IntoIterator<Item = (u32, u32)>) -> Expected {
        let mut e = Expected {
            slots: Vec::new(),
            lens: vec![0; channels],
        };
        for (seq, channel) in accepted {
            let i = seq as usize;
            if e.slots.len() <= i {
                e.slots.resize(i + 1, None);
            }
            let Some(len) = e.lens.get_mut(channel as usize) else {
                continue;
            };
            e.slots[i] = Some((channel, *len));
            *len += 1;
        }
        e
    }

    /// The length of `channel`'s sequence: what each of its clients must receive.
    pub fn len(&self, channel: u32) -> u64 {
        self.lens.get(channel as usize).map_or(0, |&n| u64::from(n))
    }

    /// The channel and position of publish `seq`, if it was accepted.
    pub fn slot(&self, seq: u32) -> Option<(u32, u32)> {
        self.slots.get(seq as usize).copied().flatten()
    }
}

/// What one client's deliveries were, against its channel's sequence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientCheck {
    /// Messages of the channel received at least once.
    pub unique: u64,
    /// Messages of the channel never received.
    pub lost: u64,
    /// Deliveries of a message already received (a replay overlapping what was seen).
    pub duplicated: u64,
    /// Deliveries of messages not in the channel's sequence (another channel's, or a refused publish).
    pub foreign: u64,
    /// Whether the first deliveries of the channel's messages came in publish order.
    pub in_order: bool,
}

impl ClientCheck {
    /// Exactly the channel's sequence, each message once, in order.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.foreign == 0 && self.in_order
    }
}

/// Checks the sequence numbers one client of `channel` received, in the order received.
pub fn check(expected: &Expected, channel: u32, received: impl IntoIterator<Item = u32>) -> ClientCheck {
    let mut seen = vec![false; expected.len(channel) as usize];
    let mut c = ClientCheck {
        in_order: true,
        ..ClientCheck::default()
    };
    let mut last: Option<u32> = None;
    for seq in received {
        match expected.slot(seq) {
            Some((ch, pos)) if ch == channel => {
                if std::mem::replace(&mut seen[pos as usize], true) {
                    c.duplicated += 1;
                    continue;
                }
                c.unique += 1;
                if last.is_some_and(|l| pos < l) {
                    c.in_order = false;
                }
                last = Some(last.map_or(pos, |l| l.max(pos)));
            }
            _ => c.foreign += 1,
        }
    }
    c.lost = expected.len(channel) - c.unique;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two channels, publishes interleaved: 0, 2, 4, ... on channel 0; 1, 3, 5, ... on channel 1.
    fn two_channels(n: u32) -> Expected {
        Expected::new(2, (0..n).map(|seq| (seq, seq % 2)))
    }

    #[test]
    fn natural_id_order() {
        use Ordering::*;
        assert_eq!(cmp_ids("e-9", "e-10"), Less);
        assert_eq!(cmp_ids("e-10", "e-9"), Greater);
        assert_eq!(cmp_ids("e-10", "e-10"), Equal);
        // Nchan: a new second restarts the counter.
        assert_eq!(cmp_ids("1796177637:9", "1796177638:0"), Less);
        assert_eq!(cmp_ids("1796177637:10", "1796177637:9"), Greater);
        // A hex epoch with digits in it, then the sequence.
        assert_eq!(cmp_ids("9f3a01-99", "9f3a01-100"), Less);
        assert_eq!(cmp_ids("e-1", "e-1x"), Less);
        assert_eq!(cmp_ids("", "e"), Less);
        // Leading zeros: same value, the shorter first (a total order).
        assert_eq!(cmp_ids("e-07", "e-7"), Greater);
        assert_eq!(cmp_ids("e-007", "e-8"), Less);
    }

    #[test]
    fn exact_sequence_across_a_reconnect() {
        let e = two_channels(12);
        // Channel 0 is 0, 2, 4, 6, 8, 10: seen 0, 2, dropped, then the
        // replay (4, 6) and live (8, 10) after the reconnect.
        let c = check(&e, 0, [0, 2, 4, 6, 8, 10]);
        assert!(c.exact(), "{c:?}");
        assert_eq!(c.unique, 6);
    }

    #[test]
    fn replay_from_too_early_duplicates() {
        let e = two_channels(12);
        // Resumed from before 2: 2 and 4 come again.
        let c = check(&e, 0, [0, 2, 4, 2, 4, 6, 8, 10]);
        assert_eq!((c.duplicated, c.lost, c.in_order, c.exact()), (2, 0, true, false));
    }

    #[test]
    fn a_gap_between_replay_and_live_is_lost() {
        let e = two_channels(12);
        // 6 published while reconnecting, neither replayed nor live.
        let c = check(&e, 0, [0, 2, 4, 8, 10]);
        assert_eq!((c.lost, c.duplicated, c.in_order), (1, 0, true));
        // And one that never reconnected loses all the rest.
        let c = check(&e, 0, [0, 2]);
        assert_eq!(c.lost, 4);
    }

    #[test]
    fn live_before_replay_is_out_of_order() {
        let e = two_channels(12);
        // A live message overtook the replay of 6.
        let c = check(&e, 0, [0, 2, 4, 8, 6, 10]);
        assert_eq!((c.lost, c.duplicated, c.in_order), (0, 0, false));
    }

    #[test]
    fn other_channels_and_refused_publishes_are_foreign() {
        // Publish 4 was refused: it is in no channel's sequence.
        let e = Expected::new(2, (0..8).filter(|&s| s != 4).map(|s| (s, s % 2)));
        assert_eq!(e.len(0), 3);
        // 3 is channel 1's; 4 was refused but delivered anyway.
        let c = check(&e, 0, [0, 3, 2, 4, 6]);
        assert_eq!((c.foreign, c.lost, c.duplicated, c.in_order), (2, 0, 0, true));
        assert!(!c.exact());
        // Sequence numbers past anything published, and an unknown channel.
        assert_eq!(check(&e, 0, [0, 2, 6, 1000]).foreign, 1);
        assert_eq!(check(&e, 7, [0]).foreign, 1);
    }
}
