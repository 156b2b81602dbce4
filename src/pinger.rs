//! The ping thread: pings every client, reaps those that went silent, and
//! has freed heap returned once connections have ended (`memory`).
//!
//! The Ping frame is encoded once and offered under the registry lock, like a
//! broadcast. Pings are spread over the interval: each check pings one slice
//! of the clients (by id), so that 15,000 clients do not all answer at once —
//! a burst of pongs that wakes every reader thread together and, on a busy
//! machine, delays the broadcasts of the next seconds (see BENCHMARKS.md).
//! With `--ping-style text` a round also sends the tutorial's text `ping`, a
//! data message, so that round goes to every client at once and keeps the
//! same order relative to broadcasts everywhere. A client from whom no bytes
//! arrived within `--pong-timeout` is shut down; its reader then wakes,
//! unregisters it and logs the reason.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, tick, Receiver};

use crate::config::PingStyle;
use crate::frame::{self, EncodedFrame};
use crate::memory::HeapTrimmer;
use crate::server::Shared;

/// Longest gap between two checks for silent clients.
const MAX_REAP_CHECK: Duration = Duration::from_secs(1);

/// Starts the ping thread; it ends when `stop` is dropped or sent to.
pub fn start(shared: Arc<Shared>, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("pinger".into())
        .spawn(move || run(&shared, &stop))
}

fn run(shared: &Shared, stop: &Receiver<()>) {
    let interval = shared.config.ping_interval;
    let timeout = shared.config.pong_timeout;
    let check_every = interval
        .min(timeout / 4)
        .min(MAX_REAP_CHECK)
        .max(Duration::from_millis(10));
    let ticker = tick(check_every);
    let mut next_ping = Instant::now() + interval;
    // Frame pings: each client once every `slices` checks, about once an interval.
    let spread = shared.config.ping_style == PingStyle::Frame;
    let slices = (interval.as_nanos() / check_every.as_nanos()).max(1) as u64;
    let ping = frame::ping();
    let mut round: u64 = 0;
    let mut trimmer = HeapTrimmer::new();
    loop {
        select! {
            recv(ticker) -> _ => {
                reap_silent(shared, timeout);
                let ended = shared.stats.connections_accepted.get().saturating_sub(shared.registry.len() as u64);
                trimmer.tick(ended);
                if spread {
                    ping_slice(shared, &ping, round % slices, slices);
                    round += 1;
                } else if Instant::now() >= next_ping {
                    ping_all(shared);
                    next_ping += interval;
                }
            }
            recv(stop) -> _ => return,
        }
    }
}

/// Pings the clients whose id falls in `slice` of `slices`.
fn ping_slice(shared: &Shared, ping: &EncodedFrame, slice: u64, slices: u64) {
    shared
        .fanout
        .offer_each(&[ping], |client| client.id.seq % slices == slice);
}

/// The tutorial's round: a Ping and a text `ping` to every client.
fn ping_all(shared: &Shared) {
    let ping = frame::ping();
    let text = frame::text("ping");
    shared.fanout.offer_each(&[&ping, &text], |_| true);
}

fn reap_silent(shared: &Shared, timeout: Duration) {
    let limit = timeout.as_millis() as u64;
    let mut silent = Vec::new();
    shared.registry.for_each(|client| {
        if client.last_seen.silent_ms() > limit {
            silent.push(Arc::clone(client));
        }
    });
    for client in silent {
        let reason = format!("reaped: nothing received for {:.1} s", timeout.as_secs_f64());
        if client.mark_ended(reason) {
            shared.stats.clients_reaped.inc();
            log::warn!(
                "{client} reaped: no pong or frame within {:.1} s",
                timeout.as_secs_f64()
            );
            client.outbox.kill();
        }
    }
}
