//! Channels: a `/ws/{channels}` client gets the messages of its channels and
//! of `all`, and nothing else, each as one JSON envelope; `/echo` stays raw
//! and on `all` only; bad subscriptions and publishes are refused with the
//! reason; `/channels`, `/channels/{c}` and `/clients` show who is on what.

#[path = "support/channels.rs"]
mod channels;
mod support;

use channels::{published, Got, Sub};
use serde_json::{json, Value};
use support::{assert_error, assert_error_body, TestServer};

fn got(channel: &str, data: Value) -> (String, Value) {
    (channel.to_owned(), data)
}

fn shapes(messages: &[Got]) -> Vec<(String, Value)> {
    messages
        .iter()
        .map(|m| (m.channel.clone(), m.data.clone()))
        .collect()
}

#[test]
fn a_client_gets_its_channels_and_all_and_nothing_else() {
    let server = TestServer::start(&[]);
    let (mut orders, _) = Sub::joined(&server, "orders");
    let (mut billing, _) = Sub::joined(&server, "billing");
    let (mut both, _) = Sub::joined(&server, "orders,billing");
    let mut echo = server.client();
    server.wait_clients(4);

    assert_eq!(channels::publish(&server, "orders", "o1").0, 2);
    assert_eq!(channels::publish(&server, "billing", "b1").0, 2);
    let (status, body) = server.get("/sendall?msg=s1");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"clients":4}"#),
        "/sendall answers as before"
    );
    assert_eq!(channels::publish(&server, "nobody", "n1").0, 0);
    let (clients, last) = channels::publish(&server, "all", "s2");
    assert_eq!(clients, 4);

    let o = orders.messages(3);
    assert_eq!(
        shapes(&o),
        [
            got("orders", json!("o1")),
            got("all", json!("s1")),
            got("all", json!("s2"))
        ]
    );
    let b = billing.messages(3);
    assert_eq!(
        shapes(&b),
        [
            got("billing", json!("b1")),
            got("all", json!("s1")),
            got("all", json!("s2"))
        ]
    );
    let ob = both.messages(4);
    assert_eq!(
        shapes(&ob),
        [
            got("orders", json!("o1")),
            got("billing", json!("b1")),
            got("all", json!("s1")),
            got("all", json!("s2"))
        ]
    );
    assert_eq!(ob[3].id, last, "the publish answer names the id the clients see");
    // One sequence for the whole server: the ids of every channel interleave.
    let seqs: Vec<u64> = ob.iter().map(Got::seq).collect();
    assert_eq!(seqs, [1, 2, 3, 5], "seq 4 went to `nobody`");
    assert_eq!(o[1].id, ob[2].id, "one id per message, whoever gets it");
    assert_eq!(echo.next_text(), "s1", "/echo gets raw frames of `all` only");
    assert_eq!(echo.next_text(), "s2");
}

#[test]
fn envelopes_carry_json_text_and_binary_and_echo_stays_raw() {
    let server = TestServer::start(&[]);
    let (mut sub, _) = Sub::joined(&server, "all");
    let mut echo = server.client();
    server.wait_clients(2);

    let json_body = br#" {"build": 42, "ok": true, "x": 2.50} "#;
    let (status, body) = server.post("/publish/all", "application/json", json_body);
    assert_eq!(status, 200, "{body}");
    let id = published(&body).1;
    server.post("/sendall", "text/plain", "line \"quoted\"\n".as_bytes());
    server.post("/sendall", "application/octet-stream", &[0, 1, 254, 255]);
    server.post("/sendpods", "text/plain", b"");

    let first = sub.next_json();
    assert_eq!(
        first,
        json!({"channel": "all", "id": id, "data": {"build": 42, "ok": true, "x": 2.50}})
    );
    assert_eq!(sub.next_message().data, json!("line \"quoted\"\n"));
    assert_eq!(sub.next_message().data, json!({"base64": "AAH+/w=="}));
    let pods: Value = serde_json::from_str(&server.get("/pods").1).unwrap();
    assert_eq!(
        sub.next_message().data,
        pods,
        "the pod list is JSON, embedded as itself"
    );

    // /echo: exactly the published bytes, JSON as a text frame.
    assert_eq!(
        echo.next_text(),
        std::str::from_utf8(json_body).unwrap(),
        "JSON goes to /echo as sent"
    );
    assert_eq!(echo.next_text(), "line \"quoted\"\n");
    assert_eq!(echo.next_binary(), [0, 1, 254, 255]);
    assert_eq!(echo.next_text(), server.get("/pods").1);
}

