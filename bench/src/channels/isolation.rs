//! `channel-isolation`: what publishing to a channel of 10 subscribers costs
//! when 10 clients are connected in all, and when 10,000 are (the rest on
//! other channels). Publishes go one at a time on one keep-alive connection,
//! each after the previous one reached all 10 subscribers; per publish, the
//! round trip of the request and the time until the last of the 10 had it.
//! The two sides alternate which goes first from round to round.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{connect_all, Connected, Context, Subscriber, SubscriberLog};
use super::publish::{ChannelPublisher, Publication};
use super::{channel_names, join, outcome, rss_kib, tally, wait_registered};
use super::{ChannelOutcome, ChannelSpec, Measured, Meter, Settled, Setup};
use crate::load::{histogram, Percentiles};
use crate::pool::Pool;
use crate::report::ratio;
use crate::servers::Running;

/// The measured channel.
const CHANNEL: &str = "iso";
/// Publishes at the start of each side left out of its figures (the keep-alive connection opens).
const WARM_UP: usize = 10;
/// How long one publish may take to reach its subscribers before the next goes anyway.
const REACH_TIMEOUT: Duration = Duration::from_secs(1);

/// The parameters.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationSpec {
    /// Subscribers of the measured channel `iso`.
    pub subscribers: usize,
    /// Further clients, on other channels (`other-000`, ...), on the large side only.
    pub others: usize,
    /// Clients per other channel.
    pub per_other_channel: usize,
    /// Publishes to `iso` on each side.
    pub publishes: u32,
    /// Payload bytes.
    pub payload: usize,
}

/// One side: the publish round trips and the time to reach every subscriber.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    /// Clients connected in all.
    pub clients: u64,
    /// Publish request round trip.
    pub rtt_ms: Percentiles,
    /// Send until the last subscriber of `iso` had it.
    pub reach_ms: Percentiles,
}

/// Both sides and their ratios (large ÷ small; the target is ≤ 1.5×).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IsolationFigures {
    /// Only the channel's subscribers connected.
    pub small: Side,
    /// With the other clients connected too.
    pub large: Side,
    /// Whether the large side was measured first.
    pub large_first: bool,
    /// Round trip p50, large ÷ small.
    pub rtt_p50_ratio: f64,
    /// Round trip p99, large ÷ small.
    pub rtt_p99_ratio: f64,
    /// Reach p50, large ÷ small.
    pub reach_p50_ratio: f64,
    /// Reach p99, large ÷ small.
    pub reach_p99_ratio: f64,
}

/// The clients of the run.
struct Crowd<'a> {
    pool: &'a Pool,
    server: &'a Running,
    ctx: &'a Arc<Context>,
    setup: Setup,
    iso: Vec<Arc<Subscriber>>,
    others: Vec<Arc<Subscriber>>,
}

impl Crowd<'_> {
    /// Connects the other clients and waits until the server counts everyone.
    async fn connect_others(&self) -> Connected {
        let c = connect_all(
            self.pool,
            self.ctx,
            &self.others,
            self.setup.handshake_concurrency,
        )
        .await;
        let want = (self.iso.len() + self.others.len() - c.failures) as u64;
        wait_registered(&[self.server], want, false, Duration::from_secs(20)).await;
        c
    }

    /// Closes the other clients and waits until the server counts only `iso`'s.
    async fn close_others(&self) -> Vec<(u32, SubscriberLog)> {
        let logs = self.others.iter().map(|s| (s.channel, s.finish())).collect();
        wait_registered(
            &[self.server],
            self.iso.len() as u64,
            true,
            Duration::from_secs(20),
        )
        .await;
        logs
    }

    /// Publishes `count` messages from `first_seq` on, each once every `iso` subscriber has the one before.
    async fn measure(
        &self,
        publisher: &mut ChannelPublisher,
        first_seq: u32,
        count: u32,
    ) -> Vec<Publication> {
        let subscribers = self.iso.iter().filter(|s| s.connected()).count() as u64;
        let mut pubs = Vec::with_capacity(count as usize);
        for seq in first_seq..first_seq + count {
            let target = self.ctx.progress.delivered.load(Relaxed) + subscribers;
            pubs.push(publisher.publish(seq).await);
            let deadline = Instant::now() + REACH_TIMEOUT;
            while self.ctx.progress.delivered.load(Relaxed) < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        pubs
    }
}

/// A side's figures from its publications and the `iso` subscribers' logs.
fn side(clients: u64, pubs: &[Publication], iso_logs: &[(u32, SubscriberLog)]) -> Side {
    let measured = &pubs[WARM_UP.min(pubs.len())..];
    let (mut rtt, mut reach) = (histogram(), histogram());
    for p in measured.iter().filter(|p| p.ok()) {
        let _ = rtt.record(p.rtt_us().max(1));
        let last = iso_logs
            .iter()
            .filter_map(|(_, log)| log.deliveries.iter().find(|d| d.seq == p.seq))
            .map(|d| d.recv_ns)
            .max();
        if let Some(last) = last {
            let _ = reach.record((last.saturating_sub(p.sent_ns) / 1000).max(1));
        }
    }
    Side {
        clients,
        rtt_ms: Percentiles::of(&rtt),
        reach_ms: Percentiles::of(&reach),
    }
}

