//! One client's outgoing path: every byte written to its socket goes through here.
//!
//! A delivery is first tried as a direct, non-blocking write from the caller's
//! thread (the fan-out, the pinger, the client's own reader). That costs no
//! thread wake-up, and it is what happens for every client that keeps up. Only
//! when the socket cannot take the frame at once does it go to the client's
//! bounded queue, and a writer thread is started to drain that backlog with
//! blocking, time-limited writes; it ends when the backlog is gone.
//!
//! Order is exact because of two rules: a direct write happens only under the
//! write lock (taken with `try_lock`, so the caller never waits) and only when
//! `pending` is zero, and `pending` counts a frame from before it is queued
//! until it has been written, so a frame the writer has dequeued but not yet
//! written still blocks the direct path.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use socket2::SockRef;

use crate::frame::EncodedFrame;
use crate::stats::Stats;
use crate::threads::ThreadSpawner;

/// What became of one offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written to the socket by the caller.
    Written,
    /// Queued behind earlier frames; a writer thread delivers it.
    Queued,
    /// The queue is full: the client is not keeping up.
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
    /// The unwritten rest of a frame a direct write could only partly send.
    partial: Option<(Outgoing, usize)>,
}

/// Settings shared by every client's outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Frames a client may have waiting before it is dropped as slow.
    pub queue_len: usize,
    /// How long one blocking write may stall before the client is dropped.
    pub write_timeout: Duration,
    /// Starts the backlog writer threads.
    pub spawner: ThreadSpawner,
    /// Where a client dropped for a stalled write is counted.
    pub stats: Arc<Stats>,
}

/// The single writer of one client's socket.
pub struct Outbox {
    stream: Arc<TcpStream>,
    write: Mutex<WriteState>,
    pending: AtomicUsize,
    tx: Sender<Outgoing>,
    rx: Receiver<Outgoing>,
    writer_running: AtomicBool,
    phase: AtomicU8,
    config: Arc<OutboxConfig>,
    label: String,
    /// Why the server ended this connection, when it did (slow, reaped, shutdown).
    ended: OnceLock<String>,
}

impl Outbox {
    /// An outbox writing to `stream`; `label` names the client in thread names.
    pub fn new(stream: Arc<TcpStream>, config: Arc<OutboxConfig>, label: String) -> Outbox {
        // Unbounded in type, bounded by `pending`: a bounded crossbeam channel
        // allocates all its slots up front (32 KiB per client at 1024), while
        // this one allocates a block only while there is a backlog.
        let (tx, rx) = crossbeam_channel::unbounded();
        Outbox {
            stream,
            write: Mutex::new(WriteState::default()),
            pending: AtomicUsize::new(0),
            tx,
            rx,
            writer_running: AtomicBool::new(false),
            phase: AtomicU8::new(OPEN),
            config,
            label,
            ended: OnceLock::new(),
        }
    }

