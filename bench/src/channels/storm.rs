//! `resume-storm`: every client's connection dropped at once (an RST, no
//! Close frame) while publishing goes on; every client reconnects at once
//! with the last id it saw, as fast as the server accepts. Each client's
//! whole sequence, across the reconnect, must be its channel's publishes
//! exactly once and in order; a reset counts as a failure. Reported: the
//! time from the drop until the last client is caught up.
//!
//! Over the nodes of a cluster (`cluster-resume-storm`), the clients are
//! spread over the nodes and each reconnects to the next node, with the id
//! the node it was on gave it; publishes go through the first node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{connect_all, Connected, Context, Subscriber, SubscriberLog};
use super::publish::Publication;
use super::{channel_names, join, outcome, publish, settle, spread};
use super::{ChannelOutcome, ChannelSpec, Measured, Meter, Setup};
use crate::load::now_ns;
use crate::pool::Pool;
use crate::servers::Running;
use crate::subscriber::Transport;

/// How long the dropped connections may take to close on the reader threads.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The parameters.
#[derive(Debug, Clone, Serialize)]
pub struct StormSpec {
    /// Clients (client `i` on channel `i % channels`).
    pub clients: usize,
    /// Channels (one is named `storm`; more are `storm-00`, ...).
    pub channels: usize,
    /// Publishes per second, all channels together.
    pub rate: f64,
    /// Publishes to each channel.
    pub publishes: u32,
    /// Seconds of publishing before the drop (every client must have seen a message by then).
    pub drop_after_secs: f64,
    /// Payload bytes.
    pub payload: usize,
    /// WebSocket or event streams.
    pub transport: Transport,
}

/// The drop and the catch-up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StormFigures {
    /// Connections dropped.
    pub dropped: usize,
    /// Dropped connections whose reader had not seen them close within 10 s (not reconnected).
    pub stuck: usize,
    /// Clients that reconnected without a `since` (they had seen no message).
    pub without_since: usize,
    /// The reconnects.
    pub reconnect: Connected,
    /// From the drop until the last reconnect handshake completed, s.
    pub reconnect_secs: f64,
    /// Clients that received, after reconnecting, every message published before they reconnected.
    pub caught_up: usize,
    /// Per client, from the drop until it was caught up: median, s.
    pub catch_up_p50_secs: f64,
    /// The same for the last client, s.
    pub catch_up_max_secs: f64,
    /// Resets received (each a resume the server could not do).
    pub resets: u64,
}

/// When the client of `log` (on `channel`) was caught up after reconnecting
/// at its last handshake: once it had every accepted publish of its channel
/// answered before that handshake (at the handshake itself if it had them
/// all already). `None` if it never reconnected or one of them never came.
pub fn caught_up_at(log: &SubscriberLog, channel: u32, pubs: &[Publication]) -> Option<u64> {
    if log.connected_ns.len() < 2 {
        return None;
    }
    let reconnected = *log.connected_ns.last()?;
    let mut at = reconnected;
    for p in pubs
        .iter()
        .filter(|p| p.ok() && p.channel == channel && p.answered_ns <= reconnected)
    {
        let first = log.deliveries.iter().find(|d| d.seq == p.seq)?;
        at = at.max(first.recv_ns);
    }
    Some(at)
}

