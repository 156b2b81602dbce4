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
