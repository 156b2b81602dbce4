//! `wspush-bench`: the load generator and benchmark driver for wspush and its
//! peer (nginx + Nchan). See BENCHMARKS.md.
//!
//! * `suite`: the scenarios of `make bench`, each server started fresh per run;
//!   markdown to stdout, JSON to `target/bench/<scenario>.json`.
//! * `soak`: `make soak`, steady clients plus connect/disconnect churn.
//! * `run`: one ad-hoc run with the parameters given.

mod http;
mod load;
mod pool;
mod procfs;
mod report;
mod servers;
mod soak;
mod wsclient;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use load::{Outcome, Publish, Spec};
use report::{Ratio, Summary};
use servers::{Kind, Launch, Running};

#[derive(Parser)]
#[command(
    name = "wspush-bench",
    about = "Benchmarks wspush side by side with nginx + Nchan"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// The wspush binary.
    #[arg(long, default_value = "target/release/wspush")]
    wspush_bin: PathBuf,
    /// Extra flag for wspush (repeatable), e.g. `--wspush-arg=--reader-stack-kib=64`.
    #[arg(long = "wspush-arg", allow_hyphen_values = true)]
    wspush_args: Vec<String>,
    /// Where JSON results, logs and nginx's files go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Client threads: as many tokio threads (connecting clients) and epoll threads (reading them).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    handshake_concurrency: usize,
    /// Source addresses (127.0.0.1, .2, ...) the clients spread over.
    #[arg(long, default_value_t = 4)]
    source_ips: u8,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios of `make bench`.
    Suite {
        #[command(flatten)]
        common: Common,
        /// Runs of each scenario per server; the tables show medians.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Only these scenario groups (fanout, capacity, throughput, slow, cluster) or names, comma-separated.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Servers to run (default: wspush and, where installed, nchan).
        #[arg(long, value_delimiter = ',')]
        servers: Vec<Kind>,
        /// Run the peer in scenario 1 only (saves time).
        #[arg(long)]
        peer_fanout_only: bool,
    },
    /// Steady clients plus connect/disconnect churn; checks the server returns to its baseline.
    Soak {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        soak: soak::SoakArgs,
    },
    /// One run with the given parameters.
    Run {
        #[command(flatten)]
        common: Common,
        /// Server.
        #[arg(long, value_enum, default_value = "wspush")]
        server: Kind,
        /// Name for the JSON file.
        #[arg(long, default_value = "custom")]
        name: String,
        /// Reading clients.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Extra clients that stop reading once connected.
        #[arg(long, default_value_t = 0)]
        slow: usize,
        /// Payload bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Broadcasts (rate mode).
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// Broadcasts per second (rate mode).
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Publish as fast as possible for this many seconds instead.
        #[arg(long)]
        flood_secs: Option<f64>,
        /// Keep-alive publishers in flood mode.
        #[arg(long, default_value_t = 4)]
        publishers: usize,
    },
}

/// What a suite run starts: one server, or two wspush nodes sharing a local Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Server(Kind),
    Cluster,
}

/// The `server` column of the two-node runs.
const CLUSTER_NAME: &str = "2×wspush+redis";

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Server(k) => k.name(),
            Target::Cluster => CLUSTER_NAME,
        }
    }
}

/// One scenario of the suite.
struct Scenario {
    name: String,
    group: &'static str,
    spec: Spec,
}

