//! One load run against a running server: connect N clients, publish, measure.
//!
//! Every published message carries `RUN SEQ SEND_NS ` and padding, so each
//! client can time its own delivery (`receive - send`) and the run can time
//! each broadcast's fan-out (`last receive - send`). Each client keeps the
//! sequence numbers it saw, in order: that gives loss, duplicates,
//! out-of-order deliveries and whether every client saw the same order.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::http;
use crate::pool::{Pool, Readable, Step};
use crate::procfs::{self, Peaks, Sample, Watcher};
use crate::servers::Running;
use crate::subscriber::{Dialect, Stream, Subscribe, Transport};

/// Nanoseconds on this process's monotonic clock.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// How messages are published.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Publish {
    /// `count` messages at `per_sec`, each on its own request, none waiting for another.
    Rate {
        /// Messages.
        count: u64,
        /// Messages per second.
        per_sec: f64,
    },
    /// As fast as the HTTP side answers, on `publishers` keep-alive connections, for `secs`.
    Flood {
        /// Seconds.
        secs: f64,
        /// Concurrent keep-alive connections, each waiting for its answer before the next.
        publishers: usize,
    },
}

/// What one run does.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// Clients that read.
    pub clients: usize,
    /// Further clients that stop reading once connected (not counted in `clients`).
    pub slow: usize,
    /// Message size in bytes.
    pub payload: usize,
    /// How messages are published.
    pub publish: Publish,
    /// Handshakes in flight at once.
    pub handshake_concurrency: usize,
    /// Source addresses 127.0.0.1.. the clients spread over.
    pub source_ips: u8,
    /// What the clients connect to: `/echo`, `/ws/all` or `/events/all`.
    pub transport: Transport,
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The server process, as sampled.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerFigures {
    /// Before any client connected.
    pub before: Sample,
    /// With every client connected and idle.
    pub connected: Sample,
    /// At the end of the broadcast phase.
    pub after: Sample,
    /// Peaks during the broadcast phase.
    pub peaks: Peaks,
    /// (connected − before) RSS divided by the clients, KiB.
    pub rss_per_client_kib: f64,
    /// CPU time during the broadcast phase, ms.
    pub cpu_ms: f64,
    /// CPU time per 1,000 deliveries, ms.
    pub cpu_ms_per_1000: f64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The server (the caller names a setup over several nodes, e.g. `2×wspush+redis`).
    pub server: String,
    /// The run's parameters.
    pub spec: Spec,
    /// Seconds from the first connect to the last completed handshake.
    pub connect_secs: f64,
    /// Connections that failed (refused, reset, handshake error).
    pub connect_failures: usize,
    /// The first few connect errors.
    pub connect_errors: Vec<String>,
    /// Subscribers the server reported before publishing.
    pub registered: u64,
    /// Publish requests made.
    pub published: u64,
    /// Publish requests answered 2xx.
    pub published_ok: u64,
    /// The first few publish errors.
    pub publish_errors: Vec<String>,
    /// Seconds from the first publish to the last delivery (or the drain timeout).
    pub broadcast_secs: f64,
    /// Deliveries expected: reading clients × messages answered 2xx.
    pub expected: u64,
    /// Deliveries received (of this run's messages).
    pub delivered: u64,
    /// Deliveries per second over the broadcast phase.
    pub deliveries_per_sec: f64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Messages a client received more than once.
    pub duplicated: u64,
    /// Deliveries with a lower sequence number than one the client saw before
    /// (publishes overlap, so this measures the server's ordering, not a fault).
    pub out_of_order: u64,
    /// Reading clients whose sequence differs from the most common one.
    pub order_differs: usize,
    /// Reading clients whose connection ended before the run did.
    pub closed_early: usize,
    /// Messages from earlier runs (Nchan replays the newest on subscribe).
    pub stale: u64,
    /// Per delivery: receive − send.
    pub delivery_ms: Percentiles,
    /// Per broadcast: last receive − send.
    pub fanout_ms: Percentiles,
    /// Each broadcast's fan-out in publish order, ms (rate mode only; shows periodic stalls).
    pub fanout_series_ms: Vec<f32>,
    /// The server process.
    pub server_proc: ServerFigures,
    /// This load generator's own CPU time during the broadcast phase, ms.
    pub client_cpu_ms: f64,
    /// The server's own counters at the end, if it has them.
    pub server_counters: Option<serde_json::Value>,
    /// Server nodes the clients were spread over (client `i` on node `i % nodes`).
    pub nodes: usize,
    /// Per node (several only): its clients' delivery and fan-out latency and losses.
    pub per_node: Vec<NodeFigures>,
    /// Every process watched (the nodes, then e.g. redis-server): CPU and RSS.
    pub procs: Vec<ProcFigures>,
    /// The other nodes' own counters at the end.
    pub other_counters: Vec<Option<serde_json::Value>>,
    /// Over a cluster: its shared log in Redis at the end.
    pub redis_log: Option<crate::servers::LogFigures>,
}

