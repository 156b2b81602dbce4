//! The announcer thread: says "here" every 5 s, answers `hello`s, sends the
//! acks for messages this node delivered for others, trims the log to the
//! history window every 5 s, and says goodbye at the stop. It does the
//! publishing the subscriber and the reader must not wait for.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, Receiver};

use super::{node_channel, stream, wire, Cluster, ANNOUNCE_INTERVAL, TRIM_MARGIN};
use crate::stop::StopToken;

/// Work for the announcer thread.
#[derive(Debug)]
pub(super) enum Control {
    /// Announce now (`hello` asks the others to answer).
    Announce { hello: bool },
    /// Tell `node` what became of its message `seq`.
    Ack {
        node: String,
        boot: u64,
        seq: u64,
        result: wire::SendResult,
    },
}

/// Runs until the stop, then says goodbye.
pub(super) fn run(cluster: &Cluster, stop: &StopToken) {
    let rx: &Receiver<Control> = &cluster.control_rx;
    let mut next = Instant::now() + ANNOUNCE_INTERVAL;
    loop {
        select! {
            recv(rx) -> control => match control {
                Ok(Control::Announce { hello }) => announce(cluster, hello),
                Ok(Control::Ack { node, boot, seq, result }) => ack(cluster, &node, boot, seq, result),
                Err(_) => break,
            },
            recv(stop.channel()) -> _ => break,
            default(next.saturating_duration_since(Instant::now())) => {
                announce(cluster, false);
                trim(cluster);
                next = Instant::now() + ANNOUNCE_INTERVAL;
            }
        }
    }
    if cluster.subscribed.load(SeqCst) {
        if let (_, Err(e)) = cluster.publish(&cluster.id.prefix, |seq| cluster.envelope(seq, wire::Body::Bye))
        {
            log::info!("cluster: saying goodbye failed: {e}");
        }
    }
}

fn announce(cluster: &Cluster, hello: bool) {
    // Announcements need the subscription only, not the log.
    if !cluster.subscribed.load(SeqCst) {
        return;
    }
    let info = cluster.info();
    let body = if hello {
        wire::Body::Hello(&info)
    } else {
        wire::Body::Here(&info)
    };
    if let (_, Err(e)) = cluster.publish(&cluster.id.prefix, |seq| cluster.envelope(seq, body)) {
        log::warn!("cluster: announcing node {} failed: {e}", cluster.id.node);
    }
}

fn ack(cluster: &Cluster, node: &str, boot: u64, seq: u64, result: wire::SendResult) {
    let channel = node_channel(&cluster.id.prefix, node);
    let body = wire::Body::Ack { boot, seq, result };
    if let (_, Err(e)) = cluster.publish(&channel, |own| cluster.envelope(own, body)) {
        log::warn!("cluster: answering node {node} about its message {seq} failed: {e}");
    }
}

/// Drops the log's entries older than the history window and a margin
/// (`--history-ttl` + 60 s): no node can replay them any more. Every node
/// does it; it costs Redis little when there is nothing to drop.
fn trim(cluster: &Cluster) {
    if !cluster.is_up() {
        return;
    }
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let Some(oldest) = wall.checked_sub(cluster.log_settings.keep + TRIM_MARGIN) else {
        return;
    };
    let min_ms = oldest.as_millis() as u64;
    let (_, reply) = cluster.send::<(u64,)>(|_| {
        let mut pipe = redis::pipe();
        pipe.add_command(stream::trim_cmd(&cluster.log, min_ms));
        pipe
    });
    match reply {
        Ok((0,)) => {}
        Ok((n,)) => log::debug!("cluster: trimmed {n} entries older than {min_ms} ms from the log"),
        Err(e) => log::warn!("cluster: trimming the log failed: {e}"),
    }
}
