//! The raw `/echo` page (`/a.html`, the tutorial's page) in a real headless
//! Chromium against a real server: it finds `/echo` through `/config.json`,
//! shows raw frames (no envelope: text, JSON, binary by size), sends through the
//! echo, hides the tutorial's text pings, backs off from 1 s to 30 s, and falls
//! back to localhost:8080 when opened as a file.
//!
//! Each test saves what the page showed as `target/e2e/<test name>.png`.
//! Needs Debian's `chromium` and `chromium-driver`; without them the tests are
//! skipped with one line on stderr, except with `CI=true`, where they fail.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/page.rs"]
mod page;
mod support;

use browser::Browser;
use page::{entries, entry_data, file_url, received, sendall, wait_entry};
use serde_json::json;
use support::TestServer;

/// Waits until the raw page says it is connected.
fn wait_connected(page: &Browser) {
    page.wait_for(
        "the page to be connected",
        "document.body.dataset.state === 'connected' && document.getElementById('state').textContent === 'connected'",
    );
}

#[test]
fn raw_page_finds_the_echo_socket_through_config_json() {
    let Some(page) = Browser::launch("raw_page_finds_the_echo_socket_through_config_json") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/a.html"));
    wait_connected(&page);
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(server.ws_url())
    );
    server.wait_clients(1);
    assert_eq!(server.clients()[0]["transport"], "echo", "on /echo, not /ws/");
    assert_eq!(received(&page), "0");
    page.screenshot();
}

#[test]
fn raw_page_shows_raw_frames_and_its_echo() {
    let Some(page) = Browser::launch("raw_page_shows_raw_frames_and_its_echo") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/a.html"));
    wait_connected(&page);
    server.wait_clients(1);
    sendall(&server, "plain text", 1);
    let (status, _) = server.post("/sendall", "application/json", br#"{"ok":true}"#);
    assert_eq!(status, 200);
    let (status, _) = server.post("/sendall", "application/octet-stream", &[9; 7]);
    assert_eq!(status, 200);
    page.wait_for(
        "the send button",
        "!document.getElementById('send-button').disabled",
    );
    page.type_into("#send-input", "typed here\u{E007}");
    wait_entry(&page, "typed here");
    assert_eq!(
        entries(&page),
        [
            "plain text",
            "{\n  \"ok\": true\n}",
            "binary message, 7 bytes",
            "typed here"
        ],
        "the payloads themselves, with no envelope around them"
    );
    assert_eq!(entry_data(&page, "kind"), ["text", "json", "binary", "text"]);
    page.screenshot();
}

#[test]
fn text_pings_are_not_shown() {
    let Some(page) = Browser::launch("text_pings_are_not_shown") else {
        return;
    };
    let server = TestServer::start(&["--ping-style", "text", "--ping-interval", "0.2"]);
    page.open(&server.url("/a.html"));
    wait_connected(&page);
    page.wait_for("three text pings", "Number(document.body.dataset.pings) >= 3");
    sendall(&server, "after the pings", 1);
    wait_entry(&page, "after the pings");
    assert_eq!(entries(&page), ["after the pings"], "no ping in the list");
    assert_eq!(received(&page), "1", "pings are not counted as messages");
    page.screenshot();
}

#[test]
fn raw_page_opened_as_a_file_uses_localhost_8080() {
    let Some(page) = Browser::launch("raw_page_opened_as_a_file_uses_localhost_8080") else {
        return;
    };
    page.open(&file_url("a.html"));
    page.wait_for(
        "the fallback address",
        "document.getElementById('ws-url').textContent === 'ws://localhost:8080/echo'",
    );
    page.screenshot();
}

#[test]
fn retry_delay_doubles_from_1s_to_30s_with_jitter() {
    let Some(page) = Browser::launch("retry_delay_doubles_from_1s_to_30s_with_jitter") else {
        return;
    };
    page.open(&file_url("a.html"));
    page.wait_for(
        "the page script",
        "typeof window.wspush?.retryDelay === 'function'",
    );
    // For each attempt, the smallest and largest of many delays.
    let ranges = page.eval(
        "Array.from({ length: 10 }, (_, attempt) => {
           const d = Array.from({ length: 300 }, () => window.wspush.retryDelay(attempt));
           return [Math.min(...d), Math.max(...d)];
         })",
    );
    for (attempt, range) in ranges.as_array().expect("ranges").iter().enumerate() {
        let ceiling = (1000.0 * 2f64.powi(attempt as i32)).min(30_000.0);
        let (low, high) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
        assert!(
            ceiling / 2.0 <= low && high <= ceiling,
            "attempt {attempt}: {low}..{high} ms, expected within {}..{ceiling}",
            ceiling / 2.0
        );
        assert!(
            high - low > ceiling / 10.0,
            "attempt {attempt}: no jitter in {low}..{high}"
        );
    }
    page.screenshot();
}
