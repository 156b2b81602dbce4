//! A flood of invalid subscribe tokens costs what a flood of bad handshakes
//! costs: the `wspush` binary answers every one (401/403, or 404), and after
//! each flood its threads and fds return exactly to their baseline and its RSS
//! stays within a margin of where the bad-handshake flood left it; the two
//! floods, alternated, take about the same time.
//!
//! One test function in its own file, on its own process: the counts are that process's.

#[path = "support/process.rs"]
mod process;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use process::Process;
use serde_json::json;
use support::{raw_connect, read_http_response, upgrade_request};
use tokens::{forge, now_secs, sign, sign_with, token_for, unsigned};

/// Handshakes per flood, and floods of each kind (alternated).
const PER_FLOOD: usize = 700;
const ROUNDS: usize = 3;
/// Clients sending at once.
const SENDERS: usize = 4;
/// How far RSS may end above where the bad-handshake floods left it.
const RSS_MARGIN_KIB: u64 = 512;

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Threads, open fds and RSS (KiB) of the server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    threads: usize,
    fds: usize,
    rss_kib: u64,
}

fn held(server: &Process) -> Held {
    let pid = server.child.id();
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .expect(dir)
            .count()
    };
    Held {
        threads: count("task"),
        fds: count("fd"),
        rss_kib: server.status_kib("VmRSS"),
    }
}

/// Waits until the server holds no more threads and fds than `baseline` (a
/// thread of its startup may still end meanwhile).
fn settle(server: &Process, baseline: Held, after: &str) -> Held {
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let now = held(server);
        if now.threads <= baseline.threads && now.fds <= baseline.fds {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "after {after}: {now:?}, not back to {baseline:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `targets` (cycled) as `PER_FLOOD` upgrade requests from `SENDERS`
/// threads, each answered with `status(i)`; returns how long it took.
fn flood(server: &Process, targets: &[String], status: impl Fn(usize) -> u16 + Sync) -> Duration {
    let started = Instant::now();
    thread::scope(|scope| {
        for sender in 0..SENDERS {
            let status = &status;
            scope.spawn(move || {
                for i in (sender..PER_FLOOD).step_by(SENDERS) {
                    let n = i % targets.len();
                    let mut stream = raw_connect(server.ws);
                    let request = upgrade_request(server.ws, &targets[n], KEY);
                    stream.write_all(request.as_bytes()).expect("send");
                    assert_eq!(
                        read_http_response(&mut stream).status,
                        status(n),
                        "{}",
                        targets[n]
                    );
                }
            });
        }
    });
    started.elapsed()
}

/// One target per way a token can be bad, and the status each gets.
fn bad_tokens() -> (Vec<String>, Vec<u16>) {
    let claims = json!({ "channels": ["orders"], "exp": now_secs() + 600 });
    let bad = [
        (String::new(), 401),
        ("?token=garbage".to_owned(), 401),
        (format!("?token={}", sign_with("wrong", &claims)), 401),
        (format!("?token={}", unsigned(&claims)), 401),
        (
            format!("?token={}", forge(&json!({ "alg": "RS256" }), &claims)),
            401,
        ),
        (
            format!("?token={}", sign(&json!({ "channels": ["orders"], "exp": 1 }))),
            401,
        ),
        (format!("?token={}", token_for(&["billing"], 600)), 403),
    ];
    bad.into_iter()
        .map(|(query, status)| (format!("/ws/orders{query}"), status))
        .unzip()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn a_flood_of_invalid_tokens_leaves_what_a_flood_of_bad_handshakes_leaves() {
    let server = process::spawn(&["--subscribe-secret", tokens::SECRET]);
    let (tokens, statuses) = bad_tokens();
    let not_found = vec!["/nope".to_owned()];
    let idle = held(&server);
    // Warm-up: the allocator's arenas and the kernel's socket caches.
    flood(&server, &not_found, |_| 404);
    flood(&server, &tokens, |n| statuses[n]);
    let baseline = settle(&server, idle, "the warm-up");

    let (mut bad_times, mut token_times) = (Vec::new(), Vec::new());
    let (mut after_bad, mut after_tokens) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        bad_times.push(flood(&server, &not_found, |_| 404));
        after_bad.push(settle(&server, baseline, &format!("bad handshakes, round {round}")).rss_kib);
        token_times.push(flood(&server, &tokens, |n| statuses[n]));
        after_tokens.push(settle(&server, baseline, &format!("bad tokens, round {round}")).rss_kib);
    }
    let (bad, token) = (median(bad_times), median(token_times));
    eprintln!(
        "{PER_FLOOD} handshakes: bad {bad:?}, invalid tokens {token:?} (medians of {ROUNDS}); \
         RSS KiB after bad {after_bad:?}, after tokens {after_tokens:?}, baseline {}",
        baseline.rss_kib
    );
    let rss_bound = after_bad.iter().max().copied().unwrap_or(baseline.rss_kib) + RSS_MARGIN_KIB;
    assert!(
        after_tokens.iter().all(|&rss| rss <= rss_bound),
        "RSS after the token floods {after_tokens:?} KiB, bound {rss_bound} KiB"
    );
    assert!(
        token < bad * 2,
        "a token flood took {token:?}, a bad-handshake flood {bad:?}"
    );
    let stats = server.stats();
    let flooded = (PER_FLOOD * (ROUNDS + 1)) as u64;
    assert_eq!(stats["tokens_rejected"], flooded);
    assert_eq!(stats["handshakes_rejected"], 2 * flooded);
    assert_eq!(stats["clients"], 0);
}
