//! wspush behind Debian's real nginx with the README's block (see
//! tests/support/nginx.rs), both transports: an event stream through nginx
//! gets each message as it is published (nginx chunks it towards an HTTP/1.1
//! client), and resumes what it missed with `Last-Event-ID` through nginx;
//! with `--trusted-proxy 127.0.0.1`, `/clients` shows the address nginx got
//! each connection from (stream and WebSocket), while a client that connects
//! directly is shown as itself whatever `X-Forwarded-For` it sends.
//!
//! Needs Debian's `nginx`; without it these tests print one skip line and
//! pass, except with `CI=true`.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/sse.rs"]
mod sse;
mod support;

use std::io::Write;
use std::net::SocketAddr;

use nginx::Nginx;
use sse::SseClient;
use support::{connect_from, RawWs, TestServer, OP_PING, OP_TEXT};

/// An event stream opened through nginx from local address `from`.
fn stream_via(nginx: &Nginx, from: &str, target: &str, headers: &[(&str, &str)]) -> SseClient {
    let mut stream = connect_from(from, nginx.addr);
    let request = sse::request(nginx.addr, target, headers);
    stream.write_all(request.as_bytes()).expect("send the request");
    SseClient::read_head(stream).unwrap_or_else(|refused| {
        panic!(
            "refused through nginx: {} {}\n{}",
            refused.status,
            String::from_utf8_lossy(&refused.body),
            nginx.error_log()
        )
    })
}

#[test]
fn an_event_stream_through_nginx_is_delivered_and_resumes() {
    let server = TestServer::start(&[]);
    let Some(nginx) = Nginx::start(
        "an_event_stream_through_nginx_is_delivered_and_resumes",
        server.ws,
    ) else {
        return;
    };
    let mut stream = stream_via(&nginx, "127.0.0.1", "orders", &[("Accept", "text/event-stream")]);
    assert_eq!(stream.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.head.header("transfer-encoding"), Some("chunked"));
    stream.expect_subscribed();
    // Each event arrives while the stream stays open: nothing buffered.
    for msg in ["one", "two"] {
        let id = channels::publish(&server, "orders", msg).1;
        assert_eq!(stream.next_message().id, id);
    }
    let resume_at = stream.last_event_id().to_owned();
    drop(stream);
    server.wait_clients(0);

    let missed: Vec<String> = ["three", "four"]
        .iter()
        .map(|msg| channels::publish(&server, "orders", msg).1)
        .collect();
    let mut back = stream_via(&nginx, "127.0.0.1", "orders", &[("Last-Event-ID", &resume_at)]);
    let got: Vec<String> = back.messages(2).into_iter().map(|m| m.id).collect();
    assert_eq!(got, missed, "what was missed, through nginx");
    back.expect_subscribed();
    let live = channels::publish(&server, "orders", "live").1;
    assert_eq!(back.next_message().id, live);
}

/// The `peer` `/clients` shows for the client whose transport is `transport`
/// and whose `peer` contains `needle`.
fn peer_of(server: &TestServer, transport: &str, needle: &str) -> String {
    server
        .clients()
        .iter()
        .filter(|c| c["transport"] == transport)
        .filter_map(|c| c["peer"].as_str().map(str::to_owned))
        .find(|peer| peer.contains(needle))
        .unwrap_or_else(|| panic!("no {transport} client like {needle} in {:?}", server.clients()))
}

#[test]
fn a_trusted_proxy_names_the_client_of_both_transports() {
    let server = TestServer::start(&["--trusted-proxy", "127.0.0.1"]);
    let Some(nginx) = Nginx::start("a_trusted_proxy_names_the_client_of_both_transports", server.ws) else {
        return;
    };
    let mut stream = stream_via(&nginx, "127.0.0.2", "a", &[]);
    stream.expect_subscribed();
    let mut ws = RawWs::handshake(connect_from("127.0.0.3", nginx.addr), nginx.addr);
    // Not through the proxy, and lying about it.
    let spoof = [("X-Forwarded-For", "203.0.113.9")];
    let mut direct = SseClient::connect_from("127.0.0.4", server.ws, "a", &spoof);
    direct.expect_subscribed();
    server.wait_clients(3);

    let proxied = |peer: &str, client: &str| {
        let (ip, via) = peer
            .split_once(" via ")
            .unwrap_or_else(|| panic!("not forwarded: {peer}"));
        assert_eq!(ip, client);
        let via: SocketAddr = via.parse().expect("the proxy's address");
        assert_eq!(via.ip().to_string(), "127.0.0.1");
    };
    proxied(&peer_of(&server, "sse", "127.0.0.2"), "127.0.0.2");
    proxied(&peer_of(&server, "echo", "127.0.0.3"), "127.0.0.3");
    assert_eq!(
        peer_of(&server, "sse", "127.0.0.4"),
        direct.local_addr().to_string(),
        "a client's own X-Forwarded-For is ignored"
    );
    // And both proxied clients are served.
    server.get("/sendall?msg=to%20all");
    assert_eq!(stream.next_message().data, serde_json::json!("to all"));
    let text = loop {
        let frame = ws.read_frame().expect("a frame");
        if frame.opcode != OP_PING {
            break frame;
        }
    };
    assert_eq!((text.opcode, text.payload), (OP_TEXT, b"to all".to_vec()));
    assert_eq!(direct.next_message().data, serde_json::json!("to all"));
}
