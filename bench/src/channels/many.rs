//! `channels-100x100`: many clients on many channels, publishes to every
//! channel interleaved at a fixed total rate; each client must receive its
//! channel's messages, all of them, once, in order, and nothing else.

use std::sync::Arc;

use serde::Serialize;

use super::client::Context;
use super::{channel_names, join, outcome, publish, settle, spread};
use super::{ChannelOutcome, ChannelSpec, Measured, Meter, Setup};
use crate::pool::Pool;
use crate::servers::Running;

/// The parameters.
#[derive(Debug, Clone, Serialize)]
pub struct ManySpec {
    /// Clients, spread evenly over the channels (client `i` on channel `i % channels`).
    pub clients: usize,
    /// Channels (`ch-00`, `ch-01`, ...).
    pub channels: usize,
    /// Publishes to each channel.
    pub per_channel: u32,
    /// Publishes per second, all channels together.
    pub rate: f64,
    /// Payload bytes.
    pub payload: usize,
}

/// Connects, publishes, waits for the deliveries, tallies.
pub async fn run(
    pool: &Pool,
    server: &Running,
    ctx: &Arc<Context>,
    spec: &ManySpec,
    setup: Setup,
) -> Result<ChannelOutcome, String> {
    let names = channel_names("ch", spec.channels);
    let n = names.len();
    let subs = spread(&names, spec.clients, spec.per_channel as usize);
    let joined = join(pool, &[server], ctx, &subs, setup).await;

    let meter = Meter::start(&[server]);
    let (per_channel, rate) = (spec.per_channel, spec.rate);
    let pubs = publish::at_rate(server.http, ctx, &names, per_channel, rate, spec.payload).await;
    let settled = settle(ctx, &subs, &pubs, n, &meter).await;
    let measured = Measured {
        clients: spec.clients,
        channels: n,
        joined,
        pubs,
        settled,
    };
    Ok(outcome(server, &ChannelSpec::Many(spec.clone()), measured))
}
