//! The channel scenarios, written to issue 11's contract (subscribe at
//! `/ws/NAME`, envelopes with ids, `POST /publish/NAME`, resume with
//! `?since=ID`) and run side by side with Nchan's one-channel-per-URL setup:
//!
//! * `channels-100x100` ([`many`]): 10,000 clients on 100 channels, publishes
//!   interleaved across channels at a fixed total rate;
//! * `channel-isolation` ([`isolation`]): one channel of 10 subscribers, with
//!   10 clients connected in all and then with 10,000;
//! * `resume-storm` ([`storm`]): every connection dropped at once while
//!   publishing goes on, every client resuming from the last id it saw.
//!
//! Each client checks its own sequence against its channel's publishes
//! ([`sequence`]), across reconnects.

mod client;
mod isolation;
mod many;
mod publish;
mod report;
mod sequence;
mod since;
mod storm;
mod tally;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use isolation::IsolationFigures;
pub use report::{tables, verdicts, ChannelSummary};
pub use storm::StormFigures;

use crate::load::{Percentiles, Progress};
use crate::procfs;
use crate::servers::Running;
use crate::subscriber::Dialect;
use crate::subscriber::Transport;
use client::{Connected, Context};
use publish::Publication;
use tally::ChannelTally;

/// A channel scenario and its parameters.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChannelSpec {
    /// Many channels at once (`channels-100x100`).
    Many(many::ManySpec),
    /// One small channel among few or many clients (`channel-isolation`).
    Isolation(isolation::IsolationSpec),
    /// Every connection dropped and resumed (`resume-storm`).
    Storm(storm::StormSpec),
}

impl ChannelSpec {
    /// `channels-100x100`: 10,000 clients, 100 channels of 100, 100 publishes
    /// per channel at 500/s in all (5/s per channel; 50,000 deliveries/s).
    pub fn many() -> ChannelSpec {
        ChannelSpec::Many(many::ManySpec {
            clients: 10_000,
            channels: 100,
            per_channel: 100,
            rate: 500.0,
            payload: 100,
        })
    }

    /// `channel-isolation`: 10 subscribers of `iso`; then 9,990 more on 999 other channels.
    pub fn isolation() -> ChannelSpec {
        ChannelSpec::Isolation(isolation::IsolationSpec {
            subscribers: 10,
            others: 9_990,
            per_other_channel: 10,
            publishes: 300,
            payload: 100,
        })
    }

    /// `resume-storm`: 10,000 clients on one channel, 10 publishes/s for 10 s,
    /// every connection dropped after 3 s; `transport` WebSocket (resuming
    /// with `?since=`) or an event stream (`sse-resume-storm`: resuming with
    /// `Last-Event-ID`).
    pub fn storm(transport: Transport) -> ChannelSpec {
        ChannelSpec::Storm(storm::StormSpec {
            clients: 10_000,
            channels: 1,
            rate: 10.0,
            publishes: 100,
            drop_after_secs: 3.0,
            payload: 100,
            transport,
        })
    }

    /// How the subscribers connect.
    pub fn transport(&self) -> Transport {
        match self {
            ChannelSpec::Storm(s) => s.transport,
            ChannelSpec::Many(_) | ChannelSpec::Isolation(_) => Transport::WebSocket,
        }
    }
}

/// How clients connect, for every scenario.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Handshakes in flight at once.
    pub handshake_concurrency: usize,
    /// Source addresses 127.0.0.1.. the clients spread over.
    pub source_ips: u8,
    /// The round (1, 2, ...): `channel-isolation` alternates which side it measures first.
    pub round: usize,
}

/// What one run of a channel scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelOutcome {
    /// The server's name.
    pub server: String,
    /// The scenario and its parameters.
    pub spec: ChannelSpec,
    /// Clients in all.
    pub clients: usize,
    /// Channels subscribed to.
    pub channels: usize,
    /// The first connect of every client.
    pub connect: Connected,
    /// Subscribers the server reported before publishing.
    pub registered: u64,
    /// Publish requests made.
    pub published: u64,
    /// Publish requests answered 2xx.
    pub published_ok: u64,
    /// The first few publish errors.
    pub publish_errors: Vec<String>,
    /// Publish round trips (the request on its keep-alive connection).
    pub publish_rtt_ms: Percentiles,
    /// Deliveries, losses, order, ids, latencies.
    pub tally: ChannelTally,
    /// Seconds from the first publish to the last delivery.
    pub secs: f64,
    /// Deliveries per second over those.
    pub deliveries_per_sec: f64,
    /// Server CPU over those, ms.
    pub server_cpu_ms: f64,
    /// Server CPU per 1,000 deliveries, ms.
    pub server_cpu_ms_per_1000: f64,
    /// This load generator's CPU per 1,000 deliveries, ms.
    pub client_cpu_ms_per_1000: f64,
    /// (RSS with every client connected − before) / clients, KiB.
    pub rss_per_client_kib: f64,
    /// `channel-isolation`: the two sides.
    pub isolation: Option<IsolationFigures>,
    /// `resume-storm`: the drop and the catch-up.
    pub storm: Option<StormFigures>,
}

