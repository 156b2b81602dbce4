//! When the server cannot create a connection's thread (here: an impossible `--reader-stack-kib`), that connection is answered 503, `thread_spawn_failures` counts it, and the HTTP side port keeps serving.

mod support;

use support::{assert_error_body, TestServer, WsClient};

/// 2^40 KiB = 1 PiB of stack: more than the address space, so `spawn` fails.
const IMPOSSIBLE_STACK_KIB: &str = "1099511627776";

#[test]
fn connection_gets_503_when_no_thread_can_be_created() {
    // The premise: such a thread really cannot be created on this machine.
    let stack = IMPOSSIBLE_STACK_KIB.parse::<usize>().unwrap() * 1024;
    assert!(
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(|| {})
            .is_err(),
        "a thread with a 1 PiB stack was created; this test needs another way to make spawn fail"
    );

    let server = TestServer::start(&["--reader-stack-kib", IMPOSSIBLE_STACK_KIB]);
    for _ in 0..3 {
        let refused = WsClient::try_connect(&server.ws_url(), &[])
            .err()
            .expect("no reader thread, no client");
        assert_eq!(refused.status, 503);
        assert_error_body(&refused.body, "cannot create a thread");
    }
    let raw = support::raw_upgrade_response(server.ws);
    assert_eq!(raw.status, 503);
    assert_eq!(raw.header("retry-after"), Some("1"));
    assert_error_body(&raw.body, "cannot create a thread");

    let stats = server.stats();
    assert_eq!(stats["thread_spawn_failures"], 4);
    assert_eq!(stats["handshakes_rejected"], 4);
    assert_eq!(stats["clients"], 0);
    assert_eq!(stats["connections_accepted"], 0);

    // The side port still works.
    let (status, body) = server.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = server.get("/sendall?msg=nobody");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":0}"#));
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("wspush_thread_spawn_failures_total 4"), "{body}");
}

#[test]
fn a_client_whose_writer_thread_cannot_start_is_dropped_alone() {
    let server = TestServer::start(&["--writer-stack-kib", IMPOSSIBLE_STACK_KIB]);
    // Keeps up: every delivery is a direct write, no writer thread needed.
    let mut fine = server.client();
    // Never reads: once its socket is full it needs a writer thread, which cannot start.
    let mut stalled = support::RawWs::handshake(support::small_window_connect(server.ws), server.ws);
    server.wait_clients(2);
    // Small enough that the reading client's socket always takes one whole.
    let big = "z".repeat(32 * 1024);
    let mut sent = 0;
    while server.counters().thread_spawn_failures == 0 {
        assert!(sent < 2048, "no writer thread was ever needed");
        let (status, _) = server.post("/sendall", "text/plain", big.as_bytes());
        assert_eq!(status, 200);
        assert_eq!(fine.next_text().len(), big.len());
        sent += 1;
    }
    server.wait_clients(1);
    let _ = support::read_to_end(&mut stalled.stream);
    let (status, body) = server.get("/sendall?msg=after");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(fine.next_text(), "after");
    fine.close();
    server.wait_clients(0);
    assert_eq!(server.counters().thread_spawn_failures, 1);
}
