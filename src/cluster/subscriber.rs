//! The subscriber thread: one SUBSCRIBE connection per node, for what needs no
//! history: messages for one client (`/send/{id}`) and their answers, and the
//! nodes' announcements (`/cluster`). Made again with backoff whenever it is lost.
//!
//! While it is down the node is degraded: publishes answer 503 and `/healthz`
//! says so. A message for one client sent meanwhile never reaches it (Redis
//! pub/sub keeps nothing for absent subscribers): its sender got a 404 or 503.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use super::dedup::Dedup;
use super::link::connect;
use super::relink::{self, End};
use super::wire::{self, Body, SendResult};
use super::{Cluster, Control, MemberInfo, Outcome, MEMBER_WINDOW, POLL, SILENCE_LIMIT};
use crate::client::ClientId;
use crate::publish::Payload;
use crate::stop::StopToken;

/// Runs until the stop.
pub(super) fn run(cluster: &Cluster, stop: &StopToken) {
    let mut dedup = Dedup::default();
    relink::keep(cluster, stop, "subscription", |down_since| {
        subscription(cluster, stop, &mut dedup, down_since)
    });
}

/// One subscription from connect to loss (or stop).
fn subscription(
    cluster: &Cluster,
    stop: &StopToken,
    dedup: &mut Dedup,
    down_since: &mut Option<Instant>,
) -> End {
    let mut conn = match connect(&cluster.client, &cluster.connection_name("subscriber")) {
        Ok(conn) => conn,
        Err(e) => return End::failed(e),
    };
    let mut pubsub = conn.as_pubsub();
    if let Err(e) = subscribe(cluster, &mut pubsub) {
        return End::failed(e);
    }
    cluster.subscribed.store(true, SeqCst);
    cluster.came_back("subscription", down_since.take());
    let _ = cluster.control.send(Control::Announce { hello: true });
    let end = listen(cluster, &mut pubsub, stop, dedup);
    // At the stop it stays "up" for the announcer's goodbye.
    if !matches!(end, End::Stopped) {
        cluster.subscribed.store(false, SeqCst);
    }
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
                    return End::dropped(format!(
                        "nothing arrived for {SILENCE_LIMIT:?}, not even this node's own announcements"
                    ));
                }
            }
            Err(e) => return End::dropped(e),
        }
    }
}

/// Acts on one message from the subscription.
fn handle(cluster: &Cluster, dedup: &mut Dedup, channel: &str, bytes: &[u8]) {
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
    // A message retried on a fresh connection may arrive twice; deliver it once.
    if matches!(env.body, Body::One { .. }) && !dedup.first_time(env.boot, env.seq) {
        log::info!(
            "cluster: dropped a repeat of message {} from node {}",
            env.seq,
            env.origin
        );
        return;
    }
    match env.body {
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
