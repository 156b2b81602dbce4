//! `connect-token`: what checking a subscribe token adds to a connection.
//!
//! wspush runs twice per round, taking turns: open (no secret) and with
//! `--subscribe-secret`. Each time, `clients` clients connect to
//! `/ws/user.N.inbox` (at most `handshake_concurrency` handshakes at once)
//! and stay connected until the last handshake completed; with the secret
//! each carries `?token=` of its own, signed here for `user.N.*` with a `sub`
//! before the run starts (not timed), as a backend would mint them. Per run:
//! the time to the last completed handshake, the handshake latencies, and
//! the server's CPU time over the connect phase, per connection. The summary
//! compares the medians, and the differences within each round (the two runs
//! of a round are back to back, so drift on a shared machine cancels out):
//! what the token adds per connection.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::load::{histogram, source_ip, Percentiles};
use crate::pool::Pool;
use crate::procfs;
use crate::report::median;
use crate::servers::Running;
use crate::wsclient::{Client, Upgrade};

/// The secret of the token runs (`--subscribe-secret`).
pub const SECRET: &str = "wspush-bench-subscribe-secret-4b1d";

/// What one scenario does.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectSpec {
    /// Clients per run.
    pub clients: usize,
    /// Handshakes in flight at once.
    pub handshake_concurrency: usize,
    /// Source addresses 127.0.0.1.. the clients spread over.
    pub source_ips: u8,
}

/// Whether the server checks tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No `--subscribe-secret`: no token sent, none checked.
    Open,
    /// `--subscribe-secret`: one token per client.
    Token,
}

