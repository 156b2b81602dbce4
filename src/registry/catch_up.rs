//! Joins waiting for a message the shared log has not given this node yet:
//! a cluster client resuming here with an id another node gave it a moment
//! ago. Each waiter is woken once, when the history reaches its id (or starts
//! over in another epoch), never by every message: a resume storm of
//! thousands of waiting joins costs the log reader one wake-up per join.

use std::collections::BTreeMap;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

/// The waiting joins, by the seq each waits for.
#[derive(Default)]
pub struct CatchUp {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    /// (seq, ticket) → the waiter's wake-up.
    by_seq: BTreeMap<(u64, u64), Sender<()>>,
    next_ticket: u64,
}

/// A waiter's place, to wait on and leave.
pub struct Ticket {
    key: (u64, u64),
    woken: crossbeam_channel::Receiver<()>,
}

impl CatchUp {
    /// Lists a waiter for `seq`. Call it under the hub lock after seeing the
    /// history short of `seq`, so that the append that reaches it wakes it.
    pub fn enlist(&self, seq: u64) -> Ticket {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut waiting = self.waiting.lock();
        let key = (seq, waiting.next_ticket);
        waiting.next_ticket += 1;
        waiting.by_seq.insert(key, tx);
        Ticket { key, woken: rx }
    }

    /// Waits up to `timeout` to be woken; the ticket is gone afterwards.
    pub fn wait(&self, ticket: Ticket, timeout: Duration) {
        let _ = ticket.woken.recv_timeout(timeout);
        self.waiting.lock().by_seq.remove(&ticket.key);
    }

    /// The history now holds everything up to `seq`: wakes who waits for it.
    pub fn reached(&self, seq: u64) {
        let mut waiting = self.waiting.lock();
        let Some(&(first, _)) = waiting.by_seq.keys().next() else {
            return;
        };
        if first > seq {
            return;
        }
        let later = waiting.by_seq.split_off(&(seq.saturating_add(1), 0));
        let woken = std::mem::replace(&mut waiting.by_seq, later);
        drop(waiting);
        for tx in woken.into_values() {
            let _ = tx.try_send(());
        }
    }

    /// The history started over (another epoch, a raised floor): wakes everyone.
    pub fn all(&self) {
        self.reached(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_waiter_is_woken_once_its_seq_is_reached() {
        let c = CatchUp::default();
        let (five, seven) = (c.enlist(5), c.enlist(7));
        c.reached(4);
        assert!(five.woken.try_recv().is_err());
        c.reached(6);
        assert!(five.woken.try_recv().is_ok());
        assert!(seven.woken.try_recv().is_err(), "7 still waits");
        c.all();
        assert!(seven.woken.try_recv().is_ok());
        assert!(c.waiting.lock().by_seq.is_empty());
        let late = c.enlist(9);
        c.wait(late, Duration::ZERO);
        assert!(c.waiting.lock().by_seq.is_empty(), "a timed-out waiter leaves");
    }
}
