//! `make soak`: steady clients that must lose nothing while others connect and
//! disconnect around them; afterwards the server's threads, fds and RSS must
//! be back to where they were before the churn.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::load::{self, Percentiles, Progress};
use crate::pool::Pool;
use crate::procfs::{self, Peaks, Sample, Watcher};
use crate::servers::{Kind, Launch, Running};
use crate::subscriber::Subscribe;
use crate::wsclient::{Client, Upgrade};

/// Wait before the baseline reading: wspush's default ping interval plus 2 s.
const WARM_UP: Duration = Duration::from_secs(12);

/// The soak's parameters.
#[derive(Args, Clone, Debug, Serialize)]
pub struct SoakArgs {
    /// Clients connected throughout, which must receive every broadcast.
    #[arg(long, default_value_t = 2000)]
    pub steady: usize,
    /// New short-lived connections per second (each later disconnects).
    #[arg(long, default_value_t = 200.0)]
    pub churn_per_sec: f64,
    /// How long each short-lived client stays, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub churn_hold_secs: f64,
    /// Length of the churn, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub secs: f64,
    /// Broadcasts per second during the churn.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Broadcasts go on alone for this long after the churn, seconds: long
    /// enough to replace the history of `all` (wspush keeps the last 100, 10 s
    /// at 10/s), as it was at the baseline. Messages stored during the churn
    /// sit among its freed blocks and keep their pages resident (+2.4% at the
    /// end with 0 here, +0.3% with `--history-size 1`): where they sit, not
    /// growth, which this soak is after.
    #[arg(long, default_value_t = 12.0)]
    pub quiet_secs: f64,
    /// Payload bytes.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Allowed RSS difference from the baseline afterwards, percent.
    #[arg(long, default_value_t = 2.0)]
    pub rss_tolerance_pct: f64,
    /// Longest wait for the server to settle after the churn, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub settle_secs: f64,
}

#[derive(Serialize)]
struct SoakReport<'a> {
    args: &'a SoakArgs,
    steady_connected: u64,
    baseline: Sample,
    baseline_rss: Option<procfs::RssBreakdown>,
    after_rss: Option<procfs::RssBreakdown>,
    peaks_during_churn: Peaks,
    after: Sample,
    settle_secs: f64,
    rss_change_pct: f64,
    churn_connects_ok: u64,
    churn_connects_failed: u64,
    churn_first_errors: Vec<String>,
    broadcasts_ok: u64,
    steady_expected: u64,
    steady_delivered: u64,
    steady_lost: u64,
    steady_duplicated: u64,
    steady_order_differs: usize,
    steady_closed_early: usize,
    fanout_ms: Percentiles,
    server_cpu_ms: f64,
    server_counters: Option<serde_json::Value>,
    checks: Vec<(String, bool)>,
}

