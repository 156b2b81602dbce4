//! One side-port connection's thread: each request is read in full and
//! checked, routed, and answered before the next one is looked at, so
//! pipelined requests run in the order they were sent.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use super::backend::Backend;
use super::body::{self, BodyError};
use super::conns::{Conns, Phase, Slot};
use super::head::{self, Head};
use super::inbound::{Inbound, ReadError, Source};
use super::refusal::Refusal;
use super::timed::TimedStream;
use super::Context;

/// How long a closing connection keeps reading what the client still sends,
/// so that closing does not reset the connection under our last response.
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes read (and dropped) while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// The client's socket; reads stop once the connection is evicted.
struct Client {
    stream: TimedStream,
    slot: Arc<Slot>,
}

impl Source for Client {
    fn read_before(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadError> {
        if self.slot.is_evicted() {
            return Err(ReadError::Closed);
        }
        self.stream.read_before(buf, deadline)
    }
}

/// How serving the connection ended.
enum End {
    /// The front door refuses the request: answer, then close.
    Refused(Refusal),
    /// Evicted to make room; `mid_request` if a request had begun to arrive.
    Evicted { mid_request: bool },
    /// Nothing more to do (the client left, or idled past the deadline).
    Gone(String),
}

/// Takes the connection out of the table when its thread ends, however it
/// ends: after the thread has let go of the context (and with it the
/// router), so that once the table is empty, the router can be dropped.
struct Leave {
    conns: Arc<Conns>,
    ended: Counter,
    slot: Arc<Slot>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.conns.remove(&self.slot);
        self.ended.inc();
    }
}

/// Serves one connection until it closes.
pub fn run(stream: TcpStream, peer: SocketAddr, slot: Arc<Slot>, ctx: Arc<Context>) {
    let _leave = Leave {
        conns: Arc::clone(&ctx.conns),
        ended: ctx.ended.clone(),
        slot: Arc::clone(&slot),
    };
    serve(stream, peer, slot, ctx);
}

fn serve(stream: TcpStream, peer: SocketAddr, slot: Arc<Slot>, ctx: Arc<Context>) {
    let _ = stream.set_nodelay(true);
    let mut inbound = Inbound::new(Client {
        stream: TimedStream::new(stream),
        slot: Arc::clone(&slot),
    });
    let mut backend = Backend::new(Arc::clone(&ctx.router), peer);
    let mut since = Instant::now();
    let end = loop {
        match serve_one(&mut inbound, &mut backend, since, &ctx) {
            Ok(Some(answered)) => {
                // The wait on the client goes on from when its response began
                // to be written; the next head's deadline counts from now.
                since = Instant::now();
                if !ctx.conns.set_phase(&slot, Phase::Reading(answered)) {
                    break End::Evicted { mid_request: false };
                }
            }
            Ok(None) => break End::Gone("closed after the response".into()),
            Err(end) => break end,
        }
    };
    finish(end, &mut inbound, peer, &ctx);
}

/// Answers as the end requires, then closes.
fn finish(end: End, inbound: &mut Inbound<Client>, peer: SocketAddr, ctx: &Context) {
    match end {
        End::Refused(refusal) => {
            ctx.conns
                .set_phase(&inbound.source().slot, Phase::Writing(Instant::now()));
            ctx.stats.http_requests_rejected.inc();
            log::info!("http {} from {peer}: {}", refusal.status, refusal.reason);
            let deadline = Instant::now() + ctx.settings.write_timeout;
            if inbound
                .source()
                .stream
                .write_before(&refusal.response(), deadline)
                .is_ok()
            {
                linger(inbound);
            }
        }
        End::Evicted { mid_request } => {
            // The accept loop logged it; the answer must not block anyone.
            if mid_request {
                ctx.stats.http_requests_rejected.inc();
                let refusal = Refusal::new(
                    408,
                    "closed to make room for another connection: send requests faster",
                );
                let stream = inbound.source().stream.stream();
                let _ = stream.set_nonblocking(true);
                let _ = (&*stream).write(&refusal.response());
            }
            let _ = inbound.source().stream.stream().shutdown(Shutdown::Both);
        }
        End::Gone(why) => {
            log::debug!("http connection from {peer} ends: {why}");
            linger(inbound);
        }
    }
}