/// One node's clients, in a run over several nodes.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFigures {
    /// The node's WebSocket address.
    pub ws: SocketAddr,
    /// Reading clients connected to it.
    pub clients: usize,
    /// Subscribers it reported before publishing (its `/stats` `clients`).
    pub registered: u64,
    /// Deliveries its clients received.
    pub delivered: u64,
    /// Expected deliveries its clients never got.
    pub lost: u64,
    /// Duplicates among its clients.
    pub duplicated: u64,
    /// Per delivery to its clients: receive − send.
    pub delivery_ms: Percentiles,
    /// Per broadcast, over its clients: last receive − send.
    pub fanout_ms: Percentiles,
}

/// CPU and memory of one process over a run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcFigures {
    /// What it is (`wspush-a`, `redis`, ...).
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// RSS before any client connected, KiB.
    pub rss_before_kib: u64,
    /// RSS with every client connected and idle, KiB.
    pub rss_connected_kib: u64,
    /// RSS at the end of the broadcast phase, KiB.
    pub rss_after_kib: u64,
    /// CPU time during the broadcast phase, ms.
    pub cpu_ms: f64,
    /// CPU time per 1,000 deliveries (all nodes' clients), ms.
    pub cpu_ms_per_1000: f64,
}

/// What a reading client saw.
#[derive(Default)]
pub(crate) struct ClientLog {
    seqs: Vec<u32>,
    lat_us: Vec<u32>,
    stale: u64,
    closed_early: bool,
}

pub(crate) struct Progress {
    pub(crate) run_id: u32,
    pub(crate) delivered: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Arc<Progress> {
        Arc::new(Progress {
            run_id: (now_ns() as u32) ^ std::process::id().rotate_left(16),
            delivered: AtomicU64::new(0),
        })
    }
}

/// The payload: `RUN SEQ SEND_NS ` then `x` up to `size` bytes.
pub fn payload(run_id: u32, seq: u32, sent_ns: u64, size: usize) -> String {
    let mut s = format!("{run_id:08x} {seq:010} {sent_ns:020} ");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// Reads `RUN SEQ SEND_NS` back.
pub fn parse_payload(b: &[u8]) -> Option<(u32, u32, u64)> {
    if b.len() < 41 {
        return None;
    }
    let run = u32::from_str_radix(std::str::from_utf8(&b[0..8]).ok()?, 16).ok()?;
    let seq = std::str::from_utf8(&b[9..19]).ok()?.parse().ok()?;
    let ts = std::str::from_utf8(&b[20..40]).ok()?.parse().ok()?;
    Some((run, seq, ts))
}

/// The source address for client `i`.
pub fn source_ip(i: usize, spread: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % spread.max(1) as usize) as u8))
}

/// A reading client's log, and its socket once connected.
struct ReaderShared {
    log: Mutex<ClientLog>,
    socket: OnceLock<Arc<TcpStream>>,
}

/// A reading client: the task connecting it, and the log it fills.
pub(crate) struct Reader {
    shared: Arc<ReaderShared>,
    task: JoinHandle<()>,
}

