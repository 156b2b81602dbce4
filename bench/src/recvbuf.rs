//! A client connection's receive buffer, shared by the WebSocket and the
//! event-stream clients: zero-filled once and reused for the whole
//! connection (tokio-tungstenite zero-filled its buffer before every read,
//! 15% of the load generator's CPU), compacted before a read, grown only for
//! a longer frame or line. Bytes are handed out by absolute ranges that stay
//! valid until the next [`RecvBuf::spare`].

use std::io::{self, Read};
use std::net::TcpStream;
use std::ops::Range;

use crate::pool::Step;

/// Initial size.
const INITIAL: usize = 4096;
/// Free space below which the buffer grows before a read.
const MIN_FREE: usize = 1024;

/// What one read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    /// The read filled all the free space: more may be waiting.
    pub full: bool,
    /// The peer ended the stream.
    pub eof: bool,
}

impl Filled {
    /// What the reader thread does next, once what was read is handled
    /// (`open`: the connection goes on).
    pub fn step(self, open: bool) -> Step {
        match (open, self) {
            (false, _) | (_, Filled { eof: true, .. }) => Step::Closed,
            (_, Filled { full: true, .. }) => Step::More,
            _ => Step::Drained,
        }
    }
}

/// Bytes `start..end` of `buf` are received and not yet handled.
pub struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for RecvBuf {
    fn default() -> RecvBuf {
        RecvBuf {
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
        }
    }
}

impl RecvBuf {
    /// Free space to read into: at least `MIN_FREE` bytes, and room for `need`
    /// bytes received in all (a frame whose header said how long it is).
    pub fn spare(&mut self, need: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < MIN_FREE || self.buf.len() < need {
            let len = (self.buf.len() * 2).max(need).max(self.end + MIN_FREE);
            self.buf.resize(len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`RecvBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes received and not yet handled.
    pub fn received(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The first `n` bytes received are handled: gone from [`RecvBuf::received`],
    /// and their range (still readable with [`RecvBuf::at`]).
    pub fn take(&mut self, n: usize) -> Range<usize> {
        let from = self.start;
        self.start = (self.start + n).min(self.end);
        from..self.start
    }

    /// Where the unhandled bytes lie: (start, end) (tests look at it).
    #[cfg(test)]
    pub fn span(&self) -> (usize, usize) {
        (self.start, self.end)
    }

    /// Bytes of a range [`RecvBuf::take`] gave.
    pub fn at(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Reads once from `sock` (non-blocking), making room for `need` bytes.
    /// `Err(step)` when the reader thread must not handle anything now: read
    /// again (interrupted), or drop the connection (an error).
    pub fn read_from(&mut self, sock: &TcpStream, need: usize) -> Result<Filled, Step> {
        let spare = self.spare(need);
        let free = spare.len();
        let (n, eof) = match (&*sock).read(spare) {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(Step::More),
            Err(_) => return Err(Step::Closed),
        };
        self.filled(n);
        Ok(Filled { full: n == free, eof })
    }
}
