//! Subscribe tokens (`--subscribe-secret`) through real sockets: every bad
//! token is refused with 401 and a JSON reason before the upgrade, a channel
//! the token does not cover with 403 naming it; `user.42.*` reads
//! `user.42.…` and nothing of `user.43.…`; the query or the cookie carries
//! it; clock skew within the leeway passes and beyond it does not; a token
//! made by `POST /tokens` opens its `ws_url`; an expiring token closes its
//! connection with 4001; `/clients` shows the token's `sub`.

#[path = "support/channels.rs"]
mod channels;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use channels::Sub;
use serde_json::{json, Value};
use support::{assert_error_body, assert_refusal, send_raw, upgrade_request, Refused, TestServer, WsClient};
use tokens::{checking_server, forge, mint, mint_with, now_secs, sign, sign_with, token_for, unsigned};

/// The handshake's refusal for `target` (`/ws/…?token=…`) with these headers; fails if accepted.
fn refused_with(server: &TestServer, target: &str, headers: &[(&str, &str)]) -> Refused {
    match WsClient::try_connect(&format!("ws://{}{target}", server.ws), headers) {
        Ok(_) => panic!("{target} was accepted"),
        Err(refused) => refused,
    }
}

/// Asserts `target` is refused with `status` and a JSON reason mentioning `needle`.
fn assert_refused(server: &TestServer, target: &str, status: u16, needle: &str) {
    let refused = refused_with(server, target, &[]);
    let body = String::from_utf8_lossy(&refused.body);
    assert_eq!(refused.status, status, "{target}: {body}");
    assert_error_body(&refused.body, needle);
}

fn user_of(clients: &[Value]) -> Vec<Value> {
    clients.iter().map(|c| c["user"].clone()).collect()
}

#[test]
fn every_bad_token_is_refused_with_401_and_its_reason_before_the_upgrade() {
    let server = checking_server(&[]);
    let claims = json!({ "channels": ["orders"], "exp": now_secs() + 600 });
    let expired = json!({ "channels": ["orders"], "exp": now_secs() - 3600 });
    let cases = [
        ("", "a subscribe token is required"),
        ("?token=not-a-jwt", "malformed"),
        ("?since=x-1", "a subscribe token is required"),
        (
            &format!("?token={}", sign_with("another secret", &claims)),
            "signature does not match",
        ),
        (&format!("?token={}", unsigned(&claims)), "algorithm is \"none\""),
        (
            &format!(
                "?token={}",
                forge(&json!({ "alg": "RS256", "typ": "JWT" }), &claims)
            ),
            "algorithm is \"RS256\"",
        ),
        (&format!("?token={}", sign(&expired)), "expired"),
        (
            &format!("?token={}", sign(&json!({ "channels": ["orders"] }))),
            "exp",
        ),
    ];
    for (query, needle) in &cases {
        assert_refused(&server, &format!("/ws/orders{query}"), 401, needle);
    }
    assert_refused(&server, "/echo", 401, "token is required");
    // On a raw socket: the 401 is the whole answer, no 101 before it, then the end.
    let target = format!("/ws/orders?token={}", unsigned(&claims));
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let mut raw = send_raw(server.ws, upgrade_request(server.ws, &target, key).as_bytes());
    assert_refusal(&mut raw, 401, "only HS256 is accepted");

    let refusals = cases.len() as u64 + 2;
    server.wait_counters("every refusal counted", |s| {
        s.tokens_rejected == refusals && s.handshakes_rejected == refusals
    });
    assert_eq!(server.counters().connections_accepted, 0);
}

