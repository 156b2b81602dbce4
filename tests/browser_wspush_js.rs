//! wspush.js's pure parts (URL building, backoff, the since bookkeeping, the
//! option checks), tested in a real headless Chromium: the server serves
//! html/wspush-test.html, which imports the module as any page would, runs its
//! cases and lists the results; this test reads them and fails on any failure.
//! That the module is served with a JavaScript type is checked on the way.
//!
//! Saves what the page showed as `target/e2e/<test name>.png`. Needs Debian's
//! `chromium` and `chromium-driver`; without them the test is skipped with one
//! line on stderr, except with `CI=true`, where it fails.

#[path = "support/browser.rs"]
mod browser;
mod support;

use browser::Browser;
use serde_json::Value;
use support::TestServer;

/// Cases the page must run: a page that ran fewer lost some on the way.
const AT_LEAST: usize = 21;

#[test]
fn wspush_js_passes_its_self_test_page() {
    let Some(page) = Browser::launch("wspush_js_passes_its_self_test_page") else {
        return;
    };
    let server = TestServer::start(&[]);
    let (status, content_type, _) = server.get_typed("/wspush.js");
    assert_eq!(status, 200);
    assert!(content_type.contains("javascript"), "{content_type}");

    page.open(&server.url("/wspush-test.html"));
    page.wait_for("the cases to run", "document.body.dataset.done === 'true'");
    let results = page.eval("window.testResults");
    let results = results.as_array().expect("a list of results");
    assert!(results.len() >= AT_LEAST, "only {} cases ran", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r["ok"] != Value::Bool(true))
        .map(|r| format!("{}: {}", r["name"], r["error"]))
        .collect();
    page.screenshot();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}