impl Mode {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Token => "token",
        }
    }

    /// The server's extra flags.
    pub fn flags(self) -> Vec<String> {
        match self {
            Mode::Open => Vec::new(),
            Mode::Token => vec!["--subscribe-secret".into(), SECRET.into()],
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectOutcome {
    /// Open or with tokens.
    pub mode: Mode,
    /// The round (from 1): the open and token runs of a round are compared.
    pub round: usize,
    /// Clients that completed their handshake.
    pub connected: usize,
    /// Handshakes that failed, and the first few errors.
    pub failures: usize,
    /// The first few errors.
    pub errors: Vec<String>,
    /// Seconds from the first connect to the last completed handshake.
    pub connect_secs: f64,
    /// Each client's time from its connect to its 101.
    pub handshake_ms: Percentiles,
    /// Server CPU time over the connect phase, per connected client, µs.
    pub server_cpu_us_per_conn: f64,
}

/// The `/ws/…` target of client `i`, with its token if it has one.
fn target(i: usize, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("/ws/user.{i}.inbox?token={token}"),
        None => format!("/ws/user.{i}.inbox"),
    }
}

/// One token per client: `user.N.*`, `sub` `user-N`, valid for an hour.
pub fn mint_tokens(clients: usize) -> Vec<String> {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let header = Header::new(Algorithm::HS256);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    (0..clients)
        .map(|i| {
            let claims = serde_json::json!({ "sub": format!("user-{i}"), "channels": [format!("user.{i}.*")], "exp": exp });
            jsonwebtoken::encode(&header, &claims, &key).expect("HS256 signs any claims")
        })
        .collect()
}

/// Connects every client to `server` (with `tokens[i]` when given), measures, then lets them go.
pub async fn run(
    pool: &Pool,
    server: &Running,
    spec: &ConnectSpec,
    (mode, round): (Mode, usize),
    tokens: &[String],
) -> ConnectOutcome {
    let limit = Arc::new(Semaphore::new(spec.handshake_concurrency.max(1)));
    let cpu_before = procfs::cpu_ms(server.pid()).unwrap_or(0.0);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(spec.clients);
    for i in 0..spec.clients {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore open");
        let target = target(i, tokens.get(i).map(String::as_str));
        let (ws, src) = (server.ws, source_ip(i, spec.source_ips));
        tasks.push(pool.spawn(i, async move {
            let t0 = Instant::now();
            let up = Upgrade {
                target: &target,
                protocol: None,
            };
            let client = Client::connect(ws, src, &up, None).await;
            drop(permit);
            client.map(|c| (c, t0.elapsed()))
        }));
    }
    let (mut held, mut errors, mut failures) = (Vec::with_capacity(spec.clients), Vec::new(), 0);
    let mut latencies = histogram();
    for task in tasks {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((client, took)) => {
                let _ = latencies.record(took.as_micros().max(1) as u64);
                held.push(client);
            }
            Err(e) => {
                failures += 1;
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let cpu_ms = procfs::cpu_ms(server.pid()).unwrap_or(0.0) - cpu_before;
    let connected = held.len();
    drop(held);
    ConnectOutcome {
        mode,
        round,
        connected,
        failures,
        errors,
        connect_secs,
        handshake_ms: Percentiles::of(&latencies),
        server_cpu_us_per_conn: cpu_ms * 1000.0 / connected.max(1) as f64,
    }
}

/// One mode's medians over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectSummary {
    /// Scenario name.
    pub scenario: String,
    /// Open or with tokens.
    pub mode: Mode,
    /// Runs.
    pub runs: usize,
    /// Clients per run.
    pub clients: usize,
    /// Seconds to connect them all.
    pub connect_secs: f64,
    /// Wall time per connection (`connect_secs` ÷ clients), µs.
    pub wall_us_per_conn: f64,
    /// Handshake latency median and 99th percentile, ms.
    pub handshake_p50_ms: f64,
    /// 99th percentile, ms.
    pub handshake_p99_ms: f64,
    /// Server CPU per connection, µs.
    pub server_cpu_us_per_conn: f64,
    /// Failed handshakes (worst run).
    pub failures: usize,
    /// For `token`: the difference to the open run of the same round, median
    /// over rounds, of server CPU per connection, µs.
    pub paired_cpu_us: Option<f64>,
    /// The same for wall time per connection, µs.
    pub paired_wall_us: Option<f64>,
}

impl ConnectSummary {
    /// Summarises the runs of `mode` (none: `None`).
    pub fn of(
        scenario: &str,
        spec: &ConnectSpec,
        mode: Mode,
        runs: &[ConnectOutcome],
    ) -> Option<ConnectSummary> {
        let mine: Vec<&ConnectOutcome> = runs.iter().filter(|o| o.mode == mode).collect();
        if mine.is_empty() {
            return None;
        }
        let m = |f: &dyn Fn(&ConnectOutcome) -> f64| median(mine.iter().map(|o| f(o)).collect());
        let connect_secs = m(&|o| o.connect_secs);
        Some(ConnectSummary {
            scenario: scenario.to_owned(),
            mode,
            runs: mine.len(),
            clients: spec.clients,
            connect_secs,
            wall_us_per_conn: connect_secs * 1e6 / spec.clients.max(1) as f64,
            handshake_p50_ms: m(&|o| o.handshake_ms.p50),
            handshake_p99_ms: m(&|o| o.handshake_ms.p99),
            server_cpu_us_per_conn: m(&|o| o.server_cpu_us_per_conn),
            failures: mine.iter().map(|o| o.failures).max().unwrap_or(0),
            paired_cpu_us: paired(runs, mode, |o| o.server_cpu_us_per_conn),
            paired_wall_us: paired(runs, mode, |o| o.connect_secs * 1e6 / o.connected.max(1) as f64),
        })
    }
}

/// For `Mode::Token`: the median over rounds of (token − open) of `figure`.
fn paired(runs: &[ConnectOutcome], mode: Mode, figure: impl Fn(&ConnectOutcome) -> f64) -> Option<f64> {
    if mode != Mode::Token {
        return None;
    }
    let open = |round| runs.iter().find(|o| o.mode == Mode::Open && o.round == round);
    let diffs: Vec<f64> = runs
        .iter()
        .filter(|o| o.mode == Mode::Token)
        .filter_map(|t| open(t.round).map(|o| figure(t) - figure(o)))
        .collect();
    (!diffs.is_empty()).then(|| median(diffs))
}

/// The `connect-token` table, and what the token adds per connection.
pub fn tables(rows: &[ConnectSummary]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n### Connecting with subscribe tokens (`/ws/user.N.inbox`, open vs `--subscribe-secret` \
         with one token per client; the two take turns)\n\n\
         | scenario | mode | clients | connect s | wall µs/conn | handshake p50 ms | handshake p99 ms \
         | server CPU µs/conn | failed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
            r.scenario,
            r.mode.name(),
            r.clients,
            r.connect_secs,
            r.wall_us_per_conn,
            r.handshake_p50_ms,
            r.handshake_p99_ms,
            r.server_cpu_us_per_conn,
            r.failures
        );
    }
    for token in rows.iter().filter(|r| r.mode == Mode::Token) {
        if let (Some(cpu), Some(wall)) = (token.paired_cpu_us, token.paired_wall_us) {
            let _ = writeln!(
                s,
                "\n{}: a token adds {cpu:+.1} µs of server CPU and {wall:+.1} µs of wall time per connection \
                 (token − open within each round, median over rounds; target: < 20 µs).",
                token.scenario
            );
        }
    }
    s
}
