//! A channel subscriber of the load generator: connects to its channel's URL
//! (resuming after the last id it saw, once it saw one), is read by a reader
//! thread, logs every delivery; the driver can drop its connection abruptly
//! (an RST, no Close frame) and connect it again.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::since::Resume;
use crate::load::{now_ns, parse_payload, source_ip, Progress};
use crate::pool::{Pool, Readable, Step};
use crate::subscriber::{Dialect, Incoming, Received, Stream, Subscribe, Transport};

/// One message received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The publish's global sequence number.
    pub seq: u32,
    /// When it was read, on [`now_ns`]'s clock.
    pub recv_ns: u64,
    /// A hash of its id, compared with the id the publish was answered with.
    pub id_hash: u64,
}

/// What one subscriber saw, over all its connections.
#[derive(Debug, Default)]
pub struct SubscriberLog {
    /// This run's messages, in the order read.
    pub deliveries: Vec<Delivery>,
    /// The ids seen, resets, and what to resume from.
    pub resume: Resume,
    /// Messages whose envelope named another channel (not in `deliveries`).
    pub wrong_channel: u64,
    /// Messages of no publish of this run.
    pub stale: u64,
    /// Frames that were neither a message nor a known control frame.
    pub unparsed: u64,
    /// Why the first of those did not parse.
    pub first_error: Option<String>,
    /// A connection that ended without the driver dropping it.
    pub closed_early: bool,
    /// When each handshake completed, on [`now_ns`]'s clock.
    pub connected_ns: Vec<u64>,
}

/// FNV-1a: cheap, and enough to tell ids apart.
pub fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What every subscriber of a run shares.
pub struct Context {
    /// The server's channel interface.
    pub dialect: Dialect,
    /// Its WebSocket address: one per node of a cluster (subscriber `i`
    /// starts on node `i % nodes`).
    pub nodes: Vec<SocketAddr>,
    /// How its subscribers connect.
    pub transport: Transport,
    /// Source addresses 127.0.0.1.. to spread over.
    pub source_ips: u8,
    /// The run's id (in every payload) and delivery counter.
    pub progress: Arc<Progress>,
}

impl Context {
    /// Where and how a subscriber of this run subscribes.
    pub fn subscribe(&self, node: SocketAddr) -> Subscribe {
        Subscribe {
            addr: node,
            dialect: self.dialect,
            transport: self.transport,
        }
    }
}

struct State {
    log: Mutex<SubscriberLog>,
    socket: Mutex<Option<Arc<TcpStream>>>,
    connected: AtomicBool,
    /// Set while the driver drops the connection: its end is not "early".
    dropping: AtomicBool,
}

/// One subscriber: its channel and its log, connected or not.
pub struct Subscriber {
    /// Its number (spreads it over threads and source addresses).
    pub index: usize,
    /// Its channel's index in the run.
    pub channel: u32,
    name: Arc<str>,
    state: Arc<State>,
    /// The node it connects to, modulo the nodes of the run.
    node: AtomicUsize,
}

impl Subscriber {
    /// Subscriber `index` of channel `channel` (named `name`), expecting about `capacity` messages.
    pub fn new(index: usize, channel: u32, name: Arc<str>, capacity: usize) -> Subscriber {
        let log = SubscriberLog {
            deliveries: Vec::with_capacity(capacity),
            ..SubscriberLog::default()
        };
        Subscriber {
            index,
            channel,
            name,
            state: Arc::new(State {
                log: Mutex::new(log),
                socket: Mutex::new(None),
                connected: AtomicBool::new(false),
                dropping: AtomicBool::new(false),
            }),
            node: AtomicUsize::new(index),
        }
    }

    /// Its next connection goes to the next node of a cluster (with one node, the same).
    pub fn move_to_next_node(&self) {
        self.node.fetch_add(1, Relaxed);
    }

    /// Whether its connection is open (as far as its reader thread knows).
    pub fn connected(&self) -> bool {
        self.state.connected.load(Relaxed)
    }

    /// Whether it has seen a message (so it can resume from its id).
    pub fn has_seen_a_message(&self) -> bool {
        self.state.log.lock().unwrap().resume.since().is_some()
    }

    /// Drops the connection abruptly: `SO_LINGER` 0 and a read shutdown, which
    /// wakes its reader thread; that closes the socket, which sends an RST.
    /// Messages read until then count as seen. `false` if it had none.
    pub fn drop_connection(&self) -> bool {
        self.state.dropping.store(true, Relaxed);
        let Some(socket) = self.state.socket.lock().unwrap().take() else {
            return false;
        };
        let _ = socket2::SockRef::from(&*socket).set_linger(Some(Duration::ZERO));
        let _ = socket.shutdown(Shutdown::Read);
        true
    }

