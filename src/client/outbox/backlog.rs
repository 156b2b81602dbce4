//! The backlog of a client that is behind: its bounded queue and the writer thread that drains it.

use std::io;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use super::{Offer, Outbox, Outgoing, Slow, Socket, FINISHED};
use crate::threads::Role;

impl<S: Socket> Outbox<S> {
    /// Queues `item` behind what is pending and makes sure a writer runs.
    ///
    /// Refused when it would make more than `queue_len` frames, or when
    /// something is already pending and the bytes would pass `queue_bytes`:
    /// one frame of any size is taken when nothing waits, or a publish larger
    /// than the bound would drop every client. Concurrent offers (a broadcast
    /// and an echo) may each pass the check, so the bound holds to within a
    /// frame or two.
    pub(super) fn enqueue(self: &Arc<Self>, item: Outgoing) -> Result<Offer, Slow> {
        let len = item.bytes.len();
        let config = &self.config;
        let frames = self.pending.fetch_add(1, SeqCst);
        let bytes = self.pending_bytes.fetch_add(len, SeqCst);
        let over = if frames >= config.queue_len {
            Some(Slow::Frames(config.queue_len))
        } else if frames > 0 && bytes.saturating_add(len) > config.queue_bytes {
            Some(Slow::Bytes(config.queue_bytes))
        } else {
            None
        };
        if let Some(why) = over {
            self.pending.fetch_sub(1, SeqCst);
            self.pending_bytes.fetch_sub(len, SeqCst);
            return Err(why);
        }
        match self.tx.send(item) {
            Ok(()) => Ok(self.ensure_writer()),
            // Cannot happen while `self` holds the receiver.
            Err(_) => {
                self.pending.fetch_sub(1, SeqCst);
                self.pending_bytes.fetch_sub(len, SeqCst);
                Ok(Offer::Failed)
            }
        }
    }

    /// Starts the writer thread unless it is running.
    pub(super) fn ensure_writer(self: &Arc<Self>) -> Offer {
        if self
            .writer_running
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            return Offer::Queued;
        }
        let me = Arc::clone(self);
        let name = format!("writer-{}", self.label);
        match self.config.spawner.spawn(Role::Writer, name, move || me.drain()) {
            Ok(_detached) => Offer::Queued,
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

    /// Writes the next backlogged frame; false when there is none. A failed
    /// write leaves the frame as the partial one, so that `abort` knows
    /// whether the socket is at a frame boundary.
    fn write_next(&self) -> io::Result<bool> {
        let mut state = self.write.lock();
        let (item, mut written) = match state.partial.take() {
            Some(partial) => partial,
            None => match self.rx.try_recv() {
                Ok(item) => (item, 0),
                Err(_) => return Ok(false),
            },
        };
        if self.phase.load(SeqCst) == FINISHED {
            self.pending_bytes.fetch_sub(item.bytes.len() - written, SeqCst);
        } else {
            while written < item.bytes.len() {
                let sent = match self.socket.send_blocking(&item.bytes[written..]) {
                    Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                    other => other,
                };
                match sent {
                    Ok(n) => {
                        written += n;
                        self.pending_bytes.fetch_sub(n, SeqCst);
                    }
                    Err(e) => {
                        state.partial = Some((item, written));
                        return Err(e);
                    }
                }
            }
            if item.last {
                self.finish();
            }
        }
        self.pending.fetch_sub(1, SeqCst);
        Ok(true)
    }

    /// A blocking write failed: a stall past the write timeout is a slow
    /// consumer; anything else is a dead socket the reader will report.
    fn write_failed(&self, e: &io::Error) {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            self.drop_slow(Slow::Stalled(self.config.write_timeout));
        } else {
            self.mark_ended(format!("write failed: {e}"));
        }
    }
}
