//! A scripted socket for the outbox's unit tests: it takes bytes while the
//! test has opened room for them, then answers `WouldBlock` (or, for a
//! blocking write, waits until the test opens more, stalls it, or shuts it).

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Socket;

/// Longest a blocking write waits for the test before failing it, so a broken test ends.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Which of the two writes took some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Now,
    Blocking,
}

#[derive(Default)]
struct Script {
    /// Bytes the socket takes before it is full (the peer's free window).
    room: usize,
    /// Most bytes one write takes (0: no limit), to force partial writes.
    chunk: usize,
    /// A blocked write fails with `TimedOut`, and then this much room opens.
    stall: Option<usize>,
    /// Every write fails with this.
    fail: Option<io::ErrorKind>,
    shut: bool,
    blocked: usize,
    out: Vec<u8>,
    writes: Vec<(Path, usize)>,
    shutdowns: Vec<Shutdown>,
}

/// The socket the tests script.
#[derive(Default)]
pub struct ScriptedSocket {
    script: Mutex<Script>,
    changed: Condvar,
}

impl ScriptedSocket {
    /// A socket with `room` bytes free.
    pub fn with_room(room: usize) -> ScriptedSocket {
        let socket = ScriptedSocket::default();
        socket.script.lock().room = room;
        socket
    }

    /// The peer read `n` bytes: that much more room.
    pub fn open(&self, n: usize) {
        self.script.lock().room += n;
        self.changed.notify_all();
    }

    /// No write takes more than `n` bytes at once.
    pub fn limit_writes_to(&self, n: usize) {
        self.script.lock().chunk = n;
    }

    /// The write timeout passes: a blocked write fails with `TimedOut`, after
    /// which the socket has `room_after` bytes free.
    pub fn stall(&self, room_after: usize) {
        self.script.lock().stall = Some(room_after);
        self.changed.notify_all();
    }

    /// Every write from now on fails with `kind`.
    pub fn fail_with(&self, kind: io::ErrorKind) {
        self.script.lock().fail = Some(kind);
        self.changed.notify_all();
    }

    /// Bytes the socket would take now.
    pub fn room(&self) -> usize {
        self.script.lock().room
    }

    /// Blocking writes waiting for room now.
    pub fn blocked(&self) -> usize {
        self.script.lock().blocked
    }

    /// Every byte written so far.
    pub fn out(&self) -> Vec<u8> {
        self.script.lock().out.clone()
    }

    /// Each write that took bytes: by which path, how many.
    pub fn writes(&self) -> Vec<(Path, usize)> {
        self.script.lock().writes.clone()
    }

    /// The shutdowns asked for, in order.
    pub fn shutdowns(&self) -> Vec<Shutdown> {
        self.script.lock().shutdowns.clone()
    }
}

impl Script {
    fn refusal(&self) -> Option<io::Error> {
        if self.shut {
            return Some(io::ErrorKind::BrokenPipe.into());
        }
        self.fail.map(io::Error::from)
    }

    fn take(&mut self, path: Path, bytes: &[u8]) -> usize {
        let limit = if self.chunk == 0 { usize::MAX } else { self.chunk };
        let n = bytes.len().min(self.room).min(limit);
        if n > 0 {
            self.room -= n;
            self.out.extend_from_slice(&bytes[..n]);
            self.writes.push((path, n));
        }
        n
    }
}

impl Socket for ScriptedSocket {
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut script = self.script.lock();
        if let Some(e) = script.refusal() {
            return Err(e);
        }
        match script.take(Path::Now, bytes) {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn send_blocking(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut script = self.script.lock();
        loop {
            if let Some(e) = script.refusal() {
                return Err(e);
            }
            if let Some(room) = script.stall.take() {
                script.room = room;
                return Err(io::ErrorKind::TimedOut.into());
            }
            match script.take(Path::Blocking, bytes) {
                0 => {}
                n => return Ok(n),
            }
            script.blocked += 1;
            let timed_out = self.changed.wait_for(&mut script, GIVE_UP).timed_out();
            script.blocked -= 1;
            if timed_out {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let mut script = self.script.lock();
        script.shutdowns.push(how);
        script.shut = true;
        self.changed.notify_all();
    }
}
