//! A resuming subscriber's bookkeeping: the last message id it saw (what it
//! reconnects with, as `?since=` or `Last-Event-ID`), whether the ids it saw kept increasing, and the resets
//! it was told of.

use super::sequence::cmp_ids;

/// The ids one subscriber saw, over all its connections.
#[derive(Debug, Default, Clone)]
pub struct Resume {
    /// The last id seen (or the reset's), reused to avoid an allocation per message.
    last: String,
    seen: bool,
    /// Messages whose id was not above the one before.
    pub regressions: u64,
    /// The ids of `{"type":"reset"}` frames received.
    pub resets: Vec<String>,
}

impl Resume {
    /// A message with `id` arrived.
    pub fn saw(&mut self, id: &str) {
        if self.seen && cmp_ids(id, &self.last).is_le() {
            self.regressions += 1;
        }
        self.last.clear();
        self.last.push_str(id);
        self.seen = true;
    }

    /// The server could not resume: live messages follow `id`, so a later
    /// reconnect resumes from there (and a reset is a failure to report).
    pub fn reset(&mut self, id: &str) {
        self.resets.push(id.to_owned());
        self.last.clear();
        self.last.push_str(id);
        self.seen = true;
    }

    /// What to resume after: the last id seen, none before the first message.
    pub fn since(&self) -> Option<&str> {
        self.seen.then_some(self.last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriber::Dialect;

    #[test]
    fn since_follows_the_last_id_across_connections() {
        let mut r = Resume::default();
        // A first connect asks for nothing old.
        assert_eq!(r.since(), None);
        assert_eq!(Dialect::Wspush.subscribe_target("ch-01", r.since()), "/ws/ch-01");
        r.saw("e-9");
        r.saw("e-10");
        assert_eq!(r.since(), Some("e-10"));
        assert_eq!(
            Dialect::Wspush.subscribe_target("ch-01", r.since()),
            "/ws/ch-01?since=e-10"
        );
        assert_eq!(
            Dialect::Nchan.subscribe_target("ch-01", r.since()),
            "/sub/ch-01?last_event_id=e-10"
        );
        // The replay after the reconnect continues the order.
        r.saw("e-11");
        assert_eq!((r.regressions, r.since()), (0, Some("e-11")));
    }

    #[test]
    fn ids_that_do_not_increase_are_counted() {
        let mut r = Resume::default();
        r.saw("e-10");
        // A replay from too early, and the same id twice.
        r.saw("e-9");
        r.saw("e-9");
        r.saw("e-12");
        assert_eq!(r.regressions, 2);
        assert_eq!(r.since(), Some("e-12"));
    }

    #[test]
    fn a_reset_moves_since_to_its_id() {
        let mut r = Resume::default();
        r.saw("e-3");
        r.reset("e-40");
        assert_eq!(r.resets, ["e-40"]);
        assert_eq!(r.since(), Some("e-40"));
        // Live messages after the reset are above it: no regression.
        r.saw("e-41");
        assert_eq!(r.regressions, 0);
        // A reset before any message still gives a place to resume from.
        let mut fresh = Resume::default();
        fresh.reset("e-7");
        assert_eq!(fresh.since(), Some("e-7"));
    }
}
