//! Setting up a server: flags checked, ports bound, and the context each
//! thread is given, built from the flags and the shared core. The cluster's
//! settings are made in `server.rs`, the one file that knows the cluster.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use socket2::{Domain, Socket, Type};
use tungstenite::protocol::WebSocketConfig;

use super::StartError;
use crate::broadcast::Fanout;
use crate::client::OutboxConfig;
use crate::config::Config;
use crate::history::HistoryLimits;
use crate::http_api::{HttpContext, TokenMint};
use crate::http_front::{self, FrontDoor, Routes, TinyHttp};
use crate::join::{self, JoinContext};
use crate::limits::Ceilings;
use crate::message::GoingAway;
use crate::metrics::Metrics;
use crate::origin::OriginPolicy;
use crate::pinger::Pinger;
use crate::pods::PodList;
use crate::proxy::TrustedProxies;
use crate::publish::Publish;
use crate::registry::Registry;
use crate::session::handshake::{HandshakeSettings, WS_PATH};
use crate::session::target::TargetLimits;
use crate::session::SessionContext;
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::threads::ThreadSpawner;
use crate::token::{Gate, Minter};

/// Pending connections the kernel may hold for the acceptor.
const LISTEN_BACKLOG: i32 = 4096;
/// tungstenite's write buffer: it only ever holds a Pong or a Close reply.
const WS_WRITE_BUFFER: usize = 4096;

/// Both ports, bound, and the side port's router behind its front door.
pub(super) struct Bound {
    pub(super) listener: TcpListener,
    pub(super) ws_addr: SocketAddr,
    pub(super) http_listener: TcpListener,
    pub(super) http_addr: SocketAddr,
    pub(super) router: TinyHttp,
}

/// What every part shares: counters, clients, the fan-out and the thread spawner.
pub(super) struct Core {
    pub(super) stats: Arc<Stats>,
    pub(super) spawner: ThreadSpawner,
    pub(super) registry: Arc<Registry>,
    pub(super) fanout: Fanout,
    /// Side-port connections ended: counted by the front door, read by the
    /// pinger's heap trimmer (not a `/stats` figure).
    pub(super) http_conns_ended: Counter,
}

impl Core {
    pub(super) fn new(config: &Config, max_clients: usize, id_prefix: Option<Arc<str>>) -> Core {
        let stats = Arc::new(Stats::default());
        let spawner = ThreadSpawner::new(
            config.reader_stack_kib * 1024,
            config.writer_stack_kib * 1024,
            stats.thread_spawn_failures.clone(),
        );
        let registry = Registry::new(max_clients, id_prefix, history_limits(config));
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
            http_conns_ended: Counter::default(),
        }
    }
}

/// The history's limits, from the flags.
fn history_limits(config: &Config) -> HistoryLimits {
    HistoryLimits {
        size: config.history_size as usize,
        ttl: config.history_ttl,
        bytes: usize::try_from(config.history_bytes).unwrap_or(usize::MAX),
        recovery_max: config.recovery_max as usize,
    }
}

pub(super) fn session_context(config: &Config, core: &Core, stop: StopToken) -> SessionContext {
    let queue_len = config.queue_len as usize;
    let queue_bytes = usize::try_from(config.queue_bytes).unwrap_or(usize::MAX);
    SessionContext {
        handshake: HandshakeSettings {
            origins: OriginPolicy::from_flags(&config.allowed_origins),
            gate: Gate::new(config.subscribe_key(), core.stats.tokens_rejected.clone()),
            targets: TargetLimits {
                max_channels: usize::from(config.max_channels_per_client),
                recovery_max: config.recovery_max as usize,
            },
            ws_config: WebSocketConfig::default()
                .read_buffer_size(config.read_buffer_bytes)
                .write_buffer_size(WS_WRITE_BUFFER)
                .max_write_buffer_size(WS_WRITE_BUFFER * 4)
                .max_message_size(Some(config.max_message_bytes))
                .max_frame_size(Some(config.max_message_bytes)),
            timeout: config.handshake_timeout,
        },
        write_timeout: config.write_timeout,
        unacked_timeout: config.pong_timeout,
        proxies: TrustedProxies::new(&config.trusted_proxies),
        join: JoinContext {
            registry: Arc::clone(&core.registry),
            stats: Arc::clone(&core.stats),
            queue_len,
            queue_bytes,
            catch_up: if config.redis.is_some() {
                join::CLUSTER_CATCH_UP
            } else {
                Duration::ZERO
            },
        },
        fanout: core.fanout.clone(),
        stats: Arc::clone(&core.stats),
        outbox: Arc::new(OutboxConfig {
            queue_len,
            queue_bytes,
            write_timeout: config.write_timeout,
            spawner: core.spawner.clone(),
            stats: Arc::clone(&core.stats),
        }),
        stop,
        going_away: GoingAway::new(),
    }
}

pub(super) fn pinger_context(config: &Config, core: &Core, stop: StopToken) -> Pinger {
    Pinger {
        registry: Arc::clone(&core.registry),
        fanout: core.fanout.clone(),
        stats: Arc::clone(&core.stats),
        interval: config.ping_interval,
        timeout: config.pong_timeout,
        style: config.ping_style,
        http_conns_ended: core.http_conns_ended.clone(),
        stop,
    }
}

pub(super) fn http_context(
    config: &Config,
    core: &Core,
    publisher: Arc<dyn Publish>,
    pods: PodList,
    metrics: Arc<Metrics>,
    ws_addr: SocketAddr,
) -> HttpContext {
    HttpContext {
        publisher,
        clients: Arc::clone(&core.registry),
        stats: Arc::clone(&core.stats),
        metrics,
        pods,
        html_dir: config.html_dir.clone(),
        token: config.publish_token.clone(),
        ws_port: ws_addr.port(),
        ws_path: WS_PATH,
        max_body: config.max_body_bytes,
        tokens: config.subscribe_key().map(|secret| {
            TokenMint::new(
                Minter::new(secret, config.max_token_ttl),
                reachable(ws_addr),
                core.stats.tokens_minted.clone(),
            )
        }),
    }
}

pub(super) fn front_door(
    config: &Config,
    core: &Core,
    listener: TcpListener,
    (router, routes): (TinyHttp, Arc<dyn Routes>),
    stop: StopToken,
) -> FrontDoor {
    FrontDoor {
        listener,
        router,
        routes,
        settings: http_front::Settings::from_config(config),
        stats: Arc::clone(&core.stats),
        spawner: core.spawner.clone(),
        stop,
        ended: core.http_conns_ended.clone(),
    }
}

/// `--max-clients`, or what the machine's limits allow.
pub(super) fn max_clients(config: &Config) -> usize {
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
pub(super) fn warn_about(config: &Config) {
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

pub(super) fn validate(config: &Config) -> Result<(), StartError> {
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
pub(super) fn bind(config: &Config) -> Result<Bound, StartError> {
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
    let router = TinyHttp::start().map_err(|reason| StartError::Http {
        addr: config.http_addr,
        reason,
    })?;
    Ok(Bound {
        listener,
        ws_addr,
        http_listener,
        http_addr,
        router,
    })
}

/// A listener with a deep accept backlog, so connection bursts are not dropped.
pub(super) fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    socket.listen(LISTEN_BACKLOG).map_err(bind_err)?;
    Ok(socket.into())
}

/// An address that reaches a listener bound to `addr` (a wildcard becomes loopback).
pub(super) fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
