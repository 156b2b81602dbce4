//! Wiring: binds both ports, starts the threads, and shuts them down in order.
//!
//! Threads: one acceptor and one refuser for the WebSocket port, a reader per
//! connection (plus a writer while it has a backlog), the pinger, the side
//! port's accept loop and a thread per side-port connection (`http_front`),
//! and the HTTP workers behind it. `Shared` is what they all read.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use socket2::{Domain, Socket, Type};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use crate::broadcast::Fanout;
use crate::client::OutboxConfig;
use crate::cluster::{self, Cluster, ClusterThreads, Publisher};
use crate::config::Config;
use crate::frame::{self, EncodedFrame};
use crate::http_api::HttpApi;
use crate::http_front::{self, HttpFront, SocketDir};
use crate::limits::Ceilings;
use crate::origin::OriginPolicy;
use crate::pods::{PodList, PodsError};
use crate::registry::Registry;
use crate::stats::{Stats, StatsSnapshot};
use crate::threads::ThreadSpawner;
use crate::{acceptor, pinger};

/// How long shutdown waits for clients to answer Close 1001 and for writers to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pending connections the kernel may hold for the acceptor.
const LISTEN_BACKLOG: i32 = 4096;
/// tungstenite's write buffer: it only ever holds a Pong or a Close reply.
const WS_WRITE_BUFFER: usize = 4096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The HTTP side port could not be started.
    #[error("cannot start the HTTP side port on {addr}: {reason}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The pod list is invalid.
    #[error(transparent)]
    Pods(#[from] PodsError),
    /// A flag's value cannot work.
    #[error("invalid settings: {0}")]
    Invalid(String),
    /// A server thread could not be started.
    #[error("cannot start a server thread: {0}")]
    Thread(#[from] io::Error),
}

/// What every server thread reads.
pub struct Shared {
    pub(crate) config: Config,
    pub(crate) origins: OriginPolicy,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) fanout: Fanout,
    /// Where publishes go: this node's fan-out, or Redis with `--redis`.
    pub(crate) publisher: Publisher,
    pub(crate) spawner: ThreadSpawner,
    pub(crate) outbox_config: Arc<OutboxConfig>,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) pods: PodList,
    pub(crate) ws_addr: SocketAddr,
    pub(crate) going_away: EncodedFrame,
    started: Instant,
    shutting_down: AtomicBool,
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(SeqCst)
    }

    pub(crate) fn stats_snapshot(&self) -> StatsSnapshot {
        let mut snapshot = self
            .stats
            .snapshot(self.registry.len(), self.spawner.failures(), self.started);
        snapshot.cluster = self.publisher.cluster().map(|c| c.stats());
        snapshot
    }
}

/// A running server. Dropping it without `shutdown` leaves its threads running.
pub struct Server {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    front: HttpFront,
    http: HttpApi,
    /// The router's socket folder; removed after the router is dropped.
    socket_dir: SocketDir,
    acceptor: JoinHandle<()>,
    refuser: JoinHandle<()>,
    pinger: JoinHandle<()>,
    stop_pinger: Sender<()>,
    cluster: Option<ClusterThreads>,
}

