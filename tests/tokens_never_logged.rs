//! The `wspush` binary's log says why a token was refused, who a client is
//! (`sub`), that a token expired and that one was minted, and never shows a
//! token: not from an accepted or a refused handshake's URL, not from a
//! side-port request's URL, not from `POST /tokens`.

#[path = "support/process.rs"]
mod process;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use serde_json::{json, Value};
use std::time::{Duration, Instant};

use support::WsClient;
use tokens::{now_secs, sign, sign_with};

#[test]
fn the_log_gives_reasons_and_users_and_never_a_token() {
    // No pings: the wait for the 4001 close ends at the client's read timeout.
    let server = process::spawn(&["--subscribe-secret", tokens::SECRET, "--ping-interval", "1000"]);
    let claims = json!({ "sub": "alice", "channels": ["orders"], "exp": now_secs() + 2 });
    let accepted = sign(&claims);
    let forged = sign_with("not the secret", &claims);
    let mut client = WsClient::connect(&format!(
        "ws://{}/ws/orders?since=x-1&token={accepted}",
        server.ws
    ));
    let refused = WsClient::try_connect(&format!("ws://{}/ws/orders?token={forged}", server.ws), &[]);
    assert_eq!(refused.map(|_| ()).unwrap_err().status, 401);
    let side = ureq::get(&format!("{}/nope?token={accepted}", server.http_url)).call();
    assert!(matches!(side, Err(ureq::Error::Status(404, _))));
    let minted: Value = ureq::post(&format!("{}/tokens", server.http_url))
        .send_string(r#"{"channels":["orders"],"sub":"bob","ttl":60}"#)
        .expect("POST /tokens")
        .into_json()
        .expect("JSON");
    let minted = minted["token"].as_str().expect("a token").to_owned();
    // The first connection's token expires: closed with 4001, its line logged.
    loop {
        match client.next() {
            Ok(tungstenite::Message::Close(frame)) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(4001));
                // Sends the Close reply, so the server ends the connection.
                let _ = client.ws.flush();
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("expected the 4001 close, got {e}"),
        }
    }

    let expected = [
        r#"(127.0.0.1:"#,
        r#", user "alice") connected on all,orders"#,
        "rejected: answered 401: the token's signature does not match",
        "http 404 GET /nope from",
        r#"POST /tokens from "#,
        r#"a token for user "bob" on orders"#,
        r#", user "alice") disconnected: token expired (closed with 4001)"#,
    ];
    let deadline = Instant::now() + support::DEADLINE;
    let log = loop {
        let log = server.log();
        let missing: Vec<_> = expected.iter().filter(|line| !log.contains(*line)).collect();
        if missing.is_empty() {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "not logged: {missing:?}; the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for token in [&accepted, &forged, &minted] {
        let signature = token.rsplit('.').next().expect("three parts");
        assert!(!log.contains(signature), "a token's signature in the log:\n{log}");
    }
    assert!(
        !log.contains("?token") && !log.contains("token="),
        "a query string in the log:\n{log}"
    );
}
