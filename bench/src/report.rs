//! Tables: medians over repeated runs, wspush-to-Nchan ratios, and the targets.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Outcome;

/// One server's figures in one scenario: medians over its runs (the
/// correctness counts are the worst run's, not the median).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// Runs summarised.
    pub runs: usize,
    /// Clients (readers plus non-readers).
    pub clients: usize,
    /// Payload bytes.
    pub payload: usize,
    /// Seconds to connect every client.
    pub connect_secs: f64,
    /// Failed connections (worst run).
    pub connect_failures: usize,
    /// Fan-out (last receive − send) median, ms.
    pub fanout_p50_ms: f64,
    /// Fan-out 99th percentile, ms.
    pub fanout_p99_ms: f64,
    /// Fan-out worst, ms.
    pub fanout_max_ms: f64,
    /// Per-delivery latency median, ms.
    pub delivery_p50_ms: f64,
    /// Per-delivery latency 99th percentile, ms.
    pub delivery_p99_ms: f64,
    /// Deliveries per second over the broadcast phase.
    pub deliveries_per_sec: f64,
    /// Deliveries received.
    pub delivered: u64,
    /// Lost deliveries (worst run).
    pub lost: u64,
    /// Duplicated deliveries (worst run).
    pub duplicated: u64,
    /// Clients whose order differs from the rest (worst run).
    pub order_differs: usize,
    /// Deliveries out of publish order (worst run; publishes overlap, so not a fault).
    pub out_of_order: u64,
    /// Reading clients whose connection ended early (worst run).
    pub closed_early: usize,
    /// Publish requests not answered 2xx (worst run).
    pub publish_failures: u64,
    /// Server CPU per 1,000 deliveries, ms.
    pub server_cpu_ms_per_1000: f64,
    /// Load generator CPU per 1,000 deliveries, ms.
    pub client_cpu_ms_per_1000: f64,
    /// Server RSS with no client, KiB.
    pub rss_before_kib: f64,
    /// Server RSS with every client connected and idle, KiB.
    pub rss_connected_kib: f64,
    /// RSS per idle connection, KiB.
    pub rss_per_client_kib: f64,
    /// Server threads with every client connected.
    pub threads: f64,
    /// Most server threads during the broadcast phase.
    pub threads_peak: f64,
    /// Server fds with every client connected.
    pub fds: f64,
    /// Over several nodes: each node's clients' delivery p99, ms.
    pub node_delivery_p99_ms: Vec<f64>,
    /// Over several nodes: each node's clients' fan-out p99, ms.
    pub node_fanout_p99_ms: Vec<f64>,
    /// Every process watched (nodes, Redis): CPU and RSS, medians.
    pub procs: Vec<ProcSummary>,
    /// Over a cluster: Redis's CPU per 1,000 messages published, ms.
    pub redis_cpu_ms_per_1000_msgs: Option<f64>,
    /// Over a cluster: bytes the shared log holds per 1,000 entries, KiB.
    pub redis_log_kib_per_1000_msgs: Option<f64>,
}

/// One watched process's figures, medians over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct ProcSummary {
    /// `wspush`, `wspush-a`, `redis`, ...
    pub name: String,
    /// CPU during the broadcast phase, ms.
    pub cpu_ms: f64,
    /// CPU per 1,000 deliveries, ms.
    pub cpu_ms_per_1000: f64,
    /// RSS with every client connected, KiB.
    pub rss_connected_kib: f64,
    /// RSS at the end, KiB.
    pub rss_after_kib: f64,
}

/// Over a cluster: Redis's CPU per 1,000 messages published, ms (median).
fn redis_cpu_per_1000(runs: &[&Outcome]) -> Option<f64> {
    let k = runs[0].procs.iter().position(|p| p.name == "redis")?;
    Some(median(
        runs.iter()
            .map(|o| o.procs.get(k).map_or(0.0, |p| p.cpu_ms) * 1000.0 / o.published_ok.max(1) as f64)
            .collect(),
    ))
}

