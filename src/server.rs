//! Wiring: binds both ports, builds what each thread needs, starts the
//! threads, and shuts them down in order.
//!
//! Threads: one acceptor and one refuser for the WebSocket port, a reader per
//! connection (plus a writer while it has a backlog), the pinger, the HTTP
//! workers and, with `--redis`, the cluster's subscriber and announcer. Each
//! gets a context of its own; one `Stop` ends them all. This is the only file
//! that knows the cluster exists: to everyone else it is a `Publish`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use crate::acceptor::{self, Acceptor};
use crate::broadcast::Fanout;
use crate::client::OutboxConfig;
use crate::cluster::{self, Cluster, ClusterSettings, ClusterThreads};
use crate::config::Config;
use crate::frame::{self, EncodedFrame};
use crate::http_api::{HttpApi, HttpContext};
use crate::limits::Ceilings;
use crate::metrics::Metrics;
use crate::origin::OriginPolicy;
use crate::pinger::{self, Pinger};
use crate::pods::{PodList, PodsError};
use crate::publish::Publish;
use crate::registry::Registry;
use crate::session::handshake::{HandshakeSettings, WS_PATH};
use crate::session::SessionContext;
use crate::stats::{Stats, StatsSnapshot};
use crate::stop::{Stop, StopToken};
use crate::threads::ThreadSpawner;

