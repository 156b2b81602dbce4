//! `publish-rtt`: the round trip of one publish at a time (`POST /sendall`,
//! text/plain) on one keep-alive connection, each waiting for its answer,
//! with N clients connected and reading. What the HTTP side adds per publish
//! shows as the difference between two wspush builds run side by side.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http;
use crate::load::{self, histogram, now_ns, payload, Percentiles, Progress};
use crate::pool::Pool;
use crate::procfs;
use crate::report::{median, ratio};
use crate::servers::Running;

/// The parameters.
#[derive(Debug, Clone, Serialize)]
pub struct RttSpec {
    /// Clients connected (and reading every message) while publishing.
    pub clients: usize,
    /// Publishes measured.
    pub publishes: u32,
    /// Publishes before those, not measured (the connection opens, caches warm).
    pub warm_up: u32,
    /// Payload bytes.
    pub payload: usize,
    /// Handshakes in flight at once.
    pub handshake_concurrency: usize,
    /// Source addresses the clients spread over.
    pub source_ips: u8,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RttOutcome {
    /// The server's name.
    pub server: String,
    /// The parameters.
    pub spec: RttSpec,
    /// Seconds to connect the clients.
    pub connect_secs: f64,
    /// Clients that failed to connect.
    pub connect_failures: usize,
    /// Measured publishes answered 2xx.
    pub publishes_ok: u64,
    /// The first few publish errors.
    pub publish_errors: Vec<String>,
    /// Round trip of the measured publishes.
    pub rtt_ms: Percentiles,
    /// Measured publishes per second (one at a time).
    pub publishes_per_sec: f64,
    /// Server CPU per measured publish, µs (its fan-out included).
    pub server_cpu_us_per_publish: f64,
    /// This load generator's CPU per measured publish, µs (its clients' reading included).
    pub client_cpu_us_per_publish: f64,
    /// Deliveries to the clients, warm-up included.
    pub delivered: u64,
    /// Deliveries that never came.
    pub lost: u64,
    /// Deliveries that came twice.
    pub duplicated: u64,
}

/// Connects the clients, publishes one at a time, waits for the deliveries;
/// an error if no measured publish was answered 2xx.
pub async fn run(pool: &Pool, server: &Running, spec: &RttSpec) -> Result<RttOutcome, String> {
    let progress = Progress::new();
    let total = spec.warm_up + spec.publishes;
    let limit = Arc::new(tokio::sync::Semaphore::new(spec.handshake_concurrency.max(1)));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut readers = Vec::with_capacity(spec.clients);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for i in 0..spec.clients {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore open");
        let (failures, done) = (Arc::clone(&failures), done_tx.clone());
        let on_connected = move |r: Result<(), String>| {
            drop(permit);
            if r.is_err() {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = done.send(());
        };
        let src = load::source_ip(i, spec.source_ips);
        readers.push(load::spawn_reader(
            pool,
            i,
            server.ws,
            src,
            &progress,
            total as usize,
            on_connected,
        ));
    }
    drop(done_tx);
    while done_rx.recv().await.is_some() {}
    let connect_secs = started.elapsed().as_secs_f64();
    let connect_failures = failures.load(std::sync::atomic::Ordering::Relaxed);
    let connected = (spec.clients - connect_failures) as u64;
    load::wait_subscribers(server, connected, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut conn = http::Conn::new(server.http);
    let (mut rtt, mut ok, mut errors) = (histogram(), Vec::with_capacity(total as usize), Vec::new());
    let (mut cpu0, mut self0, mut t0) = (0.0, 0.0, Instant::now());
    for seq in 0..total {
        if seq == spec.warm_up {
            (cpu0, self0, t0) = (
                procfs::cpu_ms(server.pid()).unwrap_or(0.0),
                procfs::self_cpu_ms(),
                Instant::now(),
            );
        }
        let body = payload(progress.run_id, seq, now_ns(), spec.payload);
        let sent = Instant::now();
        let r = conn
            .request(
                "POST",
                "/sendall",
                &[("Content-Type", "text/plain")],
                body.as_bytes(),
            )
            .await;
        let took = sent.elapsed();
        match r {
            Ok(r) if (200..300).contains(&r.status) => {
                ok.push(seq);
                if seq >= spec.warm_up {
                    let _ = rtt.record((took.as_micros() as u64).max(1));
                }
            }
            Ok(r) => errors.push(format!("HTTP {}", r.status)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let server_cpu = procfs::cpu_ms(server.pid()).unwrap_or(cpu0) - cpu0;
    let client_cpu = procfs::self_cpu_ms() - self0;
    load::drain(
        &progress,
        connected * ok.len() as u64,
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await;
    let mut logs = Vec::with_capacity(readers.len());
    for reader in readers {
        logs.push(reader.finish().await);
    }
    let tally = load::tally(&logs, &ok);
    if rtt.is_empty() {
        return Err(format!(
            "no publish answered 2xx: {:?}",
            &errors[..errors.len().min(3)]
        ));
    }
    let measured = rtt.len() as f64;
    Ok(RttOutcome {
        server: server.name.clone(),
        spec: spec.clone(),
        connect_secs,
        connect_failures,
        publishes_ok: rtt.len(),
        publish_errors: errors.into_iter().take(5).collect(),
        rtt_ms: Percentiles::of(&rtt),
        publishes_per_sec: if secs > 0.0 { rtt.len() as f64 / secs } else { 0.0 },
        server_cpu_us_per_publish: server_cpu * 1000.0 / measured,
        client_cpu_us_per_publish: client_cpu * 1000.0 / measured,
        delivered: tally.delivered,
        lost: tally.lost,
        duplicated: tally.duplicated,
    })
}

/// One server's figures in one `publish-rtt` scenario: medians over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct RttSummary {
    /// Scenario name.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// Runs.
    pub runs: usize,
    /// Clients connected.
    pub clients: usize,
    /// Publishes measured per run.
    pub publishes: u32,
    /// Round trip median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Publishes per second.
    pub publishes_per_sec: f64,
    /// Server CPU per publish, µs.
    pub server_cpu_us: f64,
    /// Load generator CPU per publish, µs.
    pub client_cpu_us: f64,
    /// Failed publishes, lost and duplicated deliveries, failed connects (worst run).
    pub failures: [u64; 4],
}

impl RttSummary {
    /// Summarises `runs` (one server, one scenario).
    pub fn of(scenario: &str, runs: &[&RttOutcome]) -> RttSummary {
        let m = |f: &dyn Fn(&RttOutcome) -> f64| median(runs.iter().map(|o| f(o)).collect());
        let worst = |f: &dyn Fn(&RttOutcome) -> u64| runs.iter().map(|o| f(o)).max().unwrap_or(0);
        let first = runs[0];
        RttSummary {
            scenario: scenario.to_owned(),
            server: first.server.clone(),
            runs: runs.len(),
            clients: first.spec.clients,
            publishes: first.spec.publishes,
            p50_us: m(&|o| o.rtt_ms.p50 * 1000.0),
            p90_us: m(&|o| o.rtt_ms.p90 * 1000.0),
            p99_us: m(&|o| o.rtt_ms.p99 * 1000.0),
            publishes_per_sec: m(&|o| o.publishes_per_sec),
            server_cpu_us: m(&|o| o.server_cpu_us_per_publish),
            client_cpu_us: m(&|o| o.client_cpu_us_per_publish),
            failures: [
                worst(&|o| u64::from(o.spec.publishes) - o.publishes_ok),
                worst(&|o| o.lost),
                worst(&|o| o.duplicated),
                worst(&|o| o.connect_failures as u64),
            ],
        }
    }
}

/// The `publish-rtt` tables: figures per server, then each wspush build against the others.
pub fn tables(rows: &[RttSummary]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n### Publish round trip (one `POST /sendall` at a time on one keep-alive connection)\n\n\
         | scenario | server | clients | publishes | RTT p50 µs | RTT p90 µs | RTT p99 µs | publishes/s \
         | server CPU µs/publish | bench CPU µs/publish | failed | lost | dup |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            r.scenario,
            r.server,
            r.clients,
            r.publishes,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.publishes_per_sec,
            r.server_cpu_us,
            r.client_cpu_us,
            r.failures[0],
            r.failures[1],
            r.failures[2],
        );
    }
    s.push_str(
        "\n| scenario | ratio | RTT p50 | RTT p90 | RTT p99 | publishes/s | p50 difference µs |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for a in rows.iter().filter(|r| r.server == "wspush") {
        for b in rows
            .iter()
            .filter(|b| b.scenario == a.scenario && b.server != a.server)
        {
            let _ = writeln!(
                s,
                "| {} | {} ÷ {} | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:+.0} |",
                a.scenario,
                a.server,
                b.server,
                ratio(a.p50_us, b.p50_us),
                ratio(a.p90_us, b.p90_us),
                ratio(a.p99_us, b.p99_us),
                ratio(a.publishes_per_sec, b.publishes_per_sec),
                a.p50_us - b.p50_us,
            );
        }
    }
    s
}