#[test]
fn a_token_for_user_42_reads_its_channels_and_nothing_of_user_43() {
    let server = checking_server(&[]);
    let token = sign(&json!({ "sub": "alice", "channels": ["user.42.*"], "exp": now_secs() + 600 }));
    for (target, channel) in [
        ("user.42.inbox,user.43.x", "user.43.x"),
        ("user.43.x", "user.43.x"),
        ("user.42", "user.42"),
        ("user.420", "user.420"),
        ("all", "all"),
    ] {
        let target = format!("/ws/{target}?token={token}");
        assert_refused(
            &server,
            &target,
            403,
            &format!("does not cover channel {channel}"),
        );
    }
    assert_refused(&server, &format!("/echo?token={token}"), 403, "channel all");

    let (mut sub, _) = Sub::joined(&server, &format!("user.42.inbox,all?token={token}"));
    assert_eq!(channels::publish(&server, "user.43.x", "not yours").0, 0);
    assert_eq!(channels::publish(&server, "user.42.inbox", "yours").0, 1);
    let got = sub.next_message();
    assert_eq!(
        (got.channel.as_str(), got.data),
        ("user.42.inbox", json!("yours"))
    );
    assert_eq!(user_of(&server.clients()), [json!("alice")]);
    assert_eq!(server.counters().tokens_rejected, 6);
}

#[test]
fn the_cookie_carries_the_token_and_a_query_token_wins_over_it() {
    let server = checking_server(&[]);
    let good = token_for(&["orders"], 600);
    let cookie = format!("theme=dark; wspush_token={good}");
    let url = format!("ws://{}/ws/orders", server.ws);
    let mut with_cookie = match WsClient::try_connect(&url, &[("Cookie", &cookie)]) {
        Ok(ws) => Sub { ws },
        Err(refused) => panic!("a cookie token was refused: {refused:?}"),
    };
    with_cookie.expect_subscribed();
    let refused = refused_with(&server, "/ws/orders?token=bad", &[("Cookie", &cookie)]);
    assert_eq!(refused.status, 401, "the query's token is the one checked");
    assert_error_body(&refused.body, "malformed");
    assert_eq!(user_of(&server.clients()), [Value::Null], "a token without sub");
    assert_eq!(channels::publish(&server, "orders", "o").0, 1);
    assert_eq!(with_cookie.next_message().data, json!("o"));
}

#[test]
fn clock_skew_within_the_leeway_is_tolerated_and_beyond_it_refused() {
    let server = checking_server(&[]);
    let now = now_secs();
    let with = |claims: Value| format!("orders?token={}", sign(&claims));
    // The leeway is 5 s: 1 s of skew passes, 60 s does not.
    let just_expired = with(json!({ "channels": ["orders"], "exp": now - 1 }));
    let long_expired = with(json!({ "channels": ["orders"], "exp": now - 60 }));
    let soon_valid = with(json!({ "channels": ["orders"], "exp": now + 600, "nbf": now + 1 }));
    let later_valid = with(json!({ "channels": ["orders"], "exp": now + 600, "nbf": now + 60 }));
    Sub::joined(&server, &just_expired);
    Sub::joined(&server, &soon_valid);
    assert_refused(
        &server,
        &format!("/ws/{long_expired}"),
        401,
        "the token expired at",
    );
    assert_refused(&server, &format!("/ws/{later_valid}"), 401, "not valid before");
    assert_eq!(server.counters().tokens_rejected, 2);
}

