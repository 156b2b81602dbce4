//! Subscribe tokens on event streams (`GET /events/…` with
//! `--subscribe-secret`), through real sockets: every bad token is refused
//! with 401 and a JSON reason before any 200, a channel the token does not
//! cover with 403 naming it (`user.42.*` reads nothing of `user.43.…`); the
//! query or the `wspush_token` cookie carries it (with the CORS credentials
//! header for a page of another origin); a stream shows its token's `sub` in
//! `/clients` and never the token; an expiring token ends its stream with
//! `event: expired`; a token made by `POST /tokens` opens its `sse_url`.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/sse.rs"]
mod sse;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use serde_json::{json, Value};
use sse::{Item, SseClient};
use support::{assert_error_body, HttpResponse, TestServer};
use tokens::{
    assert_refusal_of, checking_server, forge, mint, now_secs, sign, sign_with, token_for, unsigned,
};

/// The refusal of `/events/{target}` with these headers; fails if it streams.
fn refused(server: &TestServer, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
    match SseClient::try_connect(server.ws, target, headers) {
        Ok(_) => panic!("/events/{target} was streamed"),
        Err(refused) => refused,
    }
}

/// Asserts `/events/{target}` is refused with `status` and a JSON reason mentioning `needle`.
fn assert_refused(server: &TestServer, target: &str, status: u16, needle: &str) {
    let answer = refused(server, target, &[]);
    assert_refusal_of(target, (answer.status, &answer.body), status, needle);
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[test]
fn every_bad_token_is_refused_with_401_and_its_reason_before_the_stream() {
    let server = checking_server(&[]);
    let claims = json!({ "channels": ["orders"], "exp": now_secs() + 600 });
    let expired = json!({ "channels": ["orders"], "exp": now_secs() - 3600 });
    let rs256 = forge(&json!({ "alg": "RS256", "typ": "JWT" }), &claims);
    let cases = [
        (String::new(), "a subscribe token is required"),
        ("?since=x-1&last=3".to_owned(), "a subscribe token is required"),
        ("?token=not-a-jwt".to_owned(), "malformed"),
        (
            format!("?token={}", sign_with("another secret", &claims)),
            "signature does not match",
        ),
        (format!("?token={}", unsigned(&claims)), "algorithm is \"none\""),
        (format!("?token={rs256}"), "algorithm is \"RS256\""),
        (format!("?token={}", sign(&expired)), "expired"),
    ];
    for (query, needle) in &cases {
        assert_refused(&server, &format!("orders{query}"), 401, needle);
    }
    let refusals = cases.len() as u64;
    server.wait_counters("every refusal counted", |s| {
        s.tokens_rejected == refusals && s.handshakes_rejected == refusals
    });
    let stats = server.counters();
    assert_eq!((stats.connections_accepted, stats.clients), (0, 0));
}

#[test]
fn a_token_for_user_42_streams_its_channels_and_nothing_of_user_43() {
    let server = checking_server(&[]);
    let token = tokens::alice_token();
    for (target, channel) in tokens::NOT_USER_42 {
        let target = format!("{target}?token={token}");
        let needle = format!("does not cover channel {channel}");
        assert_refused(&server, &target, 403, &needle);
    }

    let mut stream = SseClient::connect(server.ws, &format!("user.42.inbox?since=x-1&token={token}"));
    stream.expect_reset();
    stream.expect_subscribed();
    assert_eq!(channels::publish(&server, "user.43.x", "not yours").0, 0);
    let id = channels::publish(&server, "user.42.inbox", "yours").1;
    let got = stream.next_message();
    assert_eq!(
        (got.channel.as_str(), got.data, got.id),
        ("user.42.inbox", json!("yours"), id)
    );
    let clients = server.clients();
    assert_eq!(clients.len(), 1);
    assert_eq!(
        (&clients[0]["user"], &clients[0]["transport"]),
        (&json!("alice"), &json!("sse"))
    );
    // /clients shows no query string, so no token.
    let listed = Value::Array(clients).to_string();
    let signature = token.rsplit('.').next().expect("three parts");
    assert!(
        !listed.contains(signature) && !listed.contains("token"),
        "{listed}"
    );
    assert_eq!(server.counters().tokens_rejected, 5);
}

#[test]
fn the_cookie_carries_the_token_and_a_query_token_wins_over_it() {
    let server = checking_server(&[]);
    let cookie = format!("theme=dark; wspush_token={}", token_for(&["orders"], 600));
    let mut stream = SseClient::connect_with(server.ws, "orders", &[("Cookie", &cookie)]);
    stream.expect_subscribed();
    // No Origin: no CORS headers at all.
    assert_eq!(stream.head.header("access-control-allow-credentials"), None);
    let answer = refused(&server, "orders?token=bad", &[("Cookie", &cookie)]);
    assert_eq!(answer.status, 401, "the query's token is the one checked");
    assert_error_body(&answer.body, "malformed");
    assert_eq!(channels::publish(&server, "orders", "o").0, 1);
    assert_eq!(stream.next_message().data, json!("o"));

    // A page of another origin (another port) sends its cookie only with
    // `withCredentials`, and may read the stream only if told it may.
    let origin = "http://127.0.0.1:1";
    let headers = [("Origin", origin), ("Cookie", cookie.as_str())];
    let cross = SseClient::connect_with(server.ws, "orders", &headers);
    assert_eq!(cross.head.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        cross.head.header("access-control-allow-credentials"),
        Some("true")
    );
    // The browser wants the header on any `withCredentials` request, with a
    // cookie to send or not; a server without a secret never sends it (tests/sse.rs).
    let query = format!("orders?token={}", token_for(&["orders"], 600));
    let by_query = SseClient::connect_with(server.ws, &query, &[("Origin", origin)]);
    assert_eq!(
        by_query.head.header("access-control-allow-credentials"),
        Some("true")
    );
}

#[test]
fn a_stream_ends_with_event_expired_when_its_token_expires() {
    // No pings: the server ends the stream by itself, or the read times out.
    let server = checking_server(&["--ping-interval", "1000", "--pong-timeout", "3000"]);
    let expiring = format!("orders?token={}", token_for(&["orders"], 2));
    let lasting = format!("orders?token={}", token_for(&["orders"], 600));
    let mut expiring = SseClient::connect(server.ws, &expiring);
    let mut lasting = SseClient::connect(server.ws, &lasting);
    let resume_at = expiring.expect_subscribed();
    lasting.expect_subscribed();

    let event = expiring.expect_control("expired");
    assert_eq!(event.data, r#"{"type":"expired"}"#);
    assert_eq!(event.id, None, "no id: the resume point stays");
    assert_eq!(expiring.last_event_id(), resume_at);
    let (rest, _) = expiring.rest();
    assert!(
        rest.iter().all(|item| !matches!(item, Item::Event(_))),
        "nothing after expired: {rest:?}"
    );
    server.wait_clients(1);
    assert_eq!(server.counters().tokens_expired, 1);
    assert_eq!(channels::publish(&server, "orders", "still here").0, 1);
    assert_eq!(lasting.next_message().data, json!("still here"));
}

#[test]
fn post_tokens_mints_a_token_whose_sse_url_streams() {
    let server = checking_server(&[]);
    let answer = mint(
        &server,
        &json!({ "channels": ["orders", "news"], "sub": "bob", "ttl": 60 }),
    );
    let url = answer["sse_url"].as_str().expect("sse_url");
    let prefix = format!("http://{}/events/", server.ws);
    let target = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on {prefix}"));
    let mut stream = SseClient::connect(server.ws, target);
    let subscribed = stream.expect_control("subscribed");
    assert_eq!(subscribed.json()["channels"], json!(["all", "orders", "news"]));
    assert_eq!(server.clients()[0]["user"], json!("bob"));
    channels::publish(&server, "news", "n");
    assert_eq!(stream.next_message().data, json!("n"));
}
