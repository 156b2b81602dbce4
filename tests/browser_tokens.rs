//! wspush.js with short-lived subscribe tokens, in a real headless Chromium
//! against a server run with `--subscribe-secret`: a page whose `getToken`
//! fetches a 2-second token from `POST /tokens` subscribes, its token expires
//! (close 4001 on a WebSocket, `event: expired` on an event stream), it takes
//! a fresh one at once (no backoff) and resumes from the last id, again and
//! again; every message published meanwhile appears exactly once and in
//! order, and no status the page was shown carries a token. Over EventSource,
//! which cannot see the 401 of a refused token, a page with a bad token backs
//! off between attempts as over a WebSocket.
//!
//! A page of the side port whose token is only in the `wspush_token` cookie
//! subscribes over SSE to the public port (another origin) with
//! `withCredentials`; without it the stream is refused.
//!
//! The dashboard (`/`) takes its tokens from `POST /tokens` when `/config.json`
//! says the server checks them, over a WebSocket and forced to SSE.
//!
//! The first page is written for the test into a temp `--html-dir` beside copies
//! of html/wspush.js and wspush-sse.js (which it imports), so the side port
//! serves them and `POST /tokens` is on the page's own origin. Saves what the page showed as `target/e2e/<test name>.png`.
//! Needs Debian's `chromium` and `chromium-driver`; without them the test is
//! skipped with one line on stderr, except with `CI=true`, where it fails.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/channels.rs"]
mod channels;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use browser::Browser;
use serde_json::Value;

/// The page: subscribes to `orders` over `transport` with tokens of `ttl`
/// seconds from `POST /tokens` (or always `token`, when given).
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tokens</title></head>
<body><pre id="log"></pre>
<script type="module">
import * as wspush from './wspush.js';
const params = new URLSearchParams(location.search);
window.got = [];
window.statuses = [];
window.tokens = [];
const mint = async () => {
  const body = JSON.stringify({ channels: ['orders'], sub: 'page', ttl: Number(params.get('ttl')) });
  const answer = await fetch('/tokens', { method: 'POST', body });
  if (!answer.ok) throw new Error('POST /tokens answered ' + answer.status);
  return (await answer.json()).token;
};
const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
window.sub = wspush.subscribe(params.get('ws'), ['orders'], {
  transport: params.get('transport'),
  getToken: async () => {
    window.tokens.push(params.get('token') ?? await mint());
    return window.tokens[window.tokens.length - 1];
  },
  onMessage: (m) => { window.got.push(m.data); log(m.id + ' ' + m.data + (m.replayed ? ' (replayed)' : '')); },
  onStatus: (s) => { window.statuses.push(s); log(s.state + ' ' + (s.code ?? '') + ' ' + (s.url ?? '')); },
});
</script></body></html>
"#;

/// A page of the side port that mints a token, puts it in the `wspush_token`
/// cookie and subscribes to `orders` over SSE on the public port (another
/// origin) with no `getToken`, `withCredentials` when `?credentials=1`.
const COOKIE_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cookie</title></head>
<body>
<script type="module">
import * as wspush from './wspush.js';
const params = new URLSearchParams(location.search);
window.got = [];
window.statuses = [];
const answer = await fetch('/tokens', { method: 'POST', body: JSON.stringify({ channels: ['orders'], ttl: 600 }) });
document.cookie = 'wspush_token=' + (await answer.json()).token + '; path=/; SameSite=Lax';
window.sub = wspush.subscribe(params.get('ws'), ['orders'], {
  transport: 'sse',
  withCredentials: params.get('credentials') === '1',
  onMessage: (m) => window.got.push(m.data),
  onStatus: (s) => window.statuses.push(s),
});
</script></body></html>
"#;

/// Renewals the page must go through while messages are published.
const RENEWALS: usize = 2;
/// Most messages published while waiting for them (a bound, not a target).
const MAX_MESSAGES: usize = 5_000;

#[test]
fn a_page_renews_its_expiring_token_and_misses_nothing() {
    renews_and_misses_nothing("a_page_renews_its_expiring_token_and_misses_nothing", "websocket");
}

#[test]
fn an_sse_page_renews_its_expiring_token_and_misses_nothing() {
    renews_and_misses_nothing("an_sse_page_renews_its_expiring_token_and_misses_nothing", "sse");
}

