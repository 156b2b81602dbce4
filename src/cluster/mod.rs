//! Several nodes sharing publishes through Redis pub/sub (`--redis`).
//!
//! Without `--redis`, `Publisher::Local` hands a publish straight to this
//! node's fan-out, as a single node always did. With it, `Publisher::Redis`
//! PUBLISHes the message instead (`publisher`), and every node's one
//! subscriber thread (`subscriber`) hands what arrives to its own fan-out, the
//! publishing node included: so all clients of all nodes see the messages in
//! the one order Redis gives its channel.
//!
//! Channels (prefix `--redis-channel`, default `wspush`):
//! - `<prefix>`: messages for every client, and the nodes' announcements;
//! - `<prefix>.node.<NODE>`: messages for one client of NODE, and the answers
//!   (acks) to the ones NODE sent.
//!
//! Threads: the subscriber (reads, fans out, reconnects with backoff) and the
//! announcer (every 5 s says "here", answers `hello`s, sends acks). HTTP
//! threads publish through one mutex-like connection slot with timeouts, so a
//! dead Redis costs a request at most a few seconds and then a 503.
//! The format of the messages is in `wire`.

mod members;
mod node;
mod publisher;
mod subscriber;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;

use self::members::Members;
pub use self::members::{MemberInfo, MemberView};
pub use self::node::{node_name, random_node_id, random_u64, validate_node_id, NodeName, MAX_NODE_ID};
use self::publisher::{link_slot, LinkSlot};
pub use self::publisher::{Delivery, Publisher};
use self::wire::SendResult;
use crate::broadcast::Fanout;
use crate::config::Config;
use crate::registry::Registry;

/// How often a node announces itself on the shared channel.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5);
/// `/cluster` lists the nodes heard from within this window.
pub const MEMBER_WINDOW: Duration = Duration::from_secs(30);
/// How long a publish waits for its message to come back (or for the holding
/// node's ack, for one client) before answering 503.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(2);

/// Connecting to Redis (TCP and the connection's setup commands).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One command's write or read on an open connection.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the subscriber looks up from a quiet connection (stop, silence).
const POLL: Duration = Duration::from_millis(250);
/// A subscription that hears nothing, not even its own announcements, for this
/// long is taken as dead and made anew.
const SILENCE_LIMIT: Duration = Duration::from_secs(15);
/// First and longest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// How long `Server::start` waits for the first subscription before serving degraded.
pub const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// What became of a message this node published, as its waiting HTTP thread learns it.
#[derive(Debug)]
enum Outcome {
    /// A broadcast came back and was offered to this many local clients.
    Fanned(usize),
    /// The node holding the client answered.
    Sent(SendResult),
}

/// Work for the announcer thread.
#[derive(Debug)]
enum Control {
    /// Announce now (`hello` asks the others to answer).
    Announce { hello: bool },
    /// Tell `node` what became of its message `seq`.
    Ack {
        node: String,
        boot: u64,
        seq: u64,
        result: SendResult,
    },
    /// Say goodbye and end.
    Stop,
}

#[derive(Debug, Default)]
struct Counters {
    publishes: AtomicU64,
    publish_failures: AtomicU64,
    reconnects: AtomicU64,
    received: AtomicU64,
}

/// The cluster figures added to `/stats` and `/metrics` with `--redis`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClusterStats {
    /// This node's id.
    pub node: String,
    /// Whether the subscription is up (publishing works).
    pub redis_up: bool,
    /// Messages from publish requests accepted by Redis.
    pub redis_publishes: u64,
    /// Publish requests refused because Redis was unavailable.
    pub redis_publish_failures: u64,
    /// Subscriptions made again after one was lost.
    pub redis_reconnects: u64,
    /// Messages received on the subscription (all kinds).
    pub redis_messages_received: u64,
}

/// What `/cluster` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// This node's id.
    pub node: String,
    /// `up` while subscribed, else `down`.
    pub redis: &'static str,
    /// The shared channel.
    pub channel: String,
    /// Nodes heard from within the last 30 s, this one included, by id.
    pub nodes: Vec<MemberView>,
}

/// One node's part of the cluster: its Redis connections and what they learned.
pub struct Cluster {
    node: NodeName,
    boot: u64,
    client: redis::Client,
    /// `HOST:PORT/DB`, without credentials, for logs.
    target: String,
    prefix: String,
    own_channel: String,
    fanout: Fanout,
    registry: Arc<Registry>,
    ws_url: String,
    http_url: String,
    up: AtomicBool,
    epoch: AtomicU64,
    stopping: AtomicBool,
    link: LinkSlot,
    pending: Mutex<HashMap<u64, Sender<Outcome>>>,
    members: Mutex<Members>,
    counters: Counters,
    control: Sender<Control>,
    control_rx: Receiver<Control>,
}