impl Reader {
    /// Stops the client (shutting its socket down, which ends it on its
    /// reader thread) and returns what it saw.
    pub(crate) async fn finish(self) -> ClientLog {
        // A connect still under way.
        self.task.abort();
        let _ = self.task.await;
        let log = std::mem::take(&mut *self.shared.log.lock().unwrap());
        if let Some(socket) = self.shared.socket.get() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        log
    }
}

/// A connected reading client, on a reader thread.
struct Reading {
    socket: Arc<TcpStream>,
    stream: Stream,
    sub: Subscribe,
    shared: Arc<ReaderShared>,
    progress: Arc<Progress>,
}

impl Readable for Reading {
    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads once; records the messages, locking the log once per read, not per message.
    fn ready(&mut self, events: u32) -> Step {
        if let Some(step) = self.stream.before_read(&self.socket, events) {
            return step;
        }
        let now = now_ns();
        let mut delivered = 0;
        let mut held = None;
        let Reading {
            socket,
            stream,
            sub,
            shared,
            progress,
        } = self;
        let step = stream.read_from(socket, |received| {
            // Control frames and events (`subscribed`, Nchan's comments) are not messages.
            let Some(payload) = sub.payload(received) else {
                return;
            };
            let log = held.get_or_insert_with(|| shared.log.lock().unwrap());
            match parse_payload(&payload) {
                Some((run, seq, sent)) if run == progress.run_id => {
                    log.seqs.push(seq);
                    let lat = (now.saturating_sub(sent) / 1000).clamp(1, u64::from(u32::MAX));
                    log.lat_us.push(lat as u32);
                    delivered += 1;
                }
                _ => log.stale += 1,
            }
        });
        drop(held);
        if delivered > 0 {
            self.progress.delivered.fetch_add(delivered, Relaxed);
        }
        step
    }