/// How long shutdown waits for clients to answer Close 1001 and for writers to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pending connections the kernel may hold for the acceptor.
const LISTEN_BACKLOG: i32 = 4096;
/// tungstenite's write buffer: it only ever holds a Pong or a Close reply.
const WS_WRITE_BUFFER: usize = 4096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the HTTP side port on {addr}: {reason}")]
    Http { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Pods(#[from] PodsError),
    /// A flag's value cannot work.
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error("cannot start a server thread: {0}")]
    Thread(#[from] io::Error),
}

/// A running server. Dropping it without `shutdown` leaves its threads running.
pub struct Server {
    ws_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: Stop,
    threads: Threads,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    cluster: Option<Arc<Cluster>>,
}

/// The server's own threads, joined at shutdown.
#[derive(Default)]
struct Threads {
    acceptor: Option<JoinHandle<()>>,
    refuser: Option<JoinHandle<()>>,
    pinger: Option<JoinHandle<()>>,
    http: Option<HttpApi>,
    cluster: Option<ClusterThreads>,
}

/// Both ports, bound.
struct Bound {
    listener: TcpListener,
    ws_addr: SocketAddr,
    http: tiny_http::Server,
    http_addr: SocketAddr,
}

/// What every part shares: counters, clients, the fan-out and the thread spawner.
struct Core {
    stats: Arc<Stats>,
    spawner: ThreadSpawner,
    registry: Arc<Registry>,
    fanout: Fanout,
}

impl Server {
    /// Binds both ports and starts serving.
    pub fn start(config: Config) -> Result<Server, StartError> {
        validate(&config)?;
        let max_clients = max_clients(&config);
        let pods = match &config.pods {
            Some(path) => PodList::load(path)?,
            None => PodList::builtin(),
        };
        warn_about(&config);
        let bound = bind(&config)?;
        let cluster_settings = cluster_settings(&config, &bound)?;
        let core = Core::new(&config, max_clients, cluster_settings.as_ref().map(|s| s.node()));
        let cluster = match cluster_settings {
            Some(settings) => Some(
                Cluster::new(settings, core.fanout.clone())
                    .map_err(|e| StartError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        let publisher: Arc<dyn Publish> = match &cluster {
            Some(cluster) => Arc::clone(cluster) as Arc<dyn Publish>,
            None => Arc::new(core.fanout.clone()),
        };
        let metrics = Arc::new(Metrics::new(
            Arc::clone(&core.stats),
            Arc::clone(&core.registry),
            Arc::clone(&publisher),
        ));
        let mut server = Server {
            ws_addr: bound.ws_addr,
            http_addr: bound.http_addr,
            stop: Stop::new(),
            threads: Threads::default(),
            registry: Arc::clone(&core.registry),
            metrics: Arc::clone(&metrics),
            cluster,
        };
        match server.start_threads(config, bound, &core, publisher, pods, metrics) {
            Ok(()) => {
                log::info!(
                    "WebSocket on {}, HTTP side port on {}",
                    server.ws_addr,
                    server.http_addr
                );
                Ok(server)
            }
            Err(e) => {
                server.stop_threads();
                Err(e.into())
            }
        }
    }

    /// Starts every thread; on an error the ones started are left for `stop_threads`.
    fn start_threads(
        &mut self,
        config: Config,
        bound: Bound,
        core: &Core,
        publisher: Arc<dyn Publish>,
        pods: PodList,
        metrics: Arc<Metrics>,
    ) -> io::Result<()> {
        let token = self.stop.token();
        if let Some(cluster) = &self.cluster {
            self.threads.cluster = Some(cluster.start(&core.spawner, &token)?);
            cluster.wait_up(cluster::STARTUP_WAIT);
        }
        let session = Arc::new(session_context(&config, core, token.clone()));
        let (acceptor, refuser) = acceptor::start(Acceptor {
            listener: bound.listener,
            registry: Arc::clone(&core.registry),
            spawner: core.spawner.clone(),
            session,
            stats: Arc::clone(&core.stats),
            stop: token.clone(),
        })?;
        self.threads.acceptor = Some(acceptor);
        self.threads.refuser = Some(refuser);
        self.threads.pinger = Some(pinger::start(
            pinger_context(&config, core, token.clone()),
            &core.spawner,
        )?);
        let http = Arc::new(HttpContext {
            publisher,
            clients: Arc::clone(&core.registry),
            metrics,
            pods,
            html_dir: config.html_dir,
            token: config.publish_token,
            ws_port: self.ws_addr.port(),
            ws_path: WS_PATH,
            max_body: config.max_body_bytes,
        });
        let (api, started) = HttpApi::start(bound.http, config.http_threads, http, &core.spawner, &token);
        self.threads.http = Some(api);
        started
    }

    /// With `--redis`: the line printed at startup after the listening line,
    /// `wspush node NODE redis=HOST:PORT/DB channel=PREFIX`.
    pub fn node_line(&self) -> Option<String> {
        self.cluster.as_ref().map(|c| c.node_line())
    }

    /// With `--redis`: this node's id.
    pub fn node_id(&self) -> Option<String> {
        self.cluster.as_ref().map(|c| c.node().to_owned())
    }

    /// The WebSocket listener's address (with the real port when 0 was asked for).
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The line printed at startup: `wspush listening ws=ws://HOST:PORT/echo http=http://HOST:PORT/`.
    pub fn listening_line(&self) -> String {
        format!(
            "wspush listening ws=ws://{}{WS_PATH} http=http://{}/",
            self.ws_addr, self.http_addr
        )
    }

    /// Every figure now, as `/stats` shows it.
    pub fn stats(&self) -> StatsSnapshot {
        self.metrics.snapshot()
    }

    /// Stops accepting, sends Close 1001 to every client, waits up to 2 s for
    /// them to go, then returns.
    pub fn shutdown(mut self) {
        self.stop_threads();
        let clients = self.registry.snapshot();
        log::info!("shutting down: closing {} client(s)", clients.len());
        let going_away = going_away();
        for client in &clients {
            client.mark_ended("server shutting down");
            client.outbox.close(going_away.clone());
        }
        if !self.registry.wait_empty(SHUTDOWN_GRACE) {
            let left = self.registry.snapshot();
            log::warn!("{} client(s) did not close in time; dropping them", left.len());
            for client in left {
                client.outbox.kill();
            }
        }
        log::info!("shut down");
    }

    /// Gives the stop, wakes the threads blocked in a call, and joins them.
    fn stop_threads(&mut self) {
        self.stop.stop();
        let threads = std::mem::take(&mut self.threads);
        if let Some(acceptor) = threads.acceptor {
            // Wake the blocked accept() with a connection of our own.
            let _ = TcpStream::connect_timeout(&reachable(self.ws_addr), Duration::from_secs(1));
            let _ = acceptor.join();
        }
        for thread in [threads.refuser, threads.pinger].into_iter().flatten() {
            let _ = thread.join();
        }
        if let Some(http) = threads.http {
            http.join();
        }
        if let Some(cluster) = threads.cluster {
            cluster.join();
        }
    }
}

impl Core {
    fn new(config: &Config, max_clients: usize, id_prefix: Option<Arc<str>>) -> Core {
        let stats = Arc::new(Stats::default());
        let spawner = ThreadSpawner::new(
            config.reader_stack_kib * 1024,
            config.writer_stack_kib * 1024,
            stats.thread_spawn_failures.clone(),
        );
        let registry = Registry::new(max_clients, id_prefix);
        let fanout_threads = match config.fanout_threads {
            Some(n) => usize::from(n),
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let fanout = Fanout::new(
            Arc::clone(&registry),
            Arc::clone(&stats),
            fanout_threads,
            spawner.clone(),
        );
        Core {
            stats,
            spawner,
            registry,
            fanout,
        }
    }
}

fn session_context(config: &Config, core: &Core, stop: StopToken) -> SessionContext {
    SessionContext {
        handshake: HandshakeSettings {
            origins: OriginPolicy::from_flags(&config.allowed_origins),
            ws_config: WebSocketConfig::default()
                .read_buffer_size(config.read_buffer_bytes)
                .write_buffer_size(WS_WRITE_BUFFER)
                .max_write_buffer_size(WS_WRITE_BUFFER * 4)
                .max_message_size(Some(config.max_message_bytes))
                .max_frame_size(Some(config.max_message_bytes)),
            timeout: config.handshake_timeout,
        },
        write_timeout: config.write_timeout,
        registry: Arc::clone(&core.registry),
        fanout: core.fanout.clone(),
        stats: Arc::clone(&core.stats),
        outbox: Arc::new(OutboxConfig {
            queue_len: config.queue_len as usize,
            write_timeout: config.write_timeout,
            spawner: core.spawner.clone(),
            stats: Arc::clone(&core.stats),
        }),
        stop,
        going_away: going_away(),
    }
}

fn pinger_context(config: &Config, core: &Core, stop: StopToken) -> Pinger {
    Pinger {
        registry: Arc::clone(&core.registry),
        fanout: core.fanout.clone(),
        stats: Arc::clone(&core.stats),
        interval: config.ping_interval,
        timeout: config.pong_timeout,
        style: config.ping_style,
        stop,
    }
}

fn going_away() -> EncodedFrame {
    frame::close(CloseCode::Away, "going away")
}

/// With `--redis`: the cluster's settings, with this node's URLs as bound.
fn cluster_settings(config: &Config, bound: &Bound) -> Result<Option<ClusterSettings>, StartError> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    let mut settings = ClusterSettings::new(url, &config.redis_channel, config.node_id.as_deref())
        .map_err(|e| StartError::Invalid(e.to_string()))?;
    settings.ws_url = format!("ws://{}{WS_PATH}", bound.ws_addr);
    settings.http_url = format!("http://{}/", bound.http_addr);
    Ok(Some(settings))
}

/// `--max-clients`, or what the machine's limits allow.
fn max_clients(config: &Config) -> usize {
    let ceilings = Ceilings::raise_and_read();
    match config.max_clients {
        Some(n) => n,
        None => {
            let (n, bound_by) = ceilings.max_clients();
            log::info!("max clients {n} (bound by the {bound_by}; {ceilings:?})");
            n
        }
    }
}

/// Settings that work but are probably not what was meant.
fn warn_about(config: &Config) {
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
}

fn validate(config: &Config) -> Result<(), StartError> {
    let invalid = |why: &str| Err(StartError::Invalid(why.into()));
    if config.max_clients == Some(0) {
        return invalid("--max-clients must be at least 1");
    }
    if config.max_message_bytes == 0 || config.max_body_bytes == 0 {
        return invalid("--max-message-bytes and --max-body-bytes must be at least 1");
    }
    if config.read_buffer_bytes < 256 {
        return invalid("--read-buffer-bytes must be at least 256");
    }
    if config.reader_stack_kib < 16 || config.writer_stack_kib < 16 {
        return invalid("thread stacks must be at least 16 KiB");
    }
    Ok(())
}

/// Both ports, bound; the addresses are the real ones when port 0 was asked for.
fn bind(config: &Config) -> Result<Bound, StartError> {
    let listener = listen(config.ws_addr)?;
    let ws_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.ws_addr,
        source,
    })?;
    let http_err = |reason: String| StartError::Http {
        addr: config.http_addr,
        reason,
    };
    let http = tiny_http::Server::http(config.http_addr).map_err(|e| http_err(e.to_string()))?;
    let http_addr = http
        .server_addr()
        .to_ip()
        .ok_or_else(|| http_err("not an IP listener".into()))?;
    Ok(Bound {
        listener,
        ws_addr,
        http,
        http_addr,
    })
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

/// An address that reaches a listener bound to `addr` (a wildcard becomes loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
