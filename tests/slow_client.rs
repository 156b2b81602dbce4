//! A client that completes the handshake and never reads is dropped as a slow consumer (`slow_clients_dropped` = 1) while another client receives every message, in order.

mod support;

use std::thread;
use std::time::Instant;

use support::{read_to_end, RawWs, TestServer, DEADLINE};

#[test]
fn a_client_that_never_reads_is_dropped_and_the_other_gets_everything() {
    // A write timeout far away, so only the full queue can drop the client.
    let server = TestServer::start(&["--queue-len", "16", "--write-timeout", "30"]);

    let stream = support::small_window_connect(server.ws);
    let mut slow = RawWs::handshake(stream, server.ws);

    let mut fast = server.client();
    server.wait_clients(2);
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            let text = fast.next_text();
            if text == "end" {
                fast.close();
                return got;
            }
            got.push(text);
        }
    });

    let filler = "x".repeat(8 * 1024);
    let message = |n: usize| format!("{n:06}-{filler}");
    let mut sent = 0;
    let deadline = Instant::now() + DEADLINE;
    while server.counters().slow_clients_dropped == 0 {
        assert!(Instant::now() < deadline, "the slow client was never dropped");
        let (status, body) = server.post("/sendall", "text/plain", message(sent).as_bytes());
        assert_eq!(status, 200);
        assert!(body == r#"{"clients":2}"# || body == r#"{"clients":1}"#, "{body}");
        sent += 1;
    }
    assert!(
        sent > 16,
        "the queue of 16 filled only after the socket buffers did ({sent} sent)"
    );
    server.wait_clients(1);
    for _ in 0..5 {
        let (status, body) = server.post("/sendall", "text/plain", message(sent).as_bytes());
        assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
        sent += 1;
    }
    let (status, _) = server.get("/sendall?msg=end");
    assert_eq!(status, 200);

    let got = reader.join().expect("fast reader");
    assert_eq!(got.len(), sent, "the fast client got every message");
    for (n, text) in got.iter().enumerate() {
        assert!(*text == message(n), "message {n} out of order or damaged");
    }

    // The server ended the slow connection (a Close 1008 if it fit, then FIN, or a reset).
    let _ = read_to_end(&mut slow.stream);
    server.wait_clients(0);
    assert_eq!(server.stat("slow_clients_dropped"), 1);
    assert_eq!(server.stat("clients_reaped"), 0);

    // And new clients are welcome.
    let mut again = server.client();
    server.wait_clients(1);
    server.get("/sendall?msg=next");
    assert_eq!(again.next_text(), "next");
    again.close();
    server.wait_clients(0);
}

#[test]
fn a_stalled_backlog_is_dropped_after_the_write_timeout() {
    // A queue far too long to fill: only the write timeout can end this client.
    let server = TestServer::start(&["--queue-len", "100000", "--write-timeout", "0.5"]);
    let mut stalled = RawWs::handshake(support::small_window_connect(server.ws), server.ws);
    let mut fine = server.client();
    server.wait_clients(2);

    // Publish until the stalled client has a backlog (its writer thread is blocked).
    let big = "y".repeat(512 * 1024);
    let deadline = Instant::now() + DEADLINE;
    let mut sent = 0;
    let id = server.client_id(stalled.stream.local_addr().unwrap());
    loop {
        assert!(Instant::now() < deadline, "no backlog built up");
        let (status, _) = server.post("/sendall", "text/plain", big.as_bytes());
        assert_eq!(status, 200);
        sent += 1;
        assert_eq!(fine.next_text().len(), big.len());
        let queued = server
            .clients()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .map_or(0, |c| c["queued"].as_u64().unwrap());
        if queued > 0 {
            break;
        }
    }
    // No more publishing: the blocked write times out and the client goes.
    server.wait_clients(1);
    let _ = read_to_end(&mut stalled.stream);
    let stats = server.counters();
    assert_eq!(stats.clients_reaped, 0);
    assert_eq!(
        stats.slow_clients_dropped, 1,
        "a stalled write counts as a slow consumer"
    );
    assert!(sent >= 1);
    server.get("/sendall?msg=after");
    assert_eq!(fine.next_text(), "after");
    fine.close();
    server.wait_clients(0);
}
