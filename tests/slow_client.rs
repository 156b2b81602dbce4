//! Slow clients: one that never reads is dropped as a slow consumer (`slow_clients_dropped` = 1) while another receives every message in order; one whose write stalls past `--write-timeout` is dropped too; and one that falls behind (a backlog queued, its writer thread running) and then reads again receives every byte of every frame, in order.

mod support;

use std::thread;
use std::time::Instant;

use support::{read_to_end, RawWs, TestServer, DEADLINE, OP_BINARY, OP_PING, OP_TEXT};

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
    let mut sent = publish_until_one_is_dropped(&server, &message);
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

/// Publishes `message(0)`, `message(1)`, ... until a client is dropped as
/// slow; returns how many went out.
fn publish_until_one_is_dropped(server: &TestServer, message: &impl Fn(usize) -> String) -> usize {
    let mut sent = 0;
    let deadline = Instant::now() + DEADLINE;
    while server.counters().slow_clients_dropped == 0 {
        assert!(Instant::now() < deadline, "the slow client was never dropped");
        let (status, body) = server.post("/sendall", "text/plain", message(sent).as_bytes());
        assert_eq!(status, 200);
        assert!(body == r#"{"clients":2}"# || body == r#"{"clients":1}"#, "{body}");
        sent += 1;
    }
    sent
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

/// Message `n` of the catch-up test: an odd size, and bytes that differ by message and position.
fn catch_up_message(n: usize) -> (u8, Vec<u8>) {
    let len = 20_000 + (n * 7919) % 90_000;
    let mut bytes = format!("{n:06}:").into_bytes();
    if n % 2 == 0 {
        bytes.extend((0..len).map(|i| b'a' + ((i * 7 + n) % 26) as u8));
        (OP_TEXT, bytes)
    } else {
        bytes.extend((0..len).map(|i| (i * 131 + n * 17) as u8));
        (OP_BINARY, bytes)
    }
}

/// Whether this process has a thread called `name` (the server runs in it).
fn thread_named(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(Result::ok)
        .any(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name)
        })
}

#[test]
fn a_client_that_falls_behind_then_reads_again_gets_every_byte_in_order() {
    // Bounds far away: this client is behind, not dropped.
    let server = TestServer::start(&[
        "--queue-len",
        "100000",
        "--queue-bytes",
        "268435456",
        "--write-timeout",
        "30",
    ]);
    let mut behind = RawWs::handshake(support::small_window_connect(server.ws), server.ws);
    server.wait_clients(1);
    let id = server.client_id(behind.stream.local_addr().unwrap());
    let queued = || {
        server
            .clients()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .map_or(0, |c| c["queued"].as_u64().unwrap())
    };
    let publish = |(opcode, bytes): &(u8, Vec<u8>)| {
        let content_type = if *opcode == OP_TEXT {
            "text/plain"
        } else {
            "application/octet-stream"
        };
        let (status, body) = server.post("/sendall", content_type, bytes);
        assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    };

    // Publish until frames wait in its queue and its writer thread runs
    // (blocked in the middle of a frame the socket took only part of).
    let mut sent = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while !(queued() > 0 && thread_named(&format!("writer-{id}"))) {
        assert!(Instant::now() < deadline, "no backlog built up");
        sent.push(catch_up_message(sent.len()));
        publish(sent.last().unwrap());
    }
    for _ in 0..5 {
        sent.push(catch_up_message(sent.len()));
        publish(sent.last().unwrap());
    }

    // Reading again, it gets every frame whole, in order.
    for (n, (opcode, bytes)) in sent.iter().enumerate() {
        let frame = loop {
            let frame = behind.read_frame().expect("read a frame");
            if frame.opcode != OP_PING {
                break frame;
            }
        };
        assert!(frame.fin, "message {n} in one frame");
        assert_eq!(frame.opcode, *opcode, "message {n}: opcode");
        assert!(frame.payload == *bytes, "message {n} damaged or out of order");
    }
    server.wait_counters("the backlog written", |_| queued() == 0);
    let stats = server.counters();
    assert_eq!((stats.slow_clients_dropped, stats.clients), (0, 1));
}
