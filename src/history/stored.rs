//! One stored message and what it costs to hold.
//!
//! A `Stored` owns a published message's id, channel, publish time and its
//! pre-encoded frames `F` (the integrator's choice: the WebSocket frame of the
//! envelope, later an SSE event too), encoded once per publish and shared as
//! `Arc<Stored<F>>` by the history and every client it is written to. Its `cost`
//! is the heap it really holds, as glibc malloc counts it, so that
//! `--history-bytes` caps memory, not payload. A transport's encoding made
//! later (an SSE event, encoded by the first event-stream client a message
//! goes to) grows what it holds; `History::recharge` counts the growth.

use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use super::id::MessageId;
use crate::channel::ChannelName;

/// What a value holds on the heap, in bytes of malloc chunks.
pub trait HeldBytes {
    /// Heap bytes this value keeps alive (not counting its own inline size).
    fn held_bytes(&self) -> usize;
}

/// Bytes one malloc of `request` bytes takes with glibc on 64-bit: an 8-byte
/// header, rounded up to 16, at least 32.
pub fn heap_cost(request: usize) -> usize {
    (request + 8).next_multiple_of(16).max(32)
}

/// An `Arc<[u8]>` holds its two counts and the bytes in one allocation.
impl HeldBytes for Arc<[u8]> {
    fn held_bytes(&self) -> usize {
        heap_cost(2 * size_of::<usize>() + self.len())
    }
}

impl<T: HeldBytes> HeldBytes for Option<T> {
    fn held_bytes(&self) -> usize {
        self.as_ref().map_or(0, HeldBytes::held_bytes)
    }
}

impl<A: HeldBytes, B: HeldBytes> HeldBytes for (A, B) {
    fn held_bytes(&self) -> usize {
        self.0.held_bytes() + self.1.held_bytes()
    }
}

/// A published message kept for resumes.
#[derive(Debug)]
pub struct Stored<F> {
    id: MessageId,
    channel: ChannelName,
    at: Instant,
    /// What the history counts for it; only changed under the history's
    /// caller's lock (`recharge`), atomic only because the message is shared.
    cost: AtomicUsize,
    frames: F,
}

impl<F: HeldBytes> Stored<F> {
    pub(super) fn new(id: MessageId, channel: ChannelName, at: Instant, frames: F) -> Arc<Stored<F>> {
        let cost = AtomicUsize::new(own_cost::<F>() + frames.held_bytes());
        Arc::new(Stored {
            id,
            channel,
            at,
            cost,
            frames,
        })
    }

    /// Whether it holds more than was counted (an encoding made since).
    pub(super) fn has_grown(&self) -> bool {
        own_cost::<F>() + self.frames.held_bytes() != self.cost.load(Relaxed)
    }

    /// Sets the counted cost to what it holds now; returns the growth since
    /// it was last counted (frames only ever gain encodings).
    pub(super) fn recharge(&self) -> usize {
        let now = own_cost::<F>() + self.frames.held_bytes();
        now.saturating_sub(self.cost.swap(now, Relaxed))
    }
}

/// The `Arc` allocation of a `Stored<F>`: two counts and the struct.
fn own_cost<F>() -> usize {
    heap_cost(2 * size_of::<usize>() + size_of::<Stored<F>>())
}

impl<F> Stored<F> {
    /// Its id.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The channel it was published to.
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// When it was stored (by the caller's clock).
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Heap bytes it holds: the `Arc<Stored>` and its frames (the history adds its deque slot).
    pub fn cost(&self) -> usize {
        self.cost.load(Relaxed)
    }

    /// Its encoded frames.
    pub fn frames(&self) -> &F {
        &self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::id::Epoch;

    #[test]
    fn heap_cost_follows_glibc_chunk_sizes() {
        assert_eq!(heap_cost(0), 32);
        assert_eq!(heap_cost(24), 32);
        assert_eq!(heap_cost(25), 48);
        assert_eq!(heap_cost(40), 48);
        assert_eq!(heap_cost(100), 112);
    }

    #[test]
    fn a_stored_message_costs_its_arc_and_its_frames() {
        let frame: Arc<[u8]> = vec![0u8; 100].into();
        assert_eq!(frame.held_bytes(), heap_cost(116));
        let both = (frame.clone(), Some(frame.clone()));
        assert_eq!(both.held_bytes(), 2 * frame.held_bytes());
        let id = MessageId::new(Epoch::from_raw(1), 1);
        let stored = Stored::new(id, ChannelName::all(), Instant::now(), frame.clone());
        let own = heap_cost(16 + size_of::<Stored<Arc<[u8]>>>());
        assert_eq!(stored.cost(), own + frame.held_bytes());
        assert_eq!(stored.frames().len(), 100);
        assert_eq!(stored.id(), id);
        assert!(stored.channel().is_all());
    }
}