/// Over a cluster: the log's bytes per 1,000 entries at the end, KiB (median).
fn redis_log_per_1000(runs: &[&Outcome]) -> Option<f64> {
    runs[0].redis_log?;
    Some(median(
        runs.iter()
            .filter_map(|o| o.redis_log)
            .map(|l| l.bytes as f64 / l.entries.max(1) as f64 * 1000.0 / 1024.0)
            .collect(),
    ))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Summary {
    /// Summarises `runs` (all of one server in one scenario).
    pub fn of(scenario: &str, runs: &[&Outcome]) -> Summary {
        let m = |f: &dyn Fn(&Outcome) -> f64| median(runs.iter().map(|o| f(o)).collect());
        let worst = |f: &dyn Fn(&Outcome) -> u64| runs.iter().map(|o| f(o)).max().unwrap_or(0);
        let first = runs[0];
        Summary {
            scenario: scenario.to_owned(),
            server: first.server.clone(),
            runs: runs.len(),
            clients: first.spec.clients + first.spec.slow,
            payload: first.spec.payload,
            connect_secs: m(&|o| o.connect_secs),
            connect_failures: worst(&|o| o.connect_failures as u64) as usize,
            fanout_p50_ms: m(&|o| o.fanout_ms.p50),
            fanout_p99_ms: m(&|o| o.fanout_ms.p99),
            fanout_max_ms: m(&|o| o.fanout_ms.max),
            delivery_p50_ms: m(&|o| o.delivery_ms.p50),
            delivery_p99_ms: m(&|o| o.delivery_ms.p99),
            deliveries_per_sec: m(&|o| o.deliveries_per_sec),
            delivered: m(&|o| o.delivered as f64) as u64,
            lost: worst(&|o| o.lost),
            duplicated: worst(&|o| o.duplicated),
            order_differs: worst(&|o| o.order_differs as u64) as usize,
            out_of_order: worst(&|o| o.out_of_order),
            closed_early: worst(&|o| o.closed_early as u64) as usize,
            publish_failures: worst(&|o| o.published - o.published_ok),
            server_cpu_ms_per_1000: m(&|o| o.server_proc.cpu_ms_per_1000),
            client_cpu_ms_per_1000: m(&|o| {
                if o.delivered > 0 {
                    o.client_cpu_ms * 1000.0 / o.delivered as f64
                } else {
                    0.0
                }
            }),
            rss_before_kib: m(&|o| o.server_proc.before.rss_kib as f64),
            rss_connected_kib: m(&|o| o.server_proc.connected.rss_kib as f64),
            rss_per_client_kib: m(&|o| o.server_proc.rss_per_client_kib),
            threads: m(&|o| o.server_proc.connected.threads as f64),
            threads_peak: m(&|o| o.server_proc.peaks.threads as f64),
            fds: m(&|o| o.server_proc.connected.fds as f64),
            node_delivery_p99_ms: (0..first.per_node.len())
                .map(|k| m(&|o| o.per_node.get(k).map_or(0.0, |n| n.delivery_ms.p99)))
                .collect(),
            node_fanout_p99_ms: (0..first.per_node.len())
                .map(|k| m(&|o| o.per_node.get(k).map_or(0.0, |n| n.fanout_ms.p99)))
                .collect(),
            redis_cpu_ms_per_1000_msgs: redis_cpu_per_1000(runs),
            redis_log_kib_per_1000_msgs: redis_log_per_1000(runs),
            procs: first
                .procs
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let pm =
                        |f: &dyn Fn(&crate::load::ProcFigures) -> f64| m(&|o| o.procs.get(k).map_or(0.0, f));
                    ProcSummary {
                        name: p.name.clone(),
                        cpu_ms: pm(&|p| p.cpu_ms),
                        cpu_ms_per_1000: pm(&|p| p.cpu_ms_per_1000),
                        rss_connected_kib: pm(&|p| p.rss_connected_kib as f64),
                        rss_after_kib: pm(&|p| p.rss_after_kib as f64),
                    }
                })
                .collect(),
        }
    }

    /// Whether nothing was lost, duplicated or ordered differently.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.order_differs == 0 && self.connect_failures == 0
    }
}

