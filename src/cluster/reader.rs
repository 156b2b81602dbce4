//! The log reader thread: follows the shared log (reads after the last entry
//! it read, waiting with `XREAD BLOCK` at the end) and hands each entry to
//! this node's fan-out with the id the log gave it, so every node shows the
//! same ids in the same order.
//!
//! - On joining a log (at startup, or when the log is a new one: another
//!   epoch) the history starts over in the log's epoch (`Fanout::restart_history`,
//!   every client with ids reset) and the reader reads the whole log from its
//!   front: a node that started later holds the same history as the others.
//! - When its link is lost the node is degraded at once (publishes 503); on
//!   reconnecting to the same log it reads on from the last entry it read, so
//!   its clients get every message logged meanwhile, once, in order. Until
//!   it has caught up it stays degraded.
//! - Every read also says how many entries Redis ever removed from the front:
//!   more than the reader has read past means entries were trimmed before it
//!   read them, and the history's floor is raised over them
//!   (`Fanout::history_gap`: every client with ids reset).

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Connection;

use super::dedup::Dedup;
use super::entry::{self, StreamId};
use super::link::connect;
use super::relink::{self, End};
use super::stream::{self, LogState, RawEntry, ReadScript, StreamState};
use super::{Cluster, Outcome, IO_TIMEOUT};
use crate::history::{Epoch, MessageId};
use crate::publish::Payload;
use crate::stop::StopToken;

/// Entries asked for per read.
const READ_COUNT: usize = 500;
/// How long one read waits for an entry (the stop is looked at in between).
const READ_BLOCK: Duration = Duration::from_millis(250);

/// Where this node is in the log.
#[derive(Debug, Default)]
struct Position {
    /// The epoch of the log the history follows (`None`: none yet).
    epoch: Option<u64>,
    /// The last entry read (delivered or not).
    after: StreamId,
    /// How many entries the log ever held up to `after`.
    count: u64,
}

struct Reader<'a> {
    cluster: &'a Cluster,
    position: Position,
    dedup: Dedup,
}

/// Runs until the stop.
pub(super) fn run(cluster: &Cluster, stop: &StopToken) {
    let mut reader = Reader {
        cluster,
        position: Position::default(),
        dedup: Dedup::default(),
    };
    relink::keep(cluster, stop, "log reader", |down_since| {
        let end = reader.follow(stop, down_since);
        if !matches!(end, End::Stopped) {
            cluster.reading.store(false, SeqCst);
        }
        end
    });
}

