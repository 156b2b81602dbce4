//! With `--publish-token`, every sending endpoint needs `Authorization: Bearer TOKEN` (401 JSON otherwise, nothing sent); read-only endpoints stay open.

mod support;

use support::{assert_error, TestServer};

const TOKEN: &str = "s3cret-Token";

#[test]
fn sending_needs_the_bearer_token() {
    let server = TestServer::start(&["--publish-token", TOKEN]);
    let mut client = server.client();
    server.wait_clients(1);
    let id = server.client_id(client.local_addr());
    let send_one = format!("/send/{id}");
    let wrong = [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Bearer s3cret-Toke")],
        vec![("Authorization", "Bearer s3cret-Token-and-more")],
        vec![("Authorization", TOKEN)],
        vec![("Authorization", "Basic czNjcmV0LVRva2Vu")],
        vec![("Authorization", "Bearer ")],
    ];
    for headers in &wrong {
        for (method, path) in [
            ("GET", "/sendall?msg=no"),
            ("POST", "/sendall"),
            ("GET", "/sendpods"),
            ("POST", "/sendpods"),
            ("POST", send_one.as_str()),
        ] {
            let mut all = headers.clone();
            all.push(("Content-Type", "text/plain"));
            let body: &[u8] = if method == "POST" { b"no" } else { b"" };
            let resp = server.request(method, path, &all, body);
            assert_error(&resp, 401, "bearer token");
        }
    }
    let raw =
        "GET /sendall?msg=no HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nConnection: close\r\n\r\n";
    let resp = server.raw_http(raw.as_bytes());
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    assert_eq!(server.counters().broadcasts, 0, "nothing was sent");

    let auth = format!("Bearer {TOKEN}");
    let ok = [("Authorization", auth.as_str())];
    let (status, body) = server.request("GET", "/sendall?msg=yes", &ok, b"");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    let with_type = [("Authorization", auth.as_str()), ("Content-Type", "text/plain")];
    let (status, _) = server.request("POST", "/sendall", &with_type, b"posted");
    assert_eq!(status, 200);
    let (status, _) = server.request("POST", &send_one, &with_type, b"just you");
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", "/sendpods", &ok, b"");
    assert_eq!(status, 200);
    assert_eq!(
        client.next_text(),
        "yes",
        "the refused requests sent nothing before this"
    );
    assert_eq!(client.next_text(), "posted");
    assert_eq!(client.next_text(), "just you");
    assert!(client.next_text().starts_with(r#"[{"PodName":"pod-101""#));
}

#[test]
fn reading_needs_no_token() {
    let server = TestServer::start(&["--publish-token", TOKEN]);
    for path in [
        "/stats",
        "/clients",
        "/pods",
        "/healthz",
        "/config.json",
        "/metrics",
        "/",
    ] {
        let (status, _) = server.get(path);
        assert_eq!(status, 200, "{path}");
    }
}

#[test]
fn without_a_token_configured_no_header_is_needed() {
    let server = TestServer::start(&[]);
    let (status, _) = server.get("/sendall?msg=open");
    assert_eq!(status, 200);
}
