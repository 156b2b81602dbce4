//! `wspush-bench suite`: the scenarios, each run against every server (wspush,
//! an optional baseline wspush build, Nchan) round after round, the servers
//! taking turns in an order that rotates; medians, ratios and the
//! targets as markdown (`markdown.rs`), JSON per scenario.

mod cluster;
mod markdown;
mod scenarios;

use std::cell::Cell;
use std::fs;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::channels::{self, ChannelOutcome, ChannelSpec, ChannelSummary};
use crate::connect::{self, ConnectOutcome, ConnectSpec, ConnectSummary, Mode};
use crate::load::{self, Outcome, Spec};
use crate::pool::Pool;
use crate::report::{self, Ratio, Summary};
use crate::rtt::{self, RttOutcome, RttSpec, RttSummary};
use crate::servers::{self, Contender, Launch};
use crate::subscriber::Transport;
use crate::{machine, progress_line, write_json, Common, Machine};
use scenarios::{known_names, scenarios, Scenario, Work};

/// What a suite run starts: one server, or two wspush nodes sharing a local Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `contenders[i]`.
    Server(usize),
    /// `contenders[i]`, its clients on this transport rather than the scenario's.
    Leg(usize, Transport),
    Cluster,
}

/// The `server` column of the two-node runs.
const CLUSTER_NAME: &str = "2×wspush+redis";

/// The servers of a suite run, in the order of the tables.
fn contenders(common: &Common, launch: &Launch, servers: &[servers::Kind]) -> Vec<Contender> {
    use servers::Kind;
    let mut kinds: Vec<Kind> = if servers.is_empty() {
        vec![Kind::Wspush, Kind::Nchan]
    } else {
        servers.to_vec()
    };
    if kinds.contains(&Kind::Nchan) && !servers::nchan_available() {
        eprintln!("nginx + Nchan not installed: running wspush only (scripts/bench.sh installs them)");
        kinds.retain(|k| *k != Kind::Nchan);
    }
    let mut v = Vec::new();
    for kind in kinds {
        v.push(Contender {
            kind,
            name: kind.name().to_owned(),
            launch: launch.clone(),
        });
        if let (Kind::Wspush, Some(bin)) = (kind, &common.baseline_bin) {
            v.push(Contender {
                kind,
                name: common.baseline_name(),
                launch: Launch {
                    wspush_bin: bin.clone(),
                    ..launch.clone()
                },
            });
        }
    }
    v
}

/// What the whole run shares.
struct Suite<'a> {
    common: &'a Common,
    machine: Machine,
    launch: Launch,
    rt: tokio::runtime::Runtime,
    pool: Pool,
    contenders: Vec<Contender>,
    rounds: usize,
    started: Instant,
    failed: Cell<bool>,
}

/// Every scenario's summaries.
#[derive(Default)]
struct Collected {
    load: Vec<Summary>,
    versus_nchan: Vec<Ratio>,
    versus_baseline: Vec<Ratio>,
    /// Event streams against WebSocket and against Nchan's event streams.
    streams: Vec<Ratio>,
    rtt: Vec<RttSummary>,
    channels: Vec<ChannelSummary>,
    connect: Vec<ConnectSummary>,
}

