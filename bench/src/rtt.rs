//! `publish-rtt`: the round trip of one publish at a time (`POST /sendall`,
//! text/plain) on one keep-alive connection, each waiting for its answer,
//! with N clients connected and reading. Every server of the run is up at
//! once, each with its own N clients, and the publishes take turns between
//! them one by one (the order rotating every publish), so a busy moment on a
//! shared machine falls on all of them alike; what a change to the HTTP side
//! adds per publish is the paired difference between two wspush builds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http;
use crate::load::{self, histogram, now_ns, payload, ClientLog, Percentiles, Progress, Reader};
use crate::pool::Pool;
use crate::procfs;
use crate::report::{median, ratio};
use crate::servers::Running;
use crate::subscriber::Subscribe;

/// The parameters.
#[derive(Debug, Clone, Serialize)]
pub struct RttSpec {
    /// Clients connected (and reading every message) while publishing.
    pub clients: usize,
    /// Publishes measured per server.
    pub publishes: u32,
    /// Publishes before those, not measured (the connection opens, caches
    /// warm); one more per turn of 25 is not measured either.
    pub warm_up: u32,
    /// Payload bytes.
    pub payload: usize,
    /// Handshakes in flight at once.
    pub handshake_concurrency: usize,
    /// Source addresses the clients spread over.
    pub source_ips: u8,
}

/// What one run measured on one server.
#[derive(Debug, Clone, Serialize)]
pub struct RttOutcome {
    /// The server's name.
    pub server: String,
    /// The parameters.
    pub spec: RttSpec,
    /// Seconds to connect its clients.
    pub connect_secs: f64,
    /// Clients that failed to connect.
    pub connect_failures: usize,
    /// Measured publishes answered 2xx.
    pub publishes_ok: u64,
    /// The first few publish errors.
    pub publish_errors: Vec<String>,
    /// Round trip of the measured publishes.
    pub rtt_ms: Percentiles,
    /// Its measured publishes per second of its own round trips.
    pub publishes_per_sec: f64,
    /// Server CPU per measured publish, µs (its fan-out included).
    pub server_cpu_us_per_publish: f64,
    /// This load generator's CPU per measured publish, µs, all servers'
    /// publishes and clients together (one process serves them all).
    pub client_cpu_us_per_publish: f64,
    /// Per other server of the run: the median over publishes of this
    /// server's round trip minus the other's for the same publish number, µs.
    pub paired_p50_diff_us: Vec<(String, f64)>,
    /// Deliveries to its clients, warm-up included.
    pub delivered: u64,
    /// Deliveries that never came.
    pub lost: u64,
    /// Deliveries that came twice.
    pub duplicated: u64,
}

/// Publishes in a row to one server before the next one's turn. The first
/// of each turn is not measured: it wakes the server's threads after the
/// other servers' turns (caches cold), which is not what a publish costs.
const TURN: u32 = 25;

/// The publish numbers of a run, turn by turn: the warm-up, then turns of
/// `TURN + 1`, each with whether it is measured (`spec.publishes` in all).
fn schedule(spec: &RttSpec) -> Vec<Vec<(u32, bool)>> {
    let mut turns = vec![(0..spec.warm_up).map(|s| (s, false)).collect::<Vec<_>>()];
    let (mut next, mut left) = (spec.warm_up, spec.publishes);
    while left > 0 {
        let n = left.min(TURN);
        turns.push((next..next + n + 1).map(|s| (s, s > next)).collect());
        (next, left) = (next + n + 1, left - n);
    }
    turns
}

/// One server's side of a run.
struct Side<'a> {
    server: &'a Running,
    progress: Arc<Progress>,
    readers: Vec<Reader>,
    connect_secs: f64,
    connect_failures: usize,
    conn: http::Conn,
    /// Round trip per publish number, µs (`None`: not answered 2xx).
    rtt_us: Vec<Option<u64>>,
    errors: Vec<String>,
    /// Server CPU at the first measured publish, then used since, ms.
    cpu_ms: f64,
}