/// The main table.
pub fn table(rows: &[Summary]) -> String {
    let mut s = String::new();
    s.push_str(
        "| scenario | server | clients | B | connect s | fan-out p50 ms | fan-out p99 ms | delivery p99 ms \
         | deliveries/s | lost | dup | order≠ | server CPU ms/1k | bench CPU ms/1k | RSS/conn KiB \
         | RSS MiB | threads (peak) | fds |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} ({:.0}) | {:.0} |",
            r.scenario,
            r.server,
            r.clients,
            r.payload,
            r.connect_secs,
            r.fanout_p50_ms,
            r.fanout_p99_ms,
            r.delivery_p99_ms,
            r.deliveries_per_sec,
            r.lost,
            r.duplicated,
            r.order_differs,
            r.server_cpu_ms_per_1000,
            r.client_cpu_ms_per_1000,
            r.rss_per_client_kib,
            r.rss_connected_kib / 1024.0,
            r.threads,
            r.threads_peak,
            r.fds,
        );
    }
    s
}

/// One node against two nodes through Redis: latency, losses, every
/// process's CPU (per 1,000 deliveries over the broadcast phase) and RSS, and
/// Redis's own CPU and log memory per 1,000 messages.
pub fn cluster_table(rows: &[Summary]) -> String {
    let mut s = String::from(
        "| scenario | setup | clients | fan-out p50 ms | fan-out p99 ms | fan-out max ms | delivery p99 ms \
         | delivery p99 by node ms | lost | dup | order≠ | CPU ms/1k deliveries | RSS MiB (connected → end) \
         | Redis CPU ms/1k msgs | Redis log KiB/1k msgs |\n\
         |---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|\n",
    );
    for r in rows {
        let by_node = if r.node_delivery_p99_ms.is_empty() {
            "–".to_owned()
        } else {
            r.node_delivery_p99_ms
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let cpu = r
            .procs
            .iter()
            .map(|p| format!("{} {:.2}", p.name, p.cpu_ms_per_1000))
            .collect::<Vec<_>>()
            .join(", ");
        let rss = r
            .procs
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0} → {:.0}",
                    p.name,
                    p.rss_connected_kib / 1024.0,
                    p.rss_after_kib / 1024.0
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let per_1000 = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.server,
            r.clients,
            r.fanout_p50_ms,
            r.fanout_p99_ms,
            r.fanout_max_ms,
            r.delivery_p99_ms,
            by_node,
            r.lost,
            r.duplicated,
            r.order_differs,
            cpu,
            rss,
            per_1000(r.redis_cpu_ms_per_1000_msgs),
            per_1000(r.redis_log_kib_per_1000_msgs),
        );
    }
    s
}

/// wspush's figures as ratios to another server's (Nchan's, or another wspush
/// build's) in the same scenario (below 1 = wspush better).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Scenario.
    pub scenario: String,
    /// The server divided by.
    pub versus: String,
    /// Fan-out p99.
    pub fanout_p99: f64,
    /// Fan-out p50.
    pub fanout_p50: f64,
    /// Delivery p99.
    pub delivery_p99: f64,
    /// Server CPU per 1,000 deliveries.
    pub cpu_per_1000: f64,
    /// RSS per idle connection.
    pub rss_per_client: f64,
    /// Connect time.
    pub connect: f64,
    /// Deliveries per second (above 1 = wspush better).
    pub deliveries_per_sec: f64,
}

/// `a / b`, NaN when `b` is not positive.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

impl Ratio {
    /// `w` / `n`.
    pub fn of(w: &Summary, n: &Summary) -> Ratio {
        Ratio {
            scenario: w.scenario.clone(),
            versus: n.server.clone(),
            fanout_p99: ratio(w.fanout_p99_ms, n.fanout_p99_ms),
            fanout_p50: ratio(w.fanout_p50_ms, n.fanout_p50_ms),
            delivery_p99: ratio(w.delivery_p99_ms, n.delivery_p99_ms),
            cpu_per_1000: ratio(w.server_cpu_ms_per_1000, n.server_cpu_ms_per_1000),
            rss_per_client: ratio(w.rss_per_client_kib, n.rss_per_client_kib),
            connect: ratio(w.connect_secs, n.connect_secs),
            deliveries_per_sec: ratio(w.deliveries_per_sec, n.deliveries_per_sec),
        }
    }
}

