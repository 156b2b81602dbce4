//! A side-port request's body has one unambiguous end or the request is refused and its connection closed: Content-Length with Transfer-Encoding, two Content-Lengths, a Transfer-Encoding other than chunked, a Content-Length that is not a number or overflows (400), and a body over `--max-body-bytes`, declared or chunked (413, before the body is read). A request hidden in a refused body never runs, and a huge declared length on a GET cannot take the process down.

mod support;

use support::{assert_refusal, send_raw, TestServer};

/// A request that would broadcast if it were ever read as a request.
const SMUGGLED: &str = "GET /sendall?msg=SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n";

/// `POST /sendall` with `headers`, then `body` (which hides `SMUGGLED`).
fn publish_with(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n{headers}\r\n{body}")
        .into_bytes()
}

#[test]
fn ambiguous_framing_is_400_and_the_hidden_request_never_runs() {
    let server = TestServer::start(&["--max-body-bytes", "1024"]);
    let mut client = server.client();
    server.wait_clients(1);
    let chunked_then_smuggled = format!("0\r\n\r\n{SMUGGLED}");
    let cases: [(String, String, &str); 7] = [
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n".into(),
            chunked_then_smuggled.clone(),
            "both Content-Length and Transfer-Encoding",
        ),
        (
            format!("Content-Length: 0\r\nContent-Length: {}\r\n", SMUGGLED.len()),
            SMUGGLED.into(),
            "more than one Content-Length",
        ),
        (
            "Transfer-Encoding: gzip\r\n".into(),
            chunked_then_smuggled.clone(),
            "only chunked",
        ),
        (
            "Transfer-Encoding: gzip, chunked\r\n".into(),
            chunked_then_smuggled,
            "only chunked",
        ),
        (
            "Content-Length: 4x\r\n".into(),
            format!("abcd{SMUGGLED}"),
            "not a number",
        ),
        (
            "Content-Length: 99999999999999999999999\r\n".into(),
            SMUGGLED.into(),
            "not a number",
        ),
        ("Content-Length: -1\r\n".into(), SMUGGLED.into(), "not a number"),
    ];
    for (headers, body, needle) in &cases {
        let mut stream = send_raw(server.http, &publish_with(headers, body));
        assert_refusal(&mut stream, 400, needle);
    }
    assert_nothing_was_smuggled(&server, &mut client, cases.len() as u64);
}

#[test]
fn a_body_over_the_limit_is_413_before_it_is_read() {
    let server = TestServer::start(&["--max-body-bytes", "64"]);
    let mut client = server.client();
    server.wait_clients(1);
    // Declared: refused on the head alone, on every route and method.
    for (method, path) in [("POST", "/sendall"), ("GET", "/sendall"), ("GET", "/healthz")] {
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n");
        let mut stream = send_raw(server.http, head.as_bytes());
        assert_refusal(&mut stream, 413, "--max-body-bytes");
    }
    // Chunked: one chunk announced over the limit, refused before its data comes.
    let mut stream = send_raw(
        server.http,
        &publish_with("Transfer-Encoding: chunked\r\n", "100000\r\n"),
    );
    assert_refusal(&mut stream, 413, "--max-body-bytes");
    // Chunked: small chunks adding up past the limit, with a request in the data.
    let padding = "p".repeat(65 - SMUGGLED.len());
    let body = format!(
        "{:x}\r\n{padding}\r\n{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n",
        padding.len(),
        SMUGGLED.len()
    );
    let mut stream = send_raw(
        server.http,
        &publish_with("Transfer-Encoding: chunked\r\n", &body),
    );
    assert_refusal(&mut stream, 413, "--max-body-bytes");
    assert_nothing_was_smuggled(&server, &mut client, 5);
}

#[test]
fn a_huge_declared_length_on_a_get_is_413_and_the_process_lives() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    for length in ["1000000000000000", "18446744073709551615"] {
        for _ in 0..4 {
            let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
            let mut stream = send_raw(server.http, head.as_bytes());
            assert_refusal(&mut stream, 413, "over the limit");
        }
    }
    let (status, body) = server.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_nothing_was_smuggled(&server, &mut client, 8);
}

/// Nothing was broadcast by the refused requests: the client's next message
/// is the one published now, and it is the only broadcast.
fn assert_nothing_was_smuggled(server: &TestServer, client: &mut support::WsClient, refused: u64) {
    let (status, body) = server.get("/sendall?msg=after");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(client.next_text(), "after");
    let stats = server.stats();
    assert_eq!(stats["broadcasts"], 1, "only `after` was broadcast: {stats}");
    assert_eq!(stats["http_requests_rejected"], refused, "{stats}");
}