/// Connects `spec.clients` reading clients to `server`.
async fn connect<'a>(pool: &Pool, server: &'a Running, spec: &RttSpec, total: usize) -> Side<'a> {
    let progress = Progress::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(spec.handshake_concurrency.max(1)));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut readers = Vec::with_capacity(spec.clients);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for i in 0..spec.clients {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore open");
        let (failures, done) = (Arc::clone(&failures), done_tx.clone());
        let on_connected = move |r: Result<(), String>| {
            drop(permit);
            if r.is_err() {
                failures.fetch_add(1, Relaxed);
            }
            let _ = done.send(());
        };
        let src = load::source_ip(i, spec.source_ips);
        readers.push(load::spawn_reader(
            pool,
            i,
            Subscribe::echo(server.ws),
            src,
            &progress,
            total,
            on_connected,
        ));
    }
    drop(done_tx);
    while done_rx.recv().await.is_some() {}
    let connect_failures = failures.load(Relaxed);
    let connected = (spec.clients - connect_failures) as u64;
    load::wait_subscribers(server, connected, Duration::from_secs(20)).await;
    Side {
        server,
        progress,
        readers,
        connect_secs: started.elapsed().as_secs_f64(),
        connect_failures,
        conn: http::Conn::new(server.http),
        rtt_us: vec![None; total],
        errors: Vec::new(),
        cpu_ms: 0.0,
    }
}