/// Runs `spec` against `servers` (started for this run): one server, or the
/// nodes of a cluster (`resume-storm` only: its clients are spread over them
/// and reconnect to the next one; publishes go through the first).
pub async fn run(
    pool: &crate::pool::Pool,
    servers: &[&Running],
    spec: &ChannelSpec,
    setup: Setup,
) -> Result<ChannelOutcome, String> {
    let server = servers[0];
    let ctx = Arc::new(Context {
        dialect: Dialect::of(server.kind),
        nodes: servers.iter().map(|s| s.ws).collect(),
        transport: spec.transport(),
        source_ips: setup.source_ips,
        progress: Progress::new(),
    });
    probe(&ctx).await?;
    match spec {
        ChannelSpec::Many(s) => many::run(pool, server, &ctx, s, setup).await,
        ChannelSpec::Isolation(s) => isolation::run(pool, server, &ctx, s, setup).await,
        ChannelSpec::Storm(s) => storm::run(pool, servers, &ctx, s, setup).await,
    }
}

/// One subscription to a throwaway channel: a server without channels (or
/// without event streams) refuses it, and the run stops there instead of
/// failing 10,000 connects.
async fn probe(ctx: &Context) -> Result<(), String> {
    let src = crate::load::source_ip(0, ctx.source_ips);
    match ctx
        .subscribe(ctx.nodes[0])
        .connect(src, "bench-probe", None, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "the server refused a {} subscription to a channel: {e}",
            ctx.transport.name()
        )),
    }
}

/// `n` channel names `PREFIX-00`, `PREFIX-01`, ... (just `PREFIX` if `n` is 1).
fn channel_names(prefix: &str, n: usize) -> Vec<Arc<str>> {
    if n == 1 {
        return vec![Arc::from(prefix)];
    }
    let width = (n - 1).to_string().len().max(2);
    (0..n)
        .map(|i| Arc::from(format!("{prefix}-{i:0width$}")))
        .collect()
}

/// `clients` subscribers spread over `names` (client `i` on channel `i % n`), each expecting about `capacity` messages.
fn spread(names: &[Arc<str>], clients: usize, capacity: usize) -> Vec<Arc<client::Subscriber>> {
    let n = names.len().max(1);
    (0..clients)
        .map(|i| {
            Arc::new(client::Subscriber::new(
                i,
                (i % n) as u32,
                Arc::clone(&names[i % n]),
                capacity,
            ))
        })
        .collect()
}