/// The ratio table.
pub fn ratio_table(ratios: &[Ratio]) -> String {
    ratios_markdown(ratios, false)
}

/// The ratio table with the server divided by in a column of its own.
pub fn versus_table(ratios: &[Ratio]) -> String {
    ratios_markdown(ratios, true)
}

fn ratios_markdown(ratios: &[Ratio], versus: bool) -> String {
    let (head, rule) = if versus { (" ÷ |", "---|") } else { ("", "") };
    let mut s = format!(
        "| scenario |{head} fan-out p50 | fan-out p99 | delivery p99 | server CPU/1k deliveries | RSS/conn | connect time | deliveries/s |\n\
         |---|{rule}---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in ratios {
        let divisor = if versus {
            format!(" {} |", r.versus)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} |{divisor} {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            r.scenario,
            r.fanout_p50,
            r.fanout_p99,
            r.delivery_p99,
            r.cpu_per_1000,
            r.rss_per_client,
            r.connect,
            r.deliveries_per_sec
        );
    }
    s
}

/// One target's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The figure.
    pub figure: String,
    /// The target.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met or not (`None` when the run did not include what it needs).
    pub met: Option<bool>,
}

/// The targets, checked against this run's summaries.
pub fn verdicts(rows: &[Summary]) -> Vec<Verdict> {
    let find =
        |scenario: &str, server: &str| rows.iter().find(|r| r.scenario == scenario && r.server == server);
    let mut v = Vec::new();
    // This build's rows (a baseline build, `wspush@...`, is not judged).
    let wspush_rows: Vec<&Summary> = rows
        .iter()
        .filter(|r| r.server.contains("wspush") && !r.server.contains('@'))
        .collect();
    if !wspush_rows.is_empty() {
        let bad: Vec<String> = wspush_rows
            .iter()
            .filter(|r| !r.exact())
            .map(|r| {
                format!(
                    "{}: lost {}, dup {}, order≠ {}, failed connects {}",
                    r.scenario, r.lost, r.duplicated, r.order_differs, r.connect_failures
                )
            })
            .collect();
        v.push(Verdict {
            figure: "lost, duplicated, order differing between clients".into(),
            target: "0 in every scenario".into(),
            measured: if bad.is_empty() {
                format!("0 in all {} wspush scenarios", wspush_rows.len())
            } else {
                bad.join("; ")
            },
            met: Some(bad.is_empty()),
        });
    }
    let ten = (find("fanout-10000", "wspush"), find("fanout-10000", "nchan"));
    if let (Some(w), Some(n)) = ten {
        let r = ratio(w.fanout_p99_ms, n.fanout_p99_ms);
        v.push(Verdict {
            figure: "fan-out p99, 10,000 clients, 100 B".into(),
            target: "≤ 1.0× Nchan".into(),
            measured: format!("{:.1} ms vs {:.1} ms = {r:.2}×", w.fanout_p99_ms, n.fanout_p99_ms),
            met: Some(r <= 1.0),
        });
        let r = ratio(w.server_cpu_ms_per_1000, n.server_cpu_ms_per_1000);
        v.push(Verdict {
            figure: "server CPU per 1,000 deliveries (10,000 clients)".into(),
            target: "≤ 1.0× Nchan".into(),
            measured: format!(
                "{:.2} ms vs {:.2} ms = {r:.2}×",
                w.server_cpu_ms_per_1000, n.server_cpu_ms_per_1000
            ),
            met: Some(r <= 1.0),
        });
    }
    if let Some(w) = ten.0 {
        v.push(Verdict {
            figure: "RSS per idle connection (10,000 clients)".into(),
            // 1.1× the 11.7 KiB of 4115bf9 (BENCHMARKS.md): one more stack
            // page per idle reader (+4 KiB) fails it.
            target: "≤ 12.9 KiB".into(),
            measured: format!("{:.1} KiB", w.rss_per_client_kib),
            met: Some(w.rss_per_client_kib <= 12.9),
        });
        v.push(Verdict {
            figure: "connect 10,000 clients".into(),
            target: "≤ 2 s".into(),
            measured: format!("{:.2} s", w.connect_secs),
            met: Some(w.connect_secs <= 2.0),
        });
    }
    if let Some(w) = find("capacity-15000", "wspush") {
        v.push(Verdict {
            figure: "clients held with zero loss".into(),
            target: "15,000".into(),
            measured: format!(
                "{} connected ({} failed), lost {}, dup {}, order≠ {}",
                w.clients - w.connect_failures,
                w.connect_failures,
                w.lost,
                w.duplicated,
                w.order_differs
            ),
            met: Some(w.exact() && w.clients >= 15_000),
        });
    }
    if let Some(w) = find("slow-10000", "wspush") {
        let base = find("fanout-10000-1k", "wspush");
        let r = base.map(|b| ratio(w.fanout_p99_ms, b.fanout_p99_ms));
        v.push(Verdict {
            figure: "slow consumers: 99% lose nothing, fan-out p99 vs scenario 1 (10,000 × 1 KiB)".into(),
            target: "0 lost, ≤ 1.2×".into(),
            measured: match r {
                Some(r) => format!(
                    "lost {}, p99 {:.1} ms vs {:.1} ms = {r:.2}×",
                    w.lost,
                    w.fanout_p99_ms,
                    base.map_or(0.0, |b| b.fanout_p99_ms)
                ),
                None => format!(
                    "lost {}, p99 {:.1} ms (no scenario-1 baseline)",
                    w.lost, w.fanout_p99_ms
                ),
            },
            met: r.map(|r| w.exact() && r <= 1.2),
        });
    }
    v.extend(stream_verdicts(rows));
    if let Some(w) = find("throughput-1000", "wspush") {
        v.push(Verdict {
            figure: "throughput, 1,000 clients, zero loss".into(),
            target: "0 lost (reported: deliveries/s)".into(),
            measured: format!("{:.0} deliveries/s, lost {}", w.deliveries_per_sec, w.lost),
            met: Some(w.exact()),
        });
    }
    v
}