fn suite_scenarios(common: &Common) -> Vec<Scenario> {
    let spec = |clients: usize, slow: usize, payload: usize, publish: Publish| Spec {
        clients,
        slow,
        payload,
        publish,
        handshake_concurrency: common.handshake_concurrency,
        source_ips: common.source_ips,
    };
    let rate = |count, per_sec| Publish::Rate { count, per_sec };
    let mut v = Vec::new();
    for n in [1_000, 5_000, 10_000] {
        v.push(Scenario {
            name: format!("fanout-{n}"),
            group: "fanout",
            spec: spec(n, 0, 100, rate(100, 10.0)),
        });
    }
    v.push(Scenario {
        name: "fanout-10000-1k".into(),
        group: "fanout",
        spec: spec(10_000, 0, 1024, rate(100, 10.0)),
    });
    v.push(Scenario {
        name: "capacity-15000".into(),
        group: "capacity",
        spec: spec(15_000, 0, 100, rate(100, 5.0)),
    });
    v.push(Scenario {
        name: "throughput-1000".into(),
        group: "throughput",
        spec: spec(
            1_000,
            0,
            100,
            Publish::Flood {
                secs: 10.0,
                publishers: 4,
            },
        ),
    });
    // 1% of 10,000 stop reading. 1 KiB payloads, so that 100 broadcasts
    // (100 KiB) overflow a stopped client's socket buffers and exercise the
    // server's backlog path; compared with fanout-10000-1k.
    v.push(Scenario {
        name: "slow-10000".into(),
        group: "slow",
        spec: spec(9_900, 100, 1024, rate(100, 10.0)),
    });
    // Two wspush nodes × 5,000 clients sharing one local Redis, published
    // through node A; run side by side with one wspush holding all 10,000.
    v.push(Scenario {
        name: "cluster-2x5000".into(),
        group: "cluster",
        spec: spec(10_000, 0, 100, rate(100, 10.0)),
    });
    v
}

#[derive(Serialize)]
struct ScenarioFile<'a> {
    scenario: &'a str,
    machine: &'a Machine,
    spec: &'a Spec,
    runs: &'a [Outcome],
    summaries: &'a [Summary],
    ratio_to_nchan: Option<&'a Ratio>,
}

/// What the numbers were measured on.
#[derive(Serialize, Clone)]
struct Machine {
    cpus: usize,
    kernel: String,
    memory_gib: f64,
    nginx: String,
    wspush_args: Vec<String>,
    client_threads: usize,
}

fn machine(common: &Common) -> Machine {
    let mem_kib: f64 = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0.0);
    let nginx = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_else(|_| "not installed".into());
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        memory_gib: mem_kib / 1024.0 / 1024.0,
        nginx,
        wspush_args: common.wspush_args.clone(),
        client_threads: common.client_threads,
    }
}

/// The driver's own runtime (publishing, polling the server); the clients run on a [`pool::Pool`].
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn launch(common: &Common) -> Launch {
    Launch {
        wspush_bin: common.wspush_bin.clone(),
        wspush_args: common.wspush_args.clone(),
        work_dir: common.out.join("logs"),
    }
}

/// Starts `kind`, runs `spec` against it, stops it.
fn run_once(
    rt: &tokio::runtime::Runtime,
    pool: &pool::Pool,
    kind: Kind,
    launch: &Launch,
    label: &str,
    spec: &Spec,
) -> Result<Outcome, String> {
    let server = Running::start(kind, launch, label)?;
    let outcome = rt.block_on(load::run(pool, &[&server], &[], spec));
    server.stop(Duration::from_secs(5));
    Ok(outcome)
}

/// Starts a local Redis and two wspush nodes on it, runs `spec` with the
/// clients spread over both and published through node A, stops all three.
fn run_cluster(
    rt: &tokio::runtime::Runtime,
    pool: &pool::Pool,
    launch: &Launch,
    label: &str,
    spec: &Spec,
) -> Result<Outcome, String> {
    // Dropping it (also on an error below) kills redis-server by its pid.
    let redis = servers::Redis::start(launch, &format!("{label}-redis"))?;
    let channel = "bench";
    let a = servers::start_wspush_node(launch, &format!("{label}-a"), redis.port, channel, "bench-a")?;
    let b = match servers::start_wspush_node(launch, &format!("{label}-b"), redis.port, channel, "bench-b") {
        Ok(b) => b,
        Err(e) => {
            a.stop(Duration::from_secs(5));
            return Err(e);
        }
    };
    let ready = rt.block_on(async {
        for node in [&a, &b] {
            if !servers::wait_healthy(node, Duration::from_secs(15)).await {
                return Err(format!(
                    "node at {} never answered /healthz 200 within 15 s",
                    node.http
                ));
            }
        }
        Ok(())
    });
    let outcome = ready.map(|()| Outcome {
        // The name the suite's summaries look for.
        server: CLUSTER_NAME.to_owned(),
        ..rt.block_on(load::run(
            pool,
            &[&a, &b],
            &[("redis".to_owned(), redis.pid())],
            spec,
        ))
    });
    a.stop(Duration::from_secs(5));
    b.stop(Duration::from_secs(5));
    drop(redis);
    outcome
}

