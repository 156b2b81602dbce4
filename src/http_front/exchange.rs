//! Bytes over the router's Unix socket: the request written while the
//! response is read (one `poll` loop), so a route that answers before reading
//! a large body cannot wedge either side, and the whole response taken before
//! the client is written to, so a client slow to read never holds the router.

use std::io::{self, IoSlice, Read};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use socket2::SockRef;

use super::response::{parse_response, Parsed};

/// Bytes read from the router per call once the response's length is known.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes asked for by the first read of a response (its head, and all of a small one).
const FIRST_READ: usize = 4096;

/// Writes what is left of `request` from byte `sent` on while reading the
/// response, until both are done; returns the response and its parsed head.
pub fn exchange(
    stream: &mut UnixStream,
    request: [&[u8]; 2],
    mut sent: usize,
    request_was_head: bool,
    deadline: Instant,
) -> Result<(Vec<u8>, Parsed), String> {
    let to_send = request[0].len() + request[1].len();
    let mut response = Incoming::default();
    // Nothing is known to be ready yet: try both before waiting (a response
    // the router already wrote is then read without a poll).
    let mut ready = PollFlags::IN | PollFlags::OUT;
    loop {
        let mut moved = false;
        if sent < to_send && ready.contains(PollFlags::OUT) {
            let now = send_some(stream, request, sent)?;
            moved |= now > sent;
            sent = now;
        }
        if ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            moved |= response.receive(stream, request_was_head)?;
        }
        if sent >= to_send && response.is_complete() {
            break;
        }
        ready = if moved {
            PollFlags::IN | PollFlags::OUT
        } else {
            let events = if sent < to_send {
                PollFlags::IN | PollFlags::OUT
            } else {
                PollFlags::IN
            };
            poll(stream, events, deadline)?
        };
    }
    response
        .parsed
        .map(|p| (response.bytes, p))
        .ok_or_else(|| "no response".into())
}

/// Writes what the socket takes of `request` from byte `sent` on, both parts
/// in one call (so the router's thread wakes once for a small request);
/// returns the new count.
pub fn send_some(stream: &UnixStream, request: [&[u8]; 2], sent: usize) -> Result<usize, String> {
    let (head, body) = match sent.checked_sub(request[0].len()) {
        None => (&request[0][sent..], request[1]),
        Some(offset) => (&[][..], &request[1][offset.min(request[1].len())..]),
    };
    if head.is_empty() && body.is_empty() {
        return Ok(sent);
    }
    let parts = [IoSlice::new(head), IoSlice::new(body)];
    let written = SockRef::from(stream).send_vectored_with_flags(&parts, libc::MSG_NOSIGNAL);
    let n = nonblocking(written).map_err(|e| format!("writing to the router: {e}"))?;
    Ok(sent + n)
}

/// A response arriving from the router.
#[derive(Default)]
struct Incoming {
    bytes: Vec<u8>,
    parsed: Option<Parsed>,
}

impl Incoming {
    fn is_complete(&self) -> bool {
        self.parsed
            .as_ref()
            .is_some_and(|p| self.bytes.len() >= p.total_len)
    }

    /// Reads what has come: a first read for the head, then exactly the rest
    /// of the body (anything past it is an error); true if bytes came.
    fn receive(&mut self, stream: &mut UnixStream, request_was_head: bool) -> Result<bool, String> {
        let want = match &self.parsed {
            Some(p) if self.bytes.len() >= p.total_len => return Ok(false),
            Some(p) => (p.total_len - self.bytes.len()).min(READ_CHUNK),
            None => FIRST_READ,
        };
        let old = self.bytes.len();
        self.bytes.resize(old + want, 0);
        let n = stream.read(&mut self.bytes[old..]);
        self.bytes.truncate(old + *n.as_ref().unwrap_or(&0));
        match n {
            Ok(0) => return Err("the router closed the connection".into()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Ok(false)
            }
            Err(e) => return Err(format!("reading from the router: {e}")),
        }
        if self.parsed.is_none() {
            self.parsed = parse_response(&self.bytes, request_was_head)?;
        }
        match &self.parsed {
            Some(p) if self.bytes.len() > p.total_len => Err("the router sent more than one response".into()),
            _ => Ok(true),
        }
    }
}

/// A non-blocking call's result, with "would block" as 0 bytes.
fn nonblocking(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
        other => other,
    }
}

/// True if the router has written something (or closed) on `stream`.
pub fn readable(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Waits until the stream is ready for `events`, or fails at `deadline`.
fn poll(stream: &UnixStream, events: PollFlags, deadline: Instant) -> Result<PollFlags, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer from the router in time".into());
        }
        let timeout = Timespec::try_from(left).ok();
        let mut fds = [PollFd::new(stream, events)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(fds[0].revents()),
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_written_in_one_call_from_any_point() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let request: [&[u8]; 2] = [b"HEAD\r\n", b"body"];
        assert_eq!(send_some(&ours, request, 0), Ok(10));
        assert_eq!(send_some(&ours, request, 10), Ok(10));
        assert_eq!(send_some(&ours, request, 8), Ok(10));
        assert_eq!(send_some(&ours, request, 3), Ok(10));
        drop(ours);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"HEAD\r\nbodydyD\r\nbody");
    }

    #[test]
    fn a_response_already_written_is_read_whole_and_one_more_byte_is_refused() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        assert!(!readable(&ours));
        let body = vec![b'x'; 3 * FIRST_READ];
        let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(&body);
        io::Write::write_all(&mut theirs, &raw).unwrap();
        assert!(readable(&ours));
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        let (got, parsed) = exchange(&mut ours, [b"", b""], 0, false, soon).unwrap();
        assert_eq!((got, parsed.status), (raw.clone(), 200));
        io::Write::write_all(&mut theirs, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok!").unwrap();
        let err = exchange(&mut ours, [b"", b""], 0, false, soon).unwrap_err();
        assert!(err.contains("more than one response"), "{err}");
    }
}
