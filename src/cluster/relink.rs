//! Keeping a long-lived Redis link (the log reader's, the subscription): made
//! again with backoff whenever it is lost, each loss counted and logged once.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use super::{Cluster, MAX_BACKOFF, MIN_BACKOFF};
use crate::stop::StopToken;

/// How one link ended.
pub(super) enum End {
    /// The server is stopping.
    Stopped,
    /// Connecting, setting up or reading failed.
    Lost {
        reason: String,
        /// Whether it had been up (else it never got that far).
        was_up: bool,
    },
}

impl End {
    /// A link that failed before it was up.
    pub(super) fn failed(e: impl ToString) -> End {
        End::Lost {
            reason: e.to_string(),
            was_up: false,
        }
    }

    /// A link that was up and was lost.
    pub(super) fn dropped(e: impl ToString) -> End {
        End::Lost {
            reason: e.to_string(),
            was_up: true,
        }
    }
}

/// Runs `link` (one connection, from connect to loss) until the stop, waiting
/// 0.1 s doubling to 3 s between failed tries. `link` is told since when the
/// link is down, when it was up before and lost (to pass to `came_back`).
pub(super) fn keep(
    cluster: &Cluster,
    stop: &StopToken,
    what: &str,
    mut link: impl FnMut(&mut Option<Instant>) -> End,
) {
    let mut backoff = MIN_BACKOFF;
    let mut down_since: Option<Instant> = None;
    loop {
        match link(&mut down_since) {
            End::Stopped => return,
            End::Lost { reason, was_up: true } => {
                log::warn!(
                    "cluster: {what} at redis {} lost: {reason}; reconnecting",
                    cluster.target
                );
                cluster.counters.link_drops.fetch_add(1, SeqCst);
                down_since = Some(Instant::now());
                backoff = MIN_BACKOFF;
            }
            End::Lost { reason, .. } => log::warn!(
                "cluster: cannot set up the {what} at redis {}: {reason}; next try in {backoff:?}",
                cluster.target
            ),
        }
        if stop.wait(backoff) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl Cluster {
    /// A link is up (again, when it was down since `down_since`): publishing
    /// connections made before may be stale.
    pub(super) fn came_back(&self, what: &str, down_since: Option<Instant>) {
        self.generation.fetch_add(1, SeqCst);
        if let Some(since) = down_since {
            self.counters.reconnects.fetch_add(1, SeqCst);
            log::info!(
                "cluster: {what} at redis {} back after {:.1?} down",
                self.target,
                since.elapsed()
            );
        }
    }
}
