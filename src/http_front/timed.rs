//! A side-port client's socket, read and written by deadlines, with the
//! socket's timeouts set only when the ones it has would not do.
//!
//! Every read and write must end by its deadline, so each is bounded by the
//! socket's `SO_RCVTIMEO` / `SO_SNDTIMEO`. Setting them costs a system call,
//! and on a keep-alive connection the time left is nearly the same from one
//! request to the next, so a timeout is kept while it ends no later than the
//! deadline and not much before it: a read that times out early just waits
//! again with what is left.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::inbound::{ReadError, Source};

/// The shortest timeout set (zero would mean none).
const SHORTEST: Duration = Duration::from_micros(1);

/// A client's TCP stream and the timeouts its socket has now.
pub struct TimedStream {
    stream: TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TimedStream {
    /// A stream whose timeouts are not known yet (both get set on first use).
    pub fn new(stream: TcpStream) -> TimedStream {
        TimedStream {
            stream,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// The stream itself, for what needs no deadline (shutdown, a last write).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes all of `bytes` before `deadline`.
    pub fn write_before(&self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if let Some(timeout) = timeout_to_set(self.write_timeout.get(), left) {
                self.write_timeout.set(None);
                self.stream.set_write_timeout(Some(timeout))?;
                self.write_timeout.set(Some(timeout));
            }
            match (&self.stream).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Source for TimedStream {
    fn read_before(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::TimedOut);
            }
            if let Some(timeout) = timeout_to_set(self.read_timeout.get(), left) {
                self.read_timeout.set(None);
                self.stream
                    .set_read_timeout(Some(timeout))
                    .map_err(ReadError::Io)?;
                self.read_timeout.set(Some(timeout));
            }
            match self.stream.read(buf) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

/// The timeout to give the socket before a call with `left` until its
/// deadline, or `None` if the one it has (`current`) will do: it ends no
/// later than the deadline and at most an eighth of `left` before it. A new
/// one is set a sixteenth short of `left`, so that the next call, with a
/// little more or less time left, can keep it.
fn timeout_to_set(current: Option<Duration>, left: Duration) -> Option<Duration> {
    match current {
        Some(timeout) if timeout <= left && timeout >= left - left / 8 => None,
        _ => Some((left - left / 16).max(SHORTEST)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_timeout_is_kept_while_it_ends_by_the_deadline_and_not_much_before() {
        let set = timeout_to_set(None, 10 * SECOND).unwrap();
        assert!(set < 10 * SECOND && set > 9 * SECOND, "{set:?}");
        // The next request on the connection: about as much time left.
        assert_eq!(timeout_to_set(Some(set), 10 * SECOND), None);
        assert_eq!(timeout_to_set(Some(set), set), None);
        // Less left than the timeout: it would outlast the deadline.
        let shorter = timeout_to_set(Some(set), set - Duration::from_nanos(1)).unwrap();
        assert!(shorter < set);
        // Much more left: the read would end far too early.
        assert!(timeout_to_set(Some(SECOND), 10 * SECOND).is_some());
    }

    #[test]
    fn the_set_timeout_never_outlasts_the_deadline_and_is_never_zero() {
        for left in [
            Duration::from_nanos(1),
            Duration::from_micros(1),
            Duration::from_millis(3),
            10 * SECOND,
        ] {
            let set = timeout_to_set(None, left).unwrap();
            assert!(set >= SHORTEST);
            assert!(set <= left.max(SHORTEST), "{set:?} for {left:?}");
            assert_eq!(timeout_to_set(Some(set), left.max(SHORTEST)), None);
        }
    }
}
