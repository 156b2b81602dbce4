//! One client's outgoing path: every byte written to its socket goes through here.
//!
//! A delivery is first tried as a direct, non-blocking write from the caller's
//! thread (the fan-out, the pinger, the client's own reader). That costs no
//! thread wake-up, and it is what happens for every client that keeps up. Only
//! when the socket cannot take the frame at once does it go to the client's
//! bounded queue, and a writer thread is started to drain that backlog with
//! blocking, time-limited writes; it ends when the backlog is gone (`backlog`).
//!
//! Order is exact because of two rules: a direct write happens only under the
//! write lock (taken with `try_lock`, so the caller never waits) and only when
//! `pending` is zero, and `pending` counts a frame from before it is queued
//! until it has been written, so a frame the writer has dequeued but not yet
//! written still blocks the direct path.
//!
//! The backlog is bounded twice, in frames (`--queue-len`) and in bytes
//! (`--queue-bytes`), and this is the one place that drops a client as a slow
//! consumer: over either bound, or when a blocking write stalls past
//! `--write-timeout` (`Outbox::drop_slow`).
//!
//! The outbox carries WebSocket frames or an event stream's events alike
//! (both are shared byte strings); its `Framing` only decides how the
//! connection is left: what a slow consumer is told, and which side of the
//! socket the last frame shuts.

mod backlog;
mod socket;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use tungstenite::protocol::frame::coding::CloseCode;

pub use self::socket::Socket;
use crate::frame::{self, EncodedFrame};
use crate::sse;
use crate::stats::Stats;
use crate::threads::ThreadSpawner;

/// What became of one offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written to the socket by the caller.
    Written,
    /// Queued behind earlier frames; a writer thread delivers it.
    Queued,
    /// Over the queue's bounds: the client was dropped as a slow consumer.
    Full,
    /// The client is closing or gone; the frame was discarded.
    Closed,
    /// The socket failed, or no writer thread could be started.
    Failed,
}

impl Offer {
    /// Whether the frame is on its way to the client.
    pub fn accepted(self) -> bool {
        matches!(self, Offer::Written | Offer::Queued)
    }
}

/// Why a client is dropped as a slow consumer; shown in its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slow {
    /// More frames waiting than `--queue-len` (the limit).
    Frames(usize),
    /// More bytes waiting than `--queue-bytes` (the limit).
    Bytes(usize),
    /// One blocking write stalled for `--write-timeout`.
    Stalled(Duration),
}

impl fmt::Display for Slow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slow::Frames(limit) => write!(f, "queue over {limit} frames"),
            Slow::Bytes(limit) => write!(f, "queue over {limit} bytes"),
            Slow::Stalled(timeout) => write!(f, "a write blocked for {:.1} s", timeout.as_secs_f64()),
        }
    }
}

/// What the socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// WebSocket frames: a slow consumer gets Close 1008, and the last frame
    /// (a Close) shuts the write side only, so that the reader still reads
    /// the peer's Close.
    WebSocket,
    /// An event stream: a slow consumer gets a comment, and the last bytes
    /// shut both sides, which wakes the reader (the peer has nothing to say).
    EventStream,
}

impl Framing {
    /// What a client dropped as slow is sent, if the socket takes it at once.
    fn slow_consumer(self) -> EncodedFrame {
        match self {
            Framing::WebSocket => frame::close(CloseCode::Policy, "slow consumer"),
            Framing::EventStream => Arc::from(sse::SLOW_CONSUMER),
        }
    }

    /// The side of the socket shut once the last frame is written.
    fn after_last(self) -> Shutdown {
        match self {
            Framing::WebSocket => Shutdown::Write,
            Framing::EventStream => Shutdown::Both,
        }
    }
}

const OPEN: u8 = 0;
/// The final frame (a Close) has been offered; later frames are discarded.
const CLOSING: u8 = 1;
/// The final frame was written or the socket is dead: nothing more is written.
const FINISHED: u8 = 2;

struct Outgoing {
    bytes: EncodedFrame,
    /// After this frame (a Close) the write side is shut down.
    last: bool,
}

#[derive(Default)]
struct WriteState {
    /// The oldest pending frame and how much of it is written, when a write
    /// could only send part of it (or none: then the socket is still at a
    /// frame boundary).
    partial: Option<(Outgoing, usize)>,
}

/// Settings shared by every client's outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Frames a client may have waiting before it is dropped as slow.
    pub queue_len: usize,
    /// Bytes a client may have waiting before it is dropped as slow; one
    /// frame of any size is taken when nothing is waiting.
    pub queue_bytes: usize,
    /// How long one blocking write may stall before the client is dropped.
    pub write_timeout: Duration,
    /// Starts the backlog writer threads.
    pub spawner: ThreadSpawner,
    /// Where a client dropped as slow is counted.
    pub stats: Arc<Stats>,
}

/// The single writer of one client's socket (a `TcpStream` unless a test says otherwise).
pub struct Outbox<S = TcpStream> {
    socket: Arc<S>,
    write: Mutex<WriteState>,
    /// Frames accepted but not yet written, the partial one included.
    pending: AtomicUsize,
    /// Their bytes not yet written.
    pending_bytes: AtomicUsize,
    tx: Sender<Outgoing>,
    rx: Receiver<Outgoing>,
    writer_running: AtomicBool,
    phase: AtomicU8,
    /// Set with `ended` when the reason is a slow consumer.
    dropped_slow: AtomicBool,
    config: Arc<OutboxConfig>,
    framing: Framing,
    label: Box<str>,
    /// Why the server ended this connection, when it did (slow, reaped, shutdown).
    ended: OnceLock<Box<str>>,
}

