//! The bytes a side-port client sends: a bounded buffer, reads with a deadline.
//!
//! Reads take a deadline (an instant), not a per-read timeout, so a client
//! that trickles bytes cannot push it back. The buffer holds at most
//! `MAX_BUFFERED` bytes: a request head, or what a client pipelined after
//! one; bodies are read past it, straight into their own vector.

use std::io;
use std::time::Instant;

/// The most bytes kept between requests (one request head at most).
pub const MAX_BUFFERED: usize = 16 * 1024;
/// Bytes asked of the kernel per read into the buffer.
const READ_CHUNK: usize = 4096;
/// Bytes read per call when a body is read past the buffer.
const BODY_CHUNK: usize = 64 * 1024;

/// Why a read gave nothing.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed.
    TimedOut,
    /// The client closed its side (or the connection was shut down here).
    Closed,
    /// The connection failed (e.g. reset).
    Io(io::Error),
}

/// Something to read from with a deadline.
pub trait Source {
    /// Reads into `buf` before `deadline`; `Ok(0)` is never returned (it is `Closed`).
    fn read_before(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadError>;
}

/// A client's unread bytes and the source they come from.
pub struct Inbound<S> {
    source: S,
    /// Zeroed once as it grows, then read into again and again: bytes
    /// `start..end` are the unread ones.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S: Source> Inbound<S> {
    /// Nothing buffered yet.
    pub fn new(source: S) -> Inbound<S> {
        Inbound {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// The source itself (the socket, to write answers on).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The bytes received and not yet used.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // An idle keep-alive connection keeps no more than one read's buffer.
            if self.buf.len() > READ_CHUNK {
                self.buf = Vec::new();
            }
        }
    }

    /// Reads more into the buffer; false when it already holds `MAX_BUFFERED` bytes.
    pub fn fill(&mut self, deadline: Instant) -> Result<bool, ReadError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end >= MAX_BUFFERED {
            return Ok(false);
        }
        // Into the room the buffer has, or a chunk more.
        if self.buf.len() == self.end {
            self.buf.resize((self.end + READ_CHUNK).min(MAX_BUFFERED), 0);
        }
        let got = self.source.read_before(&mut self.buf[self.end..], deadline)?;
        self.end += got;
        Ok(true)
    }

    /// The next line without its CRLF, if it has at most `max` bytes (`None`: it has more).
    /// A line ending in a bare LF is returned with `bare_lf` set.
    pub fn line(&mut self, max: usize, deadline: Instant) -> Result<Option<Line>, ReadError> {
        loop {
            let unread = self.unread();
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                let crlf = i > 0 && unread[i - 1] == b'\r';
                let end = if crlf { i - 1 } else { i };
                if end > max {
                    return Ok(None);
                }
                let text = unread[..end].to_vec();
                self.consume(i + 1);
                return Ok(Some(Line { text, bare_lf: !crlf }));
            }
            // Past `max` bytes and a CR, no line ending can come in time.
            if unread.len() > max + 1 || !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Appends exactly `n` more bytes to `out`: the buffered ones first, then
    /// straight from the source (never reading past them).
    pub fn take_into(&mut self, n: usize, out: &mut Vec<u8>, deadline: Instant) -> Result<(), ReadError> {
        let buffered = self.unread().len().min(n);
        out.extend_from_slice(&self.unread()[..buffered]);
        self.consume(buffered);
        let mut left = n - buffered;
        while left > 0 {
            let old = out.len();
            out.resize(old + left.min(BODY_CHUNK), 0);
            let got = self.source.read_before(&mut out[old..], deadline);
            out.truncate(old + *got.as_ref().unwrap_or(&0));
            left -= got?;
        }
        Ok(())
    }

    /// Reads and drops up to `max` bytes until the client closes or `deadline`
    /// passes, so closing does not reset the connection under our last answer.
    pub fn drain(&mut self, max: usize, deadline: Instant) {
        self.consume(usize::MAX);
        let mut scratch = [0u8; 4096];
        let mut seen = 0;
        while seen < max {
            match self.source.read_before(&mut scratch, deadline) {
                Ok(n) => seen += n,
                Err(_) => return,
            }
        }
    }
}

/// One line of a chunked body's framing.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The line without its line ending.
    pub text: Vec<u8>,
    /// It ended in a bare LF instead of CRLF.
    pub bare_lf: bool,
}

