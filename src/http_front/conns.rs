//! The side port's open connections: the cap, what each is waiting on, and
//! which one makes room for a new connection when the cap is reached.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// What a connection's thread is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the client to send (a head or a body) since then.
    Reading(Instant),
    /// Waiting for the client to take its response since then.
    Writing(Instant),
    /// Inside the router: not the client's doing, never evicted.
    Routing,
}

/// One connection's mark, shared by its thread and the table.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    evicted: AtomicBool,
}

impl Slot {
    /// True once the connection was closed to make room for another.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(SeqCst)
    }
}

struct Entry {
    peer: SocketAddr,
    socket: TcpStream,
    phase: Phase,
    slot: Arc<Slot>,
}

/// Whether a new connection gets in.
pub enum Admission {
    /// There was room.
    Admitted(Arc<Slot>),
    /// It took the place of the connection from this peer.
    Evicted(Arc<Slot>, SocketAddr),
    /// Full, and no connection has waited on its client long enough.
    Full,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Every connection whose thread runs, evicted ones included until they end.
    threads: HashMap<u64, Entry>,
}

/// The table of open side-port connections.
pub struct Conns {
    table: Mutex<Table>,
    emptied: Condvar,
    max: usize,
    evict_after: Duration,
}

impl Conns {
    /// A table for at most `max` connections.
    pub fn new(max: usize, evict_after: Duration) -> Conns {
        Conns {
            table: Mutex::new(Table::default()),
            emptied: Condvar::new(),
            max,
            evict_after,
        }
    }

    /// Takes a place for `socket` (a clone of the connection, kept to shut it
    /// down), making room at the cap by closing the connection that has waited
    /// longest on its client, if it has waited `evict_after`.
    pub fn admit(&self, socket: TcpStream, peer: SocketAddr) -> Admission {
        let now = Instant::now();
        let mut table = self.table.lock();
        let open = table.threads.values().filter(|e| !e.slot.is_evicted()).count();
        let mut victim = None;
        if open >= self.max {
            let oldest = now
                .checked_sub(self.evict_after)
                .and_then(|cutoff| oldest_waiting(&table.threads, cutoff));
            let Some(entry) = oldest else {
                return Admission::Full;
            };
            evict(entry);
            victim = Some(entry.peer);
        }
        table.next_id += 1;
        let slot = Arc::new(Slot {
            id: table.next_id,
            evicted: AtomicBool::new(false),
        });
        let entry = Entry {
            peer,
            socket,
            phase: Phase::Reading(now),
            slot: Arc::clone(&slot),
        };
        table.threads.insert(slot.id, entry);
        match victim {
            Some(victim) => Admission::Evicted(slot, victim),
            None => Admission::Admitted(slot),
        }
    }

    /// Records what the connection waits on; false if it was evicted.
    pub fn set_phase(&self, slot: &Slot, phase: Phase) -> bool {
        let mut table = self.table.lock();
        match table.threads.get_mut(&slot.id) {
            Some(entry) if !slot.is_evicted() => {
                entry.phase = phase;
                true
            }
            _ => false,
        }
    }

    /// Forgets a connection whose thread is ending; gives back the socket kept for it.
    pub fn remove(&self, slot: &Slot) -> Option<TcpStream> {
        let mut table = self.table.lock();
        let entry = table.threads.remove(&slot.id);
        if table.threads.is_empty() {
            self.emptied.notify_all();
        }
        entry.map(|e| e.socket)
    }

    /// Shuts every open connection down (their threads then end), and waits up
    /// to `grace` for their threads to be done; true if they all were.
    pub fn close_all(&self, grace: Duration) -> bool {
        let mut table = self.table.lock();
        for entry in table.threads.values() {
            let _ = entry.socket.shutdown(Shutdown::Both);
        }
        self.emptied
            .wait_while_for(&mut table, |t| !t.threads.is_empty(), grace);
        table.threads.is_empty()
    }
}

/// Of the connections not evicted yet, the one waiting on its client since
/// the earliest time, if that is no later than `cutoff`.
fn oldest_waiting(threads: &HashMap<u64, Entry>, cutoff: Instant) -> Option<&Entry> {
    threads
        .values()
        .filter(|e| !e.slot.is_evicted())
        .filter_map(|e| match e.phase {
            Phase::Reading(since) | Phase::Writing(since) => Some((since, e.slot.id, e)),
            Phase::Routing => None,
        })
        .filter(|(since, _, _)| *since <= cutoff)
        .min_by_key(|(since, id, _)| (*since, *id))
        .map(|(_, _, e)| e)
}

/// Wakes the victim's thread: a reader sees the end of its input (and answers
/// 408 if a request was under way), a writer's write fails.
fn evict(entry: &Entry) {
    entry.slot.evicted.store(true, SeqCst);
    let how = match entry.phase {
        Phase::Writing(_) => Shutdown::Both,
        _ => Shutdown::Read,
    };
    let _ = entry.socket.shutdown(how);
}