impl Reader<'_> {
    /// One link: connect, find the log, read until the link is lost or the stop.
    fn follow(&mut self, stop: &StopToken, down_since: &mut Option<Instant>) -> End {
        let cluster = self.cluster;
        let mut conn = match connect(&cluster.client, &cluster.connection_name("reader")) {
            Ok(conn) => conn,
            Err(e) => return End::failed(e),
        };
        if let Err(e) = conn.set_read_timeout(Some(READ_BLOCK + IO_TIMEOUT)) {
            return End::failed(e);
        }
        let epoch = stream::epoch(&mut conn, &cluster.log, Epoch::random().raw());
        let (epoch, script) = match epoch.and_then(|e| Ok((e, ReadScript::load(&mut conn)?))) {
            Ok(both) => both,
            Err(e) => return End::failed(e),
        };
        let recovering = if self.position.epoch == Some(epoch) {
            down_since.is_some()
        } else {
            match stream::state(&mut conn, &cluster.log, &script) {
                Ok(LogState {
                    stream: Some(state), ..
                }) => self.rebase(epoch, &state),
                Ok(_) => return End::failed("the log vanished as it was joined"),
                Err(e) => return End::failed(e),
            }
            false
        };
        cluster.came_back("log reader", down_since.take());
        self.read_on(&mut conn, &script, stop, recovering)
    }

    /// Joins the log with `epoch` whose stream is `state`: the history starts
    /// over in that epoch, and reading starts at the oldest entry left.
    fn rebase(&mut self, epoch: u64, state: &StreamState) {
        let cluster = self.cluster;
        let (start, count) = state.start();
        let reset = cluster
            .fanout
            .restart_history(Epoch::from_raw(epoch), start.seq_at_most());
        cluster.counters.resets.fetch_add(reset as u64, SeqCst);
        match self.position.epoch {
            None => log::info!(
                "cluster: following the log {} (epoch {epoch:016x}) from {start}; {reset} client(s) reset",
                cluster.log.stream
            ),
            Some(old) => log::warn!(
                "cluster: the log {} is a new one (epoch {old:016x}, now {epoch:016x}): the old one was lost \
                 (Redis restarted without persistence, flushed or evicted it); {reset} client(s) reset",
                cluster.log.stream
            ),
        }
        *cluster.log_epoch.lock() = Some(epoch);
        self.position = Position {
            epoch: Some(epoch),
            after: start,
            count,
        };
        self.dedup = Dedup::default();
    }

    /// Reads and delivers until the link is lost, the log changes, or the stop.
    fn read_on(
        &mut self,
        conn: &mut Connection,
        script: &ReadScript,
        stop: &StopToken,
        mut recovering: bool,
    ) -> End {
        let cluster = self.cluster;
        let mut recovered = 0;
        let mut wait = None;
        loop {
            if stop.is_stopped() {
                return End::Stopped;
            }
            let read = stream::read(conn, &cluster.log, script, self.position.after, READ_COUNT, wait);
            let (entries, state) = match read {
                Ok(read) => read,
                Err(e) => return End::dropped(e),
            };
            let state = match state {
                LogState {
                    epoch,
                    stream: Some(state),
                } if epoch == self.position.epoch => state,
                _ => {
                    return End::dropped(format!(
                        "the log {} or its epoch key {} is gone or changed: it was lost",
                        cluster.log.stream, cluster.log.epoch
                    ))
                }
            };
            if state.removed > self.position.count {
                self.gap(entries.first().map(|e| e.id), &state);
            }
            let full = entries.len() == READ_COUNT;
            // At the end of the log: the next read waits for an entry.
            wait = (!full).then_some(READ_BLOCK);
            for raw in entries {
                if self.deliver(raw) && recovering {
                    recovered += 1;
                    cluster.counters.recovered.fetch_add(1, SeqCst);
                }
            }
            if !full && !cluster.reading.load(SeqCst) {
                if recovering {
                    log::info!(
                        "cluster: the log reader caught up: {recovered} message(s) logged while its link was down delivered"
                    );
                    recovering = false;
                }
                cluster.reading.store(true, SeqCst);
            }
        }
    }

    /// Entries after the position were trimmed before they were read: raises
    /// the history's floor over them, so every client with ids is reset.
    fn gap(&mut self, first_read: Option<StreamId>, state: &StreamState) {
        // Nothing after the position is left but what was read.
        let lost_up_to = first_read.map_or(state.last, StreamId::before);
        let cluster = self.cluster;
        let reset = cluster.fanout.history_gap(lost_up_to.seq_at_most());
        cluster.counters.resets.fetch_add(reset as u64, SeqCst);
        log::warn!(
            "cluster: the log lost the entries after {} up to {lost_up_to} before this node read them \
             (trimmed: the outage outlasted --history-ttl or --redis-stream-max-len); {reset} client(s) reset",
            self.position.after
        );
        self.position.after = lost_up_to;
        self.position.count = state.removed;
    }

    /// Hands one entry to the fan-out; true if it was delivered.
    fn deliver(&mut self, raw: RawEntry) -> bool {
        let cluster = self.cluster;
        self.position.after = raw.id;
        self.position.count += 1;
        let fields = raw.field_slices();
        let entry = match entry::decode(&fields) {
            Ok(entry) => entry,
            Err(e) => {
                log::warn!("cluster: ignoring log entry {}: {e}", raw.id);
                return false;
            }
        };
        if !self.dedup.first_time(entry.boot, entry.seq) {
            log::info!(
                "cluster: dropped log entry {}, a repeat of message {} from node {}",
                raw.id,
                entry.seq,
                entry.origin
            );
            return false;
        }
        let (Some(seq), Some(epoch)) = (raw.id.seq(), self.position.epoch) else {
            log::error!(
                "cluster: log entry id {} is too large for a message id: skipped",
                raw.id
            );
            let reset = cluster.fanout.history_gap(raw.id.seq_at_most());
            cluster.counters.resets.fetch_add(reset as u64, SeqCst);
            return false;
        };
        let id = MessageId::new(Epoch::from_raw(epoch), seq);
        let payload = Payload::new(entry.kind, entry.payload);
        let delivered =
            match cluster
                .fanout
                .publish_logged(&entry.channel, &payload, id, published_at(raw.id.ms))
            {
                Ok(delivered) => delivered,
                Err(e) => {
                    log::error!("cluster: log entry {} not delivered: {e}", raw.id);
                    return false;
                }
            };
        cluster.counters.received.fetch_add(1, SeqCst);
        if entry.origin == &*cluster.id.node && entry.boot == cluster.id.boot {
            cluster.complete(entry.seq, Outcome::Fanned(delivered));
        }
        true
    }
}

/// When an entry logged at `ms` (Redis's clock) was published, on this node's
/// monotonic clock: its history keeps it until `--history-ttl` after that.
fn published_at(ms: u64) -> Instant {
    let now = Instant::now();
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now.checked_sub(Duration::from_millis(wall_ms.saturating_sub(ms)))
        .unwrap_or(now)
}
