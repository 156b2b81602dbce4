//! Who is connected and to what, under one lock, and the connection limit.
//!
//! The lock guards the `Hub`: every client, every channel's subscribers and
//! the history. It is held only for non-blocking work: joins and leaves,
//! storing a message, and the fan-out's offers (which never block; see
//! `client::outbox`). Taking one lock for a whole publish is what gives every
//! client the same order.

mod catch_up;
mod hub;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use self::catch_up::CatchUp;
pub use self::hub::{ChannelView, Hub};
use crate::client::{Client, ClientId};
use crate::history::{HistoryLimits, HistoryTotals, MessageId};

/// Every connected client, and the count of slots taken (connected or handshaking).
pub struct Registry {
    hub: Mutex<Hub>,
    emptied: Condvar,
    /// Joins waiting for ids the shared log has not given this node yet.
    catch_up: CatchUp,
    next_id: AtomicU64,
    /// Shown before every client id (`a-7`): a cluster node's id.
    id_prefix: Option<Arc<str>>,
    slots_taken: AtomicUsize,
    max_clients: usize,
}

/// A place under `--max-clients`, held from the handshake until the connection ends.
pub struct Slot {
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.registry.slots_taken.fetch_sub(1, SeqCst) == 1 {
            // Notified under the lock, so `wait_empty` cannot miss it.
            let _clients = self.registry.lock();
            self.registry.emptied.notify_all();
        }
    }
}

/// A client's entry in the registry; dropping it removes the client, whatever
/// path (error, close, panic) ended the connection. The connection's `Slot`
/// is separate: it is held until the socket is closed, which may be a little
/// after the client stopped being listed (the close handshake's linger).
pub struct Registration {
    registry: Arc<Registry>,
    client: Arc<Client>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut hub = self.registry.lock();
        hub.remove(&self.client);
        if hub.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

impl Registry {
    /// An empty registry admitting at most `max_clients` connections, whose
    /// clients are shown as `PREFIX-N` when `id_prefix` is given, keeping
    /// history within `limits`.
    pub fn new(max_clients: usize, id_prefix: Option<Arc<str>>, limits: HistoryLimits) -> Arc<Registry> {
        Arc::new(Registry {
            hub: Mutex::new(Hub::new(limits)),
            emptied: Condvar::new(),
            catch_up: CatchUp::default(),
            next_id: AtomicU64::new(1),
            id_prefix,
            slots_taken: AtomicUsize::new(0),
            max_clients,
        })
    }

    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// Takes a slot for a connection about to handshake, unless all are taken.
    pub fn reserve(self: &Arc<Self>) -> Option<Slot> {
        self.slots_taken
            .fetch_update(SeqCst, SeqCst, |n| (n < self.max_clients).then_some(n + 1))
            .ok()
            .map(|_| Slot {
                registry: Arc::clone(self),
            })
    }

    /// A fresh, never reused client id.
    pub fn next_id(&self) -> ClientId {
        ClientId(self.next_id.fetch_add(1, SeqCst))
    }

    /// What client ids are shown with (`a` for `a-7`), if anything.
    pub fn id_prefix(&self) -> Option<Arc<str>> {
        self.id_prefix.clone()
    }

    /// Adds a client whose handshake completed, after `first` ran under the
    /// same lock (what a joining client is sent before live messages).
    pub fn register<R>(
        self: &Arc<Self>,
        client: Arc<Client>,
        first: impl FnOnce(&mut Hub, &Arc<Client>) -> R,
    ) -> (Registration, R) {
        let mut hub = self.lock();
        let before = first(&mut hub, &client);
        hub.insert(&client);
        drop(hub);
        let registration = Registration {
            registry: Arc::clone(self),
            client,
        };
        (registration, before)
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: ClientId) -> Option<Arc<Client>> {
        self.lock().get(id).cloned()
    }

    /// Every connected client, sorted by id, for listing outside the lock.
    pub fn snapshot(&self) -> Vec<Arc<Client>> {
        let mut all: Vec<_> = self.lock().clients().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Runs `f` on every client under the lock. `f` must not block.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Client>)) {
        for client in self.lock().clients() {
            f(client);
        }
    }