#[test]
fn direct_messages_and_echoes_follow_the_transport() {
    let server = TestServer::start(&[]);
    let (mut sub, _) = Sub::joined(&server, "orders");
    let mut echo = server.client();
    server.wait_clients(2);
    let sub_id = server.client_id(sub.ws.local_addr());
    let echo_id = server.client_id(echo.local_addr());

    let (status, body) = server.post(&format!("/send/{sub_id}"), "application/json", b"[1,2]");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(sub.next_json(), json!({"type": "direct", "data": [1, 2]}));
    server.post(&format!("/send/{echo_id}"), "application/json", b"[1,2]");
    assert_eq!(echo.next_text(), "[1,2]");

    sub.send_text("hello \"you\"");
    assert_eq!(sub.next_json(), json!({"type": "echo", "data": "hello \"you\""}));
    sub.ws
        .ws
        .send(tungstenite::Message::binary(vec![1u8, 2, 3]))
        .unwrap();
    assert_eq!(
        sub.next_json(),
        json!({"type": "echo", "data": {"base64": "AQID"}})
    );
    echo.send_text("raw");
    assert_eq!(echo.next_text(), "raw");
}

#[test]
fn bad_subscriptions_are_refused_before_the_upgrade_with_the_reason() {
    let server = TestServer::start(&["--max-channels-per-client", "2", "--recovery-max", "50"]);
    let (mut ok, _) = Sub::joined(&server, "orders");
    let cases = [
        ("a%20b", "invalid channel name"),
        ("a,,b", "it is empty"),
        ("", "it is empty"),
        ("a/b", "invalid channel name"),
        (&"x".repeat(129), "the limit is 128"),
        ("a,b,c", "too many channels: at most 2"),
        ("a?last=abc", "last must be a whole number from 0 to 50"),
        ("a?last=51", "--recovery-max"),
        ("a?last=-1", "--recovery-max"),
    ];
    for (target, reason) in cases {
        let refused = Sub::refused(&server, target);
        assert_eq!(refused.status, 400, "/ws/{target}");
        assert_error_body(&refused.body, reason);
    }
    assert_eq!(Sub::refused(&server, "").status, 400);
    let refused = support::WsClient::try_connect(&format!("ws://{}/ws", server.ws), &[]);
    assert_eq!(refused.err().map(|r| r.status), Some(404));
    server.wait_counters("every refusal counted", |s| {
        s.handshakes_rejected == cases.len() as u64 + 2
    });
    // `all` does not count toward the limit, duplicates count once, and a
    // `since` that cannot be read is a reset, never a 400.
    let (mut fine, _) = Sub::joined(&server, "all,a,b,a");
    let mut unreadable = Sub::connect(&server, "a?since=not-an-id&last=oops");
    unreadable.expect_reset();
    unreadable.expect_subscribed();
    // Nothing else was affected.
    channels::publish(&server, "orders", "still here");
    assert_eq!(ok.next_message().data, json!("still here"));
    server.get("/sendall?msg=everyone");
    for sub in [&mut ok, &mut fine, &mut unreadable] {
        assert_eq!(sub.next_message().data, json!("everyone"));
    }
}

#[test]
fn bad_publishes_are_refused_with_json_errors() {
    let server = TestServer::start(&["--max-body-bytes", "16"]);
    let (mut sub, _) = Sub::joined(&server, "orders");
    assert_error(&server.get("/publish/a%20b?msg=x"), 400, "invalid channel name");
    assert_error(&server.get("/publish/?msg=x"), 400, "it is empty");
    assert_error(&server.get("/publish/a,b?msg=x"), 400, "invalid channel name");
    assert_error(&server.get("/publish/orders"), 400, "/publish/orders?msg=");
    assert_error(
        &server.post("/publish/orders", "text/plain", &[b'x'; 17]),
        413,
        "--max-body-bytes",
    );
    assert_error(
        &server.post("/publish/orders", "application/json", b"{nope"),
        400,
        "not valid JSON",
    );
    assert_error(
        &server.request("PUT", "/publish/orders", &[], b"x"),
        405,
        "GET, POST",
    );
    let (clients, id) = channels::publish(&server, "orders", "the first");
    assert_eq!(clients, 1);
    let m = sub.next_message();
    assert_eq!((m.data, m.id), (json!("the first"), id), "nothing before it");
}