/// Issue 12's targets: SSE fan-out within 1.2× of WebSocket, side by side in `sse-fanout-10000`.
fn stream_verdicts(rows: &[Summary]) -> Vec<Verdict> {
    let find = |server: &str| {
        rows.iter()
            .find(|r| r.scenario == "sse-fanout-10000" && r.server == server)
    };
    let (Some(sse), Some(ws)) = (find("wspush sse"), find("wspush websocket")) else {
        return Vec::new();
    };
    let nchan = find("nchan sse");
    let judge = |figure: &str, f: fn(&Summary) -> f64| {
        let r = ratio(f(sse), f(ws));
        let peer = nchan.map_or(String::new(), |n| {
            format!("; Nchan SSE {:.2} ({:.2}×)", f(n), ratio(f(sse), f(n)))
        });
        Verdict {
            figure: figure.into(),
            target: "≤ 1.2×".into(),
            measured: format!("{:.2} vs {:.2} = {r:.2}×{peer}", f(sse), f(ws)),
            met: Some(r <= 1.2),
        }
    };
    vec![
        judge(
            "SSE fan-out p99 ms, 10,000 clients, 100 B, vs WebSocket (`/ws/all`)",
            |s| s.fanout_p99_ms,
        ),
        judge("SSE server CPU ms per 1,000 deliveries vs WebSocket", |s| {
            s.server_cpu_ms_per_1000
        }),
    ]
}

/// The verdicts as a table.
pub fn verdict_table(v: &[Verdict]) -> String {
    let mut s = String::from("| figure | target | measured | met |\n|---|---|---|---|\n");
    for x in v {
        let met = match x.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(s, "| {} | {} | {} | {met} |", x.figure, x.target, x.measured);
    }
    s
}