fn progress_line(label: &str, o: &Outcome) {
    eprintln!(
        "  {label}: connect {:.2}s, fan-out p50 {:.1} / p99 {:.1} ms, delivered {}/{} (lost {}, dup {}, order≠ {}, failed connects {}), \
         server CPU {:.2} ms/1k, RSS/conn {:.1} KiB, threads {} (peak {}), {:.0} deliveries/s",
        o.connect_secs,
        o.fanout_ms.p50,
        o.fanout_ms.p99,
        o.delivered,
        o.expected,
        o.lost,
        o.duplicated,
        o.order_differs,
        o.connect_failures,
        o.server_proc.cpu_ms_per_1000,
        o.server_proc.rss_per_client_kib,
        o.server_proc.connected.threads,
        o.server_proc.peaks.threads,
        o.deliveries_per_sec,
    );
    for e in o.connect_errors.iter().chain(&o.publish_errors).take(3) {
        eprintln!("    error: {e}");
    }
}

fn write_json(path: &Path, value: &impl Serialize) {
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    match serde_json::to_vec_pretty(value) {
        Ok(bytes) => {
            if let Err(e) = fs::write(path, bytes) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("cannot encode {}: {e}", path.display()),
    }
}

fn suite(
    common: &Common,
    rounds: usize,
    only: &[String],
    servers: &[Kind],
    peer_fanout_only: bool,
) -> ExitCode {
    let started = Instant::now();
    let mut kinds: Vec<Kind> = if servers.is_empty() {
        vec![Kind::Wspush, Kind::Nchan]
    } else {
        servers.to_vec()
    };
    if kinds.contains(&Kind::Nchan) && !servers::nchan_available() {
        eprintln!("nginx + Nchan not installed: running wspush only (scripts/bench.sh installs them)");
        kinds.retain(|k| *k != Kind::Nchan);
    }
    let machine = machine(common);
    let launch = launch(common);
    let rt = runtime();
    let pool = pool::Pool::new(common.client_threads);
    let mut summaries = Vec::new();
    let mut ratios = Vec::new();
    let scenarios: Vec<Scenario> = suite_scenarios(common)
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.group || *o == s.name))
        .collect();
    let mut failed = false;
    for (j, sc) in scenarios.iter().enumerate() {
        if sc.group == "cluster" && !servers::redis_available() {
            eprintln!(
                "{}: redis-server not installed, skipped (scripts/bench.sh installs it)",
                sc.name
            );
            failed = true;
            continue;
        }
        let mut runs: Vec<Outcome> = Vec::new();
        let these: Vec<Target> = if sc.group == "cluster" {
            // The same 10,000 clients on one wspush, side by side.
            vec![Target::Server(Kind::Wspush), Target::Cluster]
        } else {
            kinds
                .iter()
                .copied()
                .filter(|k| *k == Kind::Wspush || !peer_fanout_only || sc.group == "fanout")
                .map(Target::Server)
                .collect()
        };
        for r in 0..rounds.max(1) {
            // Alternate which server goes first, so drift on a shared machine
            // does not always favour the same one.
            let mut order = these.clone();
            if (r + j) % 2 == 1 {
                order.reverse();
            }
            for target in order {
                let tag = match target {
                    Target::Server(k) => k.name(),
                    Target::Cluster => "2node",
                };
                let label = format!("{}-{}-{}", sc.name, tag, r + 1);
                eprintln!(
                    "[{:>5.0}s] {} / {} round {}/{}",
                    started.elapsed().as_secs_f64(),
                    sc.name,
                    target.name(),
                    r + 1,
                    rounds.max(1)
                );
                let result = match target {
                    Target::Server(kind) => run_once(&rt, &pool, kind, &launch, &label, &sc.spec),
                    Target::Cluster => run_cluster(&rt, &pool, &launch, &label, &sc.spec),
                };
                match result {
                    Ok(o) => {
                        progress_line(&label, &o);
                        runs.push(o);
                    }
                    Err(e) => {
                        eprintln!("  {label}: FAILED: {e}");
                        failed = true;
                    }
                }
            }
        }
        let mut sums = Vec::new();
        for target in &these {
            let mine: Vec<&Outcome> = runs.iter().filter(|o| o.server == target.name()).collect();
            if !mine.is_empty() {
                sums.push(Summary::of(&sc.name, &mine));
            }
        }
        let ratio = match (
            sums.iter().find(|s| s.server == "wspush"),
            sums.iter().find(|s| s.server == "nchan"),
        ) {
            (Some(w), Some(n)) => Some(Ratio::of(w, n)),
            _ => None,
        };
        write_json(
            &common.out.join(format!("{}.json", sc.name)),
            &ScenarioFile {
                scenario: &sc.name,
                machine: &machine,
                spec: &sc.spec,
                runs: &runs,
                summaries: &sums,
                ratio_to_nchan: ratio.as_ref(),
            },
        );
        summaries.extend(sums);
        ratios.extend(ratio);
    }
    let verdicts = report::verdicts(&summaries);
    let mut md = String::new();
    md.push_str(&format!(
        "## wspush vs nginx + Nchan ({} CPUs, {:.0} GiB, Linux {}, {}; {} round(s), medians; bench runtime {} threads)\n\n",
        machine.cpus,
        machine.memory_gib,
        machine.kernel,
        machine.nginx,
        rounds.max(1),
        machine.client_threads
    ));
    md.push_str(&report::table(&summaries));
    let cluster: Vec<Summary> = summaries
        .iter()
        .filter(|s| s.scenario.starts_with("cluster-"))
        .cloned()
        .collect();
    if !cluster.is_empty() {
        md.push_str("\n### Two nodes through Redis vs one node (same 10,000 clients)\n\n");
        md.push_str(&report::cluster_table(&cluster));
    }
    if !ratios.is_empty() {
        md.push_str("\n### wspush ÷ Nchan (below 1.00× is better for wspush, except deliveries/s)\n\n");
        md.push_str(&report::ratio_table(&ratios));
    }
    md.push_str("\n### Targets\n\n");
    md.push_str(&report::verdict_table(&verdicts));
    md.push_str(&format!(
        "\nWhole run: {:.0} s. JSON per scenario in {}/.\n",
        started.elapsed().as_secs_f64(),
        common.out.display()
    ));
    print!("{md}");
    let _ = fs::write(common.out.join("report.md"), &md);
    write_json(
        &common.out.join("summary.json"),
        &serde_json::json!({
            "machine": machine,
            "rounds": rounds,
            "summaries": summaries,
            "ratios_to_nchan": ratios,
            "targets": verdicts,
        }),
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[allow(clippy::too_many_arguments)]
fn single(common: &Common, server: Kind, name: &str, spec: Spec) -> ExitCode {
    let rt = runtime();
    let pool = pool::Pool::new(common.client_threads);
    let label = format!("{name}-{}", server.name());
    match run_once(&rt, &pool, server, &launch(common), &label, &spec) {
        Ok(o) => {
            progress_line(&label, &o);
            let sums = vec![Summary::of(name, &[&o])];
            print!("{}", report::table(&sums));
            write_json(&common.out.join(format!("{name}-{}.json", server.name())), &o);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{label}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Suite {
            common,
            rounds,
            only,
            servers,
            peer_fanout_only,
        } => suite(&common, rounds, &only, &servers, peer_fanout_only),
        Command::Soak { common, soak } => {
            let rt = runtime();
            let pool = pool::Pool::new(common.client_threads);
            soak::run(
                &rt,
                &pool,
                &launch(&common),
                &common.out,
                &soak,
                common.source_ips,
            )
        }
        Command::Run {
            common,
            server,
            name,
            clients,
            slow,
            payload,
            count,
            rate,
            flood_secs,
            publishers,
        } => {
            let publish = match flood_secs {
                Some(secs) => Publish::Flood { secs, publishers },
                None => Publish::Rate { count, per_sec: rate },
            };
            let spec = Spec {
                clients,
                slow,
                payload,
                publish,
                handshake_concurrency: common.handshake_concurrency,
                source_ips: common.source_ips,
            };
            single(&common, server, &name, spec)
        }
    }
}
