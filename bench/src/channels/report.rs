//! The channel scenarios' tables: medians over rounds per server (the
//! correctness counts are the worst run's), the two sides of
//! `channel-isolation`, the drop and catch-up of `resume-storm`, and the
//! targets of issue 11.

use std::fmt::Write as _;

use serde::Serialize;

use super::isolation::Side;
use super::tally::Faults;
use super::{ChannelOutcome, IsolationFigures, StormFigures};
use crate::report::{median, Verdict};

/// One server's figures in one channel scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelSummary {
    /// Scenario name.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// Runs summarised.
    pub runs: usize,
    /// Clients in all.
    pub clients: usize,
    /// Channels.
    pub channels: usize,
    /// Publishes accepted (median).
    pub published_ok: f64,
    /// Seconds to connect every client.
    pub connect_secs: f64,
    /// Failed connects, first connect (worst run).
    pub connect_failures: usize,
    /// Publish round trip median, ms.
    pub rtt_p50_ms: f64,
    /// Publish round trip p99, ms.
    pub rtt_p99_ms: f64,
    /// Fan-out (a channel's last receive − send) median, ms.
    pub fanout_p50_ms: f64,
    /// Fan-out p99, ms.
    pub fanout_p99_ms: f64,
    /// Delivery latency p99, ms.
    pub delivery_p99_ms: f64,
    /// Deliveries per second.
    pub deliveries_per_sec: f64,
    /// What must be zero (worst run, count by count).
    pub faults: Faults,
    /// Connections ended by the server (worst run).
    pub closed_early: usize,
    /// Server CPU per 1,000 deliveries, ms.
    pub server_cpu_ms_per_1000: f64,
    /// Load generator CPU per 1,000 deliveries, ms.
    pub client_cpu_ms_per_1000: f64,
    /// RSS per connection, KiB.
    pub rss_per_client_kib: f64,
    /// `channel-isolation`: [small, large] × [rtt p50, rtt p99, reach p50, reach p99], ms.
    pub isolation_ms: Option<[[f64; 4]; 2]>,
    /// `channel-isolation`: large ÷ small for the same four (medians of the runs' ratios).
    pub isolation_ratio: Option<[f64; 4]>,
    /// `resume-storm`: dropped, stuck, reconnect failures, without since (worst run).
    pub storm_counts: Option<[usize; 4]>,
    /// `resume-storm`: reconnect s, catch-up p50 s, last caught up s (medians); clients caught up (fewest).
    pub storm_secs: Option<([f64; 3], usize)>,
}

impl ChannelSummary {
    /// Summarises `runs` (one server, one scenario).
    pub fn of(scenario: &str, runs: &[&ChannelOutcome]) -> ChannelSummary {
        let m = |f: &dyn Fn(&ChannelOutcome) -> f64| med(runs, f);
        let worst = |f: &dyn Fn(&ChannelOutcome) -> u64| runs.iter().map(|o| f(o)).max().unwrap_or(0);
        let first = runs[0];
        let isolation = isolation_of(runs);
        let storm = storm_of(runs);
        ChannelSummary {
            scenario: scenario.to_owned(),
            server: first.server.clone(),
            runs: runs.len(),
            clients: first.clients,
            channels: first.channels,
            published_ok: m(&|o| o.published_ok as f64),
            connect_secs: m(&|o| o.connect.secs),
            connect_failures: worst(&|o| o.connect.failures as u64) as usize,
            rtt_p50_ms: m(&|o| o.publish_rtt_ms.p50),
            rtt_p99_ms: m(&|o| o.publish_rtt_ms.p99),
            fanout_p50_ms: m(&|o| o.tally.fanout_ms.p50),
            fanout_p99_ms: m(&|o| o.tally.fanout_ms.p99),
            delivery_p99_ms: m(&|o| o.tally.delivery_ms.p99),
            deliveries_per_sec: m(&|o| o.deliveries_per_sec),
            faults: runs
                .iter()
                .fold(Faults::default(), |f, o| f.worst(o.tally.faults)),
            closed_early: worst(&|o| o.tally.closed_early as u64) as usize,
            server_cpu_ms_per_1000: m(&|o| o.server_cpu_ms_per_1000),
            client_cpu_ms_per_1000: m(&|o| o.client_cpu_ms_per_1000),
            rss_per_client_kib: m(&|o| o.rss_per_client_kib),
            isolation_ms: isolation.as_ref().map(|i| i.0),
            isolation_ratio: isolation.map(|i| i.1),
            storm_counts: storm.as_ref().map(|s| s.0),
            storm_secs: storm.map(|s| s.1),
        }
    }