impl Suite<'_> {
    fn name(&self, t: Target) -> String {
        match t {
            Target::Server(i) => self.contenders[i].name.clone(),
            Target::Leg(i, transport) => format!("{} {}", self.contenders[i].name, transport.name()),
            Target::Cluster => CLUSTER_NAME.to_owned(),
        }
    }

    /// Runs `run` for every target, round after round, rotating the order; the runs that worked.
    fn alternate<T>(
        &self,
        sc: &Scenario,
        j: usize,
        targets: &[Target],
        run: &mut dyn FnMut(Target, &str, usize) -> Result<T, String>,
        show: &dyn Fn(&str, &T),
    ) -> Vec<T> {
        let mut runs = Vec::new();
        for r in 0..self.rounds {
            // Rotate the order from round to round (two servers alternate),
            // so drift on a shared machine does not always favour the same
            // one, and with three each takes every place equally often.
            let mut order = targets.to_vec();
            if !order.is_empty() {
                let n = order.len();
                order.rotate_left((r + j) % n);
            }
            for target in order {
                let tag = match target {
                    Target::Cluster => "2node".to_owned(),
                    Target::Server(_) | Target::Leg(..) => self.name(target).replace(['@', ' '], "-"),
                };
                let label = format!("{}-{tag}-{}", sc.name, r + 1);
                eprintln!(
                    "[{:>5.0}s] {} / {} round {}/{}",
                    self.started.elapsed().as_secs_f64(),
                    sc.name,
                    self.name(target),
                    r + 1,
                    self.rounds
                );
                match run(target, &label, r + 1) {
                    Ok(o) => {
                        show(&label, &o);
                        runs.push(o);
                    }
                    Err(e) => {
                        eprintln!("  {label}: FAILED: {e}");
                        self.failed.set(true);
                    }
                }
            }
        }
        runs
    }

    /// Starts target `t`'s server, runs `f` on it, stops it.
    fn on_server<T>(
        &self,
        t: Target,
        label: &str,
        f: impl FnOnce(&servers::Running) -> T,
    ) -> Result<T, String> {
        let (Target::Server(i) | Target::Leg(i, _)) = t else {
            return Err("not a single server".into());
        };
        let server = self.contenders[i].start(label)?;
        let out = f(&server);
        server.stop(Duration::from_secs(5));
        Ok(out)
    }

    /// False (after a line saying why) for a cluster scenario without redis-server.
    fn can_run(&self, sc: &Scenario) -> bool {
        if sc.group == "cluster" && !servers::redis_available() {
            eprintln!(
                "{}: redis-server not installed, skipped (scripts/bench.sh installs it)",
                sc.name
            );
            self.failed.set(true);
            return false;
        }
        true
    }

    fn load(&self, sc: &Scenario, j: usize, spec: &Spec, peer_fanout_only: bool, out: &mut Collected) {
        if !self.can_run(sc) {
            return;
        }
        let Some(targets) = self.load_targets(sc, peer_fanout_only) else {
            eprintln!("{}: needs wspush among the servers, skipped", sc.name);
            return;
        };
        let runs = self.alternate(
            sc,
            j,
            &targets,
            &mut |t, label, _| match t {
                Target::Server(_) => self.on_server(t, label, |s| {
                    self.rt.block_on(load::run(&self.pool, &[s], &[], spec))
                }),
                Target::Leg(_, transport) => self.on_server(t, label, |s| {
                    let spec = Spec {
                        transport,
                        ..spec.clone()
                    };
                    Outcome {
                        server: self.name(t),
                        ..self.rt.block_on(load::run(&self.pool, &[s], &[], &spec))
                    }
                }),
                Target::Cluster => cluster::load(&self.rt, &self.pool, &self.launch, label, spec),
            },
            &|label, o| progress_line(label, o),
        );
        let sums: Vec<Summary> = targets
            .iter()
            .filter_map(|&t| {
                let mine: Vec<&Outcome> = runs.iter().filter(|o| o.server == self.name(t)).collect();
                (!mine.is_empty()).then(|| Summary::of(&sc.name, &mine))
            })
            .collect();
        let find = |name: &str| sums.iter().find(|s| s.server == name);
        if sc.group == "sse" {
            // The event streams against WebSocket, and against Nchan's.
            let sse = find("wspush sse");
            for other in ["wspush websocket", "nchan sse"] {
                out.streams
                    .extend(sse.zip(find(other)).map(|(w, o)| Ratio::of(w, o)));
            }
        }
        let wspush = find("wspush");
        let nchan = wspush.zip(find("nchan")).map(|(w, n)| Ratio::of(w, n));
        let baseline = self.common.baseline_bin.as_ref().and_then(|_| {
            wspush
                .zip(find(&self.common.baseline_name()))
                .map(|(w, b)| Ratio::of(w, b))
        });
        write_json(
            &self.common.out.join(format!("{}.json", sc.name)),
            &serde_json::json!({
                "scenario": sc.name,
                "machine": self.machine,
                "spec": spec,
                "runs": runs,
                "summaries": sums,
                "ratio_to_nchan": nchan,
                "ratio_to_baseline": baseline,
            }),
        );
        out.load.extend(sums);
        out.versus_nchan.extend(nchan);
        out.versus_baseline.extend(baseline);
    }

    /// The servers of a broadcast scenario: the cluster runs next to one
    /// wspush; event streams run next to wspush's WebSocket channel clients.
    fn load_targets(&self, sc: &Scenario, peer_fanout_only: bool) -> Option<Vec<Target>> {
        let w = self.contenders.iter().position(|c| c.name == "wspush");
        if sc.group == "cluster" {
            // The same 10,000 clients on one wspush, side by side.
            return Some(vec![Target::Server(w?), Target::Cluster]);
        }
        if let (Work::Load(spec), "sse") = (&sc.work, sc.group) {
            let mut legs = vec![
                Target::Leg(w?, spec.transport),
                Target::Leg(w?, Transport::WebSocket),
            ];
            let peers =
                (0..self.contenders.len()).filter(|&i| self.contenders[i].kind != servers::Kind::Wspush);
            legs.extend(peers.map(|i| Target::Leg(i, spec.transport)));
            return Some(legs);
        }
        let keep =
            |c: &Contender| c.kind == servers::Kind::Wspush || !peer_fanout_only || sc.group == "fanout";
        Some(
            (0..self.contenders.len())
                .filter(|&i| keep(&self.contenders[i]))
                .map(Target::Server)
                .collect(),
        )
    }

    /// The servers of a channel scenario: the cluster runs next to one wspush.
    fn channel_targets(&self, sc: &Scenario) -> Vec<Target> {
        match self.contenders.iter().position(|c| c.name == "wspush") {
            Some(w) if sc.group == "cluster" => vec![Target::Server(w), Target::Cluster],
            _ => self.all_servers(),
        }
    }

    fn all_servers(&self) -> Vec<Target> {
        (0..self.contenders.len()).map(Target::Server).collect()
    }

    /// Every server up at once, publishes taking turns between them (`rtt.rs`); a fresh start per round.
    fn rtt(&self, sc: &Scenario, spec: &RttSpec, out: &mut Collected) {
        let mut runs: Vec<RttOutcome> = Vec::new();
        for r in 0..self.rounds {
            eprintln!(
                "[{:>5.0}s] {} / all servers at once, round {}/{}",
                self.started.elapsed().as_secs_f64(),
                sc.name,
                r + 1,
                self.rounds
            );
            let label = format!("{}-{}", sc.name, r + 1);
            match self.on_all(&label, |servers| {
                self.rt.block_on(rtt::run(&self.pool, servers, spec))
            }) {
                Ok(outcomes) => {
                    for o in outcomes {
                        show_rtt(&format!("{label}-{}", o.server), &o);
                        runs.push(o);
                    }
                }
                Err(e) => {
                    eprintln!("  {label}: FAILED: {e}");
                    self.failed.set(true);
                }
            }
        }
        let sums = self.summaries(
            &self.all_servers(),
            &runs,
            |o| &o.server,
            |mine| RttSummary::of(&sc.name, mine),
        );
        self.write(sc, &runs, &sums);
        out.rtt.extend(sums);
    }

    /// Starts every server, runs `f` on them all, stops them.
    fn on_all<T>(
        &self,
        label: &str,
        f: impl FnOnce(&[&servers::Running]) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut running = Vec::with_capacity(self.contenders.len());
        for c in &self.contenders {
            match c.start(&format!("{label}-{}", c.name.replace('@', "-"))) {
                Ok(s) => running.push(s),
                Err(e) => {
                    running.into_iter().for_each(|s| s.stop(Duration::from_secs(5)));
                    return Err(e);
                }
            }
        }
        let all: Vec<&servers::Running> = running.iter().collect();
        let out = f(&all);
        running.into_iter().for_each(|s| s.stop(Duration::from_secs(5)));
        out
    }

    fn channels(&self, sc: &Scenario, j: usize, spec: &ChannelSpec, out: &mut Collected) {
        if !self.can_run(sc) {
            return;
        }
        let targets = self.channel_targets(sc);
        let runs = self.alternate(
            sc,
            j,
            &targets,
            &mut |t, label, round| {
                let setup = channels::Setup {
                    handshake_concurrency: self.common.handshake_concurrency,
                    source_ips: self.common.source_ips,
                    round,
                };
                match t {
                    // Channel scenarios have no legs (`channel_targets`).
                    Target::Server(_) | Target::Leg(..) => self.on_server(t, label, |s| {
                        self.rt.block_on(channels::run(&self.pool, &[s], spec, setup))
                    })?,
                    Target::Cluster => {
                        cluster::channels(&self.rt, &self.pool, &self.launch, label, spec, setup)
                    }
                }
            },
            &|label, o: &ChannelOutcome| {
                let t = &o.tally;
                eprintln!(
                    "  {label}: {}; connect {:.2}s ({} failed), delivered {}/{} ({}, unparsed {}), \
                     fan-out p99 {:.1} ms, server CPU {:.2} ms/1k",
                    if t.faults.none() { "exact" } else { "NOT EXACT" },
                    o.connect.secs,
                    o.connect.failures,
                    t.delivered,
                    t.expected,
                    t.faults,
                    t.unparsed,
                    t.fanout_ms.p99,
                    o.server_cpu_ms_per_1000
                );
                for e in o
                    .connect
                    .errors
                    .iter()
                    .chain(&o.publish_errors)
                    .chain(&t.first_error)
                    .take(3)
                {
                    eprintln!("    error: {e}");
                }
            },
        );
        let sums = self.summaries(
            &targets,
            &runs,
            |o| &o.server,
            |mine| ChannelSummary::of(&sc.name, mine),
        );
        self.write(sc, &runs, &sums);
        out.channels.extend(sums);
    }

    /// wspush open and with `--subscribe-secret`, taking turns, a fresh start per run.
    fn connect(&self, sc: &Scenario, j: usize, spec: &ConnectSpec, out: &mut Collected) {
        if !self.contenders.iter().any(|c| c.kind == servers::Kind::Wspush) {
            eprintln!("{}: needs wspush among the servers, skipped", sc.name);
            return;
        }
        let tokens = connect::mint_tokens(spec.clients);
        let mut runs: Vec<ConnectOutcome> = Vec::new();
        for r in 0..self.rounds {
            let mut modes = [Mode::Open, Mode::Token];
            modes.rotate_left((r + j) % 2);
            for mode in modes {
                let label = format!("{}-{}-{}", sc.name, mode.name(), r + 1);
                eprintln!(
                    "[{:>5.0}s] {} / wspush {} round {}/{}",
                    self.started.elapsed().as_secs_f64(),
                    sc.name,
                    mode.name(),
                    r + 1,
                    self.rounds
                );
                let given: &[String] = if mode == Mode::Token { &tokens } else { &[] };
                match servers::start_wspush(&self.launch, &label, &mode.flags()) {
                    Ok(server) => {
                        let o =
                            self.rt
                                .block_on(connect::run(&self.pool, &server, spec, (mode, r + 1), given));
                        server.stop(Duration::from_secs(5));
                        show_connect(&label, &o);
                        self.failed.set(self.failed.get() || o.failures > 0);
                        runs.push(o);
                    }
                    Err(e) => {
                        eprintln!("  {label}: FAILED: {e}");
                        self.failed.set(true);
                    }
                }
            }
        }
        let sums: Vec<ConnectSummary> = [Mode::Open, Mode::Token]
            .into_iter()
            .filter_map(|mode| ConnectSummary::of(&sc.name, spec, mode, &runs))
            .collect();
        self.write(sc, &runs, &sums);
        out.connect.extend(sums);
    }

    /// One summary per target that has runs.
    fn summaries<T, S>(
        &self,
        targets: &[Target],
        runs: &[T],
        server: impl Fn(&T) -> &String,
        summarise: impl Fn(&[&T]) -> S,
    ) -> Vec<S> {
        targets
            .iter()
            .filter_map(|&t| {
                let mine: Vec<&T> = runs.iter().filter(|o| *server(o) == self.name(t)).collect();
                (!mine.is_empty()).then(|| summarise(&mine))
            })
            .collect()
    }

    fn write(&self, sc: &Scenario, runs: &impl Serialize, sums: &impl Serialize) {
        write_json(
            &self.common.out.join(format!("{}.json", sc.name)),
            &serde_json::json!({
                "scenario": sc.name,
                "machine": self.machine,
                "runs": runs,
                "summaries": sums,
            }),
        );
    }
}