/// Waits until every connected subscriber has seen a message (or `timeout`).
async fn wait_first_message(subs: &[Arc<Subscriber>], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && subs.iter().any(|s| s.connected() && !s.has_seen_a_message()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drops every connection, waits for them to close, reconnects them all.
async fn storm(
    pool: &Pool,
    ctx: &Arc<Context>,
    subs: &[Arc<Subscriber>],
    setup: Setup,
) -> (StormFigures, u64) {
    let dropped_at = now_ns();
    let dropped: Vec<Arc<Subscriber>> = subs.iter().filter(|s| s.drop_connection()).cloned().collect();
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while Instant::now() < deadline && dropped.iter().any(|s| s.connected()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One still open would read on while its successor resumes: left out.
    let closed: Vec<Arc<Subscriber>> = dropped.iter().filter(|s| !s.connected()).cloned().collect();
    for sub in &closed {
        sub.move_to_next_node();
    }
    let without_since = closed.iter().filter(|s| !s.has_seen_a_message()).count();
    let reconnect = connect_all(pool, ctx, &closed, setup.handshake_concurrency).await;
    let figures = StormFigures {
        dropped: dropped.len(),
        stuck: dropped.len() - closed.len(),
        without_since,
        reconnect_secs: (now_ns() - dropped_at) as f64 / 1e9,
        reconnect,
        ..StormFigures::default()
    };
    (figures, dropped_at)
}

/// Connects, publishes, drops and reconnects everyone mid-way, tallies.
pub async fn run(
    pool: &Pool,
    servers: &[&Running],
    ctx: &Arc<Context>,
    spec: &StormSpec,
    setup: Setup,
) -> Result<ChannelOutcome, String> {
    let names = channel_names("storm", spec.channels);
    let n = names.len();
    let subs = spread(&names, spec.clients, spec.publishes as usize + 16);
    let joined = join(pool, servers, ctx, &subs, setup).await;

    let meter = Meter::start(servers);
    let (per_channel, rate) = (spec.publishes, spec.rate);
    let publishing = publish::at_rate(servers[0].http, ctx, &names, per_channel, rate, spec.payload);
    let dropping = async {
        tokio::time::sleep(Duration::from_secs_f64(spec.drop_after_secs)).await;
        wait_first_message(&subs, Duration::from_secs(5)).await;
        storm(pool, ctx, &subs, setup).await
    };
    let (pubs, (mut figures, dropped_at)) = tokio::join!(publishing, dropping);
    let settled = settle(ctx, &subs, &pubs, n, &meter).await;
    catch_up(&mut figures, &settled.logs, &pubs, dropped_at);
    figures.resets = settled.tally.faults.resets;
    let measured = Measured {
        clients: spec.clients,
        channels: n,
        joined,
        pubs,
        settled,
    };
    let mut o = outcome(servers[0], &ChannelSpec::Storm(spec.clone()), measured);
    o.storm = Some(figures);
    Ok(o)
}

/// Each client's catch-up, from the drop at `dropped_at`: median and last.
fn catch_up(
    figures: &mut StormFigures,
    logs: &[(u32, SubscriberLog)],
    pubs: &[Publication],
    dropped_at: u64,
) {
    let mut secs: Vec<f64> = logs
        .iter()
        .filter_map(|(c, log)| caught_up_at(log, *c, pubs))
        .map(|at| at.saturating_sub(dropped_at) as f64 / 1e9)
        .collect();
    secs.sort_by(f64::total_cmp);
    figures.caught_up = secs.len();
    figures.catch_up_p50_secs = secs.get(secs.len() / 2).copied().unwrap_or(0.0);
    figures.catch_up_max_secs = secs.last().copied().unwrap_or(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::client::Delivery;

    fn publication(seq: u32, answered_ms: u64) -> Publication {
        Publication {
            seq,
            channel: 0,
            sent_ns: answered_ms * 1_000_000 - 500_000,
            answered_ns: answered_ms * 1_000_000,
            status: Ok(200),
            id: None,
        }
    }

    fn log(connected_ms: &[u64], received: &[(u32, u64)]) -> SubscriberLog {
        SubscriberLog {
            connected_ns: connected_ms.iter().map(|ms| ms * 1_000_000).collect(),
            deliveries: received
                .iter()
                .map(|&(seq, ms)| Delivery {
                    seq,
                    recv_ns: ms * 1_000_000,
                    id_hash: 0,
                })
                .collect(),
            ..SubscriberLog::default()
        }
    }

    #[test]
    fn caught_up_once_the_replay_is_in() {
        // Publishes answered at 100, 200, 300, 400 ms; dropped after 1,
        // reconnected at 350 ms: 2 and 3 replayed at 360 and 370 ms, 4 live.
        let pubs: Vec<Publication> = (1..=4).map(|s| publication(s, u64::from(s) * 100)).collect();
        let l = log(&[0, 350], &[(1, 101), (2, 360), (3, 370), (4, 401)]);
        assert_eq!(caught_up_at(&l, 0, &pubs), Some(370_000_000));
        // Nothing missed while away: caught up at the handshake.
        let l = log(&[0, 250], &[(1, 101), (2, 201), (3, 301), (4, 401)]);
        assert_eq!(caught_up_at(&l, 0, &pubs), Some(250_000_000));
        // A message published before the reconnect never came: never caught up.
        let l = log(&[0, 350], &[(1, 101), (3, 370), (4, 401)]);
        assert_eq!(caught_up_at(&l, 0, &pubs), None);
        // Never reconnected.
        let l = log(&[0], &[(1, 101)]);
        assert_eq!(caught_up_at(&l, 0, &pubs), None);
    }
}
