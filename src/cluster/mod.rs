//! Several nodes sharing publishes through Redis (`--redis`): one shared log
//! (a Redis stream) for every channel, and pub/sub for the rest.
//!
//! Without `--redis`, nothing here runs: the server publishes straight to this
//! node's fan-out. With it, `Cluster` is the server's `Publish`: a publish is
//! appended to the log (`publisher`, `stream`), and every node's reader thread
//! (`reader`) follows the log and hands each entry to its own fan-out, the
//! publishing node included, with the id the log gave it. So all clients of
//! all nodes see the messages in the one order of the log, with the same ids,
//! and a client can resume on any node. A node whose link drops reads on from
//! where it was when it comes back: its clients miss nothing the log still
//! holds. Only `server.rs` knows this module exists.
//!
//! Redis keys and channels (prefix `--redis-channel`, default `wspush`):
//! - `<prefix>.log`, `<prefix>.epoch`: the log and its incarnation (`stream`);
//!   each entry is one publish (`entry`);
//! - `<prefix>`: the nodes' announcements (pub/sub);
//! - `<prefix>.node.<NODE>`: messages for one client of NODE, and the answers
//!   (acks) to the ones NODE sent (pub/sub; `wire`).
//!
//! Threads: the log reader, the subscriber (`subscriber`: messages for one
//! client, announcements) and the announcer (`announcer`: every 5 s says
//! "here", answers `hello`s, sends acks, trims the log). Both links are kept up
//! by `relink`. HTTP threads send through one connection (`link`).

mod announcer;
mod counters;
mod dedup;
mod entry;
mod error;
mod link;
mod members;
mod node;
mod publisher;
mod reader;
mod relink;
mod stream;
mod subscriber;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;

use self::announcer::Control;
use self::counters::Counters;
pub use self::error::{ClusterError, SetupError};
use self::link::{link_slot, LinkSlot};
use self::members::{MemberInfo, MemberView, Members};
use self::node::MAX_NODE_ID;
use self::stream::LogKeys;
use self::wire::SendResult;
use crate::broadcast::{Delivered, Fanout};
use crate::stop::StopToken;
use crate::threads::{Role, ThreadSpawner};

/// How often a node announces itself on the shared channel.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5);
/// `/cluster` lists the nodes heard from within this window.
const MEMBER_WINDOW: Duration = Duration::from_secs(30);
/// How long a publish waits for its message to come back (or for the holding
/// node's ack, for one client) before answering 503.
const REPLY_DEADLINE: Duration = Duration::from_secs(2);

/// Connecting to Redis (TCP and the connection's setup commands).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One command's write or read on an open connection.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the subscriber looks up from a quiet connection (stop, silence).
const POLL: Duration = Duration::from_millis(250);
/// The log keeps this much more than `--history-ttl`, so that a node starting
/// or reconnecting finds all of the window still there.
const TRIM_MARGIN: Duration = Duration::from_secs(60);
/// A subscription that hears nothing, not even its own announcements, for this
/// long is taken as dead and made anew.
const SILENCE_LIMIT: Duration = Duration::from_secs(15);
/// First and longest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// How long startup waits for the links (and the log read up to now) before serving degraded.
pub const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// What a node of a cluster is told at startup.
pub struct ClusterSettings {
    /// `--redis`, parsed.
    client: redis::Client,
    /// `--redis-channel`: the prefix of every channel.
    prefix: String,
    /// `--node-id`, or a random one.
    node: Arc<str>,
    /// This node's WebSocket and side-port URLs, as bound, for `/cluster`.
    urls: NodeUrls,
    /// How much the log keeps.
    log: LogSettings,
}

/// A node's WebSocket and side-port URLs, as bound, for `/cluster`.
pub struct NodeUrls {
    /// `ws://…/echo`.
    pub ws: String,
    /// `http://…/`.
    pub http: String,
}

/// How much the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// `--redis-stream-max-len`: about this many entries at most (`MAXLEN ~`).
    pub max_len: u64,
    /// `--history-ttl`: entries older than this (and `TRIM_MARGIN`) are trimmed.
    pub keep: Duration,
}

