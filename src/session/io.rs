//! The stream tungstenite reads from: the bytes the request head was read
//! from first, then the socket; a buffer for writing.
//!
//! The head was read before tungstenite was given the connection (`request`),
//! so its handshake reads those bytes again first (`replay`), then the socket.
//! tungstenite writes the Pong and Close replies it owes into the stream it is
//! given. The reader thread must never write to the socket itself (the outbox
//! is the socket's one writer), so after the handshake those writes land in
//! `captured`, and the reader hands them to the outbox as whole frames.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::LastSeen;

/// Socket reads, captured writes.
pub struct ConnIo {
    stream: Arc<TcpStream>,
    last_seen: Arc<LastSeen>,
    /// Bytes already read off the socket, read again before it (freed once read).
    replay: Vec<u8>,
    replayed: usize,
    /// During the handshake writes go straight to the socket (nobody else writes yet).
    capture: bool,
    captured: Vec<u8>,
    /// While handshaking: every read and write fails once this passes, however
    /// slowly bytes trickle in (a socket timeout alone restarts with each byte).
    deadline: Option<Instant>,
}

impl ConnIo {
    /// Wraps `stream` for a handshake that must finish by `deadline`, stamping
    /// `last_seen` on every read that brings bytes; `replay` is read first.
    pub fn handshaking(
        stream: Arc<TcpStream>,
        last_seen: Arc<LastSeen>,
        deadline: Instant,
        replay: Vec<u8>,
    ) -> ConnIo {
        ConnIo {
            stream,
            last_seen,
            replay,
            replayed: 0,
            capture: false,
            captured: Vec::new(),
            deadline: Some(deadline),
        }
    }

    /// The handshake is over: no more deadline, and from now on writes are
    /// kept for the outbox instead of going to the socket.
    pub fn handshake_done(&mut self) {
        self.deadline = None;
        self.capture = true;
    }

    /// The time left before the deadline (`None`: no deadline); an error once it passed.
    fn time_left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline passed",
            ));
        }
        Ok(Some(left))
    }

    /// The bytes tungstenite wrote since the last call.
    pub fn take_captured(&mut self) -> Option<Vec<u8>> {
        if self.captured.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.captured))
        }
    }

    pub fn stream(&self) -> &Arc<TcpStream> {
        &self.stream
    }
}

impl Read for ConnIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.replayed < self.replay.len() {
            let n = (self.replay.len() - self.replayed).min(buf.len());
            buf[..n].copy_from_slice(&self.replay[self.replayed..self.replayed + n]);
            self.replayed += n;
            if self.replayed == self.replay.len() {
                // An idle connection keeps this struct: keep no buffer in it.
                self.replay = Vec::new();
                self.replayed = 0;
            }
            return Ok(n);
        }
        if let Some(left) = self.time_left()? {
            self.stream.set_read_timeout(Some(left))?;
        }
        let n = (&*self.stream).read(buf)?;
        if n > 0 {
            self.last_seen.touch();
        }
        Ok(n)
    }
}

impl Write for ConnIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.capture {
            self.captured.extend_from_slice(buf);
            Ok(buf.len())
        } else {
            if let Some(left) = self.time_left()? {
                self.stream.set_write_timeout(Some(left))?;
            }
            (&*self.stream).write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