    /// Frames accepted but not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(SeqCst)
    }

    /// Records why the server is ending this connection; true the first time only.
    pub fn mark_ended(&self, reason: impl Into<String>) -> bool {
        self.ended.set(reason.into()).is_ok()
    }

    /// Why the server ended this connection, if it did.
    pub fn ended_reason(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    /// Whether a Close has been offered or the socket has failed.
    pub fn is_closing(&self) -> bool {
        self.phase.load(SeqCst) != OPEN
    }

    /// Sends `frame` to the client without ever blocking the caller.
    pub fn offer(self: &Arc<Self>, frame: EncodedFrame) -> Offer {
        if self.phase.load(SeqCst) != OPEN {
            return Offer::Closed;
        }
        self.push(Outgoing {
            bytes: frame,
            last: false,
        })
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
        let offer = self.push(Outgoing {
            bytes: close,
            last: true,
        });
        if !offer.accepted() {
            self.kill();
        }
        offer.accepted()
    }

    /// Ends the connection now: a `close` frame is sent first only if the
    /// socket is at a frame boundary and can take it without blocking.
    pub fn abort(&self, close: Option<EncodedFrame>) {
        if let (Some(close), Some(state)) = (close, self.write.try_lock()) {
            if state.partial.is_none() && self.phase.load(SeqCst) != FINISHED {
                let _ = send_nonblocking(&self.stream, &close);
            }
        }
        self.kill();
    }

    /// Marks the socket dead and shuts it down, which also wakes its reader.
    pub fn kill(&self) {
        self.phase.store(FINISHED, SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn lock(&self) -> MutexGuard<'_, WriteState> {
        self.write.lock()
    }

    fn push(self: &Arc<Self>, item: Outgoing) -> Offer {
        if self.pending.load(SeqCst) == 0 {
            if let Some(state) = self.write.try_lock() {
                if self.pending.load(SeqCst) == 0 {
                    return self.write_direct(state, item);
                }
            }
        }
        if self.pending.fetch_add(1, SeqCst) >= self.config.queue_len {
            self.pending.fetch_sub(1, SeqCst);
            return Offer::Full;
        }
        match self.tx.send(item) {
            Ok(()) => self.ensure_writer(),
            // Cannot happen while `self` holds the receiver.
            Err(_) => {
                self.pending.fetch_sub(1, SeqCst);
                Offer::Failed
            }
        }
    }

    /// The fast path: called with the write lock held and nothing pending.
    fn write_direct(self: &Arc<Self>, mut state: MutexGuard<'_, WriteState>, item: Outgoing) -> Offer {
        if self.phase.load(SeqCst) == FINISHED {
            return Offer::Closed;
        }
        let written = match send_nonblocking(&self.stream, &item.bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
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
        state.partial = Some((item, written));
        drop(state);
        self.ensure_writer()
    }

    fn ensure_writer(self: &Arc<Self>) -> Offer {
        if self
            .writer_running
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            return Offer::Queued;
        }
        let me = Arc::clone(self);
        let name = format!("writer-{}", self.label);
        match self.config.spawner.spawn_writer(name, move || me.drain()) {
            Ok(()) => Offer::Queued,
            Err(_) => {
                self.writer_running.store(false, SeqCst);
                self.kill();
                Offer::Failed
            }
        }
    }

    /// The writer thread: drains the backlog, then ends.
    fn drain(&self) {
        loop {
            match self.write_next() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.write_failed(&e);
                    self.writer_running.store(false, SeqCst);
                    self.kill();
                    return;
                }
            }
            // Nothing left: stand down, unless a frame was counted meanwhile and
            // its sender saw this writer still running (and so started none).
            self.writer_running.store(false, SeqCst);
            if self.pending.load(SeqCst) == 0
                || self
                    .writer_running
                    .compare_exchange(false, true, SeqCst, SeqCst)
                    .is_err()
            {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// Writes the next backlogged frame; false when there is none.
    fn write_next(&self) -> io::Result<bool> {
        let mut state = self.lock();
        let (item, offset) = match state.partial.take() {
            Some(partial) => partial,
            None => match self.rx.try_recv() {
                Ok(item) => (item, 0),
                Err(_) => return Ok(false),
            },
        };
        if self.phase.load(SeqCst) != FINISHED {
            (&*self.stream).write_all(&item.bytes[offset..])?;
            if item.last {
                self.finish();
            }
        }
        self.pending.fetch_sub(1, SeqCst);
        Ok(true)
    }

    /// A blocking write failed: a stall past the write timeout is a slow
    /// consumer (counted, logged); anything else is a dead socket the reader
    /// will report.
    fn write_failed(&self, e: &io::Error) {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            let secs = self.config.write_timeout.as_secs_f64();
            if self.mark_ended(format!("slow consumer: a write blocked for {secs:.1} s")) {
                self.config.stats.slow_clients_dropped.inc();
                log::warn!(
                    "client {} dropped: slow consumer (a write blocked for {secs:.1} s)",
                    self.label
                );
            }
        } else {
            self.mark_ended(format!("write failed: {e}"));
        }
    }

    /// The final frame is out: tell the peer we are done writing.
    fn finish(&self) {
        self.phase.store(FINISHED, SeqCst);
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

fn send_nonblocking(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match SockRef::from(stream).send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
