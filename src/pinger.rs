//! The ping thread: pings every client, and reaps those that went silent.
//!
//! Each round's Ping (and, with `--ping-style text`, the tutorial's text
//! `ping`) is encoded once and offered to every client like a broadcast. A
//! client from whom no bytes arrived within `--pong-timeout` is shut down; its
//! reader then wakes, unregisters it and logs the reason.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, tick, Receiver};

use crate::config::PingStyle;
use crate::frame;
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
    loop {
        select! {
            recv(ticker) -> _ => {
                reap_silent(shared, timeout);
                if Instant::now() >= next_ping {
                    ping_all(shared);
                    next_ping += interval;
                }
            }
            recv(stop) -> _ => return,
        }
    }
}

fn ping_all(shared: &Shared) {
    let ping = frame::ping();
    let text = (shared.config.ping_style == PingStyle::Text).then(|| frame::text("ping"));
    shared.registry.for_each(|client| {
        if shared.fanout.offer(client, &ping) {
            if let Some(text) = &text {
                shared.fanout.offer(client, text);
            }
        }
    });
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