/// Runs the soak against a fresh wspush.
pub fn run(
    rt: &tokio::runtime::Runtime,
    pool: &Pool,
    launch: &Launch,
    out: &Path,
    args: &SoakArgs,
    source_ips: u8,
) -> ExitCode {
    let server = match Running::start(Kind::Wspush, launch, "soak-wspush") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(soak(pool, &server, args, source_ips));
    server.stop(Duration::from_secs(5));
    let ok = report.checks.iter().all(|(_, ok)| *ok);
    let mut md = format!(
        "## wspush soak: {} steady clients, {:.0} connects+disconnects/s for {:.0} s, {:.0} broadcasts/s (then {:.0} s of broadcasts alone)\n\n",
        args.steady, args.churn_per_sec, args.secs, args.rate, args.quiet_secs
    );
    md.push_str("| | RSS MiB | threads | fds |\n|---|---:|---:|---:|\n");
    let row = |name: &str, s: &Sample| {
        format!(
            "| {name} | {:.1} | {} | {} |\n",
            s.rss_kib as f64 / 1024.0,
            s.threads,
            s.fds
        )
    };
    md.push_str(&row("baseline (steady clients connected)", &report.baseline));
    md.push_str(&format!(
        "| peak during churn | {:.1} | {} | |\n",
        report.peaks_during_churn.rss_kib as f64 / 1024.0,
        report.peaks_during_churn.threads,
    ));
    md.push_str(&row(
        &format!("after churn (settled in {:.1} s)", report.settle_secs),
        &report.after,
    ));
    md.push_str(&format!(
        "\nchurn connections: {} ok, {} failed; broadcasts: {}; steady clients: {} delivered of {} expected, \
         lost {}, dup {}, order≠ {}, closed early {}; fan-out p99 {:.1} ms; RSS change {:+.2}%\n\n",
        report.churn_connects_ok,
        report.churn_connects_failed,
        report.broadcasts_ok,
        report.steady_delivered,
        report.steady_expected,
        report.steady_lost,
        report.steady_duplicated,
        report.steady_order_differs,
        report.steady_closed_early,
        report.fanout_ms.p99,
        report.rss_change_pct
    ));
    if let (Some(b), Some(a)) = (report.baseline_rss, report.after_rss) {
        md.push_str(&format!(
            "RSS by mapping, KiB (baseline → after): main heap {} → {}, other malloc arenas {} → {}, \
             thread stacks {} → {}, other anonymous {} → {}, files {} → {}\n\n",
            b.heap,
            a.heap,
            b.arenas,
            a.arenas,
            b.stacks,
            a.stacks,
            b.other_anon,
            a.other_anon,
            b.files,
            a.files
        ));
    }
    md.push_str("| check | result |\n|---|---|\n");
    for (name, ok) in &report.checks {
        md.push_str(&format!(
            "| {name} | {} |\n",
            if *ok { "pass" } else { "**FAIL**" }
        ));
    }
    print!("{md}");
    let path = out.join("soak.json");
    let _ = std::fs::create_dir_all(out);
    if let Ok(bytes) = serde_json::to_vec_pretty(&report) {
        let _ = std::fs::write(&path, bytes);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn soak<'a>(pool: &Pool, server: &Running, args: &'a SoakArgs, source_ips: u8) -> SoakReport<'a> {
    let pid = server.pid();
    let progress = Progress::new();
    let broadcasts = ((args.secs + args.quiet_secs) * args.rate).round() as u64;

    // Steady clients.
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let connect_failures = Arc::new(AtomicU64::new(0));
    let mut steady = Vec::with_capacity(args.steady);
    for i in 0..args.steady {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore");
        let failures = Arc::clone(&connect_failures);
        let on_connected = move |r: Result<(), String>| {
            drop(permit);
            if let Err(e) = r {
                failures.fetch_add(1, Relaxed);
                eprintln!("steady client failed to connect: {e}");
            }
        };
        let src = load::source_ip(i, source_ips);
        steady.push(load::spawn_reader(
            pool,
            i,
            Subscribe::echo(server.ws),
            src,
            &progress,
            broadcasts as usize,
            on_connected,
        ));
    }
    let steady_connected = load::wait_subscribers(server, args.steady as u64, Duration::from_secs(20)).await;
    // The baseline is the steady state: every steady client has been pinged
    // and has answered once (wspush pings each client every 10 s, spread over
    // the interval), since a connection's first pong allocates in tungstenite
    // (its read buffer becomes shared), and that is not churn.
    tokio::time::sleep(WARM_UP).await;
    let baseline = procfs::sample(pid).unwrap_or_default();
    let baseline_rss = procfs::rss_breakdown(pid);
    let dump = |name: &str| {
        // For looking at the server's memory map by hand.
        if let Some(dir) = std::env::var_os("WSPUSH_BENCH_SMAPS_DIR") {
            let _ = std::fs::copy(format!("/proc/{pid}/smaps"), Path::new(&dir).join(name));
        }
    };
    dump("smaps.baseline");
    eprintln!(
        "soak: {steady_connected} steady clients; baseline RSS {} KiB, {} threads, {} fds; churning for {:.0} s, then broadcasts alone for {:.0} s",
        baseline.rss_kib, baseline.threads, baseline.fds, args.secs, args.quiet_secs
    );

    // Churn and broadcasts together, then broadcasts alone for quiet_secs.
    let watcher = Watcher::start(pid, Duration::from_millis(100));
    let cpu0 = procfs::cpu_ms(pid).unwrap_or(0.0);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let churn = {
        let (ok, failed, errors) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&errors));
        let (ws_addr, per_sec, hold, secs) = (server.ws, args.churn_per_sec, args.churn_hold_secs, args.secs);
        async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let total = (secs * per_sec).round() as usize;
            let mut tasks = Vec::with_capacity(total);
            for i in 0..total {
                ticker.tick().await;
                let (ok, failed, errors) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&errors));
                // Offset the source addresses from the steady clients' ports.
                let src = load::source_ip(i + 1, source_ips);
                tasks.push(pool.spawn(i, async move {
                    match Client::connect(ws_addr, src, &Upgrade::ECHO, None).await {
                        Ok(mut ws) => {
                            ok.fetch_add(1, Relaxed);
                            let until = tokio::time::Instant::now() + Duration::from_secs_f64(hold);
                            while let Ok(Ok(true)) = tokio::time::timeout_at(until, ws.skip()).await {}
                            if i % 2 == 0 {
                                // A clean close: Close frame, wait for the server's reply.
                                let _ = ws.close().await;
                                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                    while let Ok(true) = ws.skip().await {}
                                })
                                .await;
                            }
                            // Otherwise: the connection is just dropped.
                        }
                        Err(e) => {
                            failed.fetch_add(1, Relaxed);
                            let mut errs = errors.lock().unwrap();
                            if errs.len() < 5 {
                                errs.push(e);
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    };
    let publish = load::publish_rate(server.http, progress.run_id, broadcasts, args.rate, args.payload);
    let (published, ()) = tokio::join!(publish, churn);
    let expected = steady_connected.min(args.steady as u64) * published.ok.len() as u64;
    load::drain(
        &progress,
        expected,
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .await;
    let cpu1 = procfs::cpu_ms(pid).unwrap_or(cpu0);
    let peaks = watcher.finish();

    // Settle: wait for the churned connections to be gone.
    let settle_start = Instant::now();
    let mut after;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = procfs::sample(pid).unwrap_or_default();
        let clients = server.subscribers().await.unwrap_or(u64::MAX);
        let back =
            clients == steady_connected && after.threads <= baseline.threads && after.fds <= baseline.fds;
        if back || settle_start.elapsed().as_secs_f64() > args.settle_secs {
            break;
        }
    }
    // wspush returns freed heap once a second without disconnects has passed
    // (its ping thread checks every second): wait for that, then the final reading.
    tokio::time::sleep(Duration::from_secs(3)).await;
    after = procfs::sample(pid).unwrap_or(after);
    let after_rss = procfs::rss_breakdown(pid);
    dump("smaps.after");
    let settle_secs = settle_start.elapsed().as_secs_f64();
    let server_counters = server.counters().await;

    let mut logs = Vec::new();
    for reader in steady {
        logs.push(reader.finish().await);
    }
    let closed_never_connected = connect_failures.load(Relaxed);
    let tally = load::tally(&logs, &published.ok);
    let rss_change_pct =
        (after.rss_kib as f64 - baseline.rss_kib as f64) / baseline.rss_kib.max(1) as f64 * 100.0;
    let checks = vec![
        (
            format!("all {} steady clients connected", args.steady),
            steady_connected == args.steady as u64 && closed_never_connected == 0,
        ),
        (
            format!(
                "threads back to baseline ({} → {})",
                baseline.threads, after.threads
            ),
            after.threads <= baseline.threads,
        ),
        (
            format!("fds back to baseline ({} → {})", baseline.fds, after.fds),
            after.fds <= baseline.fds,
        ),
        (
            format!(
                "RSS within ±{}% of baseline ({} → {} KiB, {rss_change_pct:+.2}%)",
                args.rss_tolerance_pct, baseline.rss_kib, after.rss_kib
            ),
            rss_change_pct.abs() <= args.rss_tolerance_pct,
        ),
        (
            format!(
                "steady clients lost nothing (lost {}, dup {}, order≠ {}, closed early {})",
                tally.lost, tally.duplicated, tally.order_differs, tally.closed_early
            ),
            tally.lost == 0 && tally.duplicated == 0 && tally.order_differs == 0 && tally.closed_early == 0,
        ),
        (
            format!(
                "churn connections all succeeded ({} failed)",
                failed.load(Relaxed)
            ),
            failed.load(Relaxed) == 0,
        ),
        (
            format!(
                "every broadcast accepted ({} of {})",
                published.ok.len(),
                published.made
            ),
            published.ok.len() as u64 == published.made,
        ),
    ];
    let churn_first_errors = errors.lock().unwrap().clone();
    SoakReport {
        args,
        steady_connected,
        baseline,
        baseline_rss,
        after_rss,
        peaks_during_churn: peaks,
        after,
        settle_secs,
        rss_change_pct,
        churn_connects_ok: ok.load(Relaxed),
        churn_connects_failed: failed.load(Relaxed),
        churn_first_errors,
        broadcasts_ok: published.ok.len() as u64,
        steady_expected: expected,
        steady_delivered: tally.delivered,
        steady_lost: tally.lost,
        steady_duplicated: tally.duplicated,
        steady_order_differs: tally.order_differs,
        steady_closed_early: tally.closed_early,
        fanout_ms: Percentiles::of(&tally.fanout),
        server_cpu_ms: cpu1 - cpu0,
        server_counters,
        checks,
    }
}