    /// The connection ended: mark it, and close it as the server expects.
    fn closed(&mut self) {
        self.shared.log.lock().unwrap().closed_early = true;
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Connects one reading client as `sub` says (on `all`) on the pool and hands
/// it to a reader thread; `on_connected` is told once the handshake ended either way.
pub(crate) fn spawn_reader(
    pool: &Pool,
    i: usize,
    sub: Subscribe,
    src: IpAddr,
    progress: &Arc<Progress>,
    capacity: usize,
    on_connected: impl FnOnce(Result<(), String>) + Send + 'static,
) -> Reader {
    let shared = Arc::new(ReaderShared {
        log: Mutex::new(ClientLog {
            seqs: Vec::with_capacity(capacity),
            lat_us: Vec::with_capacity(capacity),
            ..ClientLog::default()
        }),
        socket: OnceLock::new(),
    });
    let (slot, progress, reader) = (Arc::clone(&shared), Arc::clone(progress), pool.reader(i));
    let task = pool.spawn(i, async move {
        match sub.connect(src, "all", None, None).await {
            Ok((socket, stream)) => {
                let socket = Arc::new(socket);
                let _ = slot.socket.set(Arc::clone(&socket));
                reader.adopt(Box::new(Reading {
                    socket,
                    stream,
                    sub,
                    shared: slot,
                    progress,
                }));
                on_connected(Ok(()));
            }
            Err(e) => {
                slot.log.lock().unwrap().closed_early = true;
                on_connected(Err(e));
            }
        }
    });
    Reader { shared, task }
}

/// Connects `spec.clients` readers and `spec.slow` clients that never read;
/// client `i` goes to `nodes[i % nodes.len()]`. Returns the readers, each
/// reader's node index, the non-readers, the seconds it took, and the
/// failures [readers, non-readers].
async fn connect_all(
    pool: &Pool,
    nodes: &[Subscribe],
    spec: &Spec,
    progress: &Arc<Progress>,
    capacity: usize,
    errors: &mut Vec<String>,
) -> (Vec<Reader>, Vec<usize>, Vec<JoinHandle<()>>, f64, [usize; 2]) {
    let limit = Arc::new(Semaphore::new(spec.handshake_concurrency.max(1)));
    let failures = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let first_errors = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let total = spec.clients + spec.slow;
    let mut readers = Vec::with_capacity(spec.clients);
    let mut reader_nodes = Vec::with_capacity(spec.clients);
    let mut slow_tasks = Vec::with_capacity(spec.slow);
    for i in 0..total {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore open");
        // Spread the non-readers evenly among the readers.
        let is_slow = spec.slow > 0 && i % (total / spec.slow) == 0 && slow_tasks.len() < spec.slow;
        let (failures, first_errors, done_tx) =
            (Arc::clone(&failures), Arc::clone(&first_errors), done_tx.clone());
        let on_connected = move |r: Result<(), String>| {
            drop(permit);
            if let Err(e) = r {
                failures[usize::from(is_slow)].fetch_add(1, Relaxed);
                let mut errs = first_errors.lock().unwrap();
                if errs.len() < 5 {
                    errs.push(e);
                }
            }
            let _ = done_tx.send(());
        };
        let src = source_ip(i, spec.source_ips);
        let node = i % nodes.len();
        let sub = nodes[node];
        if is_slow {
            slow_tasks.push(pool.spawn(i, async move {
                // A small receive buffer, so the server's side fills up soon.
                match sub.connect(src, "all", None, Some(4096)).await {
                    Ok(conn) => {
                        on_connected(Ok(()));
                        // Hold the connection without ever reading it.
                        std::future::pending::<()>().await;
                        drop(conn);
                    }
                    Err(e) => on_connected(Err(e)),
                }
            }));
        } else {
            readers.push(spawn_reader(pool, i, sub, src, progress, capacity, on_connected));
            reader_nodes.push(node);
        }
    }
    drop(done_tx);
    for _ in 0..total {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    errors.extend(first_errors.lock().unwrap().drain(..));
    (
        readers,
        reader_nodes,
        slow_tasks,
        secs,
        [failures[0].load(Relaxed), failures[1].load(Relaxed)],
    )
}

/// Waits until the server reports `n` subscribers (or `timeout`); returns the last count.
pub async fn wait_subscribers(server: &Running, n: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    while Instant::now() < deadline {
        if let Some(c) = server.subscribers().await {
            last = c;
            if c >= n {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// One publish on its own connection; the status, or why it failed.
pub async fn publish_once(http: SocketAddr, body: String) -> Result<u16, String> {
    let r = http::once(
        http,
        "POST",
        "/sendall",
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(r.status)
}

pub(crate) struct Published {
    pub(crate) ok: Vec<u32>,
    pub(crate) made: u64,
    pub(crate) errors: Vec<String>,
}

pub(crate) async fn publish_rate(
    http: SocketAddr,
    run_id: u32,
    count: u64,
    per_sec: f64,
    size: usize,
) -> Published {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count as usize);
    for seq in 0..count as u32 {
        ticker.tick().await;
        let body = payload(run_id, seq, now_ns(), size);
        tasks.push((seq, tokio::spawn(publish_once(http, body))));
    }
    let mut out = Published {
        ok: Vec::new(),
        made: count,
        errors: Vec::new(),
    };
    for (seq, task) in tasks {
        match task.await {
            Ok(Ok(status)) if (200..300).contains(&status) => out.ok.push(seq),
            Ok(Ok(status)) => out.errors.push(format!("HTTP {status}")),
            Ok(Err(e)) => out.errors.push(e),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out
}

async fn publish_flood(
    http: SocketAddr,
    run_id: u32,
    secs: f64,
    publishers: usize,
    size: usize,
) -> Published {
    let next = Arc::new(AtomicU32::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..publishers.max(1) {
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut conn = http::Conn::new(http);
            let mut ok = Vec::new();
            let mut errors = Vec::new();
            let mut made = 0;
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Relaxed);
                let body = payload(run_id, seq, now_ns(), size);
                made += 1;
                match conn
                    .request(
                        "POST",
                        "/sendall",
                        &[("Content-Type", "text/plain")],
                        body.as_bytes(),
                    )
                    .await
                {
                    Ok(r) if (200..300).contains(&r.status) => ok.push(seq),
                    Ok(r) => errors.push(format!("HTTP {}", r.status)),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (ok, made, errors)
        }));
    }
    let mut out = Published {
        ok: Vec::new(),
        made: 0,
        errors: Vec::new(),
    };
    for task in tasks {
        if let Ok((ok, made, errors)) = task.await {
            out.ok.extend(ok);
            out.made += made;
            out.errors.extend(errors);
        }
    }
    out.ok.sort_unstable();
    out
}

/// Waits until `expected` deliveries arrived, nothing arrived for `quiet`, or `cap` passed.
pub(crate) async fn drain(progress: &Progress, expected: u64, quiet: Duration, cap: Duration) -> Instant {
    let started = Instant::now();
    let mut last = progress.delivered.load(Relaxed);
    let mut last_change = Instant::now();
    let mut last_seen_at = Instant::now();
    loop {
        let now = progress.delivered.load(Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
            last_seen_at = last_change;
        }
        if now >= expected || last_change.elapsed() > quiet || started.elapsed() > cap {
            return last_seen_at;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `spec` against `servers` (clients spread over them, published through
/// the first); `others` are further processes to sample (name, pid), e.g. Redis.
pub async fn run(pool: &Pool, servers: &[&Running], others: &[(String, u32)], spec: &Spec) -> Outcome {
    let server = servers[0];
    let pid = server.pid();
    let mut watched: Vec<(String, u32)> = servers
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let name = if servers.len() > 1 {
                format!("{}-{}", s.name, (b'a' + k as u8) as char)
            } else {
                s.name.clone()
            };
            (name, s.pid())
        })
        .collect();
    watched.extend(others.iter().cloned());
    let sample_all = || -> Vec<Sample> {
        watched
            .iter()
            .map(|(_, p)| procfs::sample(*p).unwrap_or_default())
            .collect()
    };
    let progress = Progress::new();
    let run_id = progress.run_id;
    let capacity = match spec.publish {
        Publish::Rate { count, .. } => count as usize,
        Publish::Flood { .. } => 4096,
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_all = sample_all();
    let before = before_all[0];
    let mut connect_errors = Vec::new();
    let subs: Vec<Subscribe> = servers
        .iter()
        .map(|s| Subscribe {
            addr: s.ws,
            dialect: Dialect::of(s.kind),
            transport: spec.transport,
        })
        .collect();
    let (readers, reader_nodes, slow, connect_secs, [reader_failures, slow_failures]) =
        connect_all(pool, &subs, spec, &progress, capacity, &mut connect_errors).await;
    let connect_failures = reader_failures + slow_failures;
    // Each node counts only its own clients (in a cluster `/sendall` does too).
    let total = spec.clients + spec.slow;
    let mut node_registered = Vec::with_capacity(servers.len());
    for (k, s) in servers.iter().enumerate() {
        let assigned = (k..total).step_by(servers.len()).count();
        let want = assigned.saturating_sub(connect_failures) as u64;
        node_registered.push(wait_subscribers(s, want, Duration::from_secs(20)).await);
    }
    let registered = node_registered.iter().sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected_all = sample_all();
    let connected = connected_all[0];
    if let Some(secs) = std::env::var("WSPUSH_BENCH_PAUSE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // For inspecting the server by hand (smaps, perf) with every client connected.
        eprintln!("pausing {secs} s with every client connected: server pid {pid}");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    let watcher = Watcher::start(pid, Duration::from_millis(100));
    let cpu0_all: Vec<f64> = watched
        .iter()
        .map(|(_, p)| procfs::cpu_ms(*p).unwrap_or(0.0))
        .collect();
    let client_cpu0 = procfs::self_cpu_ms();
    let t0 = Instant::now();
    let published = match spec.publish {
        Publish::Rate { count, per_sec } => {
            publish_rate(server.http, run_id, count, per_sec, spec.payload).await
        }
        Publish::Flood { secs, publishers } => {
            publish_flood(server.http, run_id, secs, publishers, spec.payload).await
        }
    };
    let readers_ok = (spec.clients - reader_failures) as u64;
    let expected = readers_ok * published.ok.len() as u64;
    // Requests that failed (timed out) may still have been broadcast: wait for
    // those too, or for the deliveries to stop.
    let last_delivery = drain(
        &progress,
        readers_ok * published.made,
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await;
    let cpu1_all: Vec<f64> = watched
        .iter()
        .zip(&cpu0_all)
        .map(|((_, p), c0)| procfs::cpu_ms(*p).unwrap_or(*c0))
        .collect();
    let client_cpu1 = procfs::self_cpu_ms();
    let after_all = sample_all();
    let after = after_all[0];
    let peaks = watcher.finish();
    let broadcast_secs = last_delivery.saturating_duration_since(t0).as_secs_f64();
    let server_counters = server.counters().await;
    let mut other_counters = Vec::new();
    for s in &servers[1..] {
        other_counters.push(s.counters().await);
    }

    let mut logs = Vec::with_capacity(readers.len());
    for reader in readers {
        logs.push(reader.finish().await);
    }
    for task in slow {
        task.abort();
        let _ = task.await;
    }

    let tally = tally(&logs, &published.ok);
    let mut per_node = Vec::new();
    if servers.len() > 1 {
        let mut by_node: Vec<Vec<ClientLog>> = (0..servers.len()).map(|_| Vec::new()).collect();
        for (log, &node) in logs.into_iter().zip(&reader_nodes) {
            by_node[node].push(log);
        }
        for (k, node_logs) in by_node.iter().enumerate() {
            let t = self::tally(node_logs, &published.ok);
            per_node.push(NodeFigures {
                ws: servers[k].ws,
                clients: node_logs.len(),
                registered: node_registered[k],
                delivered: t.delivered,
                lost: t.lost,
                duplicated: t.duplicated,
                delivery_ms: Percentiles::of(&t.delivery),
                fanout_ms: Percentiles::of(&t.fanout),
            });
        }
    }
    // Over several nodes, the server's CPU and memory are the nodes' sum.
    let nodes_sum = |f: &dyn Fn(usize) -> f64| (0..servers.len()).map(f).sum::<f64>();
    let cpu_ms = nodes_sum(&|k| cpu1_all[k] - cpu0_all[k]);
    let rss_growth_kib =
        nodes_sum(&|k| connected_all[k].rss_kib.saturating_sub(before_all[k].rss_kib) as f64);
    let per_1000 = |ms: f64| {
        if tally.delivered > 0 {
            ms * 1000.0 / tally.delivered as f64
        } else {
            0.0
        }
    };
    let clients_connected = (spec.clients + spec.slow).saturating_sub(connect_failures).max(1);
    let procs = watched
        .iter()
        .enumerate()
        .map(|(k, (name, p))| ProcFigures {
            name: name.clone(),
            pid: *p,
            rss_before_kib: before_all[k].rss_kib,
            rss_connected_kib: connected_all[k].rss_kib,
            rss_after_kib: after_all[k].rss_kib,
            cpu_ms: cpu1_all[k] - cpu0_all[k],
            cpu_ms_per_1000: per_1000(cpu1_all[k] - cpu0_all[k]),
        })
        .collect();
    Outcome {
        server: server.name.clone(),
        spec: spec.clone(),
        connect_secs,
        connect_failures,
        connect_errors,
        registered,
        published: published.made,
        published_ok: published.ok.len() as u64,
        publish_errors: published.errors.into_iter().take(5).collect(),
        broadcast_secs,
        expected,
        delivered: tally.delivered,
        deliveries_per_sec: if broadcast_secs > 0.0 {
            tally.delivered as f64 / broadcast_secs
        } else {
            0.0
        },
        lost: tally.lost,
        duplicated: tally.duplicated,
        out_of_order: tally.out_of_order,
        order_differs: tally.order_differs,
        closed_early: tally.closed_early,
        stale: tally.stale,
        delivery_ms: Percentiles::of(&tally.delivery),
        fanout_ms: Percentiles::of(&tally.fanout),
        fanout_series_ms: tally.fanout_series_ms,
        server_proc: ServerFigures {
            before,
            connected,
            after,
            peaks,
            rss_per_client_kib: rss_growth_kib / clients_connected as f64,
            cpu_ms,
            cpu_ms_per_1000: per_1000(cpu_ms),
        },
        client_cpu_ms: client_cpu1 - client_cpu0,
        server_counters,
        nodes: servers.len(),
        per_node,
        procs,
        other_counters,
        redis_log: None,
    }
}

pub(crate) struct Tally {
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) out_of_order: u64,
    pub(crate) order_differs: usize,
    pub(crate) closed_early: usize,
    pub(crate) stale: u64,
    pub(crate) delivery: Histogram<u64>,
    pub(crate) fanout: Histogram<u64>,
    pub(crate) fanout_series_ms: Vec<f32>,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

pub(crate) fn tally(logs: &[ClientLog], published_ok: &[u32]) -> Tally {
    let max_seq = published_ok.iter().copied().max().unwrap_or(0) as usize;
    let mut expected = vec![false; max_seq + 1];
    for &s in published_ok {
        expected[s as usize] = true;
    }
    let mut fanout_us = vec![0u32; max_seq + 1];
    let mut got = vec![false; max_seq + 1];
    let mut t = Tally {
        delivered: 0,
        lost: 0,
        duplicated: 0,
        out_of_order: 0,
        order_differs: 0,
        closed_early: 0,
        stale: 0,
        delivery: histogram(),
        fanout: histogram(),
        fanout_series_ms: Vec::new(),
    };
    let mut orders: HashMap<u64, usize> = HashMap::new();
    let mut hashes = Vec::with_capacity(logs.len());
    for log in logs {
        t.stale += log.stale;
        t.closed_early += usize::from(log.closed_early);
        got.iter_mut().for_each(|g| *g = false);
        let mut unique = 0u64;
        let mut highest: Option<u32> = None;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (&seq, &lat) in log.seqs.iter().zip(&log.lat_us) {
            t.delivered += 1;
            let _ = t.delivery.record(u64::from(lat));
            let i = seq as usize;
            if i < expected.len() && expected[i] {
                hash = (hash ^ u64::from(seq)).wrapping_mul(0x100_0000_01b3);
            }
            if highest.is_some_and(|h| seq < h) {
                t.out_of_order += 1;
            }
            highest = Some(highest.map_or(seq, |h| h.max(seq)));
            if i < got.len() {
                if got[i] {
                    t.duplicated += 1;
                } else {
                    got[i] = true;
                    if expected[i] {
                        unique += 1;
                    }
                    fanout_us[i] = fanout_us[i].max(lat);
                }
            }
        }
        t.lost += published_ok.len() as u64 - unique.min(published_ok.len() as u64);
        *orders.entry(hash).or_default() += 1;
        hashes.push(hash);
    }
    if let Some((&common, _)) = orders.iter().max_by_key(|(_, n)| **n) {
        t.order_differs = hashes.iter().filter(|&&h| h != common).count();
    }
    for &s in published_ok {
        if fanout_us[s as usize] > 0 {
            let _ = t.fanout.record(u64::from(fanout_us[s as usize]));
        }
    }
    if published_ok.len() <= 1000 {
        t.fanout_series_ms = published_ok
            .iter()
            .map(|&s| fanout_us[s as usize] as f32 / 1000.0)
            .collect();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_at_its_size() {
        let p = payload(0xdead_beef, 42, 1_234_567_890_123, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(
            parse_payload(p.as_bytes()),
            Some((0xdead_beef, 42, 1_234_567_890_123))
        );
    }

    #[test]
    fn tally_counts_loss_duplicates_and_order() {
        let log = |seqs: &[u32]| ClientLog {
            seqs: seqs.to_vec(),
            lat_us: vec![10; seqs.len()],
            ..ClientLog::default()
        };
        let logs = [log(&[0, 1, 2]), log(&[0, 1, 2]), log(&[0, 2, 1]), log(&[0, 1, 1])];
        let t = tally(&logs, &[0, 1, 2]);
        assert_eq!(t.delivered, 12);
        // The last client never got 2, and got 1 twice.
        assert_eq!(t.lost, 1);
        assert_eq!(t.duplicated, 1);
        // 1 after 2.
        assert_eq!(t.out_of_order, 1);
        // The majority saw 0, 1, 2; the third and fourth clients differ from it.
        assert_eq!(t.order_differs, 2);
        // Every broadcast's fan-out is its slowest delivery.
        assert_eq!(t.fanout.len(), 3);
    }
}