/// The page over `transport` with 2-second tokens: renewed again and again
/// while messages are published, every one of them shown once and in order.
fn renews_and_misses_nothing(name: &str, transport: &str) {
    let Some(page) = Browser::launch(name) else {
        return;
    };
    let server = tokens::checking_server(&["--html-dir", &page_dir()]);
    page.open(&server.url(&format!(
        "/tokens.html?ttl=2&transport={transport}&ws=ws://{}",
        server.ws
    )));
    page.wait_for(
        "the page to be live",
        "window.statuses.some(s => s.state === 'live')",
    );
    server.wait_clients(1);

    // Publish while the page renews its token: each message after the page's
    // state was read, so publishes go on across every renewal.
    let mut sent = Vec::new();
    while renewals(&page) < RENEWALS {
        assert!(
            sent.len() < MAX_MESSAGES,
            "no {RENEWALS} renewals after {} messages",
            sent.len()
        );
        let msg = format!("m{}", sent.len());
        channels::publish(&server, "orders", &msg);
        sent.push(Value::from(msg));
    }
    page.wait_for("the page to be live again", "window.sub.state === 'live'");
    channels::publish(&server, "orders", "end");
    sent.push(Value::from("end"));
    page.wait_for("the last message", "window.got.includes('end')");
    page.screenshot();

    let got = page.eval("window.got");
    assert_eq!(
        got.as_array().expect("a list"),
        &sent,
        "every message once, in order"
    );
    let statuses = page.eval("window.statuses");
    let statuses = statuses.as_array().expect("a list");
    assert!(
        statuses.iter().all(|s| s["transport"] == transport),
        "{statuses:?}"
    );
    no_token_shown(&page, statuses);
    let tokens = page.eval("window.tokens.length").as_u64().unwrap_or(0);
    assert!(tokens > RENEWALS as u64, "a token per connection: {tokens}");
    let urls: Vec<&str> = statuses.iter().filter_map(|s| s["url"].as_str()).collect();
    assert!(
        urls[1..].iter().all(|url| url.contains("?since=")),
        "every renewal resumes from the last id: {urls:?}"
    );
    let expired = statuses.iter().filter(|s| s["reason"] == "token expired");
    assert!(
        expired
            .clone()
            .all(|s| s["state"] == "reconnecting" && s["delay"] == 0),
        "an expired token is renewed at once: {statuses:?}"
    );
    if transport == "websocket" {
        assert!(expired.clone().all(|s| s["code"] == 4001), "{statuses:?}");
    }
    assert!(expired.count() >= RENEWALS);
    let counters = server.counters();
    assert!(counters.tokens_expired >= RENEWALS as u64, "{counters:?}");
    assert_eq!(counters.tokens_rejected, 0, "no connection was refused");
}

#[test]
fn an_sse_page_with_a_refused_token_backs_off_between_attempts() {
    let Some(page) = Browser::launch("an_sse_page_with_a_refused_token_backs_off_between_attempts") else {
        return;
    };
    let server = tokens::checking_server(&["--html-dir", &page_dir()]);
    let bad = tokens::token_for(&["news"], 600); // valid, but not for `orders`: 403
    page.open(&server.url(&format!(
        "/tokens.html?transport=sse&token={bad}&ws=ws://{}",
        server.ws
    )));
    page.wait_for(
        "three refused attempts",
        "window.statuses.filter(s => s.state === 'reconnecting').length >= 3",
    );
    // Read before the statuses: every refusal counted here was an attempt
    // the page reported, unless EventSource retried by itself.
    let refused = server.counters().tokens_rejected;
    let statuses = page.eval("window.statuses");
    let statuses = statuses.as_array().expect("a list");
    let attempts = statuses.iter().filter(|s| s["state"] == "connecting").count() as u64;
    assert!(
        (2..=attempts).contains(&refused),
        "{refused} refused, {attempts} attempts: {statuses:?}"
    );
    let waits: Vec<f64> = statuses
        .iter()
        .filter(|s| s["state"] == "reconnecting")
        .map(|s| s["delay"].as_f64().expect("a delay"))
        .collect();
    for (i, wait) in waits.iter().enumerate() {
        // The backoff: a ceiling of 1 s doubling, a wait in its upper half.
        let floor = 500.0 * f64::from(1u32 << i.min(5));
        assert!(*wait >= floor, "wait {i} is {wait} ms; all waits: {waits:?}");
    }
    assert!(statuses.iter().all(|s| s["transport"] == "sse"));
    no_token_shown(&page, statuses);
    page.screenshot();
}