fn show_rtt(label: &str, o: &RttOutcome) {
    let paired: Vec<String> = o
        .paired_p50_diff_us
        .iter()
        .map(|(other, d)| format!("{d:+.0} µs vs {other}"))
        .collect();
    eprintln!(
        "  {label}: RTT p50 {:.0} / p90 {:.0} / p99 {:.0} µs (paired p50: {}), server CPU {:.1} µs/publish, \
         bench CPU {:.1} µs/publish (all servers), lost {}, failed connects {}",
        o.rtt_ms.p50 * 1000.0,
        o.rtt_ms.p90 * 1000.0,
        o.rtt_ms.p99 * 1000.0,
        paired.join(", "),
        o.server_cpu_us_per_publish,
        o.client_cpu_us_per_publish,
        o.lost,
        o.connect_failures
    );
    for e in o.publish_errors.iter().take(1) {
        eprintln!("    error: {e}");
    }
}

fn show_connect(label: &str, o: &ConnectOutcome) {
    eprintln!(
        "  {label}: {} connected in {:.2}s, handshake p50 {:.2} / p99 {:.2} ms, server CPU {:.1} µs/conn, failed {}",
        o.connected, o.connect_secs, o.handshake_ms.p50, o.handshake_ms.p99, o.server_cpu_us_per_conn, o.failures
    );
    for e in o.errors.iter().take(3) {
        eprintln!("    error: {e}");
    }
}