/// Reads, routes and answers one request; to wait for another on this
/// connection, returns when the response began to be written.
fn serve_one(
    inbound: &mut Inbound<Client>,
    backend: &mut Backend,
    since: Instant,
    ctx: &Context,
) -> Result<Option<Instant>, End> {
    let settings = &ctx.settings;
    let head = read_head(inbound, since + settings.header_timeout, settings.max_body)?;
    let body = read_body(inbound, &head, ctx)?;
    let slot = &inbound.source().slot;
    if !ctx.conns.set_phase(slot, Phase::Routing) {
        return Err(End::Evicted { mid_request: true });
    }
    let answer = backend
        .route(&head, &body, head.keep_alive)
        .map_err(|e| End::Refused(Refusal::new(502, format!("the side port's router failed: {e}"))))?;
    drop(body);
    let answered = Instant::now();
    ctx.conns.set_phase(slot, Phase::Writing(answered));
    inbound
        .source()
        .stream
        .write_before(&answer.bytes, answered + settings.write_timeout)
        .map_err(|e| End::Gone(format!("writing the {} response: {e}", answer.status)))?;
    Ok(head.keep_alive.then_some(answered))
}

/// Reads until a whole head is buffered and checks it; parses only when a
/// line has ended, so a head trickled byte by byte costs one parse per line.
fn read_head(inbound: &mut Inbound<Client>, deadline: Instant, max_body: usize) -> Result<Head, End> {
    let mut checked = 0;
    loop {
        // Empty lines before a request line are allowed (RFC 9112 section 2.2).
        let blank = inbound
            .unread()
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        inbound.consume(blank);
        let unread = inbound.unread();
        if unread[checked.min(unread.len())..].contains(&b'\n') {
            checked = unread.len();
            if let Some(head) = head::parse(unread, max_body).map_err(End::Refused)? {
                inbound.consume(head.len);
                return Ok(head);
            }
        }
        let mid_request = !inbound.unread().is_empty();
        match inbound.fill(deadline) {
            Ok(true) => {}
            Ok(false) => return Err(End::Refused(head::too_large())),
            Err(ReadError::TimedOut) if mid_request => {
                return Err(End::Refused(Refusal::new(
                    408,
                    "request head not complete within --http-header-timeout",
                )))
            }
            Err(e) => {
                return Err(ended(
                    e,
                    mid_request,
                    "waiting for a request",
                    &inbound.source().slot,
                ))
            }
        }
    }
}

/// Reads the body the head announces, answering `100 Continue` first if asked.
fn read_body(inbound: &mut Inbound<Client>, head: &Head, ctx: &Context) -> Result<Vec<u8>, End> {
    if !head.has_body() {
        return Ok(Vec::new());
    }
    let settings = &ctx.settings;
    if head.expects_continue && inbound.unread().is_empty() {
        let deadline = Instant::now() + settings.write_timeout;
        inbound
            .source()
            .stream
            .write_before(b"HTTP/1.1 100 Continue\r\n\r\n", deadline)
            .map_err(|e| End::Gone(format!("writing 100 Continue: {e}")))?;
    }
    let deadline = Instant::now() + settings.body_timeout;
    match body::read(inbound, head.framing, settings.max_body, deadline) {
        Ok(body) => Ok(body),
        Err(BodyError::Refused(refusal)) => Err(End::Refused(refusal)),
        Err(BodyError::Read(ReadError::TimedOut)) => Err(End::Refused(Refusal::new(
            408,
            "request body not complete within --http-body-timeout",
        ))),
        Err(BodyError::Read(e)) => Err(ended(e, true, "reading a body", &inbound.source().slot)),
    }
}

/// A read that ended the connection: evicted, idle past the deadline, or the client gone.
fn ended(e: ReadError, mid_request: bool, doing: &str, slot: &Slot) -> End {
    match e {
        _ if slot.is_evicted() => End::Evicted { mid_request },
        ReadError::TimedOut => End::Gone(format!("idle past --http-header-timeout {doing}")),
        ReadError::Closed => End::Gone(format!("client closed {doing}")),
        ReadError::Io(e) => End::Gone(format!("{e} {doing}")),
    }
}

/// Closes our side, then reads what the client still sends until it closes
/// too (bounded in time and bytes), so our last response is not reset.
fn linger(inbound: &mut Inbound<Client>) {
    let _ = inbound.source().stream.stream().shutdown(Shutdown::Write);
    inbound.drain(LINGER_BYTES, Instant::now() + LINGER);
}
