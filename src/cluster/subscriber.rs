//! The subscriber thread: one SUBSCRIBE connection per node, read in order and
//! handed to the fan-out; made again with backoff whenever it is lost.
//!
//! While it is down the node is degraded: publishes answer 503 and `/healthz`
//! says so. Messages published meanwhile never reach this node's clients
//! (Redis pub/sub keeps nothing for absent subscribers): at-most-once.

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::publisher::connect;
use super::wire::{self, Body, SendResult};
use super::{
    Cluster, Control, MemberInfo, Outcome, MAX_BACKOFF, MEMBER_WINDOW, MIN_BACKOFF, POLL, SILENCE_LIMIT,
};
use crate::client::ClientId;
use crate::publish::Payload;
use crate::stop::StopToken;

/// How a subscription ended.
enum End {
    /// The server is stopping.
    Stopped,
    /// Connecting, subscribing or reading failed.
    Lost {
        reason: String,
        /// Whether it had been subscribed (else it never got that far).
        was_up: bool,
    },
}

/// Runs until the stop.
pub(super) fn run(cluster: &Cluster, stop: &StopToken) {
    let mut backoff = MIN_BACKOFF;
    let mut down_since: Option<Instant> = None;
    let mut dedup = Dedup::default();
    loop {
        match subscription(cluster, stop, &mut dedup, &mut down_since) {
            End::Stopped => return,
            End::Lost { reason, was_up } => {
                if was_up {
                    log::warn!(
                        "cluster: redis subscription on {} lost: {reason}; reconnecting",
                        cluster.target
                    );
                    down_since = Some(Instant::now());
                    backoff = MIN_BACKOFF;
                } else {
                    log::warn!(
                        "cluster: cannot subscribe at redis {}: {reason}; next try in {backoff:?}",
                        cluster.target
                    );
                }
            }
        }
        if stop.wait(backoff) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription from connect to loss (or stop).
fn subscription(
    cluster: &Cluster,
    stop: &StopToken,
    dedup: &mut Dedup,
    down_since: &mut Option<Instant>,
) -> End {
    let lost = |e: redis::RedisError| End::Lost {
        reason: e.to_string(),
        was_up: false,
    };
    let mut conn = match connect(&cluster.client) {
        Ok(conn) => conn,
        Err(e) => return lost(e),
    };
    let mut pubsub = conn.as_pubsub();
    if let Err(e) = subscribe(cluster, &mut pubsub) {
        return lost(e);
    }
    now_up(cluster, down_since.take());
    let end = listen(cluster, &mut pubsub, stop, dedup);
    cluster.up.store(false, SeqCst);
    end
}

/// Subscribes to the shared channel and this node's own.
fn subscribe(cluster: &Cluster, pubsub: &mut redis::PubSub<'_>) -> redis::RedisResult<()> {
    // One channel at a time: each call returns once Redis confirmed it.
    for channel in [&cluster.id.prefix, &cluster.id.own_channel] {
        pubsub.subscribe(channel.as_str())?;
    }
    pubsub.set_read_timeout(Some(POLL))
}

/// The subscription is up: publishing works again (on fresh connections).
fn now_up(cluster: &Cluster, down_since: Option<Instant>) {
    cluster.epoch.fetch_add(1, SeqCst);
    cluster.up.store(true, SeqCst);
    match down_since {
        Some(since) => {
            cluster.counters.reconnects.fetch_add(1, SeqCst);
            log::info!(
                "cluster: resubscribed at redis {} after {:.1?} down; messages published meanwhile are lost",
                cluster.target,
                since.elapsed()
            );
        }
        None => log::info!(
            "cluster: subscribed to {} and {} at redis {}",
            cluster.id.prefix,
            cluster.id.own_channel,
            cluster.target
        ),
    }
    let _ = cluster.control.send(Control::Announce { hello: true });
}

/// Reads and handles messages until the stop, an error, or a silence too long.
fn listen(cluster: &Cluster, pubsub: &mut redis::PubSub<'_>, stop: &StopToken, dedup: &mut Dedup) -> End {
    let mut last_heard = Instant::now();
    loop {
        if stop.is_stopped() {
            return End::Stopped;
        }
        match pubsub.get_message() {
            Ok(msg) => {
                last_heard = Instant::now();
                handle(cluster, dedup, msg.get_channel_name(), msg.get_payload_bytes());
            }
            Err(e) if e.is_timeout() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    return End::Lost {
                        reason: format!(
                            "nothing arrived for {SILENCE_LIMIT:?}, not even this node's own announcements"
                        ),
                        was_up: true,
                    };
                }
            }
            Err(e) => {
                return End::Lost {
                    reason: e.to_string(),
                    was_up: true,
                }
            }
        }
    }
}

