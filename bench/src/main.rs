//! `wspush-bench`: the load generator and benchmark driver for wspush and its
//! peer (nginx + Nchan). See BENCHMARKS.md.
//!
//! * `suite`: the scenarios of `make bench` (and, with `--only`, the channel
//!   scenarios), each server started fresh per run; markdown to stdout, JSON
//!   to `target/bench/<scenario>.json` (see `suite.rs`).
//! * `soak`: `make soak`, steady clients plus connect/disconnect churn.
//! * `run`: one ad-hoc run with the parameters given.

mod channels;
mod connect;
mod http;
mod load;
mod pool;
mod procfs;
mod recvbuf;
mod report;
mod rtt;
mod servers;
mod soak;
mod sseclient;
mod subscriber;
mod suite;
mod wsclient;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use load::{Outcome, Publish, Spec};
use report::Summary;
use servers::{Kind, Launch, Running};
use subscriber::Transport;

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
    /// A second wspush binary run side by side with `--wspush-bin` in the
    /// suite (e.g. the build before a change), servers taking turns.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Its name in the tables (default `wspush@SUFFIX` for a file named
    /// `wspush-SUFFIX`, else `wspush@` and the file name).
    #[arg(long)]
    baseline_label: Option<String>,
}

impl Common {
    /// A broadcast run's parameters, connecting as these flags say.
    fn spec(&self, clients: usize, slow: usize, payload: usize, publish: Publish) -> Spec {
        Spec {
            clients,
            slow,
            payload,
            publish,
            handshake_concurrency: self.handshake_concurrency,
            source_ips: self.source_ips,
            transport: Transport::Echo,
        }
    }

    /// The baseline build's name in tables.
    fn baseline_name(&self) -> String {
        if let Some(label) = &self.baseline_label {
            return label.clone();
        }
        let file = self
            .baseline_bin
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("wspush@{}", file.strip_prefix("wspush-").unwrap_or(&file))
    }
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
        /// Only these scenario groups (fanout, capacity, throughput, slow,
        /// cluster, publish-rtt, connect-token, channels, isolation, resume,
        /// sse) or names, comma-separated.
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
        /// What the clients connect to: `/echo`, `/ws/all` (Nchan: `/sub/all`) or `/events/all`.
        #[arg(long, value_enum, default_value = "echo")]
        transport: Transport,
    },
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

fn single(common: &Common, server: Kind, name: &str, spec: Spec) -> ExitCode {
    let rt = runtime();
    let pool = pool::Pool::new(common.client_threads);
    let label = format!("{name}-{}", server.name());
    let started = Running::start(server, &launch(common), &label).map(|s| {
        let o = rt.block_on(load::run(&pool, &[&s], &[], &spec));
        s.stop(Duration::from_secs(5));
        o
    });
    match started {
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
        } => suite::run(&common, rounds, &only, &servers, peer_fanout_only),
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
            transport,
        } => {
            let publish = match flood_secs {
                Some(secs) => Publish::Flood { secs, publishers },
                None => Publish::Rate { count, per_sec: rate },
            };
            let spec = Spec {
                transport,
                ..common.spec(clients, slow, payload, publish)
            };
            single(&common, server, &name, spec)
        }
    }
}