    /// Nothing lost, duplicated, reordered, misdirected, reset; ids consistent; every client connected.
    pub fn exact(&self) -> bool {
        self.faults.none() && self.connect_failures == 0
    }
}

/// Medians of `f` over `runs`.
fn med(runs: &[&ChannelOutcome], f: &dyn Fn(&ChannelOutcome) -> f64) -> f64 {
    median(runs.iter().map(|o| f(o)).collect())
}

/// `channel-isolation`'s sides ([small, large] × [rtt p50, p99, reach p50, p99]) and ratios, if every run has them.
fn isolation_of(runs: &[&ChannelOutcome]) -> Option<([[f64; 4]; 2], [f64; 4])> {
    let all: Vec<&IsolationFigures> = runs.iter().filter_map(|o| o.isolation.as_ref()).collect();
    if all.len() != runs.len() {
        return None;
    }
    let m = |f: &dyn Fn(&IsolationFigures) -> f64| median(all.iter().map(|i| f(i)).collect());
    let side = |pick: fn(&IsolationFigures) -> &Side| {
        [
            m(&|i| pick(i).rtt_ms.p50),
            m(&|i| pick(i).rtt_ms.p99),
            m(&|i| pick(i).reach_ms.p50),
            m(&|i| pick(i).reach_ms.p99),
        ]
    };
    Some((
        [side(|i| &i.small), side(|i| &i.large)],
        [
            m(&|i| i.rtt_p50_ratio),
            m(&|i| i.rtt_p99_ratio),
            m(&|i| i.reach_p50_ratio),
            m(&|i| i.reach_p99_ratio),
        ],
    ))
}

/// `resume-storm`'s counts (worst run) and times (medians; fewest caught up), if every run has them.
#[allow(clippy::type_complexity)]
fn storm_of(runs: &[&ChannelOutcome]) -> Option<([usize; 4], ([f64; 3], usize))> {
    let all: Vec<&StormFigures> = runs.iter().filter_map(|o| o.storm.as_ref()).collect();
    if all.len() != runs.len() {
        return None;
    }
    let m = |f: &dyn Fn(&StormFigures) -> f64| median(all.iter().map(|s| f(s)).collect());
    let worst = |f: &dyn Fn(&StormFigures) -> usize| all.iter().map(|s| f(s)).max().unwrap_or(0);
    Some((
        [
            worst(&|s| s.dropped),
            worst(&|s| s.stuck),
            worst(&|s| s.reconnect.failures),
            worst(&|s| s.without_since),
        ],
        (
            [
                m(&|s| s.reconnect_secs),
                m(&|s| s.catch_up_p50_secs),
                m(&|s| s.catch_up_max_secs),
            ],
            all.iter().map(|s| s.caught_up).min().unwrap_or(0),
        ),
    ))
}

/// The channel scenarios' tables (empty if there are no rows).
pub fn tables(rows: &[ChannelSummary]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n### Channels\n\n\
         | scenario | server | clients | channels | publishes | connect s | publish RTT p50 ms | fan-out p50 ms \
         | fan-out p99 ms | delivery p99 ms | deliveries/s | lost | dup | order≠ | foreign | ids↓ | id≠ | resets \
         | server CPU ms/1k | bench CPU ms/1k | RSS/conn KiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let f = &r.faults;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.3} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} |",
            r.scenario, r.server, r.clients, r.channels, r.published_ok, r.connect_secs, r.rtt_p50_ms,
            r.fanout_p50_ms, r.fanout_p99_ms, r.delivery_p99_ms, r.deliveries_per_sec, f.lost, f.duplicated,
            f.order_differs, f.foreign + f.wrong_channel, f.id_regressions, f.id_mismatch, f.resets,
            r.server_cpu_ms_per_1000, r.client_cpu_ms_per_1000, r.rss_per_client_kib,
        );
    }
    s.push_str(&isolation_table(rows));
    s.push_str(&storm_table(rows));
    s
}

