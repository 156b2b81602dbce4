//! The router behind the front door: tiny_http, which parses each checked
//! request again and hands it out on its queue, and the routes that answer it.
//!
//! The thread of the connection that sent a request routes it itself
//! (`answer_here`) when the whole request went into the router's socket at
//! once: it picks the request up from tiny_http's queue (`pickup`), answers
//! it, and has tiny_http write the response into memory. Otherwise a helper
//! thread (`workers`) routes the request and tiny_http writes the response to
//! the socket (`answer_elsewhere`), while the connection's thread writes the
//! rest of the request and reads the response. Either way tiny_http, woken
//! once per request, reads the request and writes its response.

use std::io::{self, Cursor};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiny_http::{Method, Request, Response};

use super::exchange::readable;
use super::head::REQUEST_HEADER;
use super::pickup::{Pickup, Queue, TakeError, Ticket};
use super::socket_dir::SocketDir;
use super::workers::Workers;

/// The side port's routes, as the router runs them.
pub trait Routes: Send + Sync + 'static {
    /// The response to `request` from the client at `peer` (the body is
    /// read as the route needs it), with a `Content-Length`.
    fn answer(&self, request: &mut Request, peer: SocketAddr) -> Response<Cursor<Vec<u8>>>;
}

/// tiny_http on a Unix socket, and the private folder of that socket, which
/// must outlive it (its `Drop` wakes its accept thread through the socket):
/// the fields drop in this order, whichever thread lets go of them last.
pub struct TinyHttp {
    server: tiny_http::Server,
    dir: SocketDir,
}

impl TinyHttp {
    /// tiny_http listening in a fresh private folder.
    pub fn start() -> Result<TinyHttp, String> {
        let dir = SocketDir::create().map_err(|e| format!("cannot create the router's folder: {e}"))?;
        let path = dir.socket_path();
        let listener =
            UnixListener::bind(&path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(|e| e.to_string())?;
        Ok(TinyHttp { server, dir })
    }
}

impl Queue for TinyHttp {
    type Item = Request;
    type Key = u64;

    fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Request>> {
        self.server.recv_timeout(timeout)
    }

    fn owner(request: &Request) -> Option<u64> {
        let header = request.headers().iter().find(|h| h.field.equiv(REQUEST_HEADER))?;
        header.value.as_str().parse().ok()
    }
}

/// tiny_http, where its requests are picked up, the routes and the helpers.
pub struct Router {
    path: PathBuf,
    pickup: Arc<Pickup<TinyHttp>>,
    /// The number of the next request sent to tiny_http.
    next_request: AtomicU64,
    routes: Arc<dyn Routes>,
    workers: Workers,
}

impl Router {
    pub fn new(tiny_http: TinyHttp, routes: Arc<dyn Routes>, workers: Workers) -> Router {
        Router {
            path: tiny_http.dir.socket_path(),
            pickup: Arc::new(Pickup::new(tiny_http)),
            next_request: AtomicU64::new(1),
            routes,
            workers,
        }
    }

    /// Where tiny_http listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes a place for a request, under a number of its own
    /// (`Ticket::key`, which the request must carry); call it before the
    /// request is sent.
    pub fn expect(&self) -> Ticket<TinyHttp> {
        self.pickup.expect(self.next_request.fetch_add(1, Relaxed))
    }

    /// Picks the ticket's request up (sent whole on `stream`), answers it
    /// and returns the response as tiny_http writes it; `None` if tiny_http
    /// answered on `stream` by itself, leaving nothing to pick up.
    pub fn answer_here(
        &self,
        ticket: Ticket<TinyHttp>,
        peer: SocketAddr,
        stream: &UnixStream,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, String> {
        let mut request = match self.pickup.take(&ticket, deadline, || readable(stream)) {
            Ok(request) => request,
            Err(TakeError::Stopped) => return Ok(None),
            Err(e) => return Err(taking_failed(e)),
        };
        drop(ticket);
        let response = self.routes.answer(&mut request, peer);
        Ok(Some(render(request, response)))
    }

    /// A helper picks the ticket's request up, answers it and writes the
    /// response, unless `done` is set first (the connection's thread has
    /// its response, or gave up on it).
    pub fn answer_elsewhere(
        self: &Arc<Self>,
        ticket: Ticket<TinyHttp>,
        peer: SocketAddr,
        done: Arc<AtomicBool>,
        deadline: Instant,
    ) -> Result<(), String> {
        let router = Arc::clone(self);
        self.workers.run(move || {
            let taken = router.pickup.take(&ticket, deadline, || done.load(SeqCst));
            drop(ticket);
            match taken {
                Ok(mut request) if !done.load(SeqCst) => {
                    let response = router.routes.answer(&mut request, peer);
                    let _ = request.respond(response);
                }
                Ok(_) | Err(TakeError::Stopped) => {}
                Err(e) => log::warn!("http request never reached a route: {}", taking_failed(e)),
            }
        })
    }
}

/// The bytes tiny_http would write for `response` to `request` (what
/// `Request::respond` does, into memory): read back from the socket they
/// would cost two more system calls, and wake tiny_http's thread, which waits
/// on that socket for the next request.
fn render(request: Request, response: Response<Cursor<Vec<u8>>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(response.data_length().unwrap_or(0) + 256);
    let head_only = *request.method() == Method::Head;
    // Writing into a Vec cannot fail.
    let _ = response.raw_print(
        &mut out,
        request.http_version().clone(),
        request.headers(),
        head_only,
        None,
    );
    // Answered: tiny_http must not answer the request itself as it drops it.
    drop(request.into_writer());
    out
}

fn taking_failed(e: TakeError) -> String {
    match e {
        TakeError::TimedOut => "the router did not pass the request on in time".into(),
        TakeError::Stopped => "stopped waiting for the router".into(),
        TakeError::Queue(e) => format!("the router's queue failed: {e}"),
    }
}
