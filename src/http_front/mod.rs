//! The side port's front door: wspush's own accept loop, and a thread per
//! connection that reads and checks every request before tiny_http routes it.
//!
//! tiny_http listens on a Unix socket in a private folder (`socket_dir`) and
//! sees only requests that passed here: a head within its size and time
//! limits (`head`), a body read in full (`body`), then one canonical HTTP/1.1
//! request with an exact `Content-Length` (`backend`). A connection's thread
//! (`conn`) handles its requests one after another, and routes each itself:
//! it picks the request up from tiny_http's queue and runs the routes on it
//! (`router`, `pickup`), then relays tiny_http's response (`exchange`,
//! `response`); helper threads take the part of an exchange too large for one
//! thread (`workers`). At most `--http-max-connections` are open; at the cap
//! the one that has waited on its client the longest makes room, or the new
//! one gets 503 (`conns`).
//!
//! Its threads are started by the server's `ThreadSpawner` (a connection's
//! with the fixed stack of `Role::HttpConn`) and end on the server's `Stop`:
//! the accept loop checks it after each accept (shutdown wakes it with a
//! connection of its own), and `HttpFront::join` then shuts the open
//! connections down, which ends their threads, and ends the helpers.

mod backend;
mod body;
mod conn;
mod conns;
mod exchange;
mod head;
mod inbound;
mod pickup;
mod refusal;
mod response;
mod router;
mod socket_dir;
mod timed;
mod workers;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use self::conns::{Admission, Conns};
use self::refusal::Refusal;
use self::router::Router;
pub use self::router::{Routes, TinyHttp};
use self::workers::WorkerThreads;
use crate::accept::accept_until_stopped;
use crate::config::Config;
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::threads::{Role, ThreadSpawner};

/// How long `join` waits for the connections' threads once their sockets are shut down.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The front door's limits, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--http-header-timeout`.
    pub header_timeout: Duration,
    /// `--http-body-timeout`.
    pub body_timeout: Duration,
    /// `--write-timeout`.
    pub write_timeout: Duration,
    /// `--max-body-bytes`.
    pub max_body: usize,
    /// `--http-max-connections`.
    pub max_connections: usize,
    /// `--http-evict-after`.
    pub evict_after: Duration,
    /// `--http-threads`.
    pub helpers: u16,
}

impl Settings {
    /// The settings the flags give.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            header_timeout: config.http_header_timeout,
            body_timeout: config.http_body_timeout,
            write_timeout: config.write_timeout,
            max_body: config.max_body_bytes,
            max_connections: config.http_max_connections as usize,
            evict_after: config.http_evict_after,
            helpers: config.http_threads,
        }
    }
}

/// What the front door is started with.
pub struct FrontDoor {
    /// The side port.
    pub listener: TcpListener,
    /// tiny_http, which parses every request again (`router`).
    pub router: TinyHttp,
    /// What answers the requests tiny_http parses.
    pub routes: Arc<dyn Routes>,
    pub settings: Settings,
    pub stats: Arc<Stats>,
    /// Starts the accept loop and a thread per connection (`Role::HttpConn`).
    pub spawner: ThreadSpawner,
    /// Checked after each accept: shutdown wakes the loop with a connection of its own.
    pub stop: StopToken,
    /// Counts the side-port connections that ended, for the heap trimmer (`pinger`).
    pub ended: Counter,
}

/// What every connection thread reads.
struct Context {
    settings: Settings,
    conns: Arc<Conns>,
    stats: Arc<Stats>,
    router: Arc<Router>,
    spawner: ThreadSpawner,
    ended: Counter,
}

/// The running front door.
pub struct HttpFront {
    ctx: Arc<Context>,
    accept: Option<JoinHandle<()>>,
    helpers: WorkerThreads,
}

