//! `--max-clients 2`: a third connection gets 503 with a JSON error, and once a client leaves a new one gets in.

mod support;

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