impl Side<'_> {
    /// Publishes message `seq` and waits for the answer.
    async fn publish(&mut self, seq: u32, size: usize) {
        let body = payload(self.progress.run_id, seq, now_ns(), size);
        let headers = [("Content-Type", "text/plain")];
        let sent = Instant::now();
        let r = self
            .conn
            .request("POST", "/sendall", &headers, body.as_bytes())
            .await;
        let took = sent.elapsed().as_micros() as u64;
        match r {
            Ok(r) if (200..300).contains(&r.status) => self.rtt_us[seq as usize] = Some(took.max(1)),
            Ok(r) => self.errors.push(format!("HTTP {}", r.status)),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    /// Waits for its clients' deliveries, closes them, returns their logs.
    async fn finish(&mut self) -> Vec<ClientLog> {
        let accepted = self.rtt_us.iter().filter(|r| r.is_some()).count() as u64;
        let connected = (self.readers.len() - self.connect_failures) as u64;
        let (quiet, cap) = (Duration::from_secs(5), Duration::from_secs(60));
        load::drain(&self.progress, connected * accepted, quiet, cap).await;
        let mut logs = Vec::with_capacity(self.readers.len());
        for reader in self.readers.drain(..) {
            logs.push(reader.finish().await);
        }
        logs
    }
}

/// Connects every server's clients, publishes to the servers in turn, one
/// at a time, waits for the deliveries; an error if a server answered no
/// measured publish with 2xx.
pub async fn run(pool: &Pool, servers: &[&Running], spec: &RttSpec) -> Result<Vec<RttOutcome>, String> {
    let turns = schedule(spec);
    let total = turns.iter().map(Vec::len).sum::<usize>();
    let mut sides = Vec::with_capacity(servers.len());
    for server in servers {
        sides.push(connect(pool, server, spec, total).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = sides.len();
    let mut self0 = 0.0;
    for (t, turn) in turns.iter().enumerate() {
        if t == 1 {
            for side in &mut sides {
                side.cpu_ms = procfs::cpu_ms(side.server.pid()).unwrap_or(0.0);
            }
            self0 = procfs::self_cpu_ms();
        }
        // Every server takes this turn; who goes first rotates.
        for k in 0..n {
            let side = &mut sides[(t + k) % n];
            for &(seq, _) in turn {
                side.publish(seq, spec.payload).await;
            }
        }
    }
    let mut measured = vec![false; total];
    for &(seq, m) in turns.iter().flatten() {
        measured[seq as usize] = m;
    }
    let client_cpu = procfs::self_cpu_ms() - self0;
    for side in &mut sides {
        side.cpu_ms = procfs::cpu_ms(side.server.pid()).unwrap_or(side.cpu_ms) - side.cpu_ms;
    }
    let measured_total = (spec.publishes as usize * n).max(1) as f64;
    let mut outcomes = Vec::with_capacity(n);
    for k in 0..n {
        let client_cpu_us = client_cpu * 1000.0 / measured_total;
        outcomes.push(outcome(&mut sides, k, spec, &measured, client_cpu_us).await?);
    }
    Ok(outcomes)
}

/// The figures of `sides[k]`.
async fn outcome(
    sides: &mut [Side<'_>],
    k: usize,
    spec: &RttSpec,
    measured: &[bool],
    client_cpu_us_per_publish: f64,
) -> Result<RttOutcome, String> {
    let measured = |s: &Side| -> Vec<Option<u64>> {
        s.rtt_us
            .iter()
            .zip(measured)
            .filter(|(_, m)| **m)
            .map(|(r, _)| *r)
            .collect()
    };
    let mine = measured(&sides[k]);
    let mut rtt = histogram();
    for us in mine.iter().flatten() {
        let _ = rtt.record(*us);
    }
    if rtt.is_empty() {
        let e = &sides[k].errors;
        return Err(format!(
            "{}: no publish answered 2xx: {:?}",
            sides[k].server.name,
            &e[..e.len().min(3)]
        ));
    }
    let paired_p50_diff_us = (0..sides.len())
        .filter(|&o| o != k)
        .map(|o| {
            let diffs = mine
                .iter()
                .zip(measured(&sides[o]))
                .filter_map(|(a, b)| Some((*a)? as f64 - b? as f64))
                .collect();
            (sides[o].server.name.clone(), median(diffs))
        })
        .collect();
    let side = &mut sides[k];
    let own_secs: f64 = mine.iter().flatten().map(|us| *us as f64 / 1e6).sum();
    let logs = side.finish().await;
    let accepted: Vec<u32> = (0..side.rtt_us.len() as u32)
        .filter(|&s| side.rtt_us[s as usize].is_some())
        .collect();
    let tally = load::tally(&logs, &accepted);
    let count = rtt.len() as f64;
    Ok(RttOutcome {
        server: side.server.name.clone(),
        spec: spec.clone(),
        connect_secs: side.connect_secs,
        connect_failures: side.connect_failures,
        publishes_ok: rtt.len(),
        publish_errors: side.errors.iter().take(5).cloned().collect(),
        rtt_ms: Percentiles::of(&rtt),
        publishes_per_sec: if own_secs > 0.0 { count / own_secs } else { 0.0 },
        server_cpu_us_per_publish: side.cpu_ms * 1000.0 / count,
        client_cpu_us_per_publish,
        paired_p50_diff_us,
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
    /// Load generator CPU per publish (all servers' together), µs.
    pub client_cpu_us: f64,
    /// Per other server: the paired round trip difference (this − other), median over publishes, µs.
    pub paired_p50_diff_us: Vec<(String, f64)>,
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
            paired_p50_diff_us: first
                .paired_p50_diff_us
                .iter()
                .map(|(other, _)| {
                    let diff = |o: &RttOutcome| {
                        o.paired_p50_diff_us
                            .iter()
                            .find(|(n, _)| n == other)
                            .map_or(f64::NAN, |(_, d)| *d)
                    };
                    (other.clone(), m(&diff))
                })
                .collect(),
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
        "\n### Publish round trip (one `POST /sendall` at a time on one keep-alive connection; \
         all servers up at once, publishes taking turns)\n\n\
         | scenario | server | clients | publishes | RTT p50 µs | RTT p90 µs | RTT p99 µs | publishes/s \
         | server CPU µs/publish | bench CPU µs/publish (all servers) | failed | lost | dup |\n\
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
        "\n| scenario | ratio | RTT p50 | RTT p90 | RTT p99 | publishes/s | paired difference, median µs |\n\
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
                a.paired_p50_diff_us
                    .iter()
                    .find(|(n, _)| *n == b.server)
                    .map_or(f64::NAN, |(_, d)| *d),
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_measures_exactly_the_publishes_asked_for() {
        let spec = RttSpec {
            clients: 10,
            publishes: 60,
            warm_up: 5,
            payload: 100,
            handshake_concurrency: 1,
            source_ips: 1,
        };
        let turns = schedule(&spec);
        // The warm-up, then turns of 25, 25 and 10 measured, each after one that is not.
        let lens: Vec<usize> = turns.iter().map(Vec::len).collect();
        assert_eq!(lens, [5, 26, 26, 11]);
        assert!(turns[0].iter().all(|&(_, m)| !m));
        for turn in &turns[1..] {
            assert!(!turn[0].1);
            assert!(turn[1..].iter().all(|&(_, m)| m));
        }
        let all: Vec<(u32, bool)> = turns.concat();
        assert!(all.iter().enumerate().all(|(i, &(seq, _))| seq as usize == i));
        assert_eq!(all.iter().filter(|&&(_, m)| m).count(), 60);
    }
}