impl HttpFront {
    /// Serves the side port, sending checked requests to the router, until
    /// the stop. If a thread cannot start, the error comes with the front
    /// door: join it once the stop is given.
    pub fn start(door: FrontDoor) -> (HttpFront, io::Result<()>) {
        let FrontDoor {
            listener,
            router,
            routes,
            settings,
            stats,
            spawner,
            stop,
            ended,
        } = door;
        let (workers, helpers, started) = workers::start(settings.helpers, &spawner);
        let ctx = Arc::new(Context {
            conns: Arc::new(Conns::new(settings.max_connections, settings.evict_after)),
            settings,
            stats,
            router: Arc::new(Router::new(router, routes, workers)),
            spawner,
            ended,
        });
        let mut front = HttpFront {
            ctx: Arc::clone(&ctx),
            accept: None,
            helpers,
        };
        if let Err(e) = started {
            return (front, Err(e));
        }
        let spawner = ctx.spawner.clone();
        let accept = spawner.spawn(Role::Service, "http-accept".into(), move || {
            accept_until_stopped(&listener, &stop, "side port", |stream, peer| {
                admit(stream, peer, &ctx);
            });
        });
        match accept {
            Ok(accept) => {
                front.accept = Some(accept);
                (front, Ok(()))
            }
            Err(e) => (front, Err(e)),
        }
    }

    /// After the stop, once the accept loop has been woken: waits for it,
    /// shuts every open connection down and waits for their threads, then
    /// ends the helpers.
    pub fn join(self) {
        if let Some(accept) = self.accept {
            let _ = accept.join();
        }
        if !self.ctx.conns.close_all(STOP_GRACE) {
            log::warn!("some side-port connections did not end within {STOP_GRACE:?}");
        }
        self.helpers.join();
    }
}

/// Gives the connection a place and a thread, or a 503.
fn admit(stream: TcpStream, peer: SocketAddr, ctx: &Arc<Context>) {
    let kept = match stream.try_clone() {
        Ok(kept) => kept,
        Err(e) => {
            log::warn!("http connection from {peer} dropped: {e}");
            return;
        }
    };
    let slot = match ctx.conns.admit(kept, peer) {
        Admission::Admitted(slot) => slot,
        Admission::Evicted(slot, victim) => {
            ctx.stats.http_connections_evicted.inc();
            log::info!(
                "http connection from {victim} closed to make room for {peer} \
                 (--http-max-connections {} reached; it waited longest on its client)",
                ctx.settings.max_connections
            );
            slot
        }
        Admission::Full => {
            ctx.stats.http_connections_refused.inc();
            let reason = format!(
                "the side port has its limit of {} connections open (--http-max-connections); retry",
                ctx.settings.max_connections
            );
            log::warn!("http 503 from {peer}: {reason}");
            answer_at_the_door(&stream, &Refusal::new(503, reason));
            return;
        }
    };
    let for_thread = (Arc::clone(ctx), Arc::clone(&slot));
    let spawned = ctx
        .spawner
        .spawn(Role::HttpConn, format!("http-{peer}"), move || {
            let (ctx, slot) = for_thread;
            conn::run(stream, peer, slot, ctx);
        });
    if spawned.is_err() {
        // The thread's closure is gone with its stream; the table kept a clone.
        if let Some(kept) = ctx.conns.remove(&slot) {
            ctx.stats.http_connections_refused.inc();
            let reason = "the server cannot create a thread for this connection; retry";
            answer_at_the_door(&kept, &Refusal::new(503, reason));
        }
    }
}

/// Answers without blocking the accept loop: what the client already sent is
/// read (so closing does not reset the answer), the answer written if the
/// socket takes it, and our side closed.
fn answer_at_the_door(stream: &TcpStream, refusal: &Refusal) {
    let mut stream = stream;
    let _ = stream.set_nonblocking(true);
    let mut scratch = [0u8; 4096];
    let _ = stream.read(&mut scratch);
    let _ = stream.write(&refusal.response());
    let _ = stream.shutdown(Shutdown::Write);
}
