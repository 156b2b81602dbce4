//! The stream tungstenite reads from: the socket for reading, a buffer for writing.
//!
//! tungstenite writes the Pong and Close replies it owes into the stream it is
//! given. The reader thread must never write to the socket itself (the outbox
//! is the socket's one writer), so after the handshake those writes land in
//! `captured`, and the reader hands them to the outbox as whole frames.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use super::LastSeen;

/// Socket reads, captured writes.
pub struct ConnIo {
    stream: Arc<TcpStream>,
    last_seen: Arc<LastSeen>,
    /// During the handshake writes go straight to the socket (nobody else writes yet).
    capture: bool,
    captured: Vec<u8>,
    /// While handshaking: reads fail once this passes, however slowly bytes trickle in.
    deadline: Option<Instant>,
}

impl ConnIo {
    /// Wraps `stream`, stamping `last_seen` on every read that brings bytes.
    pub fn new(stream: Arc<TcpStream>, last_seen: Arc<LastSeen>) -> ConnIo {
        ConnIo {
            stream,
            last_seen,
            capture: false,
            captured: Vec::new(),
            deadline: None,
        }
    }

    /// Limits every read to the time left before `deadline` (`None`: no limit).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// From now on, writes are kept for the outbox instead of going to the socket.
    pub fn start_capturing(&mut self) {
        self.capture = true;
    }

    /// The bytes tungstenite wrote since the last call.
    pub fn take_captured(&mut self) -> Option<Vec<u8>> {
        if self.captured.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.captured))
        }
    }

    /// The socket.
    pub fn stream(&self) -> &Arc<TcpStream> {
        &self.stream
    }
}

impl Read for ConnIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
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
            (&*self.stream).write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