#[test]
fn an_sse_page_of_another_origin_sends_its_cookie_token_with_credentials() {
    let Some(page) = Browser::launch("an_sse_page_of_another_origin_sends_its_cookie_token_with_credentials")
    else {
        return;
    };
    let server = tokens::checking_server(&["--html-dir", &page_dir()]);
    let url = |credentials: u8| {
        server.url(&format!(
            "/cookie.html?credentials={credentials}&ws=ws://{}",
            server.ws
        ))
    };

    // Without credentials the browser keeps the cookie to the page's origin:
    // the stream is refused (401), and the page backs off.
    page.open(&url(0));
    page.wait_for(
        "a refused attempt",
        "window.statuses.some(s => s.state === 'reconnecting')",
    );
    assert!(server.counters().tokens_rejected >= 1);

    page.open(&url(1));
    page.wait_for("the page to be live", "window.sub && window.sub.state === 'live'");
    let rejected = server.counters().tokens_rejected;
    channels::publish(&server, "orders", "hi");
    page.wait_for("the message", "window.got.includes('hi')");
    assert_eq!(
        server.counters().tokens_rejected,
        rejected,
        "the stream was let in"
    );
    let statuses = page.eval("window.statuses");
    assert!(
        statuses
            .as_array()
            .expect("a list")
            .iter()
            .all(|s| s["transport"] == "sse"),
        "{statuses}"
    );
    page.screenshot();
}

#[test]
fn the_dashboard_subscribes_with_a_token_when_the_server_checks_them() {
    let Some(page) = Browser::launch("the_dashboard_subscribes_with_a_token_when_the_server_checks_them")
    else {
        return;
    };
    let server = tokens::checking_server(&[]);
    for (n, (path, transport)) in [("/", "ws"), ("/?transport=sse", "sse")].into_iter().enumerate() {
        page.open(&server.url(path));
        page.wait_for(
            "the dashboard to be live",
            "document.body.dataset.state === 'live'",
        );
        // The page before it is gone: its connection ends by itself.
        server.wait_clients(1);
        let clients = server.clients();
        assert_eq!(
            (&clients[0]["user"], &clients[0]["transport"]),
            (&Value::from("dashboard"), &Value::from(transport)),
            "{clients:?}"
        );
        let msg = format!("with a token {n}");
        channels::publish(&server, "all", &msg);
        page.wait_for(
            "the message",
            &format!(
                "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === '{msg}')"
            ),
        );
    }
    page.screenshot();
    assert_eq!(server.counters().tokens_rejected, 0);
}

/// A temp `--html-dir` holding the page beside wspush.js and wspush-sse.js.
fn page_dir() -> String {
    let dir = support::temp_dir("tokens-page");
    for file in ["wspush.js", "wspush-sse.js"] {
        std::fs::copy(support::html_dir().join(file), dir.join(file)).expect("copy wspush.js");
    }
    std::fs::write(dir.join("tokens.html"), PAGE).expect("write the page");
    std::fs::write(dir.join("cookie.html"), COOKIE_PAGE).expect("write the page");
    dir.display().to_string()
}

/// Asserts that no status the page was shown carries one of the tokens it was given.
fn no_token_shown(page: &Browser, statuses: &[Value]) {
    let tokens = page.eval("window.tokens");
    let tokens = tokens.as_array().expect("a list");
    for status in statuses {
        let shown = status.to_string();
        assert!(
            tokens.iter().all(|t| !shown.contains(t.as_str().unwrap_or("?"))),
            "a token in a status: {shown}"
        );
        if status["state"] == "connecting" {
            assert!(shown.contains("token=redacted"), "{shown}");
        }
    }
}

/// How many times the page renewed an expired token.
fn renewals(page: &Browser) -> usize {
    let n = page.eval("window.statuses.filter(s => s.reason === 'token expired' && s.delay === 0).length");
    n.as_u64().unwrap_or(0) as usize
}