    /// Runs `f` under the lock. `f` must not block; it may share what it
    /// borrows with threads it joins before returning.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        f(&mut self.lock())
    }

    /// Totals of the history (`/stats`, `/metrics`).
    pub fn history_totals(&self) -> HistoryTotals {
        self.lock().history.totals()
    }

    /// Drops stored messages past `--history-ttl` (the pinger's tick); how many.
    pub fn expire_history(&self, now: Instant) -> usize {
        self.lock().history.expire(now)
    }

    /// Waits until the history holds `id` (its latest id is `id` or later in
    /// the same epoch), or `timeout` passes; true if it does. A cluster node
    /// may be a little behind the node a resuming client comes from.
    pub fn wait_stored(&self, id: MessageId, timeout: Duration) -> bool {
        let holds = |hub: &Hub| {
            let latest = hub.history.latest();
            (latest.epoch() != id.epoch() || latest.seq() >= id.seq()).then_some(latest.epoch() == id.epoch())
        };
        let ticket = {
            let hub = self.lock();
            if let Some(held) = holds(&hub) {
                return held;
            }
            self.catch_up.enlist(id.seq())
        };
        self.catch_up.wait(ticket, timeout);
        holds(&self.lock()).unwrap_or(false)
    }

    /// The history took ids given from outside up to `seq`: wakes the
    /// `wait_stored` callers it satisfies.
    pub fn reached(&self, seq: u64) {
        self.catch_up.reached(seq);
    }

    /// The history started over or raised its floor: wakes every
    /// `wait_stored` caller to look again.
    pub fn restarted(&self) {
        self.catch_up.all();
    }

    /// Waits until no connection is left, registered or still handshaking (a
    /// handshake that completes during shutdown sends its own Close), or
    /// `timeout` passes; true if emptied.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut hub = self.lock();
        while !hub.is_empty() || self.slots_taken.load(SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.emptied.wait_for(&mut hub, left);
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_come_back_when_dropped() {
        let registry = Registry::new(2, None, HistoryLimits::default());
        let a = registry.reserve().expect("first slot");
        let b = registry.reserve().expect("second slot");
        assert!(registry.reserve().is_none(), "the limit holds");
        drop(a);
        let c = registry.reserve().expect("a dropped slot is free again");
        drop((b, c));
        assert!(registry.wait_empty(Duration::ZERO));
    }

    #[test]
    fn wait_empty_waits_for_a_handshaking_slot() {
        let registry = Registry::new(1, None, HistoryLimits::default());
        let slot = registry.reserve().expect("slot");
        assert!(!registry.wait_empty(Duration::from_millis(20)), "a slot is taken");
        let waiter = {
            let registry = Arc::clone(&registry);
            std::thread::spawn(move || registry.wait_empty(Duration::from_secs(60)))
        };
        drop(slot);
        assert!(waiter.join().unwrap(), "woken when the last slot went");
    }

    #[test]
    fn wait_stored_waits_for_an_id_the_log_has_not_given_yet() {
        use crate::channel::ChannelName;
        use crate::history::Epoch;
        use crate::message::Prepared;
        use crate::publish::Payload;

        let registry = Registry::new(1, None, HistoryLimits::default());
        let epoch = Epoch::from_raw(7);
        registry.with_hub(|hub| hub.history.restart(epoch, 10));
        let next = MessageId::new(epoch, 12);
        assert!(registry.wait_stored(MessageId::new(epoch, 10), Duration::ZERO));
        assert!(!registry.wait_stored(next, Duration::from_millis(20)), "not yet");
        let other = MessageId::new(Epoch::from_raw(8), 1);
        assert!(
            !registry.wait_stored(other, Duration::from_millis(20)),
            "another log"
        );
        let waiter = {
            let registry = Arc::clone(&registry);
            std::thread::spawn(move || registry.wait_stored(next, Duration::from_secs(60)))
        };
        let channel = ChannelName::all();
        let payload = Payload::new(crate::frame::PayloadKind::Text, &b"x"[..]);
        let prepared = Prepared::new(&channel, &payload);
        let now = Instant::now();
        registry.with_hub(|hub| {
            let stored = hub
                .history
                .append(&channel, next, now, now, |id| prepared.frames(id));
            assert!(stored.is_ok());
        });
        registry.reached(next.seq());
        assert!(waiter.join().unwrap(), "woken when the log gave it");
    }

    #[test]
    fn ids_count_up_and_are_never_reused() {
        let registry = Registry::new(1, Some("a".into()), HistoryLimits::default());
        assert_eq!(registry.next_id(), ClientId(1));
        assert_eq!(registry.next_id(), ClientId(2));
        assert_eq!(registry.id_prefix().as_deref(), Some("a"));
        assert_eq!(registry.len(), 0);
        assert!(registry.snapshot().is_empty());
    }
}
