//! The refuser thread: answers 503 to the connections the acceptor cannot
//! take, without ever waiting on one of them.
//!
//! The 503 is written at once, non-blocking (a fresh socket's send buffer has
//! room for it), and the write side is shut down. The socket then lingers,
//! its bytes read and dropped, until the client closes it or `LINGER` passes:
//! closing it while the client's request sits unread would reset the
//! connection under the response. One `poll` watches every lingering socket;
//! at most `MAX_LINGERING` linger, the oldest closed first. So a flood of idle
//! connections costs each a write, a slot in a bounded list and at most
//! `LINGER`, and the next client still gets its 503 at once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use rustix::event::{PollFd, PollFlags};

use crate::http_error::error_response;
use crate::threads::{Role, ThreadSpawner};

/// Connections handed over but not yet answered.
const HANDOVER: usize = 256;
/// Longest a refused connection is kept open for its client to read the 503.
const LINGER: Duration = Duration::from_secs(2);
/// Most refused connections kept open at once.
const MAX_LINGERING: usize = 512;
/// Reads of one socket per wake-up.
const DRAIN_READS: usize = 16;

/// The acceptor's end: hands a connection over with the reason for its 503.
pub struct Refuse {
    queue: Sender<(TcpStream, &'static str)>,
    /// One byte per hand-over wakes the refuser's `poll`.
    wake: UnixStream,
}

impl Refuse {
    pub fn send(&self, stream: TcpStream, reason: &'static str) {
        match self.queue.try_send((stream, reason)) {
            // Non-blocking: a full wake-up pipe means a wake-up is due anyway.
            Ok(()) => drop((&self.wake).write(&[1])),
            // Far behind: answer here, and close at once.
            Err(TrySendError::Full((stream, reason)) | TrySendError::Disconnected((stream, reason))) => {
                answer(&stream, reason);
            }
        }
    }
}

/// Starts the refuser; it ends when the `Refuse` end is dropped.
pub fn start(spawner: &ThreadSpawner) -> io::Result<(Refuse, JoinHandle<()>)> {
    let (queue, handed) = crossbeam_channel::bounded(HANDOVER);
    let (wake, woken) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    let thread = spawner.spawn(Role::Service, "refuser".into(), move || {
        Refuser {
            handed,
            woken,
            lingering: VecDeque::new(),
        }
        .run();
    })?;
    Ok((Refuse { queue, wake }, thread))
}

/// Writes the 503 without waiting and ends the write side.
fn answer(stream: &TcpStream, reason: &str) {
    let response = error_response(503, "Service Unavailable", reason, "retry-after: 1\r\n");
    let _ = stream.set_nonblocking(true);
    let mut out = stream;
    let _ = out.write(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

struct Lingering {
    stream: TcpStream,
    until: Instant,
}

struct Refuser {
    handed: Receiver<(TcpStream, &'static str)>,
    woken: UnixStream,
    /// Oldest first; with one `LINGER` for all, also the first to expire.
    lingering: VecDeque<Lingering>,
}

impl Refuser {
    fn run(mut self) {
        loop {
            if !self.take_handed() {
                return;
            }
            let now = Instant::now();
            while self.lingering.front().is_some_and(|l| l.until <= now) {
                self.lingering.pop_front();
            }
            if let Err(e) = self.wait() {
                log::error!("refuser: poll failed: {e}");
                return;
            }
        }
    }

    /// Answers every connection handed over; false once the acceptor is gone.
    fn take_handed(&mut self) -> bool {
        loop {
            match self.handed.try_recv() {
                Ok((stream, reason)) => {
                    answer(&stream, reason);
                    if self.lingering.len() == MAX_LINGERING {
                        self.lingering.pop_front();
                    }
                    self.lingering.push_back(Lingering {
                        stream,
                        until: Instant::now() + LINGER,
                    });
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Waits for a hand-over, a lingering socket's bytes or close, or the
    /// oldest one's deadline; drops what the lingering sockets sent and
    /// closes those their clients closed.
    fn wait(&mut self) -> io::Result<()> {
        let timeout = self.lingering.front().and_then(|oldest| {
            rustix::event::Timespec::try_from(oldest.until.saturating_duration_since(Instant::now())).ok()
        });
        let mut fds = Vec::with_capacity(self.lingering.len() + 1);
        fds.push(PollFd::new(&self.woken, PollFlags::IN));
        fds.extend(
            self.lingering
                .iter()
                .map(|l| PollFd::new(&l.stream, PollFlags::IN)),
        );
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            drain(&self.woken);
        }
        let mut index = 0;
        self.lingering.retain(|l| {
            index += 1;
            !ready[index] || drain(&l.stream)
        });
        Ok(())
    }
}

/// Reads and drops what is waiting (up to `DRAIN_READS` reads, so a client
/// that keeps sending cannot hold the thread); false once the peer closed.
fn drain(mut socket: impl Read) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..DRAIN_READS {
        match socket.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}