#[test]
fn post_tokens_mints_a_token_whose_ws_url_subscribes() {
    let server = TestServer::start(&[
        "--subscribe-secret",
        tokens::SECRET,
        "--publish-token",
        "pub",
        "--max-token-ttl",
        "600",
    ]);
    let auth = [("Authorization", "Bearer pub")];
    let body = r#"{"channels":["orders","user.7.*"],"sub":"bob","ttl":300}"#;
    let (status, answer) = mint_with(&server, &[], body);
    assert_eq!(status, 401, "the publish token is needed: {answer}");
    for (bad, needle) in [
        (r#"{"channels":["orders"],"ttl":601}"#, "--max-token-ttl"),
        (r#"{"channels":[]}"#, "at least one channel"),
        (r#"{"channels":["a b"]}"#, "channel pattern"),
        (r#"{"chanels":["orders"]}"#, "unknown field"),
        ("not json", "not a token request"),
    ] {
        let (status, answer) = mint_with(&server, &auth, bad);
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_error_body(answer.to_string().as_bytes(), needle);
    }

    let (status, answer) = mint_with(&server, &auth, body);
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("a token");
    let expires = humantime::parse_rfc3339(answer["expires"].as_str().expect("expires")).expect("RFC 3339");
    let ttl = expires
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(ttl.as_secs() <= 300 && ttl.as_secs() >= 290, "{answer}");
    assert_eq!(
        answer["ws_url"],
        format!("ws://{}/ws/orders?token={token}", server.ws)
    );
    // `/events/` is the SSE transport's (issue 12): once it is served, this URL opens a stream.
    assert_eq!(
        answer["sse_url"],
        format!("http://{}/events/orders?token={token}", server.ws)
    );

    let mut client = WsClient::connect(answer["ws_url"].as_str().expect("ws_url"));
    let prefixed = format!("ws://{}/ws/user.7.feed?token={token}", server.ws);
    let _by_prefix = WsClient::connect(&prefixed);
    server.wait_clients(2);
    let (status, listed) = server.request("GET", "/clients", &auth, b"");
    assert_eq!(status, 200);
    let listed: Vec<Value> = serde_json::from_str(&listed).expect("a list");
    assert_eq!(user_of(&listed), [json!("bob"), json!("bob")]);
    let (status, _) = server.request("GET", "/publish/orders?msg=o", &auth, b"");
    assert_eq!(status, 200);
    let subscribed = client.next_text();
    assert!(subscribed.contains(r#""type":"subscribed""#), "{subscribed}");
    assert!(client.next_text().contains(r#""data":"o""#));
    assert_eq!(server.counters().tokens_minted, 1);
}

#[test]
fn a_token_of_prefixes_only_has_no_urls() {
    let server = checking_server(&[]);
    let answer = mint(&server, &json!({ "channels": ["user.9.*"] }));
    assert_eq!(
        (&answer["ws_url"], &answer["sse_url"]),
        (&Value::Null, &Value::Null)
    );
    let star = mint(&server, &json!({ "channels": ["*"], "ttl": 60 }));
    let url = star["ws_url"].as_str().expect("`*` covers all");
    assert_eq!(
        url,
        format!(
            "ws://{}/ws/all?token={}",
            server.ws,
            star["token"].as_str().unwrap()
        )
    );
    WsClient::connect(url).close();
}

#[test]
fn without_a_secret_post_tokens_is_404_and_anyone_subscribes() {
    let server = TestServer::start(&[]);
    let (status, answer) = mint_with(&server, &[], r#"{"channels":["orders"]}"#);
    assert_eq!(status, 404);
    assert_error_body(answer.to_string().as_bytes(), "no --subscribe-secret");
    let (_sub, _) = Sub::joined(&server, "orders");
    let _echo = server.client();
    server.wait_clients(2);
    assert_eq!(user_of(&server.clients()), [Value::Null, Value::Null]);
    assert_eq!(server.counters().tokens_rejected, 0);
}

#[test]
fn a_connection_is_closed_with_4001_when_its_token_expires() {
    // No pings: a Ping would restart the client's read timeout, and a server
    // that never closes must fail this test, not hang it.
    let server = checking_server(&["--ping-interval", "1000", "--pong-timeout", "3000"]);
    let (mut expiring, _) = Sub::joined(&server, &format!("orders?token={}", token_for(&["orders"], 2)));
    let (mut lasting, _) = Sub::joined(&server, &format!("orders?token={}", token_for(&["orders"], 600)));
    let echo_token = token_for(&["all"], 2);
    let mut echo = WsClient::connect(&format!("ws://{}/echo?token={echo_token}", server.ws));
    assert_eq!(expiring.ws.expect_close(), (4001, "token expired".to_owned()));
    assert_eq!(echo.expect_close(), (4001, "token expired".to_owned()));
    server.wait_clients(1);
    assert_eq!(server.counters().tokens_expired, 2);
    assert_eq!(channels::publish(&server, "orders", "still here").0, 1);
    assert_eq!(lasting.next_message().data, json!("still here"));
}
