//! wspush.js with short-lived subscribe tokens, in a real headless Chromium
//! against a server run with `--subscribe-secret`: a page whose `getToken`
//! fetches a 2-second token from `POST /tokens` subscribes, its token expires
//! (close 4001), it takes a fresh one at once (no backoff) and resumes from the
//! last id, again and again; every message published meanwhile appears exactly
//! once and in order, and no status the page was shown carries a token.
//!
//! The dashboard (`/`) takes its tokens from `POST /tokens` when `/config.json`
//! says the server checks them.
//!
//! The first page is written for the test into a temp `--html-dir` beside a copy of
//! html/wspush.js, so the side port serves both and `POST /tokens` is on the
//! page's own origin. Saves what the page showed as `target/e2e/<test name>.png`.
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

/// The page: subscribes to `orders` with tokens of `ttl` seconds from `POST /tokens`.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tokens</title></head>
<body><pre id="log"></pre>
<script type="module">
import * as wspush from './wspush.js';
const params = new URLSearchParams(location.search);
window.got = [];
window.statuses = [];
window.tokens = [];
const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
window.sub = wspush.subscribe(params.get('ws'), ['orders'], {
  getToken: async () => {
    const body = JSON.stringify({ channels: ['orders'], sub: 'page', ttl: Number(params.get('ttl')) });
    const answer = await fetch('/tokens', { method: 'POST', body });
    if (!answer.ok) throw new Error('POST /tokens answered ' + answer.status);
    const { token } = await answer.json();
    window.tokens.push(token);
    return token;
  },
  onMessage: (m) => { window.got.push(m.data); log(m.id + ' ' + m.data + (m.replayed ? ' (replayed)' : '')); },
  onStatus: (s) => { window.statuses.push(s); log(s.state + ' ' + (s.code ?? '') + ' ' + (s.url ?? '')); },
});
</script></body></html>
"#;

/// Renewals the page must go through while messages are published.
const RENEWALS: usize = 2;
/// Most messages published while waiting for them (a bound, not a target).
const MAX_MESSAGES: usize = 5_000;

#[test]
fn a_page_renews_its_expiring_token_and_misses_nothing() {
    let Some(page) = Browser::launch("a_page_renews_its_expiring_token_and_misses_nothing") else {
        return;
    };
    let dir = support::temp_dir("tokens-page");
    std::fs::copy(support::html_dir().join("wspush.js"), dir.join("wspush.js")).expect("copy wspush.js");
    std::fs::write(dir.join("tokens.html"), PAGE).expect("write the page");
    let html = dir.display().to_string();
    let server = tokens::checking_server(&["--html-dir", &html]);
    page.open(&server.url(&format!("/tokens.html?ttl=2&ws=ws://{}", server.ws)));
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
    let tokens = page.eval("window.tokens");
    let tokens = tokens.as_array().expect("a list");
    assert!(tokens.len() > RENEWALS, "a token per connection: {tokens:?}");
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
    let urls: Vec<&str> = statuses.iter().filter_map(|s| s["url"].as_str()).collect();
    assert!(
        urls[1..].iter().all(|url| url.contains("?since=")),
        "every renewal resumes from the last id: {urls:?}"
    );
    let expired = statuses.iter().filter(|s| s["code"] == 4001);
    assert!(
        expired
            .clone()
            .all(|s| s["state"] == "reconnecting" && s["delay"] == 0),
        "4001 renews at once: {statuses:?}"
    );
    assert!(expired.count() >= RENEWALS);
    let counters = server.counters();
    assert!(counters.tokens_expired >= RENEWALS as u64, "{counters:?}");
    assert_eq!(counters.tokens_rejected, 0, "no connection was refused");
}

#[test]
fn the_dashboard_subscribes_with_a_token_when_the_server_checks_them() {
    let Some(page) = Browser::launch("the_dashboard_subscribes_with_a_token_when_the_server_checks_them")
    else {
        return;
    };
    let server = tokens::checking_server(&[]);
    page.open(&server.url("/"));
    page.wait_for(
        "the dashboard to be live",
        "document.body.dataset.state === 'live'",
    );
    server.wait_clients(1);
    let clients = server.clients();
    assert_eq!(clients[0]["user"], "dashboard", "{clients:?}");
    let (status, body) = server.get("/sendall?msg=with%20a%20token");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    page.wait_for(
        "the message",
        "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === 'with a token')",
    );
    page.screenshot();
    assert_eq!(server.counters().tokens_rejected, 0);
}

/// How many times the page renewed an expired token.
fn renewals(page: &Browser) -> usize {
    let n = page.eval("window.statuses.filter(s => s.code === 4001).length");
    n.as_u64().unwrap_or(0) as usize
}