impl ClusterSettings {
    /// Checks the flags (does not connect yet).
    pub fn new(
        url: &str,
        prefix: &str,
        node_id: Option<&str>,
        urls: NodeUrls,
        log: LogSettings,
    ) -> Result<ClusterSettings, SetupError> {
        let client = redis::Client::open(url).map_err(SetupError::Url)?;
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(SetupError::Channel);
        }
        Ok(ClusterSettings {
            client,
            prefix: prefix.to_owned(),
            node: node::node_id(node_id)?,
            urls,
            log,
        })
    }

    /// This node's id: what its client ids are shown with (`a-7`).
    pub fn node(&self) -> Arc<str> {
        Arc::clone(&self.node)
    }
}

/// What became of a message this node published, as its waiting HTTP thread learns it.
#[derive(Debug)]
enum Outcome {
    /// A publish came back and was offered to this node's subscribers.
    Fanned(Delivered),
    /// The node holding the client answered.
    Sent(SendResult),
}

/// What `/cluster` answers.
#[derive(Debug, Clone, Serialize)]
struct ClusterView {
    node: String,
    /// `up` while it reads the log and is subscribed, else `down`.
    redis: &'static str,
    channel: String,
    /// The log's Redis key.
    log: String,
    /// The log's epoch (the first part of every message id), once known.
    epoch: Option<String>,
    /// Nodes heard from within the last 30 s, this one included, by id.
    nodes: Vec<MemberView>,
}

/// Who this node is on the wire.
struct Identity {
    node: Arc<str>,
    /// Random per process start: tells a restarted node from its old self.
    boot: u64,
    prefix: String,
    /// `<prefix>.node.<node>`: messages for this node's clients, and answers to it.
    own_channel: String,
}

/// One node's part of the cluster: its Redis connections and what they learned.
pub struct Cluster {
    id: Identity,
    client: redis::Client,
    /// `HOST:PORT/DB`, without credentials, for logs.
    target: String,
    fanout: Fanout,
    ws_url: String,
    http_url: String,
    log: LogKeys,
    log_settings: LogSettings,
    /// The epoch of the log the reader follows, once it joined one.
    log_epoch: Mutex<Option<u64>>,
    /// The subscription is up.
    subscribed: AtomicBool,
    /// The reader's link is up and it has read the log up to now.
    reading: AtomicBool,
    /// Counts links made: a publish connection from an older one may be stale.
    generation: AtomicU64,
    link: LinkSlot,
    pending: Mutex<HashMap<u64, Sender<Outcome>>>,
    members: Mutex<Members>,
    counters: Counters,
    control: Sender<Control>,
    control_rx: Receiver<Control>,
}

impl Cluster {
    /// A node publishing through Redis and delivering to `fanout` (not connected yet).
    pub fn new(settings: ClusterSettings, fanout: Fanout) -> Result<Arc<Cluster>, SetupError> {
        let info = settings.client.get_connection_info();
        let target = format!("{}/{}", info.addr, info.redis.db);
        let boot = getrandom::u64().map_err(SetupError::Random)?;
        let (control, control_rx) = crossbeam_channel::unbounded();
        Ok(Arc::new(Cluster {
            id: Identity {
                own_channel: node_channel(&settings.prefix, &settings.node),
                node: settings.node,
                boot,
                prefix: settings.prefix.clone(),
            },
            client: settings.client,
            target,
            fanout,
            ws_url: settings.urls.ws,
            http_url: settings.urls.http,
            log: LogKeys::new(&settings.prefix),
            log_settings: settings.log,
            log_epoch: Mutex::new(None),
            subscribed: AtomicBool::new(false),
            reading: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            link: link_slot(),
            pending: Mutex::new(HashMap::new()),
            members: Mutex::new(Members::default()),
            counters: Counters::default(),
            control,
            control_rx,
        }))
    }

