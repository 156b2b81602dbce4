//! Repeats dropped: the last message number seen from each boot of each node.
//!
//! A node numbers what it sends (per boot, in the order sent, under its one
//! publishing connection) and sends a message again at most once, when the
//! first try's reply was lost (it may or may not have arrived). A reader that
//! keeps the highest number seen per boot delivers each message once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Boots not heard from for this long are forgotten.
const DEDUP_KEEP: Duration = Duration::from_secs(600);

/// The last message number seen from each boot.
#[derive(Default)]
pub struct Dedup {
    last: HashMap<u64, (u64, Instant)>,
    pruned: Option<Instant>,
}

impl Dedup {
    /// True unless message `seq` of `boot` (or a later one) was seen already.
    pub fn first_time(&mut self, boot: u64, seq: u64) -> bool {
        let now = Instant::now();
        if self
            .pruned
            .is_none_or(|t| now.duration_since(t) > DEDUP_KEEP / 10)
        {
            self.last
                .retain(|_, (_, at)| now.duration_since(*at) < DEDUP_KEEP);
            self.pruned = Some(now);
        }
        let entry = self.last.entry(boot).or_insert((0, now));
        entry.1 = now;
        if seq <= entry.0 {
            return false;
        }
        entry.0 = seq;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_dropped_per_boot() {
        let mut d = Dedup::default();
        assert!(d.first_time(1, 1));
        assert!(d.first_time(1, 3), "gaps are fine: failed publishes use numbers");
        assert!(!d.first_time(1, 3));
        assert!(!d.first_time(1, 2));
        assert!(d.first_time(2, 1), "another boot counts on its own");
    }
}