impl Server {
    /// Binds both ports and starts serving.
    pub fn start(config: Config) -> Result<Server, StartError> {
        validate(&config)?;
        let ceilings = Ceilings::raise_and_read();
        let max_clients = match config.max_clients {
            Some(n) => n,
            None => {
                let (n, bound_by) = ceilings.max_clients();
                log::info!("max clients {n} (bound by the {bound_by}; {ceilings:?})");
                n
            }
        };
        let pods = match &config.pods {
            Some(path) => PodList::load(path)?,
            None => PodList::builtin(),
        };
        if config.publish_token.is_none() && !config.http_addr.ip().is_loopback() {
            log::warn!(
                "the HTTP side port {} is not loopback and no --publish-token is set: anyone who reaches it can publish",
                config.http_addr
            );
        }
        if config.redis.is_none() && config.node_id.is_some() {
            log::warn!("--node-id has no effect without --redis");
        }
        if !config.html_dir.is_dir() {
            log::warn!(
                "html folder {} does not exist; the page will answer 404",
                config.html_dir.display()
            );
        }

        let listener = listen(config.ws_addr)?;
        let ws_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.ws_addr,
            source,
        })?;
        let http_listener = listen(config.http_addr)?;
        let http_addr = http_listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.http_addr,
            source,
        })?;
        let (socket_dir, http_server) = router(config.http_addr)?;

        let stats = Arc::new(Stats::default());
        let node = match &config.redis {
            Some(_) => Some(cluster::node_name(&config).map_err(StartError::Invalid)?),
            None => None,
        };
        let registry = Registry::for_node(max_clients, node);
        let fanout_threads = match config.fanout_threads {
            Some(n) => usize::from(n),
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let fanout = Fanout::new(Arc::clone(&registry), Arc::clone(&stats), fanout_threads);
        let publisher = match (&config.redis, node) {
            (Some(url), Some(node)) => Publisher::Redis(
                Cluster::new(
                    &config,
                    url,
                    node,
                    fanout.clone(),
                    Arc::clone(&registry),
                    format!("ws://{ws_addr}{}", crate::handshake::WS_PATH),
                    format!("http://{http_addr}/"),
                )
                .map_err(StartError::Invalid)?,
            ),
            _ => Publisher::Local(fanout.clone()),
        };
        let spawner = ThreadSpawner::new(config.reader_stack_kib * 1024, config.writer_stack_kib * 1024);
        let shared = Arc::new(Shared {
            origins: OriginPolicy::from_flags(&config.allowed_origins),
            fanout,
            publisher,
            outbox_config: Arc::new(OutboxConfig {
                queue_len: config.queue_len as usize,
                write_timeout: config.write_timeout,
                spawner: spawner.clone(),
                stats: Arc::clone(&stats),
            }),
            ws_config: WebSocketConfig::default()
                .read_buffer_size(config.read_buffer_bytes)
                .write_buffer_size(WS_WRITE_BUFFER)
                .max_write_buffer_size(WS_WRITE_BUFFER * 4)
                .max_message_size(Some(config.max_message_bytes))
                .max_frame_size(Some(config.max_message_bytes)),
            going_away: frame::close(CloseCode::Away, "going away"),
            registry,
            stats,
            spawner,
            pods,
            ws_addr,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            config,
        });
        let cluster = match shared.publisher.cluster() {
            Some(cluster) => {
                let threads = cluster.start()?;
                if !cluster.wait_up(cluster::STARTUP_WAIT) {
                    log::warn!(
                        "cluster: not subscribed at redis {} yet: serving degraded (publishes answer 503) until it is",
                        cluster.target()
                    );
                }
                Some(threads)
            }
            None => None,
        };
        let (acceptor, refuser) = acceptor::start(listener, Arc::clone(&shared))?;
        let (stop_pinger, stop_rx) = crossbeam_channel::bounded(1);
        let pinger = pinger::start(Arc::clone(&shared), stop_rx)?;
        let http = HttpApi::start(http_server, shared.config.http_threads, Arc::clone(&shared))?;
        let front = HttpFront::start(
            http_listener,
            reachable(http_addr),
            socket_dir.socket_path(),
            http_front::Settings::from_config(&shared.config),
            Arc::clone(&shared.stats),
        )?;
        log::info!("WebSocket on {ws_addr}, HTTP side port on {http_addr}");
        Ok(Server {
            shared,
            http_addr,
            front,
            http,
            socket_dir,
            acceptor,
            refuser,
            pinger,
            stop_pinger,
            cluster,
        })
    }

    /// With `--redis`: the line printed at startup after the listening line,
    /// `wspush node NODE redis=HOST:PORT/DB channel=PREFIX`.
    pub fn node_line(&self) -> Option<String> {
        self.shared.publisher.cluster().map(|c| {
            format!(
                "wspush node {} redis={} channel={}",
                c.node(),
                c.target(),
                c.channel()
            )
        })
    }

    /// With `--redis`: this node's id.
    pub fn node_id(&self) -> Option<String> {
        self.shared.publisher.cluster().map(|c| c.node().to_string())
    }

    /// The WebSocket listener's address (with the real port when 0 was asked for).
    pub fn ws_addr(&self) -> SocketAddr {
        self.shared.ws_addr
    }

    /// The HTTP side port's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The line printed at startup: `wspush listening ws=ws://HOST:PORT/echo http=http://HOST:PORT/`.
    pub fn listening_line(&self) -> String {
        format!(
            "wspush listening ws=ws://{}{} http=http://{}/",
            self.ws_addr(),
            crate::handshake::WS_PATH,
            self.http_addr
        )
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats_snapshot()
    }

    /// Stops accepting, sends Close 1001 to every client, waits up to 2 s for
    /// them to go, then stops the remaining threads.
    pub fn shutdown(self) {
        let shared = &self.shared;
        shared.shutting_down.store(true, SeqCst);
        // Wake the blocked accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&reachable(shared.ws_addr), Duration::from_secs(1));
        let _ = self.acceptor.join();
        let _ = self.refuser.join();
        let _ = self.stop_pinger.send(());
        let _ = self.pinger.join();
        // The front door first: its connections end, then the router behind
        // it, whose `Drop` wakes its accept thread through the socket that
        // the folder holds, so the folder goes last.
        self.front.stop();
        self.http.stop();
        drop(self.socket_dir);
        if let Some(cluster) = self.cluster {
            cluster.stop();
        }
        let clients = shared.registry.snapshot();
        log::info!("shutting down: closing {} client(s)", clients.len());
        for client in &clients {
            client.mark_ended("server shutting down");
            client.outbox.close(shared.going_away.clone());
        }
        if !shared.registry.wait_empty(SHUTDOWN_GRACE) {
            let left = shared.registry.snapshot();
            log::warn!("{} client(s) did not close in time; dropping them", left.len());
            for client in left {
                client.outbox.kill();
            }
        }
        log::info!("shut down");
    }
}

