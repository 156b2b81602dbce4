//! Fan-out of what a shared log (a cluster's Redis stream) gives: each message
//! with the id the log gave it, and the history told where the log starts
//! over or lost messages, with a `reset` to every client that had ids.

use std::time::Instant;

use super::{Delivered, Fanout};
use crate::channel::ChannelName;
use crate::client::Transport;
use crate::history::{AppendError, Epoch, History, MessageId};
use crate::message::{self, Frames, Prepared};
use crate::publish::Payload;

impl Fanout {
    /// Publishes `msg` on `channel` to this node's clients as message `id`
    /// (published at `at`), as `publish_local` does with an id of its own.
    /// The id must follow the latest in the same epoch.
    pub fn publish_logged(
        &self,
        channel: &ChannelName,
        msg: &Payload,
        id: MessageId,
        at: Instant,
    ) -> Result<Delivered, AppendError> {
        let prepared = Prepared::new(channel, msg);
        let now = Instant::now();
        let delivered = self.registry.with_hub(|hub| {
            let stored = hub
                .history
                .append(channel, id, at, now, |id| prepared.frames(id))?;
            Ok::<_, AppendError>(self.offer_stored(hub, &stored, prepared.raw()))
        })?;
        self.registry.reached(id.seq());
        self.count_published(channel, &delivered);
        Ok(delivered)
    }

    /// The log is another one (`epoch`), holding nothing up to `floor`: the
    /// history starts over there (see `History::restart`). Returns how many
    /// clients were sent a `reset`.
    pub fn restart_history(&self, epoch: Epoch, floor: u64) -> usize {
        self.reset_all(|history| history.restart(epoch, floor))
    }

    /// The log lost messages up to `floor` before this node read them: a
    /// resume from before it is a reset (see `History::raise_floor`). Returns
    /// how many clients were sent a `reset`.
    pub fn history_gap(&self, floor: u64) -> usize {
        self.reset_all(|history| history.raise_floor(floor))
    }

    /// Changes the history, then offers `{"type":"reset","id":<latest>}` to
    /// every client that is given ids (`/echo` clients are not; an event stream
    /// gets it as `event: reset`), all under the
    /// lock: whatever it is offered afterwards follows the new latest id.
    fn reset_all(&self, change: impl FnOnce(&mut History<Frames>)) -> usize {
        let reset = self.registry.with_hub(|hub| {
            change(&mut hub.history);
            // Encoded once per transport that is given ids, not per client.
            let latest = hub.history.latest();
            let ws = message::reset(&latest, Transport::Ws);
            let sse = message::reset(&latest, Transport::Sse);
            hub.clients()
                .filter(|client| match client.transport() {
                    Transport::Echo => false,
                    Transport::Ws => self.offer(client, &ws),
                    Transport::Sse => self.offer(client, &sse),
                })
                .count()
        });
        self.registry.restarted();
        reset
    }
}
