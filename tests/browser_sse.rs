//! The dashboard over an event stream (wspush.js's EventSource transport) in
//! a real headless Chromium against a real server: `?transport=sse` forces
//! it, the page says so, receives, is kicked, and after reconnecting shows
//! every message published while it was away, in order and once; and a page
//! whose WebSocket cannot open (nginx configured without the `Upgrade`
//! headers, the classic broken proxy) falls back to an event stream by
//! itself and receives.
//!
//! Each test saves what the page showed as `target/e2e/<test name>.png`.
//! Needs Debian's `chromium` and `chromium-driver` (and `nginx` for the
//! fallback); without them the tests are skipped with one line on stderr,
//! except with `CI=true`, where they fail.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/page.rs"]
mod page;
mod support;

use browser::Browser;
use nginx::Nginx;
use page::{assert_recovered, entries, markers, sendall, the_client, wait_entry, while_away};
use serde_json::json;
use support::TestServer;

/// Waits until the dashboard says it is live over `transport`, after `reconnects` reconnections.
fn wait_live(page: &Browser, transport: &str, reconnects: u32) {
    page.wait_for(
        &format!("the page to be live over {transport} after {reconnects} reconnects"),
        &format!(
            "document.body.dataset.state === 'live'
             && document.getElementById('transport').textContent === '{transport}'
             && document.getElementById('reconnects').textContent === '{reconnects}'"
        ),
    );
}

#[test]
fn sse_page_is_kicked_and_recovers_the_20_messages_sent_while_away() {
    let Some(page) = Browser::launch("sse_page_is_kicked_and_recovers_the_20_messages_sent_while_away")
    else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/?transport=sse"));
    wait_live(&page, "sse", 0);
    the_client(&server, "sse");
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(format!("http://{}/events/all", server.ws))
    );
    assert_eq!(
        page.eval("[document.getElementById('send-button').disabled, document.getElementById('send-input').placeholder]"),
        json!([true, "Receiving over an event stream: sending needs a WebSocket"]),
        "an event stream cannot send"
    );
    let before: Vec<String> = (1..=3).map(|n| format!("before {n}")).collect();
    before.iter().for_each(|m| sendall(&server, m, 1));
    wait_entry(&page, "before 3");

    // Offline while away, so that EventSource's own reconnect (2 s after the
    // kick) cannot come back before the 20 are published: they must be replayed.
    let missed: Vec<String> = (1..=20).map(|n| format!("missed {n}")).collect();
    while_away(&page, &server, "sse", || {
        missed.iter().for_each(|m| sendall(&server, m, 0))
    });
    wait_live(&page, "sse", 1);
    the_client(&server, "sse");
    sendall(&server, "after", 1);
    wait_entry(&page, "after");
    assert_recovered(&page, &before, &missed, &["after".into()]);
    page.screenshot();
}

/// The stream ends while the page is online: EventSource reconnects by
/// itself and resumes with `Last-Event-ID`, so what was published in the
/// 2 s before it came back arrives too, and nothing twice.
#[test]
fn sse_page_resumes_by_itself_after_its_stream_ends() {
    let Some(page) = Browser::launch("sse_page_resumes_by_itself_after_its_stream_ends") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/?transport=sse"));
    wait_live(&page, "sse", 0);
    sendall(&server, "one", 1);
    wait_entry(&page, "one");
    let id = the_client(&server, "sse");
    let (status, body) = server.request("DELETE", &format!("/clients/{id}"), &[], b"");
    assert_eq!(status, 200, "{body}");
    page.wait_for("the kick", "document.body.dataset.state === 'reconnecting'");
    sendall(&server, "two", 0);
    wait_live(&page, "sse", 1);
    sendall(&server, "three", 1);
    wait_entry(&page, "three");
    assert_eq!(entries(&page), ["one", "two", "three"]);
    assert_eq!(markers(&page), ["1 missed message recovered"]);
    page.screenshot();
}

/// The dashboard's WebSocket goes through an nginx that lacks the README's
/// `Upgrade`/`Connection` lines, so wspush sees a plain GET and refuses it:
/// after two such failures the page moves to an event stream through the
/// same nginx and receives.
#[test]
fn page_behind_a_proxy_that_breaks_websockets_falls_back_to_sse() {
    let name = "page_behind_a_proxy_that_breaks_websockets_falls_back_to_sse";
    let Some(page) = Browser::launch(name) else {
        return;
    };
    let server = TestServer::start(&[]);
    let upgrade_lines = ["proxy_set_header Upgrade ", "proxy_set_header Connection "];
    let Some(proxy) = Nginx::start_without(name, server.ws, &upgrade_lines) else {
        return;
    };
    let base: String = form_urlencoded::byte_serialize(proxy.url("").as_bytes()).collect();
    page.open(&server.url(&format!("/?ws={base}")));
    wait_live(&page, "sse", 0);
    the_client(&server, "sse");
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(proxy.url("/events/all"))
    );
    sendall(&server, "through the proxy", 1);
    wait_entry(&page, "through the proxy");
    assert_eq!(entries(&page), ["through the proxy"]);
    let log = proxy.access_log();
    let refused = log.lines().filter(|l| l.contains("GET /ws/all")).count();
    assert_eq!(
        refused, 2,
        "two WebSocket attempts, then the event stream:\n{log}"
    );
    page.screenshot();
}
