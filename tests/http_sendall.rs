//! `/sendall` turns a query or a body into exactly one frame of the right type, and refuses bad bodies without sending anything.

mod support;

use support::{assert_error, TestServer};

/// Connects `n` clients and waits until the server has them all.
fn clients(server: &TestServer, n: usize) -> Vec<support::WsClient> {
    let list: Vec<_> = (0..n).map(|_| server.client()).collect();
    server.wait_clients(n as u64);
    list
}

/// A marker broadcast after a refused request: the next message each client
/// sees must be this one, proving the refused request sent nothing.
fn assert_nothing_sent_before_marker(server: &TestServer, clients: &mut [support::WsClient], marker: &str) {
    let (status, body) = server.get(&format!("/sendall?msg={marker}"));
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in clients {
        assert_eq!(c.next_text(), marker);
    }
}

#[test]
fn get_with_msg_sends_decoded_text() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let (status, body) = server.get("/sendall?msg=caf%C3%A9+%26+more");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in &mut cs {
        assert_eq!(c.next_text(), "café & more");
    }
}

#[test]
fn post_json_goes_out_as_the_same_text() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let json = r#"{"a": [1, 2, {"b": "ü"}]}"#;
    let (status, body) = server.post("/sendall", "application/json; charset=utf-8", json.as_bytes());
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in &mut cs {
        assert_eq!(c.next_text(), json);
    }
}

#[test]
fn post_invalid_json_is_refused_and_nothing_is_sent() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let resp = server.post("/sendall", "application/json", b"{\"a\": ");
    assert_error(&resp, 400, "not valid JSON");
    assert_nothing_sent_before_marker(&server, &mut cs, "after-bad-json");
    assert_eq!(server.counters().broadcasts, 1, "only the marker was broadcast");
}

#[test]
fn json_with_invalid_utf8_inside_a_string_is_refused_and_nothing_is_sent() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    for body in [&b"{\"msg\":\"\xff\xfe\"}"[..], b"[\"ok\", \"\xc3\"]"] {
        let resp = server.post("/sendall", "application/json", body);
        assert_error(&resp, 400, "not valid UTF-8");
    }
    assert_nothing_sent_before_marker(&server, &mut cs, "after-bad-utf8");
    assert_eq!(server.counters().broadcasts, 1, "only the marker was broadcast");
}

#[test]
fn post_octet_stream_goes_out_as_binary() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let data: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe]).collect();
    let (status, body) = server.post("/sendall", "application/octet-stream", &data);
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in &mut cs {
        assert_eq!(c.next_binary(), data);
    }
}

#[test]
fn post_text_utf8_goes_out_as_text() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let text = "plain text, 日本語, emoji 🎉";
    let (status, body) = server.post("/sendall", "text/plain; charset=utf-8", text.as_bytes());
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in &mut cs {
        assert_eq!(c.next_text(), text);
    }
}

#[test]
fn post_text_invalid_utf8_is_refused_and_nothing_is_sent() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    let resp = server.post("/sendall", "text/plain", b"ok so far \xff\xfe not utf-8");
    assert_error(&resp, 400, "UTF-8");
    assert_nothing_sent_before_marker(&server, &mut cs, "after-bad-text");
}

#[test]
fn no_msg_and_no_body_is_a_usage_error() {
    let server = TestServer::start(&[]);
    let mut cs = clients(&server, 2);
    assert_error(&server.get("/sendall"), 400, "/sendall?msg=");
    assert_error(&server.get("/sendall?other=1"), 400, "/sendall?msg=");
    assert_error(
        &server.post("/sendall", "text/plain", b""),
        400,
        "nothing to send",
    );
    assert_nothing_sent_before_marker(&server, &mut cs, "after-usage-errors");
}

#[test]
fn with_no_clients_the_count_is_zero() {
    let server = TestServer::start(&[]);
    let (status, body) = server.get("/sendall?msg=nobody");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":0}"#));
}
