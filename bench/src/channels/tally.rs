//! A channel run's figures, from its subscribers' logs and its publications:
//! each client checked against its channel's sequence (`sequence.rs`), ids
//! compared with the ones the publishes were answered with, latencies.

use serde::Serialize;

use super::client::{id_hash, SubscriberLog};
use super::publish::Publication;
use super::sequence::{check, Expected};
use crate::load::{histogram, Percentiles};

/// Everything that must be zero: each a way a client's deliveries were not
/// exactly its channel's sequence, or its ids not what they should be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Expected deliveries that never came.
    pub lost: u64,
    /// Deliveries of a message the client already had.
    pub duplicated: u64,
    /// Deliveries of a message not in the client's channel sequence.
    pub foreign: u64,
    /// Clients whose first deliveries were not in their channel's publish order.
    pub order_differs: u64,
    /// Messages whose id was not above the previous one the client saw.
    pub id_regressions: u64,
    /// Deliveries whose id differs from the one the publish was answered with.
    pub id_mismatch: u64,
    /// `{"type":"reset"}` frames received (a resume the server could not do).
    pub resets: u64,
    /// Messages whose envelope named another channel.
    pub wrong_channel: u64,
}

impl Faults {
    /// None at all.
    pub fn none(&self) -> bool {
        *self == Faults::default()
    }

    /// Each count the larger of the two (the worst of several runs).
    pub fn worst(self, o: Faults) -> Faults {
        Faults {
            lost: self.lost.max(o.lost),
            duplicated: self.duplicated.max(o.duplicated),
            foreign: self.foreign.max(o.foreign),
            order_differs: self.order_differs.max(o.order_differs),
            id_regressions: self.id_regressions.max(o.id_regressions),
            id_mismatch: self.id_mismatch.max(o.id_mismatch),
            resets: self.resets.max(o.resets),
            wrong_channel: self.wrong_channel.max(o.wrong_channel),
        }
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost {}, dup {}, order≠ {}, foreign {}, ids↓ {}, id≠ {}, resets {}",
            self.lost,
            self.duplicated,
            self.order_differs,
            self.foreign + self.wrong_channel,
            self.id_regressions,
            self.id_mismatch,
            self.resets
        )
    }
}

/// What the subscribers of a run received, against what was published.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelTally {
    /// Deliveries expected: each client × its channel's accepted publishes.
    pub expected: u64,
    /// Deliveries of this run's messages received.
    pub delivered: u64,
    /// What must be zero.
    pub faults: Faults,
    /// Clients that did not receive exactly their channel's sequence.
    pub inexact_clients: usize,
    /// Messages of no publish of this run.
    pub stale: u64,
    /// Frames that did not parse.
    pub unparsed: u64,
    /// Why the first of those did not.
    pub first_error: Option<String>,
    /// Clients whose connection ended without the driver dropping it.
    pub closed_early: usize,
    /// Per delivery: receive − send (replays included).
    pub delivery_ms: Percentiles,
    /// Per publish: its channel's last first receipt − send.
    pub fanout_ms: Percentiles,
}

