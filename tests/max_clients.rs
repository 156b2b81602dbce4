//! `--max-clients 2`: a third connection gets 503 with a JSON error, and once a client leaves a new one gets in; a full server flooded with idle connections still answers everyone else's 503 at once.

mod support;

use std::time::{Duration, Instant};

use support::{assert_error_body, TestServer, WsClient};

#[test]
fn third_client_is_refused_with_503() {
    let server = TestServer::start(&["--max-clients", "2"]);
    let a = server.client();
    let mut b = server.client();
    server.wait_clients(2);
    for _ in 0..3 {
        let refused = WsClient::try_connect(&server.ws_url(), &[])
            .err()
            .expect("a third client is refused");
        assert_eq!(refused.status, 503);
        assert_error_body(&refused.body, "client limit");
    }
    let raw = support::raw_upgrade_response(server.ws);
    assert_eq!(raw.status, 503);
    assert_eq!(raw.header("retry-after"), Some("1"));
    assert_error_body(&raw.body, "client limit");
    assert_eq!(server.counters().handshakes_rejected, 4);
    let (status, body) = server.get("/sendall?msg=two");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    assert_eq!(b.next_text(), "two");

    a.close();
    server.wait_clients(1);
    // The slot is freed when the connection ends; the handshake may race it.
    let mut c = loop {
        match WsClient::try_connect(&server.ws_url(), &[]) {
            Ok(c) => break c,
            Err(r) => assert_eq!(r.status, 503),
        }
    };
    server.wait_clients(2);
    c.send_text("in");
    assert_eq!(c.next_text(), "in");
    c.close();
    b.close();
    server.wait_clients(0);
}

/// How long a real WebSocket client waits for its 503 from a full server.
fn refused_after(server: &TestServer) -> Duration {
    let started = Instant::now();
    let refused = WsClient::try_connect(&server.ws_url(), &[])
        .err()
        .expect("a full server refuses");
    let waited = started.elapsed();
    assert_eq!(refused.status, 503);
    assert_error_body(&refused.body, "client limit");
    waited
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn idle_connections_flooding_a_full_server_do_not_hold_up_other_refusals() {
    const TRIES: usize = 7;
    const FLOOD: usize = 1000;
    let server = TestServer::start(&["--max-clients", "1"]);
    let holder = server.client();
    server.wait_clients(1);
    let quiet = median((0..TRIES).map(|_| refused_after(&server)).collect());

    // Connections that never send a byte, all refused while they sit there.
    let flood: Vec<_> = (0..FLOOD).map(|_| support::raw_connect(server.ws)).collect();
    server.wait_counters("the flood was accepted and refused", |s| {
        s.handshakes_rejected >= (TRIES + FLOOD) as u64
    });
    let flooded = median((0..TRIES).map(|_| refused_after(&server)).collect());
    assert!(
        flooded < quiet * 50,
        "with {FLOOD} idle connections the 503 took {flooded:?} (median), without {quiet:?}"
    );
    drop(flood);
    holder.close();
}