    /// Closes the connection (end of run) and returns the log.
    pub fn finish(&self) -> SubscriberLog {
        self.state.dropping.store(true, Relaxed);
        if let Some(socket) = self.state.socket.lock().unwrap().take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        std::mem::take(&mut *self.state.log.lock().unwrap())
    }

    /// Connects on the pool, resuming after the last id seen, and hands the
    /// connection to a reader thread; `permit` is held until the handshake ends.
    fn spawn_connect(
        &self,
        pool: &Pool,
        ctx: &Arc<Context>,
        permit: OwnedSemaphorePermit,
    ) -> JoinHandle<Result<(), String>> {
        let since = self.state.log.lock().unwrap().resume.since().map(str::to_owned);
        let (state, ctx, reader) = (Arc::clone(&self.state), Arc::clone(ctx), pool.reader(self.index));
        let (name, src) = (Arc::clone(&self.name), source_ip(self.index, ctx.source_ips));
        let node = ctx.nodes[self.node.load(Relaxed) % ctx.nodes.len()];
        pool.spawn(self.index, async move {
            let connected = ctx
                .subscribe(node)
                .connect(src, &name, since.as_deref(), None)
                .await;
            drop(permit);
            let (socket, stream) = connected?;
            let socket = Arc::new(socket);
            state.log.lock().unwrap().connected_ns.push(now_ns());
            state.dropping.store(false, Relaxed);
            state.connected.store(true, Relaxed);
            *state.socket.lock().unwrap() = Some(Arc::clone(&socket));
            reader.adopt(Box::new(Reading {
                socket,
                stream,
                state,
                ctx,
                name,
            }));
            Ok(())
        })
    }
}

/// How connecting a set of subscribers went.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Connected {
    /// Seconds from the first connect to the last handshake.
    pub secs: f64,
    /// Connections that failed.
    pub failures: usize,
    /// The first few errors.
    pub errors: Vec<String>,
}

/// Connects `subs` (resuming each after its last id), at most `concurrency` handshakes in flight.
pub async fn connect_all(
    pool: &Pool,
    ctx: &Arc<Context>,
    subs: &[Arc<Subscriber>],
    concurrency: usize,
) -> Connected {
    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(subs.len());
    for sub in subs {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore open");
        tasks.push(sub.spawn_connect(pool, ctx, permit));
    }
    let mut out = Connected::default();
    for task in tasks {
        if let Err(e) = task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            out.failures += 1;
            if out.errors.len() < 5 {
                out.errors.push(e);
            }
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out
}

/// A connected subscriber, on a reader thread.
struct Reading {
    socket: Arc<TcpStream>,
    stream: Stream,
    state: Arc<State>,
    ctx: Arc<Context>,
    name: Arc<str>,
}

/// Logs one message or event a subscriber of `name` read at `now`; whether it was a delivery of this run.
fn record(ctx: &Context, name: &str, log: &mut SubscriberLog, now: u64, received: Received<'_>) -> bool {
    match ctx.subscribe(ctx.nodes[0]).incoming(received) {
        Ok(Incoming::Message { channel, id, data }) => {
            if channel.is_some_and(|c| *c != *name) {
                log.wrong_channel += 1;
                return false;
            }
            log.resume.saw(&id);
            match parse_payload(data.as_bytes()) {
                Some((run, seq, _)) if run == ctx.progress.run_id => {
                    log.deliveries.push(Delivery {
                        seq,
                        recv_ns: now,
                        id_hash: id_hash(&id),
                    });
                    true
                }
                _ => {
                    log.stale += 1;
                    false
                }
            }
        }
        Ok(Incoming::Reset { id }) => {
            log.resume.reset(&id);
            false
        }
        Ok(Incoming::Other) => false,
        Err(e) => {
            log.unparsed += 1;
            log.first_error.get_or_insert(e);
            false
        }
    }
}

impl Readable for Reading {
    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads once; records the messages, locking the log once per read.
    fn ready(&mut self, events: u32) -> Step {
        if let Some(step) = self.stream.before_read(&self.socket, events) {
            return step;
        }
        let now = now_ns();
        let mut delivered = 0;
        let Reading {
            socket,
            stream,
            state,
            ctx,
            name,
        } = self;
        let mut held = None;
        let step = stream.read_from(socket, |received| {
            let log = held.get_or_insert_with(|| state.log.lock().unwrap());
            delivered += u64::from(record(ctx, name, log, now, received));
        });
        drop(held);
        if delivered > 0 {
            ctx.progress.delivered.fetch_add(delivered, Relaxed);
        }
        step
    }

    fn closed(&mut self) {
        self.state.connected.store(false, Relaxed);
        if !self.state.dropping.load(Relaxed) {
            self.state.log.lock().unwrap().closed_early = true;
            let _ = self.socket.shutdown(Shutdown::Both);
        }
    }
}