/// Tallies `subs` (each with its channel's index) against `pubs` (in the
/// order they were made, which is sequence-number order) over `channels` channels.
pub fn tally(subs: &[(u32, SubscriberLog)], pubs: &[Publication], channels: usize) -> ChannelTally {
    let max_seq = pubs.iter().map(|p| p.seq as usize).max().map_or(0, |m| m + 1);
    let mut by_seq: Vec<Option<&Publication>> = vec![None; max_seq];
    for p in pubs {
        by_seq[p.seq as usize] = Some(p);
    }
    let expected = Expected::new(
        channels,
        pubs.iter().filter(|p| p.ok()).map(|p| (p.seq, p.channel)),
    );
    let id_hashes: Vec<Option<u64>> = by_seq
        .iter()
        .map(|p| p.and_then(|p| p.id.as_deref()).map(id_hash))
        .collect();
    let mut fanout_us = vec![0u64; max_seq];
    let mut t = ChannelTally::default();
    let mut delivery = histogram();
    for (channel, log) in subs {
        let c = check(&expected, *channel, log.deliveries.iter().map(|d| d.seq));
        t.expected += expected.len(*channel);
        let f = &mut t.faults;
        f.lost += c.lost;
        f.duplicated += c.duplicated;
        f.foreign += c.foreign;
        f.order_differs += u64::from(!c.in_order);
        f.id_regressions += log.resume.regressions;
        f.resets += log.resume.resets.len() as u64;
        f.wrong_channel += log.wrong_channel;
        t.inexact_clients += usize::from(!c.exact());
        t.stale += log.stale;
        t.unparsed += log.unparsed;
        t.closed_early += usize::from(log.closed_early);
        if t.first_error.is_none() {
            t.first_error.clone_from(&log.first_error);
        }
        let mut seen = vec![false; max_seq];
        for d in &log.deliveries {
            t.delivered += 1;
            let i = d.seq as usize;
            let Some(p) = by_seq.get(i).copied().flatten() else {
                continue;
            };
            if id_hashes[i].is_some_and(|h| h != d.id_hash) {
                t.faults.id_mismatch += 1;
            }
            let lat = d.recv_ns.saturating_sub(p.sent_ns) / 1000;
            let _ = delivery.record(lat.max(1));
            if !std::mem::replace(&mut seen[i], true) && p.channel == *channel {
                fanout_us[i] = fanout_us[i].max(lat.max(1));
            }
        }
    }
    let mut fanout = histogram();
    for p in pubs.iter().filter(|p| p.ok()) {
        if fanout_us[p.seq as usize] > 0 {
            let _ = fanout.record(fanout_us[p.seq as usize]);
        }
    }
    t.delivery_ms = Percentiles::of(&delivery);
    t.fanout_ms = Percentiles::of(&fanout);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::client::Delivery;

    fn publication(seq: u32, channel: u32, ok: bool) -> Publication {
        Publication {
            seq,
            channel,
            sent_ns: u64::from(seq) * 1_000_000,
            answered_ns: u64::from(seq) * 1_000_000 + 500_000,
            status: if ok { Ok(200) } else { Ok(503) },
            id: Some(format!("e-{seq}")),
        }
    }

    fn log(deliveries: &[(u32, &str)]) -> SubscriberLog {
        let mut l = SubscriberLog::default();
        for &(seq, id) in deliveries {
            l.resume.saw(id);
            l.deliveries.push(Delivery {
                seq,
                recv_ns: u64::from(seq) * 1_000_000 + 2_000_000,
                id_hash: id_hash(id),
            });
        }
        l
    }

    #[test]
    fn clients_of_two_channels() {
        // Channel 0: 0, 2; channel 1: 1, 3 (refused).
        let pubs: Vec<Publication> = (0..4).map(|s| publication(s, s % 2, s != 3)).collect();
        let subs = vec![
            (0, log(&[(0, "e-0"), (2, "e-2")])),
            // Got 2 under a wrong id, and 0 again after it.
            (0, log(&[(0, "e-0"), (2, "e-7"), (0, "e-0")])),
            (1, log(&[(1, "e-1")])),
            // Lost 1, got the refused 3 anyway.
            (1, log(&[(3, "e-3")])),
        ];
        let t = tally(&subs, &pubs, 2);
        assert_eq!(t.expected, 2 + 2 + 1 + 1);
        assert_eq!(t.delivered, 7);
        let f = t.faults;
        assert_eq!((f.lost, f.duplicated, f.foreign), (1, 1, 1));
        assert_eq!((f.id_mismatch, f.id_regressions), (1, 1));
        assert_eq!(f.order_differs, 0);
        assert_eq!(t.inexact_clients, 2);
        assert!(!f.none());
        // Fan-out: 2 ms for 0, 1 and 2 (3 was refused).
        assert_eq!(t.fanout_ms.count, 3);
        assert!((t.fanout_ms.max - 2.0).abs() < 0.01, "{:?}", t.fanout_ms);
    }

    #[test]
    fn an_exact_run() {
        let pubs: Vec<Publication> = (0..6).map(|s| publication(s, s % 3, true)).collect();
        let subs: Vec<(u32, SubscriberLog)> = (0..3)
            .map(|c| {
                let seqs: Vec<(u32, String)> = [c, c + 3].iter().map(|&s| (s, format!("e-{s}"))).collect();
                let refs: Vec<(u32, &str)> = seqs.iter().map(|(s, id)| (*s, id.as_str())).collect();
                (c, log(&refs))
            })
            .collect();
        let t = tally(&subs, &pubs, 3);
        assert!(t.faults.none(), "{t:?}");
        assert_eq!((t.expected, t.delivered), (6, 6));
    }
}