/// A source of canned reads for unit tests: each read hands out the next piece;
/// when they run out, the read times out (or reports `Closed` if so set).
#[cfg(test)]
pub struct Canned {
    pub pieces: std::collections::VecDeque<Vec<u8>>,
    pub closed_at_end: bool,
}

#[cfg(test)]
impl Canned {
    /// The pieces in order, then a timeout.
    pub fn new(pieces: &[&[u8]]) -> Canned {
        Canned {
            pieces: pieces.iter().map(|p| p.to_vec()).collect(),
            closed_at_end: false,
        }
    }
}

#[cfg(test)]
impl Source for Canned {
    fn read_before(&mut self, buf: &mut [u8], _deadline: Instant) -> Result<usize, ReadError> {
        let Some(mut piece) = self.pieces.pop_front() else {
            return Err(if self.closed_at_end {
                ReadError::Closed
            } else {
                ReadError::TimedOut
            });
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        if n < piece.len() {
            self.pieces.push_front(piece.split_off(n));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn lines_span_reads_and_keep_what_follows() {
        let mut inbound = Inbound::new(Canned::new(&[b"5;ext", b"=1\r\nhel", b"lo"]));
        let line = inbound.line(100, soon()).unwrap().unwrap();
        assert_eq!(
            line,
            Line {
                text: b"5;ext=1".to_vec(),
                bare_lf: false
            }
        );
        let mut body = Vec::new();
        inbound.take_into(5, &mut body, soon()).unwrap();
        assert_eq!(body, b"hello");
        assert!(matches!(inbound.line(100, soon()), Err(ReadError::TimedOut)));
    }

    #[test]
    fn a_line_longer_than_its_limit_is_none() {
        let mut inbound = Inbound::new(Canned::new(&[b"0123456789abcdef\r\n"]));
        assert_eq!(inbound.line(8, soon()).unwrap(), None);
        let mut inbound = Inbound::new(Canned::new(&[b"ab\n"]));
        assert_eq!(
            inbound.line(8, soon()).unwrap(),
            Some(Line {
                text: b"ab".to_vec(),
                bare_lf: true
            })
        );
    }

    #[test]
    fn the_buffer_stops_at_its_limit() {
        let big = vec![b'a'; MAX_BUFFERED + 10];
        let mut inbound = Inbound::new(Canned::new(&[&big]));
        while inbound.fill(soon()).unwrap() {}
        assert_eq!(inbound.unread().len(), MAX_BUFFERED);
    }

    #[test]
    fn the_buffer_is_kept_between_requests_and_compacted_in_place() {
        let mut inbound = Inbound::new(Canned::new(&[
            b"GET / HTTP/1.1\r\n\r\nGE",
            b"T /x HTTP/1.1\r\n\r\n",
        ]));
        assert!(inbound.fill(soon()).unwrap());
        let at = inbound.buf.as_ptr();
        inbound.consume(18);
        assert_eq!(inbound.unread(), b"GE");
        assert!(inbound.fill(soon()).unwrap());
        assert_eq!(inbound.unread(), b"GET /x HTTP/1.1\r\n\r\n");
        inbound.consume(usize::MAX);
        assert!(inbound.unread().is_empty());
        assert_eq!(inbound.buf.as_ptr(), at, "the same buffer throughout");
    }

    #[test]
    fn draining_after_a_partial_read_drops_everything() {
        let mut inbound = Inbound::new(Canned::new(&[b"4\r\nrest", b"more"]));
        assert!(inbound.line(10, soon()).unwrap().is_some());
        inbound.drain(1 << 20, soon());
        assert!(inbound.unread().is_empty());
    }

    #[test]
    fn take_into_reads_no_further_than_asked() {
        let mut inbound = Inbound::new(Canned::new(&[b"ab", b"cdefgh"]));
        assert!(inbound.fill(soon()).unwrap());
        let mut body = Vec::new();
        inbound.take_into(4, &mut body, soon()).unwrap();
        assert_eq!(body, b"abcd");
        assert!(inbound.unread().is_empty());
        assert!(inbound.fill(soon()).unwrap());
        assert_eq!(inbound.unread(), b"efgh");
    }
}
