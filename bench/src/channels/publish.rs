//! Publishing to channels: one keep-alive connection per channel, that
//! channel's publishes one after another on it (each waits for the answer to
//! the one before, so a channel's order is its sequence-number order), the
//! channels interleaved at a fixed total rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::client::Context;
use crate::http;
use crate::load::{now_ns, payload};
use crate::subscriber::Dialect;

/// One publish and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// Its global sequence number (in its payload).
    pub seq: u32,
    /// The channel's index.
    pub channel: u32,
    /// When the request was sent, on [`now_ns`]'s clock.
    pub sent_ns: u64,
    /// When the answer was read.
    pub answered_ns: u64,
    /// The answer's status, or why there was none.
    pub status: Result<u16, String>,
    /// The message id the answer reported.
    pub id: Option<String>,
}

impl Publication {
    /// Answered 2xx.
    pub fn ok(&self) -> bool {
        self.status.as_ref().is_ok_and(|s| (200..300).contains(s))
    }

    /// Round trip of the request, µs.
    pub fn rtt_us(&self) -> u64 {
        self.answered_ns.saturating_sub(self.sent_ns) / 1000
    }
}

/// One channel's publisher on its keep-alive connection.
pub struct ChannelPublisher {
    conn: http::Conn,
    dialect: Dialect,
    path: String,
    channel: u32,
    run_id: u32,
    size: usize,
}

impl ChannelPublisher {
    /// Publishes to channel `channel`, named `name`, on `http`; payloads of `size` bytes for run `run_id`.
    pub fn new(
        http: SocketAddr,
        dialect: Dialect,
        name: &str,
        channel: u32,
        run_id: u32,
        size: usize,
    ) -> Self {
        ChannelPublisher {
            conn: http::Conn::new(http),
            dialect,
            path: dialect.publish_path(name),
            channel,
            run_id,
            size,
        }
    }

    /// Publishes message `seq` and waits for the answer.
    pub async fn publish(&mut self, seq: u32) -> Publication {
        let sent_ns = now_ns();
        let body = payload(self.run_id, seq, sent_ns, self.size);
        let headers = [("Content-Type", "text/plain"), ("Accept", "application/json")];
        let r = self
            .conn
            .request("POST", &self.path, &headers, body.as_bytes())
            .await;
        let answered_ns = now_ns();
        let (status, id) = match r {
            Ok(r) => (Ok(r.status), self.dialect.published_id(&r.body)),
            Err(e) => (Err(e.to_string()), None),
        };
        Publication {
            seq,
            channel: self.channel,
            sent_ns,
            answered_ns,
            status,
            id,
        }
    }
}

/// Publishes `per_channel` messages to each channel in `names`, `rate` per
/// second in all: publish `k` goes to channel `k % names.len()`. Returns
/// every publication, by sequence number.
pub async fn at_rate(
    http: SocketAddr,
    ctx: &Context,
    names: &[Arc<str>],
    per_channel: u32,
    rate: f64,
    size: usize,
) -> Vec<Publication> {
    let n = names.len().max(1) as u32;
    let mut queues = Vec::with_capacity(names.len());
    let mut tasks = Vec::with_capacity(names.len());
    for (c, name) in names.iter().enumerate() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut publisher =
            ChannelPublisher::new(http, ctx.dialect, name, c as u32, ctx.progress.run_id, size);
        queues.push(tx);
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(seq) = rx.recv().await {
                done.push(publisher.publish(seq).await);
            }
            done
        }));
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for k in 0..n * per_channel {
        ticker.tick().await;
        let _ = queues[(k % n) as usize].send(k);
    }
    drop(queues);
    let mut all = Vec::with_capacity((n * per_channel) as usize);
    for task in tasks {
        if let Ok(done) = task.await {
            all.extend(done);
        }
    }
    all.sort_unstable_by_key(|p| p.seq);
    all
}