impl<S: Socket> Outbox<S> {
    /// An outbox writing `framing` to `socket`; `label` names the client in thread names.
    pub fn new(socket: Arc<S>, config: Arc<OutboxConfig>, framing: Framing, label: String) -> Outbox<S> {
        // Unbounded in type, bounded by `pending`: a bounded crossbeam channel
        // allocates all its slots up front (32 KiB per client at 1024), while
        // this one allocates a block only while there is a backlog.
        let (tx, rx) = crossbeam_channel::unbounded();
        Outbox {
            socket,
            write: Mutex::new(WriteState::default()),
            pending: AtomicUsize::new(0),
            pending_bytes: AtomicUsize::new(0),
            tx,
            rx,
            writer_running: AtomicBool::new(false),
            phase: AtomicU8::new(OPEN),
            dropped_slow: AtomicBool::new(false),
            config,
            framing,
            label: label.into(),
            ended: OnceLock::new(),
        }
    }

    /// Frames accepted but not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(SeqCst)
    }

    /// Bytes of those frames not yet written (the bound checks read the
    /// counter itself; the unit tests read it through here).
    #[cfg(test)]
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes.load(SeqCst)
    }

    /// Records why the server is ending this connection; true the first time only.
    pub fn mark_ended(&self, reason: impl Into<String>) -> bool {
        self.ended.set(reason.into().into()).is_ok()
    }

    /// Why the server ended this connection, if it did.
    pub fn ended_reason(&self) -> Option<&str> {
        self.ended.get().map(|reason| &**reason)
    }

    /// Whether the connection was ended by `drop_slow`.
    pub fn dropped_slow(&self) -> bool {
        self.dropped_slow.load(SeqCst)
    }

    /// Whether a Close has been offered or the socket has failed.
    pub fn is_closing(&self) -> bool {
        self.phase.load(SeqCst) != OPEN
    }

    /// Sends `frame` to the client without ever blocking the caller. Over the
    /// queue's bounds the client is dropped as slow and `Full` returned.
    pub fn offer(self: &Arc<Self>, frame: EncodedFrame) -> Offer {
        if self.phase.load(SeqCst) != OPEN {
            return Offer::Closed;
        }
        match self.push(Outgoing {
            bytes: frame,
            last: false,
        }) {
            Ok(offer) => offer,
            Err(why) => {
                self.drop_slow(why);
                Offer::Full
            }
        }
    }

    /// Sends `close` as the last frame, then shuts the write side down.
    /// Returns false if a Close was already offered or the socket is gone.
    pub fn close(self: &Arc<Self>, close: EncodedFrame) -> bool {
        if self
            .phase
            .compare_exchange(OPEN, CLOSING, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        let accepted = self
            .push(Outgoing {
                bytes: close,
                last: true,
            })
            .is_ok_and(Offer::accepted);
        if !accepted {
            self.kill();
        }
        accepted
    }

    /// Drops the client as a slow consumer, for `why`: the one place that
    /// does (counted in `slow_clients_dropped`, the reason kept for the
    /// connection's log line, Close 1008 sent if the socket can take it).
    /// False if the server had already ended the connection for another reason.
    pub fn drop_slow(&self, why: Slow) -> bool {
        let first = self.mark_ended(format!("slow consumer ({why})"));
        if first {
            self.dropped_slow.store(true, SeqCst);
            self.config.stats.slow_clients_dropped.inc();
        }
        self.abort(&self.framing.slow_consumer());
        first
    }

    /// Ends the connection now: a `close` frame is sent first only if the
    /// socket is at a frame boundary and can take it without blocking.
    fn abort(&self, close: &[u8]) {
        if let Some(state) = self.write.try_lock() {
            let at_boundary = state.partial.as_ref().is_none_or(|(_, written)| *written == 0);
            if at_boundary && self.phase.load(SeqCst) != FINISHED {
                let _ = self.socket.send_now(close);
            }
        }
        self.kill();
    }

    /// Marks the socket dead and shuts it down, which also wakes its reader.
    pub fn kill(&self) {
        self.phase.store(FINISHED, SeqCst);
        self.socket.shutdown(Shutdown::Both);
    }

    /// A direct write when nothing is pending and the lock is free, else the
    /// queue; `Err` when the queue is over a bound.
    fn push(self: &Arc<Self>, item: Outgoing) -> Result<Offer, Slow> {
        if self.pending.load(SeqCst) == 0 {
            if let Some(state) = self.write.try_lock() {
                if self.pending.load(SeqCst) == 0 {
                    return Ok(self.write_direct(state, item));
                }
            }
        }
        self.enqueue(item)
    }

    /// The fast path: called with the write lock held and nothing pending.
    fn write_direct(self: &Arc<Self>, mut state: MutexGuard<'_, WriteState>, item: Outgoing) -> Offer {
        if self.phase.load(SeqCst) == FINISHED {
            return Offer::Closed;
        }
        let written = match self.socket.send_now(&item.bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                drop(state);
                self.kill();
                return Offer::Failed;
            }
        };
        if written == item.bytes.len() {
            if item.last {
                self.finish();
            }
            return Offer::Written;
        }
        // The socket buffer is full: the rest goes first when the writer runs.
        self.pending.fetch_add(1, SeqCst);
        self.pending_bytes.fetch_add(item.bytes.len() - written, SeqCst);
        state.partial = Some((item, written));
        drop(state);
        self.ensure_writer()
    }

    /// The final frame is out: tell the peer we are done writing.
    fn finish(&self) {
        self.phase.store(FINISHED, SeqCst);
        self.socket.shutdown(self.framing.after_last());
    }
}
