//! Where a connection's thread picks up its own request once tiny_http has
//! parsed it: from tiny_http's queue, which every side-port request goes
//! through, each marked with a number of its own (`X-Wspush-Request`).
//!
//! One waiting thread at a time takes requests off the queue (the taker); a
//! request for another waiting thread is left in that thread's place and the
//! thread unparked. A taker that gets its own request hands the queue over to
//! one waiter still without its request. So on a connection alone at the
//! router, the thread that sent a request is the one tiny_http wakes, and no
//! other thread is involved. A request whose sender stopped waiting is dropped
//! (tiny_http answers it 500 to a socket nobody reads any more).

use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often a waiting thread checks whether it should stop waiting (the
/// router answered by itself, or the request went elsewhere).
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A queue of requests, each marked with a key of its own.
pub trait Queue: Send + Sync + 'static {
    type Item: Send;
    /// What tells one request from another.
    type Key: Copy + Eq + Hash + Send;
    /// The next item, or `None` if none came within `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Self::Item>>;
    /// The key the item is marked with.
    fn owner(item: &Self::Item) -> Option<Self::Key>;
}

/// Why no request was picked up.
#[derive(Debug)]
pub enum TakeError {
    /// The deadline passed.
    TimedOut,
    /// The caller's check said to stop waiting.
    Stopped,
    /// The queue failed.
    Queue(io::Error),
}

struct Waiter<T> {
    /// The thread waiting in `take`, once one is.
    thread: Option<Thread>,
    item: Option<T>,
}

struct State<K, T> {
    /// A thread is in `recv_timeout`.
    taking: bool,
    waiting: HashMap<K, Waiter<T>>,
}

/// The queue and the threads waiting on it, each for its own request.
pub struct Pickup<Q: Queue> {
    queue: Q,
    state: Mutex<State<Q::Key, Q::Item>>,
}

/// A place for one request; dropping it stops waiting for it.
pub struct Ticket<Q: Queue> {
    pickup: Arc<Pickup<Q>>,
    id: Q::Key,
}

impl<Q: Queue> Pickup<Q> {
    pub fn new(queue: Q) -> Pickup<Q> {
        Pickup {
            queue,
            state: Mutex::new(State {
                taking: false,
                waiting: HashMap::new(),
            }),
        }
    }

    /// Makes a place for the request with key `id` (which no other ticket
    /// has): call it before the request is sent, so that it is never taken
    /// before it is expected.
    pub fn expect(self: &Arc<Self>, id: Q::Key) -> Ticket<Q> {
        let waiter = Waiter {
            thread: None,
            item: None,
        };
        self.state.lock().waiting.insert(id, waiter);
        Ticket {
            pickup: Arc::clone(self),
            id,
        }
    }

    /// The ticket's request, taken off the queue by this thread or left for
    /// it by another, before `deadline`; `stop` is asked every `CHECK_EVERY`.
    pub fn take(
        &self,
        ticket: &Ticket<Q>,
        deadline: Instant,
        stop: impl Fn() -> bool,
    ) -> Result<Q::Item, TakeError> {
        let id = ticket.id;
        let mut next_check = Instant::now() + CHECK_EVERY;
        loop {
            let mut state = self.state.lock();
            let Some(me) = state.waiting.get_mut(&id) else {
                return Err(TakeError::Stopped);
            };
            if let Some(item) = me.item.take() {
                return Ok(item);
            }
            me.thread.get_or_insert_with(thread::current);
            let now = Instant::now();
            if now >= deadline {
                return Err(TakeError::TimedOut);
            }
            if now >= next_check {
                drop(state);
                if stop() {
                    return Err(TakeError::Stopped);
                }
                next_check = now + CHECK_EVERY;
                continue;
            }
            let wait = (deadline.min(next_check)) - now;
            if state.taking {
                drop(state);
                thread::park_timeout(wait);
                continue;
            }
            state.taking = true;
            drop(state);
            if let Some(item) = self.take_off_queue(id, wait)? {
                return Ok(item);
            }
        }
    }

    /// As the taker: the next item off the queue if it is `id`'s; another's
    /// is left in its place (or dropped if no one waits for it).
    fn take_off_queue(&self, id: Q::Key, wait: Duration) -> Result<Option<Q::Item>, TakeError> {
        let got = self.queue.recv_timeout(wait);
        let mut state = self.state.lock();
        state.taking = false;
        let item = match got {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(None),
            Err(e) => {
                hand_over(&state.waiting, id);
                return Err(TakeError::Queue(e));
            }
        };
        let owner = Q::owner(&item);
        if owner == Some(id) {
            hand_over(&state.waiting, id);
            return Ok(Some(item));
        }
        let stray = leave(&mut state.waiting, owner, item);
        drop(state);
        drop(stray);
        Ok(None)
    }
}

/// Leaves `item` in its owner's place and wakes the owner; gives it back if
/// no one waits for it.
fn leave<K: Eq + Hash, T>(waiting: &mut HashMap<K, Waiter<T>>, owner: Option<K>, item: T) -> Option<T> {
    let Some(waiter) = owner.and_then(|owner| waiting.get_mut(&owner)) else {
        return Some(item);
    };
    waiter.item = Some(item);
    if let Some(thread) = &waiter.thread {
        thread.unpark();
    }
    None
}

/// The taker is leaving: wakes one thread still waiting for its request, to take over.
fn hand_over<K: Eq, T>(waiting: &HashMap<K, Waiter<T>>, leaving: K) {
    let next = waiting
        .iter()
        .filter(|(id, w)| **id != leaving && w.item.is_none())
        .find_map(|(_, w)| w.thread.as_ref());
    if let Some(thread) = next {
        thread.unpark();
    }
}

impl<Q: Queue> Ticket<Q> {
    /// The key of the request it waits for.
    pub fn key(&self) -> Q::Key {
        self.id
    }
}

impl<Q: Queue> Drop for Ticket<Q> {
    fn drop(&mut self) {
        let stray = self.pickup.state.lock().waiting.remove(&self.id);
        drop(stray);
    }
}

#[cfg(test)]
mod tests;