    /// `wspush node NODE redis=HOST:PORT/DB channel=PREFIX log=PREFIX.log`, printed at startup.
    pub fn node_line(&self) -> String {
        format!(
            "wspush node {} redis={} channel={} log={}",
            self.id.node, self.target, self.id.prefix, self.log.stream
        )
    }

    pub fn node(&self) -> &str {
        &self.id.node
    }

    /// Whether the node reads the log (up to now) and is subscribed:
    /// publishing works and `/healthz` is ok.
    fn is_up(&self) -> bool {
        self.reading.load(SeqCst) && self.subscribed.load(SeqCst)
    }

    /// What its connection for `role` is called in Redis's `CLIENT LIST`:
    /// `<prefix>.<node>.<role>`.
    fn connection_name(&self, role: &str) -> String {
        format!("{}.{}.{role}", self.id.prefix, self.id.node)
    }

    /// Starts the reader, subscriber and announcer threads; they end with the stop.
    pub fn start(
        self: &Arc<Self>,
        spawner: &ThreadSpawner,
        stop: &StopToken,
    ) -> std::io::Result<ClusterThreads> {
        log::info!(
            "cluster: node {} (boot {:016x}) joins through redis {}: log {}, channel {}",
            self.id.node,
            self.id.boot,
            self.target,
            self.log.stream,
            self.id.prefix
        );
        let start = |name: &str, run: fn(&Cluster, &StopToken)| {
            let (me, token) = (Arc::clone(self), stop.clone());
            spawner.spawn(Role::Service, name.into(), move || run(&me, &token))
        };
        // Each thread started is joined, even when a later one cannot start.
        let mut threads = ClusterThreads {
            node: Arc::clone(&self.id.node),
            handles: Vec::new(),
        };
        for (name, run) in [
            ("redis-reader", reader::run as fn(&Cluster, &StopToken)),
            ("redis-subscriber", subscriber::run),
            ("redis-announcer", announcer::run),
        ] {
            match start(name, run) {
                Ok(handle) => threads.handles.push(handle),
                Err(e) => {
                    threads.join();
                    return Err(e);
                }
            }
        }
        Ok(threads)
    }

    /// Waits up to `timeout` for the links and the log; true once it is up.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_up() {
            if Instant::now() >= deadline {
                log::warn!(
                    "cluster: not reading the log at redis {} yet: serving degraded (publishes answer 503) until it is",
                    self.target
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn view(&self) -> ClusterView {
        ClusterView {
            node: self.id.node.to_string(),
            redis: if self.is_up() { "up" } else { "down" },
            channel: self.id.prefix.clone(),
            log: self.log.stream.clone(),
            epoch: self.log_epoch.lock().map(|e| format!("{e:016x}")),
            nodes: self.members().list(MEMBER_WINDOW),
        }
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock()
    }

    /// Hands `outcome` to the HTTP thread waiting for message `seq`, if one still is.
    fn complete(&self, seq: u64, outcome: Outcome) {
        if let Some(waiter) = self.pending.lock().remove(&seq) {
            let _ = waiter.try_send(outcome);
        }
    }

    /// What this node says about itself.
    fn info(&self) -> Vec<u8> {
        serde_json::to_vec(&MemberInfo {
            ws: self.ws_url.clone(),
            http: self.http_url.clone(),
            clients: self.fanout.clients() as u64,
        })
        .unwrap_or_default()
    }

    fn envelope(&self, seq: u64, body: wire::Body<'_>) -> Vec<u8> {
        wire::encode(&wire::Envelope {
            origin: &self.id.node,
            boot: self.id.boot,
            seq,
            body,
        })
    }
}

/// The channel of one node: messages for its clients, and answers to it.
fn node_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}.node.{node}")
}

/// The running cluster threads; join them once the stop is given.
pub struct ClusterThreads {
    node: Arc<str>,
    handles: Vec<JoinHandle<()>>,
}

impl ClusterThreads {
    /// Waits for the announcer's goodbye and the links' end.
    pub fn join(self) {
        for handle in self.handles {
            let _ = handle.join();
        }
        log::info!("cluster: node {} left", self.node);
    }
}