fn isolation_table(rows: &[ChannelSummary]) -> String {
    let mut s = String::new();
    for r in rows {
        let (Some([small, large]), Some(ratio)) = (r.isolation_ms, r.isolation_ratio) else {
            continue;
        };
        if s.is_empty() {
            s.push_str(
                "\n#### channel-isolation: publish to a channel of 10 subscribers, 10 vs 10,000 clients connected\n\n\
                 | server | clients connected | publish RTT p50 ms | publish RTT p99 ms | all 10 have it p50 ms | p99 ms |\n\
                 |---|---|---:|---:|---:|---:|\n",
            );
        }
        let row = |s: &mut String, label: &str, v: [f64; 4]| {
            let _ = writeln!(
                s,
                "| {} | {label} | {:.3} | {:.3} | {:.3} | {:.3} |",
                r.server, v[0], v[1], v[2], v[3]
            );
        };
        row(&mut s, "10", small);
        row(&mut s, &r.clients.to_string(), large);
        let _ = writeln!(
            s,
            "| {} | ratio (target ≤ 1.5×) | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            r.server, ratio[0], ratio[1], ratio[2], ratio[3]
        );
    }
    s
}

fn storm_table(rows: &[ChannelSummary]) -> String {
    let mut s = String::new();
    for r in rows {
        let (Some(counts), Some((secs, caught_up))) = (r.storm_counts, r.storm_secs) else {
            continue;
        };
        if s.is_empty() {
            s.push_str(
                "\n#### Resume storms: every connection dropped at once, every client resuming\n\n\
                 | scenario | server | clients | dropped | not closed | reconnect failed | no id to resume from | resets \
                 | lost | dup | order≠ | caught up | reconnected s | catch-up p50 s | last caught up s |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            );
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            r.scenario,
            r.server,
            r.clients,
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            r.faults.resets,
            r.faults.lost,
            r.faults.duplicated,
            r.faults.order_differs,
            caught_up,
            secs[0],
            secs[1],
            secs[2],
        );
    }
    s
}

/// Issue 11's targets for the channel scenarios that ran.
pub fn verdicts(rows: &[ChannelSummary]) -> Vec<Verdict> {
    let mut v = Vec::new();
    let wspush = |scenario: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.server == "wspush")
    };
    let nchan = |scenario: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.server == "nchan")
    };
    let counts = |r: &ChannelSummary| format!("{}, failed connects {}", r.faults, r.connect_failures);
    if let Some(w) = wspush("channels-100x100") {
        let vs = nchan("channels-100x100").map_or(String::new(), |n| {
            format!(
                "; fan-out p99 {:.1} vs Nchan {:.1} ms, CPU/1k {:.2} vs {:.2} ms",
                w.fanout_p99_ms, n.fanout_p99_ms, w.server_cpu_ms_per_1000, n.server_cpu_ms_per_1000
            )
        });
        v.push(Verdict {
            figure: "100 channels × 100 clients: exactly once, in order".into(),
            target: "0 lost, 0 dup, one order".into(),
            measured: format!("{}{vs}", counts(w)),
            met: Some(w.exact()),
        });
    }
    if let Some(w) = wspush("channel-isolation") {
        let ratio = w.isolation_ratio.map_or(f64::NAN, |r| r[2]);
        v.push(Verdict {
            figure:
                "publish to 10 subscribers: 10,000 vs 10 clients connected (median time until all 10 have it)"
                    .into(),
            target: "≤ 1.5×".into(),
            measured: format!(
                "{ratio:.2}× (p99 {:.2}×; round trip p50 {:.2}×)",
                w.isolation_ratio.map_or(f64::NAN, |r| r[3]),
                w.isolation_ratio.map_or(f64::NAN, |r| r[0])
            ),
            met: Some(ratio <= 1.5),
        });
    }
    for (scenario, figure) in [
        (
            "resume-storm",
            "resume storm: every client resumes from its last id",
        ),
        (
            "sse-resume-storm",
            "SSE resume storm: every client resumes with Last-Event-ID",
        ),
    ] {
        if let Some(w) = wspush(scenario) {
            let last = w.storm_secs.map_or(f64::NAN, |s| s.0[2]);
            v.push(Verdict {
                figure: figure.into(),
                target: "0 lost, 0 dup, same order, no reset".into(),
                measured: format!("{}; last client caught up {last:.2} s after the drop", counts(w)),
                met: Some(w.exact() && w.closed_early == 0),
            });
        }
    }
    v
}
