//! Echoes count against a client's byte bound (`--queue-bytes`, 1 MiB by default): eight clients that send 60 KiB messages as fast as they can and never read are dropped as slow consumers, the server's RSS rises by less than 8 × 1 MiB + 8 MiB, and a client that keeps up meanwhile gets every broadcast, in order.

#[path = "support/process.rs"]
mod process;
mod support;

use std::io::Write;
use std::thread;
use std::time::Instant;

use support::{encode_frame, RawWs, WsClient, DEADLINE, OP_BINARY};

const FLOODERS: usize = 8;
const MESSAGE_BYTES: usize = 60 * 1024;
const QUEUE_BYTES: u64 = 1024 * 1024;
/// What the flood may add to the server's RSS: each flooder's queue, and 8 MiB for the rest.
const MAX_RISE_KIB: u64 = (FLOODERS as u64 * QUEUE_BYTES + 8 * 1024 * 1024) / 1024;

/// Sends 60 KiB messages until the server ends the connection (or the deadline); returns how many went.
fn flood(mut client: RawWs) -> usize {
    let frame = encode_frame(true, 0, OP_BINARY, &[0x5a; MESSAGE_BYTES], Some([1, 2, 3, 4]));
    let deadline = Instant::now() + DEADLINE;
    let mut sent = 0;
    while Instant::now() < deadline && client.stream.write_all(&frame).is_ok() {
        sent += 1;
    }
    sent
}

#[test]
fn clients_flooding_echoes_without_reading_are_dropped_and_memory_stays_bounded() {
    let server = process::spawn(&[]);
    let mut fine = WsClient::connect(&server.ws_url);
    support::wait_until("the reading client registered", || server.stats()["clients"] == 1);
    let before_kib = server.status_kib("VmRSS");
    // Without the reset the peak includes startup, which only makes the check stricter.
    server.reset_peak_rss();

    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match fine.next_text() {
                end if end == "end" => {
                    fine.close();
                    return got;
                }
                text => got.push(text),
            }
        }
    });
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let client = RawWs::handshake(support::small_window_connect(server.ws), server.ws);
            thread::spawn(move || flood(client))
        })
        .collect();

    let published = publish_until_flooders_dropped(&server);
    ureq::get(&format!("{}/sendall?msg=end", server.http_url))
        .call()
        .expect("publish the end");
    for flooder in flooders {
        assert!(flooder.join().expect("flooder") > 0);
    }
    let peak_kib = server.status_kib("VmHWM");

    assert_all_in_order(&reader.join().expect("reading client"), &published);
    let rise_kib = peak_kib.saturating_sub(before_kib);
    assert!(
        rise_kib < MAX_RISE_KIB,
        "RSS rose by {rise_kib} KiB (from {before_kib} KiB), more than {MAX_RISE_KIB} KiB"
    );
    support::wait_until("every client gone", || server.stats()["clients"] == 0);
    let stats = server.stats();
    assert_eq!(stats["slow_clients_dropped"], FLOODERS as u64, "{stats}");
    // One line per dropped client, naming the bound it passed.
    let dropped = "dropped: slow consumer (queue over 1048576 bytes)";
    support::wait_until("a log line per flooder", || {
        server.log().matches(dropped).count() >= FLOODERS
    });
    assert_eq!(
        server.log().matches(dropped).count(),
        FLOODERS,
        "{}",
        server.log()
    );
}

/// Publishes numbered 1 KB messages while the flooders flood, until every
/// flooder is dropped (and at least 20 went out); returns them.
fn publish_until_flooders_dropped(server: &process::Process) -> Vec<String> {
    let mut published = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while server.stats()["slow_clients_dropped"].as_u64().unwrap() < FLOODERS as u64 || published.len() < 20 {
        assert!(
            Instant::now() < deadline,
            "the flooders were not all dropped in time"
        );
        let message = format!("{:05}-{}", published.len(), "p".repeat(1000));
        let response = ureq::post(&format!("{}/sendall", server.http_url))
            .set("Content-Type", "text/plain")
            .send_string(&message)
            .expect("publish");
        assert_eq!(response.status(), 200);
        published.push(message);
    }
    published
}

fn assert_all_in_order(got: &[String], published: &[String]) {
    assert_eq!(
        got.len(),
        published.len(),
        "the reading client got every broadcast"
    );
    if let Some(n) = (0..got.len()).find(|&n| got[n] != published[n]) {
        panic!(
            "broadcast {n} out of order or damaged: {:?}",
            &got[n][..16.min(got[n].len())]
        );
    }
}
