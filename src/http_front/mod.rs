//! The side port's front door: wspush's own accept loop, and a thread per
//! connection that reads and checks every request before tiny_http routes it.
//!
//! tiny_http listens on a Unix socket in a private folder (`socket_dir`) and
//! sees only requests that passed here: a head within its size and time
//! limits (`head`), a body read in full (`body`), then one canonical HTTP/1.1
//! request with an exact `Content-Length` (`backend`). A connection's thread
//! (`conn`) handles its requests one after another. At most
//! `--http-max-connections` are open; at the cap the one that has waited on
//! its client the longest makes room, or the new one gets 503 (`conns`).

mod backend;
mod body;
mod conn;
mod conns;
mod head;
mod inbound;
mod refusal;
mod socket_dir;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use self::conns::{Admission, Conns};
pub use self::head::PEER_HEADER;
use self::refusal::Refusal;
pub use self::socket_dir::SocketDir;
use crate::config::Config;
use crate::stats::Stats;
use crate::threads::ThreadSpawner;

/// Stack of a connection's thread: a head's 100 parsed fields and a few
/// locals (buffers are on the heap). Fixed, not `--reader-stack-kib`, so a
/// WebSocket setting cannot take the side port down.
const CONN_STACK: usize = 128 * 1024;
/// How long `stop` waits for the connections' threads once their sockets are shut down.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

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
        }
    }
}

/// What every connection thread reads.
struct Context {
    settings: Settings,
    conns: Conns,
    stats: Arc<Stats>,
    router: Arc<PathBuf>,
    spawner: ThreadSpawner,
}

/// The running front door.
pub struct HttpFront {
    ctx: Arc<Context>,
    accept: JoinHandle<()>,
    wake: SocketAddr,
    stopping: Arc<AtomicBool>,
}

impl HttpFront {
    /// Serves `listener`, sending checked requests to the router at `router`
    /// (a Unix socket); `wake` reaches the listener, to stop the accept loop.
    pub fn start(
        listener: TcpListener,
        wake: SocketAddr,
        router: PathBuf,
        settings: Settings,
        stats: Arc<Stats>,
    ) -> std::io::Result<HttpFront> {
        let ctx = Arc::new(Context {
            conns: Conns::new(settings.max_connections, settings.evict_after),
            settings,
            stats,
            router: Arc::new(router),
            spawner: ThreadSpawner::new(CONN_STACK, CONN_STACK),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let accept = {
            let (ctx, stopping) = (Arc::clone(&ctx), Arc::clone(&stopping));
            thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || accept_loop(&listener, &ctx, &stopping))?
        };
        Ok(HttpFront {
            ctx,
            accept,
            wake,
            stopping,
        })
    }

    /// Stops accepting, shuts every open connection down and waits for their threads.
    pub fn stop(self) {
        self.stopping.store(true, SeqCst);
        // Wake the blocked accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        let _ = self.accept.join();
        if !self.ctx.conns.close_all(STOP_GRACE) {
            log::warn!("some side-port connections did not end within {STOP_GRACE:?}");
        }
    }
}

fn accept_loop(listener: &TcpListener, ctx: &Arc<Context>, stopping: &AtomicBool) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = listener.accept();
        if stopping.load(SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => admit(stream, peer, ctx),
            Err(e) => {
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    log::error!("side port: accept failed: {e}");
                    last_error_log = Some(Instant::now());
                }
                thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
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
    let spawned = ctx.spawner.spawn_reader(format!("http-{peer}"), move || {
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
