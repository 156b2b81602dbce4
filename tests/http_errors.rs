//! The side port answers unknown paths 404, wrong methods 405 (with `Allow`) and oversized bodies 413, each as JSON `{"error": ...}`, and keeps working.

mod support;

use support::{assert_error, assert_error_body, TestServer};

#[test]
fn unknown_path_is_404() {
    let server = TestServer::start(&[]);
    assert_error(&server.get("/no/such/thing"), 404, "no file");
    assert_error(&server.get("/sendallx"), 404, "no file");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = TestServer::start(&[]);
    let cases = [
        ("DELETE", "/sendall", "GET, POST"),
        ("PUT", "/sendpods", "GET, POST"),
        ("POST", "/pods", "GET"),
        ("GET", "/send/1", "POST"),
        ("POST", "/clients", "GET"),
        ("POST", "/stats", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/healthz", "GET"),
        ("POST", "/config.json", "GET"),
        ("POST", "/index.html", "GET"),
    ];
    for (method, path, allow) in cases {
        let raw =
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let resp = server.raw_http(raw.as_bytes());
        assert_eq!(resp.status, 405, "{method} {path}");
        assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
        assert_error_body(&resp.body, "not allowed");
    }
}

#[test]
fn body_over_the_limit_is_413_and_nothing_is_sent() {
    let server = TestServer::start(&["--max-body-bytes", "100"]);
    let mut client = server.client();
    server.wait_clients(1);
    let at_limit = "x".repeat(100);
    let (status, _) = server.post("/sendall", "text/plain", at_limit.as_bytes());
    assert_eq!(status, 200, "a body of exactly the limit is fine");
    assert_eq!(client.next_text(), at_limit);

    let over = "y".repeat(101);
    assert_error(
        &server.post("/sendall", "text/plain", over.as_bytes()),
        413,
        "--max-body-bytes",
    );
    assert_error(
        &server.post("/send/1", "text/plain", over.as_bytes()),
        413,
        "--max-body-bytes",
    );

    // A chunked body has no Content-Length: it is cut off while read.
    let chunk = "z".repeat(60);
    let raw = format!(
        "POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n3c\r\n{chunk}\r\n3c\r\n{chunk}\r\n0\r\n\r\n"
    );
    let resp = server.raw_http(raw.as_bytes());
    assert_eq!(resp.status, 413);
    assert_error_body(&resp.body, "--max-body-bytes");

    let (status, _) = server.get("/sendall?msg=still-fine");
    assert_eq!(status, 200);
    assert_eq!(
        client.next_text(),
        "still-fine",
        "the oversized bodies sent nothing"
    );
}