/// Acts on one message from the subscription.
fn handle(cluster: &Cluster, dedup: &mut Dedup, channel: &str, bytes: &[u8]) {
    cluster.counters.received.fetch_add(1, SeqCst);
    let env = match wire::decode(bytes) {
        Ok(env) => env,
        Err(e) => {
            log::warn!(
                "cluster: ignoring a message of {} bytes on {channel}: {e}",
                bytes.len()
            );
            return;
        }
    };
    let mine = env.origin == &*cluster.id.node && env.boot == cluster.id.boot;
    // A publish retried on a fresh connection may arrive twice; deliver it once.
    if matches!(env.body, Body::Publish { .. } | Body::One { .. }) && !dedup.first_time(env.boot, env.seq) {
        log::info!(
            "cluster: dropped a repeat of message {} from node {}",
            env.seq,
            env.origin
        );
        return;
    }
    match env.body {
        Body::Publish {
            ref channel,
            kind,
            payload,
        } => {
            let delivered = cluster
                .fanout
                .publish_local(channel, &Payload::new(kind, payload));
            if mine {
                cluster.complete(env.seq, Outcome::Fanned(delivered));
            }
        }
        Body::One { .. } => deliver_one(cluster, &env, mine, channel),
        Body::Ack { boot, seq, result } => {
            if boot == cluster.id.boot {
                cluster.complete(seq, Outcome::Sent(result));
            }
        }
        Body::Hello(info) | Body::Here(info) => {
            heard_from(cluster, &env, info, mine);
        }
        Body::Bye => {
            cluster.members().left(env.origin, env.boot);
            if !mine {
                log::info!("cluster: node {} left", env.origin);
            }
        }
    }
}

/// A message for one client: offered if the client is here, and answered.
fn deliver_one(cluster: &Cluster, env: &wire::Envelope<'_>, mine: bool, channel: &str) {
    let Body::One {
        kind,
        node,
        client,
        payload,
    } = env.body
    else {
        return;
    };
    let result = if node == &*cluster.id.node {
        match cluster
            .fanout
            .send_to_id(ClientId(client), &Payload::new(kind, payload))
        {
            None => SendResult::Absent,
            Some(true) => SendResult::Delivered,
            Some(false) => SendResult::Refused,
        }
    } else {
        log::warn!(
            "cluster: message for client {node}-{client} arrived at node {} on {channel}",
            cluster.id.node
        );
        SendResult::Absent
    };
    if mine {
        cluster.complete(env.seq, Outcome::Sent(result));
    } else {
        let _ = cluster.control.send(Control::Ack {
            node: env.origin.to_owned(),
            boot: env.boot,
            seq: env.seq,
            result,
        });
    }
}

/// A node announced itself (`hello` also asks this one to answer).
fn heard_from(cluster: &Cluster, env: &wire::Envelope<'_>, info: &[u8], mine: bool) {
    let info: MemberInfo = serde_json::from_slice(info).unwrap_or_default();
    if cluster.members().saw(env.origin, env.boot, info, MEMBER_WINDOW) {
        log::warn!(
            "cluster: node id {} is announced by two processes (boot {:016x} and another), \
             or it restarted within seconds: give each node its own --node-id",
            env.origin,
            env.boot
        );
    }
    if matches!(env.body, Body::Hello(_)) && !mine {
        let _ = cluster.control.send(Control::Announce { hello: false });
    }
}

/// The last message number seen from each boot of each node, to drop repeats
/// (a publish retried after its first try did reach Redis).
#[derive(Default)]
struct Dedup {
    last: HashMap<u64, (u64, Instant)>,
    pruned: Option<Instant>,
}

/// Boots not heard from for this long are forgotten.
const DEDUP_KEEP: Duration = Duration::from_secs(600);

impl Dedup {
    /// True unless message `seq` of `boot` (or a later one) was seen already.
    fn first_time(&mut self, boot: u64, seq: u64) -> bool {
        let now = Instant::now();
        if self
            .pruned
            .is_none_or(|t| now.duration_since(t) > DEDUP_KEEP / 10)
        {
            self.last
                .retain(|_, (_, at)| now.duration_since(*at) < DEDUP_KEEP);
            self.pruned = Some(now);
        }
        let entry = self.last.entry(boot).or_insert((0, now));
        entry.1 = now;
        if seq <= entry.0 {
            return false;
        }
        entry.0 = seq;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_dropped_per_boot() {
        let mut d = Dedup::default();
        assert!(d.first_time(1, 1));
        assert!(d.first_time(1, 3), "gaps are fine: failed publishes use numbers");
        assert!(!d.first_time(1, 3));
        assert!(!d.first_time(1, 2));
        assert!(d.first_time(2, 1), "another boot counts on its own");
    }
}