impl Cluster {
    /// Checks the flags and prepares (does not connect yet). `node` is from
    /// `node_name`; `registry` numbers clients with it.
    pub fn new(
        config: &Config,
        url: &str,
        node: NodeName,
        fanout: Fanout,
        registry: Arc<Registry>,
        ws_url: String,
        http_url: String,
    ) -> Result<Arc<Cluster>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis: {e}"))?;
        let info = client.get_connection_info();
        let target = format!("{}/{}", info.addr, info.redis.db);
        let prefix = config.redis_channel.clone();
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err("--redis-channel must be non-empty, without spaces".into());
        }
        let boot = random_u64().map_err(|e| format!("no random boot id: {e}"))?;
        let (control, control_rx) = crossbeam_channel::unbounded();
        Ok(Arc::new(Cluster {
            own_channel: node_channel(&prefix, node.as_str()),
            node,
            boot,
            client,
            target,
            prefix,
            fanout,
            registry,
            ws_url,
            http_url,
            up: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            link: link_slot(),
            pending: Mutex::new(HashMap::new()),
            members: Mutex::new(Members::default()),
            counters: Counters::default(),
            control,
            control_rx,
        }))
    }

    /// This node's id.
    pub fn node(&self) -> NodeName {
        self.node
    }

    /// Where Redis is, without credentials: `HOST:PORT/DB`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The shared channel's name (the prefix).
    pub fn channel(&self) -> &str {
        &self.prefix
    }

    /// Whether the subscription is up: publishing works and `/healthz` is ok.
    pub fn is_up(&self) -> bool {
        self.up.load(SeqCst)
    }

    /// Starts the subscriber and announcer threads.
    pub fn start(self: &Arc<Self>) -> std::io::Result<ClusterThreads> {
        log::info!(
            "cluster: node {} (boot {:016x}) joins through redis {} on channel {}",
            self.node,
            self.boot,
            self.target,
            self.prefix
        );
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let me = Arc::clone(self);
        let subscriber = thread::Builder::new()
            .name("redis-subscriber".into())
            .spawn(move || subscriber::run(&me, &stop_rx))?;
        let me = Arc::clone(self);
        let rx = self.control_rx.clone();
        let announcer = match thread::Builder::new()
            .name("redis-announcer".into())
            .spawn(move || run_announcer(&me, &rx))
        {
            Ok(handle) => handle,
            Err(e) => {
                self.stopping.store(true, SeqCst);
                drop(stop_tx);
                let _ = subscriber.join();
                return Err(e);
            }
        };
        Ok(ClusterThreads {
            cluster: Arc::clone(self),
            subscriber,
            announcer,
            stop_subscriber: Some(stop_tx),
        })
    }

    /// Waits up to `timeout` for the subscription; true once it is up.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_up() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// The figures for `/stats` and `/metrics`.
    pub fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        ClusterStats {
            node: self.node.to_string(),
            redis_up: self.is_up(),
            redis_publishes: c.publishes.load(SeqCst),
            redis_publish_failures: c.publish_failures.load(SeqCst),
            redis_reconnects: c.reconnects.load(SeqCst),
            redis_messages_received: c.received.load(SeqCst),
        }
    }

    /// What `/cluster` answers.
    pub fn view(&self) -> ClusterView {
        ClusterView {
            node: self.node.to_string(),
            redis: if self.is_up() { "up" } else { "down" },
            channel: self.prefix.clone(),
            nodes: self.members().list(MEMBER_WINDOW),
        }
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock()
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Sender<Outcome>>> {
        self.pending.lock()
    }

    /// Hands `outcome` to the HTTP thread waiting for message `seq`, if one still is.
    fn complete(&self, seq: u64, outcome: Outcome) {
        if let Some(waiter) = self.pending().remove(&seq) {
            let _ = waiter.try_send(outcome);
        }
    }

    /// What this node says about itself.
    fn info(&self) -> Vec<u8> {
        serde_json::to_vec(&MemberInfo {
            ws: self.ws_url.clone(),
            http: self.http_url.clone(),
            clients: self.registry.len() as u64,
        })
        .unwrap_or_default()
    }

    fn announce(&self, hello: bool) {
        if !self.is_up() {
            return;
        }
        let info = self.info();
        let body = if hello {
            wire::Body::Hello(&info)
        } else {
            wire::Body::Here(&info)
        };
        if let (_, Err(e)) = self.publish(&self.prefix, |seq| self.envelope(seq, body)) {
            log::warn!("cluster: announcing node {} failed: {e}", self.node);
        }
    }

    fn envelope(&self, seq: u64, body: wire::Body<'_>) -> Vec<u8> {
        wire::encode(&wire::Envelope {
            origin: self.node.as_str(),
            boot: self.boot,
            seq,
            body,
        })
    }
}

/// The channel of one node: messages for its clients, and answers to it.
fn node_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}.node.{node}")
}

/// The running cluster threads; `stop` says goodbye and ends them.
pub struct ClusterThreads {
    cluster: Arc<Cluster>,
    subscriber: JoinHandle<()>,
    announcer: JoinHandle<()>,
    stop_subscriber: Option<Sender<()>>,
}

impl ClusterThreads {
    /// Announces the node's departure, then stops both threads.
    pub fn stop(mut self) {
        self.cluster.stopping.store(true, SeqCst);
        let _ = self.cluster.control.send(Control::Stop);
        let _ = self.announcer.join();
        self.stop_subscriber.take();
        let _ = self.subscriber.join();
        log::info!("cluster: node {} left", self.cluster.node);
    }
}

fn run_announcer(cluster: &Cluster, rx: &Receiver<Control>) {
    let mut next = Instant::now() + ANNOUNCE_INTERVAL;
    loop {
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(Control::Announce { hello }) => cluster.announce(hello),
            Ok(Control::Ack {
                node,
                boot,
                seq,
                result,
            }) => {
                let channel = node_channel(&cluster.prefix, &node);
                let ack = wire::Body::Ack { boot, seq, result };
                if let (_, Err(e)) = cluster.publish(&channel, |own| cluster.envelope(own, ack)) {
                    log::warn!("cluster: answering node {node} about its message {seq} failed: {e}");
                }
            }
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => {
                if cluster.is_up() {
                    if let (_, Err(e)) =
                        cluster.publish(&cluster.prefix, |seq| cluster.envelope(seq, wire::Body::Bye))
                    {
                        log::info!("cluster: saying goodbye failed: {e}");
                    }
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                cluster.announce(false);
                next = Instant::now() + ANNOUNCE_INTERVAL;
            }
        }
    }
}
