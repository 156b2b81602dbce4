//! The ping thread: pings every client, reaps those that went silent, closes
//! those whose subscribe token expired, and has freed heap returned once
//! connections have ended (`memory`).
//!
//! The Ping frame is encoded once and offered under the registry lock, like a
//! broadcast. Pings are spread over the interval: each check pings one slice
//! of the clients (by id), so that 15,000 clients do not all answer at once —
//! a burst of pongs that wakes every reader thread together and, on a busy
//! machine, delays the broadcasts of the next seconds (see BENCHMARKS.md).
//! With `--ping-style text` a round also sends the tutorial's text `ping`, a
//! data message, to the `/echo` clients (a `/ws/…` client gets envelopes
//! only), so that round goes to every client at once and keeps the same order
//! relative to broadcasts everywhere. A client from whom no bytes arrived
//! within `--pong-timeout` is shut down; its reader then wakes, unregisters it
//! and logs the reason. A client whose token's `exp` has passed is sent
//! close 4001 `token expired` (an event stream: `event: expired`, then the
//! end of the stream) at the next check (at most a second late; the
//! same pass over the clients as the silence check, so it costs nothing per
//! message and no timer per client). Each check also drops stored messages
//! past `--history-ttl`, so that history memory goes when it expires, not
//! only at the next publish.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, tick};
use prometheus_client::metrics::counter::Counter;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::broadcast::Fanout;
use crate::client::{Client, Transport};
use crate::config::PingStyle;
use crate::frame::{self, EncodedFrame};
use crate::memory::HeapTrimmer;
use crate::registry::Registry;
use crate::sse;
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::threads::{Role, ThreadSpawner};

/// Longest gap between two checks for silent clients and expired tokens.
const MAX_REAP_CHECK: Duration = Duration::from_secs(1);

/// A ping for each transport, encoded once per round.
struct Pings {
    frame: EncodedFrame,
    comment: EncodedFrame,
}

impl Pings {
    fn new() -> Pings {
        Pings {
            frame: frame::ping(),
            comment: sse::ping(),
        }
    }

    fn for_transport(&self, transport: Transport) -> &EncodedFrame {
        match transport {
            Transport::Echo | Transport::Ws => &self.frame,
            Transport::Sse => &self.comment,
        }
    }
}

/// The close code of a connection whose subscribe token expired (private use
/// range, RFC 6455 7.4.2): `wspush.js` fetches a fresh token at once on it.
pub const TOKEN_EXPIRED: u16 = 4001;

/// What the ping thread needs.
pub struct Pinger {
    pub registry: Arc<Registry>,
    pub fanout: Fanout,
    pub stats: Arc<Stats>,
    /// `--ping-interval`.
    pub interval: Duration,
    /// `--pong-timeout`.
    pub timeout: Duration,
    pub style: PingStyle,
    /// Side-port connections ended so far (`http_front`): their buffers are
    /// freed heap too.
    pub http_conns_ended: Counter,
    pub stop: StopToken,
}

/// Starts the ping thread; it ends with the stop.
pub fn start(pinger: Pinger, spawner: &ThreadSpawner) -> std::io::Result<JoinHandle<()>> {
    spawner.spawn(Role::Service, "pinger".into(), move || pinger.run())
}

impl Pinger {
    fn run(&self) {
        let check_every = self
            .interval
            .min(self.timeout / 4)
            .min(MAX_REAP_CHECK)
            .max(Duration::from_millis(10));
        let ticker = tick(check_every);
        let mut next_ping = Instant::now() + self.interval;
        // Frame pings: each client once every `slices` checks, about once an interval.
        let spread = self.style == PingStyle::Frame;
        let slices = (self.interval.as_nanos() / check_every.as_nanos()).max(1) as u64;
        let ping = Pings::new();
        let mut round: u64 = 0;
        let mut trimmer = HeapTrimmer::new();
        loop {
            select! {
                recv(ticker) -> _ => {
                    self.sweep();
                    self.registry.expire_history(Instant::now());
                    trimmer.tick(self.connections_ended());
                    if spread {
                        self.ping_slice(&ping, round % slices, slices);
                        round += 1;
                    } else if Instant::now() >= next_ping {
                        self.ping_all(&ping);
                        next_ping += self.interval;
                    }
                }
                recv(self.stop.channel()) -> _ => return,
            }
        }
    }

    /// WebSocket and side-port connections ended so far: the heap trimmer's cue.
    fn connections_ended(&self) -> u64 {
        let accepted = self.stats.connections_accepted.get();
        let ws_ended = accepted.saturating_sub(self.registry.len() as u64);
        ws_ended + self.http_conns_ended.get()
    }

    /// Pings the clients whose id falls in `slice` of `slices`.
    fn ping_slice(&self, ping: &Pings, slice: u64, slices: u64) {
        self.fanout.offer_each(|client| {
            client.id.0 % slices == slice && self.fanout.offer(client, ping.for_transport(client.transport()))
        });
    }

    /// The tutorial's round: a Ping to every client, and a text `ping` to
    /// each `/echo` client.
    fn ping_all(&self, ping: &Pings) {
        let text = frame::text("ping");
        self.fanout.offer_each(|client| {
            self.fanout.offer(client, ping.for_transport(client.transport()))
                && (client.transport() != Transport::Echo || self.fanout.offer(client, &text))
        });
    }

    /// One pass over the clients: reaps the silent ones, closes those whose token expired.
    fn sweep(&self) {
        let limit = self.timeout.as_millis() as u64;
        let now = SystemTime::now();
        let (mut silent, mut expired) = (Vec::new(), Vec::new());
        self.registry.for_each(|client| {
            if client.transport() != Transport::Sse && client.last_seen.silent_ms() > limit {
                silent.push(Arc::clone(client));
            } else if client.token_expired(now) {
                expired.push(Arc::clone(client));
            }
        });
        self.reap(silent);
        self.close_expired(expired);
    }

    fn reap(&self, silent: Vec<Arc<Client>>) {
        let timeout = self.timeout;
        for client in silent {
            let reason = format!("reaped: nothing received for {:.1} s", timeout.as_secs_f64());
            if client.mark_ended(reason) {
                self.stats.clients_reaped.inc();
                log::warn!(
                    "{client} reaped: no pong or frame within {:.1} s",
                    timeout.as_secs_f64()
                );
                client.outbox.kill();
            }
        }
    }

    /// Closes each WebSocket client with 4001 `token expired`, and ends each
    /// event stream with an `event: expired` (each encoded once per pass).
    /// Its reader logs the one line of the event when the connection ends:
    /// `client 7 (…) disconnected: token expired (closed with 4001)`.
    fn close_expired(&self, expired: Vec<Arc<Client>>) {
        if expired.is_empty() {
            return;
        }
        let close = frame::close(CloseCode::from(TOKEN_EXPIRED), "token expired");
        let event = sse::expired();
        for client in expired {
            let (last, how) = match client.transport() {
                Transport::Echo | Transport::Ws => (&close, format!("closed with {TOKEN_EXPIRED}")),
                Transport::Sse => (&event, "sent event: expired".to_owned()),
            };
            if client.mark_ended(format!("token expired ({how})")) {
                self.stats.tokens_expired.inc();
                client.outbox.close(last.clone());
            }
        }
    }
}
