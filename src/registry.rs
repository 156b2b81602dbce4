//! Who is connected: the map from client id to client, and the connection limit.
//!
//! The map's lock is held only for non-blocking work: inserting, removing, and
//! the fan-out's offers (which never block; see `client::outbox`). Taking one
//! lock for a whole broadcast is what gives every client the same order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::client::{Client, ClientId};

/// Every connected client, and the count of slots taken (connected or handshaking).
pub struct Registry {
    clients: Mutex<HashMap<ClientId, Arc<Client>>>,
    emptied: Condvar,
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
        let mut clients = self.registry.lock();
        clients.remove(&self.client.id);
        if clients.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

impl Registry {
    /// An empty registry admitting at most `max_clients` connections, whose
    /// clients are shown as `PREFIX-N` when `id_prefix` is given.
    pub fn new(max_clients: usize, id_prefix: Option<Arc<str>>) -> Arc<Registry> {
        Arc::new(Registry {
            clients: Mutex::new(HashMap::new()),
            emptied: Condvar::new(),
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

    /// Adds a client whose handshake completed.
    pub fn register(self: &Arc<Self>, client: Arc<Client>) -> Registration {
        self.lock().insert(client.id, Arc::clone(&client));
        Registration {
            registry: Arc::clone(self),
            client,
        }
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: ClientId) -> Option<Arc<Client>> {
        self.lock().get(&id).cloned()
    }

    /// Every connected client, sorted by id, for listing outside the lock.
    pub fn snapshot(&self) -> Vec<Arc<Client>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Runs `f` on every client under the lock. `f` must not block.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Client>)) {
        for client in self.lock().values() {
            f(client);
        }
    }

    /// Runs `f` under the lock with every client, in no set order. `f` must
    /// not block; it may share the slice with threads it joins before returning.
    pub fn with_all<R>(&self, f: impl FnOnce(&[&Arc<Client>]) -> R) -> R {
        let clients = self.lock();
        let all: Vec<&Arc<Client>> = clients.values().collect();
        f(&all)
    }

    /// Waits until no connection is left, registered or still handshaking (a
    /// handshake that completes during shutdown sends its own Close), or
    /// `timeout` passes; true if emptied.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut clients = self.lock();
        while !clients.is_empty() || self.slots_taken.load(SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.emptied.wait_for(&mut clients, left);
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, Arc<Client>>> {
        self.clients.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_come_back_when_dropped() {
        let registry = Registry::new(2, None);
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
        let registry = Registry::new(1, None);
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
    fn ids_count_up_and_are_never_reused() {
        let registry = Registry::new(1, Some("a".into()));
        assert_eq!(registry.next_id(), ClientId(1));
        assert_eq!(registry.next_id(), ClientId(2));
        assert_eq!(registry.id_prefix().as_deref(), Some("a"));
        assert_eq!(registry.len(), 0);
        assert!(registry.snapshot().is_empty());
    }
}
