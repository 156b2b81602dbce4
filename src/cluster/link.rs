//! The node's one publishing connection to Redis, shared by the HTTP threads
//! (appends to the log, messages for one client) and the announcer.
//!
//! It sits behind a mutex taken with a timeout, and connecting and each
//! command have timeouts, so a dead Redis costs a request a few seconds at
//! most. Holding it while numbering and sending keeps a node's messages in its
//! own order, so a reader can drop a repeated one (same boot, number not above
//! the last: `dedup`). That makes one retry safe: a command that fails on a
//! connection that was idle in the slot is sent again once, on a new one.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use redis::{Connection, FromRedisValue, Pipeline};

use super::{Cluster, CONNECT_TIMEOUT, IO_TIMEOUT};

/// How long a publish waits for the shared connection before giving up.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    /// Other publishes held the connection too long.
    #[error("the redis connection stayed busy for {SLOT_WAIT:?}")]
    Busy,
    /// Connecting or the command failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// The node's publishing connection and its message counter.
pub(super) struct Link {
    conn: Option<Connection>,
    /// The cluster's link generation when `conn` was made: a newer one means
    /// the reader or the subscriber lost Redis meanwhile, so `conn` may be stale.
    generation: u64,
    seq: u64,
}

/// The `Link`, locked with a timeout: a publish waits at most `SLOT_WAIT` for it.
pub(super) type LinkSlot = parking_lot::Mutex<Link>;

/// A slot holding a fresh `Link`.
pub(super) fn link_slot() -> LinkSlot {
    parking_lot::Mutex::new(Link {
        conn: None,
        generation: 0,
        seq: 0,
    })
}

impl Cluster {
    /// Runs the commands `build` makes from the next message number on the
    /// shared connection; returns that number (0 if none was taken) and the reply.
    pub(super) fn send<T: FromRedisValue>(
        &self,
        build: impl FnOnce(u64) -> Pipeline,
    ) -> (u64, Result<T, LinkError>) {
        let Some(mut held) = self.link.try_lock_for(SLOT_WAIT) else {
            return (0, Err(LinkError::Busy));
        };
        let link = &mut *held;
        link.seq += 1;
        let seq = link.seq;
        let commands = build(seq);
        let generation = self.generation.load(SeqCst);
        if link.generation != generation {
            link.conn = None;
        }
        let mut retried = false;
        loop {
            let reused = link.conn.is_some();
            let result = match &mut link.conn {
                Some(conn) => commands.query(conn),
                None => connect(&self.client, &self.connection_name("publisher")).and_then(|mut conn| {
                    link.generation = generation;
                    let result = commands.query(&mut conn);
                    link.conn = Some(conn);
                    result
                }),
            };
            match result {
                Ok(reply) => return (seq, Ok(reply)),
                Err(e) => {
                    link.conn = None;
                    if reused && !retried {
                        log::info!(
                            "cluster: a command on an idle redis connection failed ({e}); retrying once on a new one"
                        );
                        retried = true;
                        continue;
                    }
                    return (seq, Err(e.into()));
                }
            }
        }
    }

    /// PUBLISHes on `channel` the message `build` makes from its number;
    /// returns that number and how many subscribers Redis handed it to.
    pub(super) fn publish(
        &self,
        channel: &str,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> (u64, Result<u64, LinkError>) {
        let (seq, reply) = self.send::<(u64,)>(|seq| {
            let mut pipe = redis::pipe();
            pipe.cmd("PUBLISH").arg(channel).arg(build(seq));
            pipe
        });
        (seq, reply.map(|(receivers,)| receivers))
    }
}

/// A new connection with the timeouts, named `name` in Redis's `CLIENT LIST`.
pub(super) fn connect(client: &redis::Client, name: &str) -> redis::RedisResult<Connection> {
    let mut conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    redis::cmd("CLIENT").arg("SETNAME").arg(name).exec(&mut conn)?;
    Ok(conn)
}