/// What the two sides published, and what the large side added.
struct Sides {
    small: Vec<Publication>,
    large: Vec<Publication>,
    /// The other clients' logs (they must have received nothing).
    other_logs: Vec<(u32, SubscriberLog)>,
    /// Connecting the other clients.
    others: Connected,
    /// The server's RSS with every client connected, KiB.
    rss_connected: u64,
    /// Subscribers the server counted with every client connected.
    registered: u64,
}

impl Crowd<'_> {
    /// Measures the small and the large side, the large first if `large_first`.
    async fn sides(&self, publisher: &mut ChannelPublisher, n: u32, large_first: bool) -> Sides {
        let mut s = Sides {
            small: Vec::new(),
            large: Vec::new(),
            other_logs: Vec::new(),
            others: Connected::default(),
            rss_connected: 0,
            registered: 0,
        };
        // Sequence numbers follow the publishing order: the side measured
        // first has 0..n, the second n..2n (a channel's expected order).
        for (first_seq, large_now) in [(0, large_first), (n, !large_first)] {
            if large_now {
                s.others = self.connect_others().await;
                s.registered = self.server.total_subscribers().await.unwrap_or(0);
                s.rss_connected = rss_kib(&[self.server]);
                s.large = self.measure(publisher, first_seq, n).await;
                s.other_logs = self.close_others().await;
            } else {
                s.small = self.measure(publisher, first_seq, n).await;
            }
        }
        s
    }
}

/// Measures both sides, in the order the round gives.
pub async fn run(
    pool: &Pool,
    server: &Running,
    ctx: &Arc<Context>,
    spec: &IsolationSpec,
    setup: Setup,
) -> Result<ChannelOutcome, String> {
    let other_channels = spec.others.div_ceil(spec.per_other_channel.max(1));
    let mut names = vec![Arc::<str>::from(CHANNEL)];
    names.extend(channel_names("other", other_channels));
    let capacity = 2 * spec.publishes as usize;
    let per_other = spec.per_other_channel.max(1);
    let crowd = Crowd {
        pool,
        server,
        ctx,
        setup,
        iso: (0..spec.subscribers)
            .map(|i| Arc::new(Subscriber::new(i, 0, Arc::clone(&names[0]), capacity)))
            .collect(),
        others: (0..spec.others)
            .map(|i| {
                Arc::new(Subscriber::new(
                    spec.subscribers + i,
                    (1 + i / per_other) as u32,
                    Arc::clone(&names[1 + i / per_other]),
                    0,
                ))
            })
            .collect(),
    };
    let mut joined = join(pool, &[server], ctx, &crowd.iso, setup).await;
    let iso_ok = (spec.subscribers - joined.connect.failures) as u64;
    if iso_ok == 0 {
        return Err(format!(
            "no subscriber of {CHANNEL} connected: {:?}",
            joined.connect.errors
        ));
    }
    let mut publisher = ChannelPublisher::new(
        server.http,
        ctx.dialect,
        CHANNEL,
        0,
        ctx.progress.run_id,
        spec.payload,
    );
    let large_first = setup.round.is_multiple_of(2);
    let meter = Meter::start(&[server]);
    let sides = crowd.sides(&mut publisher, spec.publishes, large_first).await;
    let cpu_ms = meter.cpu_ms();
    let secs = meter.started.elapsed().as_secs_f64();

    let iso_logs: Vec<(u32, SubscriberLog)> = crowd.iso.iter().map(|s| (s.channel, s.finish())).collect();
    let total = (spec.subscribers + spec.others) as u64;
    let figures = isolation_figures(
        side(iso_ok, &sides.small, &iso_logs),
        side(total, &sides.large, &iso_logs),
        large_first,
    );
    let c = &mut joined.connect;
    c.secs += sides.others.secs;
    c.failures += sides.others.failures;
    c.errors.extend(sides.others.errors);
    joined.registered = joined.registered.max(sides.registered);
    joined.rss_kib.1 = sides.rss_connected;
    let mut pubs = sides.small;
    pubs.extend(sides.large);
    // In publishing order, which the tally expects.
    pubs.sort_unstable_by_key(|p| p.seq);
    let mut logs = iso_logs;
    logs.extend(sides.other_logs);
    let settled = Settled {
        tally: tally::tally(&logs, &pubs, names.len()),
        logs,
        cpu_ms,
        secs,
    };
    let measured = Measured {
        clients: spec.subscribers + spec.others,
        channels: names.len(),
        joined,
        pubs,
        settled,
    };
    let mut o = outcome(server, &ChannelSpec::Isolation(spec.clone()), measured);
    o.isolation = Some(figures);
    Ok(o)
}

fn isolation_figures(small: Side, large: Side, large_first: bool) -> IsolationFigures {
    IsolationFigures {
        rtt_p50_ratio: ratio(large.rtt_ms.p50, small.rtt_ms.p50),
        rtt_p99_ratio: ratio(large.rtt_ms.p99, small.rtt_ms.p99),
        reach_p50_ratio: ratio(large.reach_ms.p50, small.reach_ms.p50),
        reach_p99_ratio: ratio(large.reach_ms.p99, small.reach_ms.p99),
        small,
        large,
        large_first,
    }
}