/// Waits until the servers report `n` subscribers in all (or `timeout`); the last count.
async fn wait_registered(servers: &[&Running], n: u64, exact: bool, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    while Instant::now() < deadline {
        let mut count = Some(0);
        for s in servers {
            count = count.zip(s.total_subscribers().await).map(|(a, b)| a + b);
        }
        if let Some(c) = count {
            last = c;
            if c == n || (!exact && c > n) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Subscribers connected and counted by the servers, and their RSS before and after.
struct Joined {
    connect: Connected,
    registered: u64,
    /// Servers' RSS before any subscriber and with all of them connected, KiB.
    rss_kib: (u64, u64),
}

/// Connects `subs`, waits until the servers count them, lets them settle.
async fn join(
    pool: &crate::pool::Pool,
    servers: &[&Running],
    ctx: &Arc<Context>,
    subs: &[Arc<client::Subscriber>],
    setup: Setup,
) -> Joined {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(servers);
    let connect = client::connect_all(pool, ctx, subs, setup.handshake_concurrency).await;
    let want = (subs.len() - connect.failures) as u64;
    let registered = wait_registered(servers, want, false, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Joined {
        connect,
        registered,
        rss_kib: (before, rss_kib(servers)),
    }
}

/// CPU of the servers (together) and of this process from a start.
struct Meter {
    pids: Vec<u32>,
    server0: f64,
    client0: f64,
    started: Instant,
}

impl Meter {
    fn start(servers: &[&Running]) -> Meter {
        let pids: Vec<u32> = servers.iter().map(|s| s.pid()).collect();
        Meter {
            server0: servers_cpu_ms(&pids),
            pids,
            client0: procfs::self_cpu_ms(),
            started: Instant::now(),
        }
    }

    /// (servers, this process) CPU since the start, ms.
    fn cpu_ms(&self) -> (f64, f64) {
        (
            servers_cpu_ms(&self.pids) - self.server0,
            procfs::self_cpu_ms() - self.client0,
        )
    }
}

fn servers_cpu_ms(pids: &[u32]) -> f64 {
    pids.iter().map(|&pid| procfs::cpu_ms(pid).unwrap_or(0.0)).sum()
}

/// After the publishing: the logs, their tally, and CPU and time from `meter`'s start.
struct Settled {
    logs: Vec<(u32, client::SubscriberLog)>,
    tally: ChannelTally,
    /// Server and load generator CPU, ms.
    cpu_ms: (f64, f64),
    /// Until the last delivery, s.
    secs: f64,
}

/// Waits for what the connected `subs` should get of `pubs` (or 5 s without
/// a delivery, 60 s at most), reads the CPU used, closes and takes the logs
/// and tallies them.
async fn settle(
    ctx: &Context,
    subs: &[Arc<client::Subscriber>],
    pubs: &[Publication],
    channels: usize,
    meter: &Meter,
) -> Settled {
    let expected = expected_deliveries(subs.iter().filter(|s| s.connected()), pubs, channels);
    let quiet = Duration::from_secs(5);
    let last = crate::load::drain(&ctx.progress, expected, quiet, Duration::from_secs(60)).await;
    let cpu_ms = meter.cpu_ms();
    let logs: Vec<_> = subs.iter().map(|s| (s.channel, s.finish())).collect();
    Settled {
        tally: tally::tally(&logs, pubs, channels),
        logs,
        cpu_ms,
        secs: last.saturating_duration_since(meter.started).as_secs_f64(),
    }
}

/// What a scenario measured, for [`outcome`].
struct Measured {
    clients: usize,
    channels: usize,
    joined: Joined,
    pubs: Vec<Publication>,
    settled: Settled,
}

/// Fills in what every scenario reports the same way.
fn outcome(server: &Running, spec: &ChannelSpec, m: Measured) -> ChannelOutcome {
    let Settled {
        tally, cpu_ms, secs, ..
    } = m.settled;
    let delivered = tally.delivered;
    let per_1000 = |ms: f64| {
        if delivered > 0 {
            ms * 1000.0 / delivered as f64
        } else {
            0.0
        }
    };
    let mut rtt = crate::load::histogram();
    for p in m.pubs.iter().filter(|p| p.ok()) {
        let _ = rtt.record(p.rtt_us().max(1));
    }
    let Joined {
        connect,
        registered,
        rss_kib,
    } = m.joined;
    let connected = m.clients.saturating_sub(connect.failures).max(1);
    ChannelOutcome {
        server: server.name.clone(),
        spec: spec.clone(),
        clients: m.clients,
        channels: m.channels,
        registered,
        published: m.pubs.len() as u64,
        published_ok: m.pubs.iter().filter(|p| p.ok()).count() as u64,
        publish_errors: m
            .pubs
            .iter()
            .filter(|p| !p.ok())
            .take(5)
            .map(|p| match &p.status {
                Ok(s) => format!("HTTP {s}"),
                Err(e) => e.clone(),
            })
            .collect(),
        publish_rtt_ms: Percentiles::of(&rtt),
        secs,
        deliveries_per_sec: if secs > 0.0 { delivered as f64 / secs } else { 0.0 },
        server_cpu_ms: cpu_ms.0,
        server_cpu_ms_per_1000: per_1000(cpu_ms.0),
        client_cpu_ms_per_1000: per_1000(cpu_ms.1),
        rss_per_client_kib: rss_kib.1.saturating_sub(rss_kib.0) as f64 / connected as f64,
        connect,
        tally,
        isolation: None,
        storm: None,
    }
}

/// Deliveries `subs` should get: each its channel's accepted publishes.
fn expected_deliveries<'a>(
    subs: impl Iterator<Item = &'a Arc<client::Subscriber>>,
    pubs: &[Publication],
    channels: usize,
) -> u64 {
    let mut accepted = vec![0u64; channels];
    for p in pubs.iter().filter(|p| p.ok()) {
        if let Some(n) = accepted.get_mut(p.channel as usize) {
            *n += 1;
        }
    }
    subs.map(|s| accepted.get(s.channel as usize).copied().unwrap_or(0))
        .sum()
}

/// The servers' RSS now, together, KiB.
fn rss_kib(servers: &[&Running]) -> u64 {
    servers
        .iter()
        .map(|s| procfs::sample_light(s.pid()).map_or(0, |s| s.rss_kib))
        .sum()
}
