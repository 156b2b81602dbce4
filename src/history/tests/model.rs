//! Random publishes, ticks and subscriptions against a record of every publish:
//! a replay that does not reset is always exactly what was published after
//! `since` on the client's channels, and the byte count always adds up.

use super::*;

const CHANNELS: [&str; 6] = ["all", "a", "b", "c", "d", "e"];

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Default)]
struct Outcomes {
    replays: usize,
    resets: usize,
}

#[test]
fn a_replay_that_does_not_reset_is_complete_and_in_order() {
    let limits = HistoryLimits {
        size: 5,
        ttl: Duration::from_secs(60),
        bytes: 8 << 10,
        recovery_max: 20,
    };
    let mut h = history(limits);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut published: Vec<(u64, &str)> = Vec::new();
    let mut outcomes = Outcomes::default();
    let mut now = Instant::now();
    for _ in 0..20_000 {
        now += Duration::from_millis(rng.below(3_000));
        match rng.below(10) {
            0..=4 => {
                let channel = CHANNELS[rng.below(6) as usize];
                let seq = publish(&mut h, channel, rng.below(300) as usize, now);
                published.push((seq, channel));
            }
            5 => {
                h.expire(now);
            }
            6 => h.set_subscribed(&name(CHANNELS[rng.below(6) as usize]), rng.below(2) == 0),
            _ => check_replay(&mut h, &mut rng, &published, now, &mut outcomes),
        }
        check_accounting(&h);
    }
    eprintln!("replays {} resets {}", outcomes.replays, outcomes.resets);
    assert!(
        outcomes.replays > 1_000 && outcomes.resets > 100,
        "replays {} resets {}",
        outcomes.replays,
        outcomes.resets
    );
}

fn check_replay(
    h: &mut History<Frame>,
    rng: &mut Rng,
    published: &[(u64, &str)],
    now: Instant,
    outcomes: &mut Outcomes,
) {
    let mut chosen: Vec<&str> = CHANNELS[1..]
        .iter()
        .copied()
        .filter(|_| rng.below(3) == 0)
        .collect();
    chosen.push("all");
    let channels = set(&chosen.join(","));
    let after = h.latest().seq().saturating_sub(rng.below(25));
    let replay = h.replay(&channels, &since(after), now);
    let expected: Vec<u64> = published
        .iter()
        .filter(|(seq, channel)| *seq > after && channels.contains(channel))
        .map(|(seq, _)| *seq)
        .collect();
    match replay {
        Replay::Messages(messages) => {
            assert_eq!(seqs(&messages), expected, "since {after} on {channels:?}");
            outcomes.replays += usize::from(!messages.is_empty());
        }
        Replay::Reset { reason, .. } => {
            outcomes.resets += 1;
            if chosen.len() == 1 {
                // `all` keeps its entry, so its floor is exact: it resets only for a real loss.
                let stored: Vec<u64> = h.channels["all"].messages.iter().map(|m| m.id().seq()).collect();
                let lost = expected.iter().any(|seq| !stored.contains(seq));
                assert!(
                    lost || matches!(reason, ResetReason::TooMany { .. }),
                    "{reason} since {after}"
                );
            }
        }
    }
}

fn check_accounting(h: &History<Frame>) {
    let mut bytes = 0;
    let mut messages = 0;
    for (name, entry) in &h.channels {
        assert_eq!(entry.counted, evict::entry_cost(entry), "{name}");
        bytes += entry.counted + entry.messages.iter().map(|m| m.cost()).sum::<usize>();
        messages += entry.messages.len();
        match entry.messages.front() {
            Some(front) => assert_eq!(h.fronts.get(&front.id().seq()), Some(name)),
            None => assert!(entry.subscribed, "{name} is empty and unsubscribed but kept"),
        }
    }
    assert_eq!(
        h.fronts.len(),
        h.channels.values().filter(|e| !e.messages.is_empty()).count()
    );
    assert_eq!((h.stored_bytes, h.stored_messages), (bytes, messages));
    assert!(h.stored_bytes <= h.limits.bytes);
}