fn validate(config: &Config) -> Result<(), StartError> {
    if config.max_clients == Some(0) {
        return Err(StartError::Invalid("--max-clients must be at least 1".into()));
    }
    if config.max_message_bytes == 0 || config.max_body_bytes == 0 {
        return Err(StartError::Invalid(
            "--max-message-bytes and --max-body-bytes must be at least 1".into(),
        ));
    }
    if config.read_buffer_bytes < 256 {
        return Err(StartError::Invalid(
            "--read-buffer-bytes must be at least 256".into(),
        ));
    }
    if config.reader_stack_kib < 16 || config.writer_stack_kib < 16 {
        return Err(StartError::Invalid(
            "thread stacks must be at least 16 KiB".into(),
        ));
    }
    Ok(())
}

/// A listener with a deep accept backlog, so connection bursts are not dropped.
fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    socket.listen(LISTEN_BACKLOG).map_err(bind_err)?;
    Ok(socket.into())
}

/// The side port's router: tiny_http on a Unix socket in a fresh private folder.
fn router(addr: SocketAddr) -> Result<(SocketDir, tiny_http::Server), StartError> {
    let http_err = |reason: String| StartError::Http { addr, reason };
    let dir = SocketDir::create().map_err(|e| http_err(format!("cannot create the router's folder: {e}")))?;
    let path = dir.socket_path();
    let listener = UnixListener::bind(&path)
        .map_err(|e| http_err(format!("cannot listen on {}: {e}", path.display())))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| http_err(e.to_string()))?;
    Ok((dir, server))
}

/// An address that reaches a listener bound to `addr` (a wildcard becomes loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
