//! Wiring: binds both ports, builds what each thread needs, starts the
//! threads, and shuts them down in order.
//!
//! Threads: one acceptor and one refuser for the WebSocket port, a reader per
//! connection (plus a writer while it has a backlog), the pinger, the side
//! port's accept loop, a thread per side-port connection and the helpers
//! (`http_front`, with tiny_http's own threads behind it) and, with
//! `--redis`, the cluster's log reader, subscriber and announcer. Each gets a
//! context of its own; one `Stop` ends them all.
//! This file is the only one that knows the cluster exists: to everyone else
//! it is a `Publish`.

mod setup;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use self::setup::{
    bind, front_door, http_context, max_clients, pinger_context, reachable, session_context, validate,
    warn_about, Bound, Core,
};
use crate::acceptor::{self, Acceptor};
use crate::cluster::{self, Cluster, ClusterSettings, ClusterThreads, LogSettings, NodeUrls};
use crate::config::Config;
use crate::http_api::HttpApi;
use crate::http_front::{HttpFront, Routes};
use crate::message::GoingAway;
use crate::metrics::Metrics;
use crate::pinger;
use crate::pods::{PodList, PodsError};
use crate::publish::Publish;
use crate::registry::Registry;
use crate::session::handshake::WS_PATH;
use crate::stats::StatsSnapshot;
use crate::stop::Stop;

/// How long shutdown waits for clients to answer Close 1001 and for writers to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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
    front: Option<HttpFront>,
    cluster: Option<ClusterThreads>,
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
        let Bound {
            listener,
            http_listener,
            router,
            ..
        } = bound;
        let token = self.stop.token();
        if let Some(cluster) = &self.cluster {
            self.threads.cluster = Some(cluster.start(&core.spawner, &token)?);
            cluster.wait_up(cluster::STARTUP_WAIT);
        }
        let session = Arc::new(session_context(&config, core, token.clone()));
        let (acceptor, refuser) = acceptor::start(Acceptor {
            listener,
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
        let routes = HttpApi::new(http_context(
            &config,
            core,
            publisher,
            pods,
            metrics,
            self.ws_addr,
        ));
        let router = (router, Arc::new(routes) as Arc<dyn Routes>);
        let (front, started) = HttpFront::start(front_door(&config, core, http_listener, router, token));
        self.threads.front = Some(front);
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

    /// Stops accepting, sends Close 1001 to every client (ends every event
    /// stream), waits up to 2 s for them to go, then returns.
    pub fn shutdown(mut self) {
        self.stop_threads();
        let clients = self.registry.snapshot();
        log::info!("shutting down: closing {} client(s)", clients.len());
        let going_away = GoingAway::new();
        for client in &clients {
            client.mark_ended("server shutting down");
            client.outbox.close(going_away.for_transport(client.transport()));
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
        // The front door answers the requests it has under way, then lets
        // go of the router behind it (tiny_http, then its socket's folder).
        if let Some(front) = threads.front {
            let _ = TcpStream::connect_timeout(&reachable(self.http_addr), Duration::from_secs(1));
            front.join();
        }
        if let Some(cluster) = threads.cluster {
            cluster.join();
        }
    }
}

/// With `--redis`: the cluster's settings, with this node's URLs as bound.
fn cluster_settings(config: &Config, bound: &Bound) -> Result<Option<ClusterSettings>, StartError> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    let urls = NodeUrls {
        ws: format!("ws://{}{WS_PATH}", bound.ws_addr),
        http: format!("http://{}/", bound.http_addr),
    };
    let log = LogSettings {
        max_len: config.redis_stream_max_len,
        keep: config.history_ttl,
    };
    ClusterSettings::new(url, &config.redis_channel, config.node_id.as_deref(), urls, log)
        .map(Some)
        .map_err(|e| StartError::Invalid(e.to_string()))
}
