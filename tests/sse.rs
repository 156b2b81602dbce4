//! Event streams on the public port (`GET /events/{channels}`): the response
//! head and `retry`, each message as `id:` and the `/ws/…` envelope, `direct`
//! messages without an id, no `Accept` header needed; a stream is a client
//! like the others (in `/clients` with its transport, under `--max-clients`,
//! the same origin policy plus CORS for an allowed origin, the same 400s);
//! a kick ends it with `event: kicked`, shutdown ends every stream.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/sse.rs"]
mod sse;
mod support;

use serde_json::json;
use sse::{Item, SseClient};
use support::{assert_error_body, Ending, TestServer};

#[test]
fn a_stream_is_its_head_retry_subscribed_then_each_message_with_its_id() {
    let server = TestServer::start(&[]);
    // As curl sends it: no Accept header.
    let mut stream = SseClient::connect(server.ws, "orders");
    assert_eq!(stream.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.head.header("cache-control"), Some("no-cache"));
    assert_eq!(stream.head.header("x-accel-buffering"), Some("no"));
    assert_eq!(stream.head.header("access-control-allow-origin"), None);
    assert_eq!(stream.next_item().unwrap(), Item::Retry(2000));
    let subscribed = stream.expect_control("subscribed");
    assert_eq!(subscribed.json()["channels"], json!(["all", "orders"]));
    assert_eq!(stream.last_event_id(), subscribed.json()["id"], "a resume point");

    let (clients, id) = channels::publish(&server, "orders", "shipped");
    assert_eq!(clients, 1);
    let event = stream.next_event();
    assert_eq!(
        (event.kind.as_str(), event.id.as_deref()),
        ("message", Some(id.as_str()))
    );
    // The same envelope a /ws/ client gets, on one data: line.
    assert_eq!(
        event.data,
        format!(r#"{{"channel":"orders","id":"{id}","data":"shipped"}}"#)
    );
    let (status, _) = server.post("/sendall", "application/json", br#"{"build": 42}"#);
    assert_eq!(status, 200);
    let all = stream.next_message();
    assert_eq!(
        (all.channel.as_str(), all.data.clone()),
        ("all", json!({"build": 42}))
    );
    channels::publish(&server, "elsewhere", "not for it");

    // A direct message has no id: the resume point stays.
    let client = server.client_id(stream.local_addr());
    let (status, body) = server.post(&format!("/send/{client}"), "text/plain", b"just you");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    let direct = stream.expect_control("direct");
    assert_eq!(
        (direct.id.clone(), direct.json()["data"].clone()),
        (None, json!("just you"))
    );
    assert_eq!(stream.last_event_id(), all.id);

    // With the header a browser sends, the same stream.
    let mut browser = SseClient::connect_with(server.ws, "orders", &[("Accept", "text/event-stream")]);
    browser.expect_subscribed();
    let (_, id) = channels::publish(&server, "orders", "both");
    assert_eq!(stream.next_message().id, id);
    assert_eq!(browser.next_message().id, id);
}

#[test]
fn a_stream_is_counted_listed_and_limited_like_any_client() {
    let server = TestServer::start(&["--max-clients", "2"]);
    let mut stream = SseClient::connect(server.ws, "a,b");
    stream.expect_subscribed();
    let ws = server.client();
    server.wait_clients(2);
    let clients = server.clients();
    let listed = clients
        .iter()
        .find(|c| c["peer"] == stream.local_addr().to_string())
        .expect("the stream is in /clients");
    assert_eq!(listed["transport"], "sse");
    assert_eq!(listed["channels"], json!(["all", "a", "b"]));
    assert_eq!(listed["queued"], 0);
    // Both slots are taken: another stream and another WebSocket get 503.
    let refused = SseClient::try_connect(server.ws, "a", &[])
        .err()
        .expect("refused");
    assert_eq!(refused.status, 503);
    assert_error_body(&refused.body, "client limit");
    drop(ws);
    server.wait_clients(1);
    let mut again = SseClient::connect(server.ws, "b");
    again.expect_subscribed();
    assert_eq!(server.counters().connections_accepted, 3);
}

#[test]
fn bad_requests_are_refused_before_the_stream_with_the_reason() {
    let server = TestServer::start(&["--max-channels-per-client", "2"]);
    for (target, status, needle) in [
        ("a%20b", 400, "invalid channel name"),
        ("a,b,c", 400, "too many channels"),
        ("", 400, "channel"),
        ("a?last=x", 400, "--recovery-max"),
    ] {
        let refused = SseClient::try_connect(server.ws, target, &[])
            .err()
            .unwrap_or_else(|| panic!("/events/{target} was accepted"));
        assert_eq!(refused.status, status, "{target}");
        assert_eq!(refused.header("connection"), Some("close"));
        assert_error_body(&refused.body, needle);
    }
    let mut post = support::send_raw(
        server.ws,
        format!(
            "POST /events/a HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            server.ws
        )
        .as_bytes(),
    );
    let resp = support::read_http_response(&mut post);
    assert_eq!((resp.status, resp.header("allow")), (405, Some("GET")));
    assert_error_body(&resp.body, "use GET");
    // An upgrade to /events/ is no WebSocket endpoint.
    let upgrade = support::WsClient::try_connect(&format!("ws://{}/events/a", server.ws), &[]);
    assert_eq!(upgrade.err().map(|r| r.status), Some(404));
    server.wait_counters("six refusals counted", |s| s.handshakes_rejected == 6);
    assert_eq!(server.counters().clients, 0);
}

#[test]
fn an_allowed_origin_gets_cors_headers_and_a_refused_one_403() {
    let server = TestServer::start(&["--allowed-origin", "https://app.example"]);
    let origin = [("Origin", "https://app.example")];
    let mut page = SseClient::connect_with(server.ws, "a", &origin);
    assert_eq!(
        page.head.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(page.head.header("vary"), Some("Origin"));
    assert_eq!(page.head.header("access-control-allow-credentials"), None);
    page.expect_subscribed();
    let refused = SseClient::try_connect(server.ws, "a", &[("Origin", "https://evil.example")])
        .err()
        .expect("refused");
    assert_eq!(refused.status, 403);
    assert_error_body(&refused.body, "https://evil.example is not allowed");
    // No Origin: not a browser's cross-origin request, no CORS headers.
    let curl = SseClient::connect(server.ws, "a");
    assert_eq!(curl.head.header("access-control-allow-origin"), None);

    // The default policy: a page of the same host on another port is another
    // origin, so it needs the headers too.
    let same_host = TestServer::start(&[]);
    let other_port = [("Origin", "http://127.0.0.1:1")];
    let stream = SseClient::connect_with(same_host.ws, "a", &other_port);
    assert_eq!(
        stream.head.header("access-control-allow-origin"),
        Some("http://127.0.0.1:1")
    );
    let refused = SseClient::try_connect(same_host.ws, "a", &[("Origin", "http://elsewhere")]);
    assert_eq!(refused.err().map(|r| r.status), Some(403));
}

#[test]
fn a_kicked_stream_gets_event_kicked_then_ends_and_resumes_what_it_missed() {
    let server = TestServer::start(&[]);
    let mut stream = SseClient::connect(server.ws, "orders");
    stream.expect_subscribed();
    channels::publish(&server, "orders", "before");
    let seen = stream.next_message();
    let id = server.client_id(stream.local_addr());
    let (status, body) = server.request("DELETE", &format!("/clients/{id}"), &[], b"");
    assert_eq!((status, body), (200, format!(r#"{{"kicked":"{id}"}}"#)));
    let kicked = stream.expect_control("kicked");
    assert_eq!(kicked.id, None, "the resume point stays");
    let (rest, ending) = stream.rest();
    assert_eq!((rest, ending), (vec![], Ending::Eof));
    server.wait_clients(0);
    assert_eq!(server.counters().clients_kicked, 1);

    let missed = channels::publish(&server, "orders", "while away").1;
    let mut back = SseClient::connect_with(server.ws, "orders", &[("Last-Event-ID", stream.last_event_id())]);
    assert_eq!(stream.last_event_id(), seen.id);
    assert_eq!(back.next_message().id, missed);
    back.expect_subscribed();
}

#[test]
fn shutdown_ends_every_stream() {
    let mut server = TestServer::start(&[]);
    let mut streams: Vec<SseClient> = (0..3).map(|_| SseClient::connect(server.ws, "a")).collect();
    for stream in &mut streams {
        stream.expect_subscribed();
    }
    let mut ws = server.client();
    server.wait_clients(4);
    // Answers its Close at once, so shutdown need not wait for it.
    let ws_closed = std::thread::spawn(move || ws.expect_close());
    server.shutdown();
    for stream in &mut streams {
        let (rest, ending) = stream.rest();
        assert_eq!(ending, Ending::Eof);
        assert_eq!(
            rest.last(),
            Some(&Item::Comment("server shutting down".into())),
            "{rest:?}"
        );
    }
    let closed = ws_closed.join().expect("the WebSocket client");
    assert_eq!(closed, (1001, "going away".to_owned()));
}
