//! What the outbox writes to: a non-blocking write, a time-limited blocking one, a shutdown.
//!
//! A trait so that the outbox's backlog logic can be unit-tested against a
//! scripted socket. The outbox is generic over it (`Outbox<S>`), so a write
//! is a direct call, never a virtual one.

use std::io;
use std::net::{Shutdown, TcpStream};

use socket2::SockRef;

/// A connected byte stream the outbox is the only writer of.
pub trait Socket: Send + Sync + 'static {
    /// Writes as much of `bytes` as the socket takes now, without waiting:
    /// `WouldBlock` when it takes nothing. Never raises SIGPIPE.
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize>;

    /// Writes at least one byte of `bytes`, waiting for room at most the
    /// socket's write timeout (then `WouldBlock` or `TimedOut`).
    fn send_blocking(&self, bytes: &[u8]) -> io::Result<usize>;

    /// Shuts down one or both directions; errors (already closed) are ignored.
    fn shutdown(&self, how: Shutdown);
}

impl Socket for TcpStream {
    #[inline]
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        send_with_flags(self, bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    /// Bounded by `SO_SNDTIMEO`, which the session sets to `--write-timeout`.
    fn send_blocking(&self, bytes: &[u8]) -> io::Result<usize> {
        send_with_flags(self, bytes, libc::MSG_NOSIGNAL)
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }
}

fn send_with_flags(stream: &TcpStream, bytes: &[u8], flags: libc::c_int) -> io::Result<usize> {
    loop {
        match SockRef::from(stream).send_with_flags(bytes, flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