/// Runs the suite: every scenario `only` names (or the default ones), on `servers`.
pub fn run(
    common: &Common,
    rounds: usize,
    only: &[String],
    servers: &[servers::Kind],
    peer_fanout_only: bool,
) -> ExitCode {
    let known = known_names(common);
    if let Some(bad) = only.iter().find(|o| !known.contains(o)) {
        eprintln!("unknown scenario or group {bad:?}; known: {}", known.join(", "));
        return ExitCode::from(2);
    }
    let launch = crate::launch(common);
    let suite = Suite {
        common,
        machine: machine(common),
        contenders: contenders(common, &launch, servers),
        launch,
        rt: crate::runtime(),
        pool: Pool::new(common.client_threads),
        rounds: rounds.max(1),
        started: Instant::now(),
        failed: Cell::new(false),
    };
    let chosen: Vec<Scenario> = scenarios(common)
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.group || *o == s.name))
        .collect();
    let mut out = Collected::default();
    for (j, sc) in chosen.iter().enumerate() {
        match &sc.work {
            Work::Load(spec) => suite.load(sc, j, spec, peer_fanout_only, &mut out),
            Work::Rtt(spec) => suite.rtt(sc, spec, &mut out),
            Work::Channels(spec) => suite.channels(sc, j, spec, &mut out),
            Work::Connect(spec) => suite.connect(sc, j, spec, &mut out),
        }
    }
    let mut verdicts = report::verdicts(&out.load);
    verdicts.extend(channels::verdicts(&out.channels));
    let md = markdown::markdown(&suite, &out, &verdicts);
    print!("{md}");
    let _ = fs::write(common.out.join("report.md"), &md);
    write_json(
        &common.out.join("summary.json"),
        &serde_json::json!({
            "machine": suite.machine,
            "rounds": rounds,
            "summaries": out.load,
            "ratios_to_nchan": out.versus_nchan,
            "ratios_to_baseline": out.versus_baseline,
            "publish_rtt": out.rtt,
            "channels": out.channels,
            "connect_token": out.connect,
            "targets": verdicts,
        }),
    );
    if suite.failed.get() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
