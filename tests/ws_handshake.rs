//! The WebSocket handshake: `/echo` only (404 elsewhere), the Origin policy (403, same host, listed, `*`), and 400/426 for a missing or invalid key or a wrong version, each with a JSON error, and 400 for data sent before the response (the head wspush read first reaches tungstenite whole); no client is left registered.

mod support;

use std::io::Write;

use support::{
    assert_error_body, encode_frame, raw_connect, read_http_response, upgrade_request, TestServer, WsClient,
    OP_TEXT, SAMPLE_KEY,
};

#[test]
fn other_paths_are_404() {
    let server = TestServer::start(&[]);
    for path in ["/", "/echo/", "/echox", "/ws", "/sendall"] {
        let refused = WsClient::try_connect(&format!("ws://{}{path}", server.ws), &[])
            .err()
            .unwrap_or_else(|| panic!("{path} was accepted"));
        assert_eq!(refused.status, 404, "{path}");
        assert_error_body(&refused.body, "connect to /echo");
    }
    // A query string on /echo is fine.
    let client = WsClient::connect(&format!("ws://{}/echo?room=1", server.ws));
    server.wait_clients(1);
    client.close();
    server.wait_clients(0);
    server.wait_counters("5 rejected handshakes", |s| s.handshakes_rejected == 5);
}

#[test]
fn default_origin_policy_is_same_host_any_port() {
    let server = TestServer::start(&[]);
    let url = server.ws_url();
    for origin in [
        "http://evil.example",
        "http://127.0.0.2:8081",
        "null",
        "https://localhost",
    ] {
        let refused = WsClient::try_connect(&url, &[("Origin", origin)])
            .err()
            .unwrap_or_else(|| panic!("origin {origin} was accepted"));
        assert_eq!(refused.status, 403, "{origin}");
        assert_error_body(&refused.body, "is not allowed");
    }
    // The page served by the side port: same host, another port.
    let same_host = format!("http://127.0.0.1:{}", server.http.port());
    let mut page = WsClient::try_connect(&url, &[("Origin", &same_host)]).expect("same-host origin allowed");
    // No Origin at all: not a browser, allowed.
    let tool = WsClient::try_connect(&url, &[]).expect("no origin allowed");
    server.wait_clients(2);
    page.send_text("works");
    assert_eq!(page.next_text(), "works");
    page.close();
    tool.close();
    server.wait_clients(0);
    server.wait_counters("4 rejected handshakes", |s| s.handshakes_rejected == 4);
}

#[test]
fn listed_origins_only() {
    let server = TestServer::start(&[
        "--allowed-origin",
        "https://app.example.com",
        "--allowed-origin",
        "http://localhost:3000",
    ]);
    let url = server.ws_url();
    for origin in [
        "https://app.example.com",
        "HTTPS://APP.EXAMPLE.COM",
        "http://localhost:3000",
    ] {
        let c = WsClient::try_connect(&url, &[("Origin", origin)])
            .unwrap_or_else(|r| panic!("{origin} refused: {r:?}"));
        c.close();
    }
    let same_host = format!("http://127.0.0.1:{}", server.http.port());
    for origin in [
        "https://evil.example",
        "http://localhost:3001",
        same_host.as_str(),
    ] {
        let refused = WsClient::try_connect(&url, &[("Origin", origin)]).err().unwrap();
        assert_eq!(refused.status, 403, "{origin}");
        assert_error_body(&refused.body, "is not allowed");
    }
    server.wait_clients(0);
}

#[test]
fn star_allows_any_origin() {
    let server = TestServer::start(&["--allowed-origin", "*"]);
    let mut c = WsClient::try_connect(&server.ws_url(), &[("Origin", "http://evil.example")])
        .expect("any origin with *");
    server.wait_clients(1);
    server.get("/sendall?msg=hi");
    assert_eq!(c.next_text(), "hi");
    c.close();
    server.wait_clients(0);
}

/// Sends a hand-written upgrade request and reads the answer.
fn raw_upgrade(server: &TestServer, headers: &str) -> support::HttpResponse {
    let mut stream = raw_connect(server.ws);
    stream
        .write_all(upgrade_request(server.ws, "/echo", headers).as_bytes())
        .unwrap();
    read_http_response(&mut stream)
}

#[test]
fn bad_key_or_version_is_refused() {
    let server = TestServer::start(&[]);
    let good_key = format!("Sec-WebSocket-Key: {}\r\n", support::SAMPLE_KEY);

    let resp = raw_upgrade(&server, "Sec-WebSocket-Version: 13\r\n");
    assert_eq!(resp.status, 400, "missing key");
    assert_error_body(&resp.body, "Sec-WebSocket-Key");

    for key in [
        "abc",
        "not base64 at all!!!!!!!",
        "AAAAAAAAAAAAAAAAAAAAAA=="[..22].as_ref(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let resp = raw_upgrade(
            &server,
            &format!("Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"),
        );
        assert_eq!(resp.status, 400, "invalid key {key:?}");
        assert_error_body(&resp.body, "Sec-WebSocket-Key");
    }

    for version in [
        "",
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 14\r\n",
    ] {
        let resp = raw_upgrade(&server, &format!("{good_key}{version}"));
        assert_eq!(resp.status, 426, "version header {version:?}");
        assert_eq!(resp.header("sec-websocket-version"), Some("13"));
        assert_error_body(&resp.body, "Sec-WebSocket-Version: 13");
    }

    // Not an upgrade at all.
    let mut stream = raw_connect(server.ws);
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let resp = read_http_response(&mut stream);
    assert_eq!(resp.status, 400);
    assert_error_body(&resp.body, "not a valid WebSocket upgrade");

    // The server still accepts a proper client, and nothing stayed registered.
    let mut c = server.client();
    server.wait_clients(1);
    c.send_text("still here");
    assert_eq!(c.next_text(), "still here");
    c.close();
    server.wait_clients(0);
    server.wait_counters("9 rejected handshakes", |s| s.handshakes_rejected == 9);
}

#[test]
fn data_sent_before_the_handshake_response_is_refused_as_before() {
    let server = TestServer::start(&[]);
    // wspush reads the request head before tungstenite sees the connection;
    // what came behind it in the same write must reach tungstenite too,
    // which refuses it (RFC 6455: a client waits for the response first).
    let mut bytes = upgrade_request(
        server.ws,
        "/echo",
        &format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n"),
    )
    .into_bytes();
    bytes.extend(encode_frame(true, 0, OP_TEXT, b"too early", Some([9, 8, 7, 6])));
    let resp = read_http_response(&mut support::send_raw(server.ws, &bytes));
    assert_eq!(resp.status, 400);
    assert_error_body(&resp.body, "junk after");
    assert_eq!(server.counters().clients, 0);
}
