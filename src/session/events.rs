//! An event-stream connection (`GET /events/{channels}`): the checks, the
//! response head, the join, then watching the socket until the stream ends.
//!
//! The client sends nothing after its request, so there is nothing to read
//! and no silence to reap by: this thread only reads to learn of the end of
//! the connection, with no deadline. A peer that disappears without a word
//! leaves the stream's bytes (a `: ping` comment at least every
//! `--ping-interval`) unacknowledged, and the kernel ends the connection
//! after `--pong-timeout` of that (`TCP_USER_TIMEOUT`); a peer that cannot
//! keep up is dropped by the outbox's bounds like any client.
//!
//! The end of the client's bytes does not end the stream by itself: HTTP lets
//! a client half-close once its request is sent (`nc -N` does) and still read
//! the response. So a ping comment goes out at once, and the stream ends when
//! the socket fails: a peer that has closed answers that write with a reset.

use std::io::{self as stdio, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::handshake::{self, Asked, Refusal, Rejection};
use super::request::RequestHead;
use super::target::{self, BadTarget, Wanted};
use super::{new_client, register, rejected, Registered, SessionContext};
use crate::client::{Client, LastSeen};
use crate::proxy::ClientAddr;
use crate::registry::Slot;
use crate::sse::{self, Cors};

/// Watches the stream's socket until the stream ends, then ends it.
// Inlined into `session::run`, as `ws::serve` is.
#[inline(always)]
pub(super) fn serve(stream: &TcpStream, registered: Registered, slot: Slot) {
    let ending = watch(stream, &registered.client);
    registered.end(slot, &ending, |_| {});
}

/// The checks, the response head, the client made and joined (its
/// `connected` line logged); `None` (answered and logged) if refused or failed.
/// `deadline` is the handshake's, by when the response head must be written.
pub(super) fn open(
    stream: &Arc<TcpStream>,
    head: RequestHead,
    from: ClientAddr,
    deadline: Instant,
    ctx: &SessionContext,
) -> Option<Registered> {
    let wanted = match check(&head, ctx) {
        Ok(wanted) => wanted,
        Err(refusal) => {
            rejected(ctx, &from, &handshake::refuse(stream, refusal));
            return None;
        }
    };
    // Any origin that passed the policy: a page of another origin (another
    // port is one) may read the stream only with these headers. When tokens
    // are checked, also with `withCredentials` (how a `wspush_token` cookie
    // reaches another origin; the browser wants the credentials header on
    // such a request whether or not it had a cookie to send).
    let cors = head.origin.as_deref().map(|origin| Cors {
        origin,
        credentials: ctx.handshake.gate.is_checking(),
    });
    if let Err(e) = start(stream, cors, deadline, ctx) {
        let rejection = match e.kind() {
            stdio::ErrorKind::WouldBlock | stdio::ErrorKind::TimedOut => Rejection::Timeout,
            _ => Rejection::Io(e),
        };
        rejected(ctx, &from, &rejection);
        return None;
    }
    let last_seen = Arc::new(LastSeen::now());
    let client = new_client(stream, from, last_seen, wanted.subscription, wanted.grant, ctx);
    Some(register(ctx, client, &wanted.start))
}

/// What the request asks for, if it may have it: GET, a good channel list,
/// an allowed origin, a subscribe token that covers its channels (when
/// tokens are checked), a server not shutting down.
fn check(head: &RequestHead, ctx: &SessionContext) -> Result<Wanted, Refusal> {
    if head.method != "GET" {
        return Err(Refusal::Method(head.method.clone()));
    }
    let settings = &ctx.handshake;
    let mut wanted = target::parse_events(
        &head.path,
        head.query.as_deref(),
        head.last_event_id.as_deref(),
        &settings.targets,
    )
    .map_err(|bad| match bad {
        BadTarget::NoEndpoint => Refusal::NoEndpoint(head.path.clone()),
        BadTarget::Invalid(reason) => Refusal::BadTarget(reason),
    })?;
    let asked = Asked {
        channels: &wanted.subscription.channels,
        origin: head.origin.as_deref(),
        host: head.host.as_deref(),
        query: head.query.as_deref(),
        cookies: head.cookies.iter().map(Vec::as_slice),
    };
    wanted.grant = handshake::admit(asked, settings, ctx.stop.is_stopped())?;
    Ok(wanted)
}

/// Writes the response head and the stream's start before `deadline`
/// (nobody else writes to the socket yet), then readies the socket for the
/// outbox: its write timeout, no Nagle delay, and the unacknowledged-bytes
/// timeout that is an event stream's silence rule.
fn start(
    stream: &TcpStream,
    cors: Option<Cors<'_>>,
    deadline: Instant,
    ctx: &SessionContext,
) -> stdio::Result<()> {
    let mut bytes = sse::response_head(cors).into_bytes();
    bytes.extend_from_slice(sse::STREAM_START);
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    (&*stream).write_all(&bytes)?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(ctx.write_timeout))?;
    stream.set_nodelay(true)?;
    let unacked_ms = u32::try_from(ctx.unacked_timeout.as_millis()).unwrap_or(u32::MAX);
    rustix::net::sockopt::set_tcp_user_timeout(stream, unacked_ms)?;
    Ok(())
}

/// Waits for the end of the stream; returns why it ended. What the client
/// sends is read and dropped. Out of line, with a small buffer: this is what
/// an idle connection's stack holds.
#[inline(never)]
fn watch(stream: &TcpStream, client: &Client) -> String {
    let mut buf = [0u8; 64];
    loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => continue,
            Err(e) => return format!("socket error: {e}"),
        }
    }
    if client.outbox.is_closing() {
        // Our own end of the stream woke the read.
        return "connection closed".to_owned();
    }
    // The client sent its last byte: closed, or only half-closed? A ping
    // comment asks; a closed peer answers it with a reset.
    client.outbox.offer(sse::ping());
    wait_for_failure(stream)
}

/// Waits until the socket fails or both its sides are shut (by the peer's
/// reset, or by the outbox ending the stream); returns why.
fn wait_for_failure(stream: &TcpStream) -> String {
    loop {
        // No events asked for: poll reports only errors and hang-ups.
        let mut fds = [PollFd::new(stream, PollFlags::empty())];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return format!("socket error: {e}"),
            Ok(_) => break,
        }
    }
    match stream.take_error() {
        Ok(Some(e)) => {
            format!("client closed the connection (a ping comment found it gone: {e})")
        }
        _ => "client closed the connection".to_owned(),
    }
}
