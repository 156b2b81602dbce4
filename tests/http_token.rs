//! With `--publish-token`, every side-port route but `/healthz`, `/config.json` and the page needs `Authorization: Bearer TOKEN` (the scheme in any case; 401 JSON otherwise, nothing sent), and an empty token is refused at startup.

mod support;

use support::{assert_error, TestServer};

const TOKEN: &str = "s3cret-Token";

#[test]
fn sending_needs_the_bearer_token() {
    let server = TestServer::start(&["--publish-token", TOKEN]);
    let mut client = server.client();
    server.wait_clients(1);
    // `/clients` needs the token too.
    let auth = format!("Bearer {TOKEN}");
    let (status, clients) = server.request("GET", "/clients", &[("Authorization", &auth)], b"");
    assert_eq!(status, 200, "{clients}");
    let clients: serde_json::Value = serde_json::from_str(&clients).unwrap();
    let id = clients[0]["id"].as_str().unwrap().to_owned();
    let send_one = format!("/send/{id}");
    assert_wrong_tokens_are_refused(&server, &send_one);
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

/// Every sending route answers 401 to a missing, wrong or malformed token.
fn assert_wrong_tokens_are_refused(server: &TestServer, send_one: &str) {
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
            ("POST", send_one),
        ] {
            let mut all = headers.clone();
            all.push(("Content-Type", "text/plain"));
            let body: &[u8] = if method == "POST" { b"no" } else { b"" };
            let resp = server.request(method, path, &all, body);
            assert_error(&resp, 401, "bearer token");
        }
    }
}

#[test]
fn only_health_config_and_the_page_are_open() {
    let server = TestServer::start(&["--publish-token", TOKEN]);
    for path in ["/healthz", "/config.json", "/", "/a.html"] {
        let (status, _) = server.get(path);
        assert_eq!(status, 200, "{path}");
    }
    let auth = format!("Bearer {TOKEN}");
    for (path, with_token) in [
        ("/stats", 200),
        ("/clients", 200),
        ("/pods", 200),
        ("/metrics", 200),
        ("/cluster", 404),
    ] {
        assert_error(&server.get(path), 401, "bearer token");
        let wrong = server.request("GET", path, &[("Authorization", "Bearer wrong")], b"");
        assert_error(&wrong, 401, "bearer token");
        let (status, body) = server.request("GET", path, &[("Authorization", &auth)], b"");
        assert_eq!(status, with_token, "{path}: {body}");
    }
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    let server = TestServer::start(&["--publish-token", TOKEN]);
    let mut client = server.client();
    server.wait_clients(1);
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let auth = format!("{scheme} {TOKEN}");
        let (status, body) = server.request(
            "GET",
            &format!("/sendall?msg={scheme}"),
            &[("authorization", &auth)],
            b"",
        );
        assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#), "{scheme}");
        assert_eq!(client.next_text(), scheme);
    }
}

/// Runs the binary with `args` and `env` until it exits (killed at the
/// deadline if it serves instead); returns its exit code and stderr.
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wspush"))
        .args(["--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("WSPUSH_PUBLISH_TOKEN")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wspush");
    let deadline = std::time::Instant::now() + support::DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wspush {args:?} {env:?} did not exit: it started serving");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn an_empty_token_is_refused_at_startup() {
    for (args, env) in [
        (&["--publish-token", ""][..], &[][..]),
        (&[][..], &[("WSPUSH_PUBLISH_TOKEN", "")][..]),
    ] {
        let (code, stderr) = run_binary(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains("must not be empty"), "{stderr}");
    }
}

#[test]
fn without_a_token_configured_no_header_is_needed() {
    let server = TestServer::start(&[]);
    let (status, _) = server.get("/sendall?msg=open");
    assert_eq!(status, 200);
}