#[test]
fn channels_list_what_has_subscribers_or_history() {
    let server = TestServer::start(&["--publish-token", "t"]);
    let auth = [("Authorization", "Bearer t")];
    let get = |path: &str| {
        let (status, body) = server.request("GET", path, &auth, b"");
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            body,
        )
    };
    let (_a, _) = Sub::joined(&server, "orders,billing");
    let (_b, _) = Sub::joined(&server, "orders");
    let mut echo = server.client();
    server.wait_clients(3);
    let publish = |channel: &str| {
        let (status, body) = server.request("POST", &format!("/publish/{channel}"), &auth, b"x");
        assert_eq!(status, 200, "{body}");
        published(&body).1
    };
    publish("orders");
    let last_orders = publish("orders");
    let last_history = publish("history-only");
    let last_all = publish("all");
    assert_eq!(echo.next_text(), "x");

    let (status, list, body) = get("/channels");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        list,
        json!([
            {"channel": "all", "subscribers": 3, "history": 1, "last_id": last_all},
            {"channel": "billing", "subscribers": 1, "history": 0, "last_id": null},
            {"channel": "history-only", "subscribers": 0, "history": 1, "last_id": last_history},
            {"channel": "orders", "subscribers": 2, "history": 2, "last_id": last_orders},
        ])
    );
    let (status, one, _) = get("/channels/orders");
    assert_eq!((status, &one), (200, &list[3]));
    let (status, _, body) = get("/channels/nothing-here");
    assert_eq!(status, 404, "{body}");
    assert_error_body(body.as_bytes(), "no subscribers and no history");
    let (status, _, body) = get("/channels/a%20b");
    assert_eq!(status, 400, "{body}");
    for path in ["/channels", "/channels/orders", "/publish/orders?msg=x"] {
        assert_error(&server.get(path), 401, "bearer token");
    }
    assert_eq!(
        server.counters().messages_published,
        4,
        "the 401 published nothing"
    );
}

#[test]
fn clients_show_their_channels_and_transport() {
    let server = TestServer::start(&[]);
    let (sub, _) = Sub::joined(&server, "orders,billing");
    let echo = server.client();
    server.wait_clients(2);
    let list = server.clients();
    let find = |addr: std::net::SocketAddr| {
        list.iter()
            .find(|c| c["peer"] == addr.to_string())
            .cloned()
            .expect("listed")
    };
    let s = find(sub.ws.local_addr());
    assert_eq!(
        (&s["transport"], &s["channels"]),
        (&json!("ws"), &json!(["all", "orders", "billing"]))
    );
    let e = find(echo.local_addr());
    assert_eq!(
        (&e["transport"], &e["channels"]),
        (&json!("echo"), &json!(["all"]))
    );
}

#[test]
fn a_channel_without_subscribers_or_history_holds_nothing() {
    let server = TestServer::start(&["--history-size", "1"]);
    let (sub, _) = Sub::joined(&server, "gone");
    assert_eq!(server.stat("channels"), 2, "all and gone");
    sub.ws.close();
    server.wait_clients(0);
    assert_eq!(server.get("/channels/gone").0, 404);
    assert_eq!(server.stat("channels"), 1, "only all is left");
    channels::publish(&server, "kept", "x");
    let stats = server.stats();
    assert_eq!(
        (stats["channels"].as_u64(), stats["history_messages"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(stats["history_bytes"].as_u64() > Some(0), "{stats}");
    let metrics = server.get("/metrics").1;
    for line in [
        "wspush_channels 2",
        "wspush_history_messages 1",
        "wspush_messages_published_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
