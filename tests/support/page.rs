//! What the browser tests read from wspush's two pages (the dashboard at `/` and
//! the raw `/echo` page at `/a.html`, which share their markup) and the server
//! calls they make around them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::TcpListener;

use serde_json::json;

use crate::browser::Browser;
use crate::support::{self, wait_until, TestServer};

/// The texts of the message list, oldest first (marker lines not included).
pub const ENTRY_TEXTS: &str =
    "[...document.querySelectorAll('#messages > .msg > .body')].map(e => e.textContent)";

/// Waits until the message list has an entry reading exactly `text`.
pub fn wait_entry(page: &Browser, text: &str) {
    page.wait_for(
        &format!("an entry {text:?}"),
        &format!("{ENTRY_TEXTS}.includes({})", json!(text)),
    );
}

/// The message list's texts, oldest first.
pub fn entries(page: &Browser) -> Vec<String> {
    serde_json::from_value(page.eval(ENTRY_TEXTS)).expect("entry texts")
}

/// The value of `data-{attribute}` of every entry, oldest first ("" where unset).
pub fn entry_data(page: &Browser, attribute: &str) -> Vec<String> {
    let list = page.eval(&format!(
        "[...document.querySelectorAll('#messages > .msg')].map(e => e.dataset.{attribute} ?? '')"
    ));
    serde_json::from_value(list).expect("entry attributes")
}

/// The texts of the marker lines (what was recovered, or that history was gone).
pub fn markers(page: &Browser) -> Vec<String> {
    let texts = page.eval("[...document.querySelectorAll('#messages > .marker')].map(e => e.textContent)");
    serde_json::from_value(texts).expect("marker texts")
}

/// The id of the server's one client, checking that its transport is `transport`.
pub fn the_client(server: &TestServer, transport: &str) -> String {
    let clients = server.clients();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0]["transport"], transport, "{clients:?}");
    clients[0]["id"].as_str().expect("a client id").to_owned()
}

/// Takes the page's connection away while `publish` runs: the browser goes
/// offline (so it cannot reconnect, nor EventSource by itself), its
/// connection (over `transport`) is kicked (`DELETE /clients/{id}`),
/// `publish` runs once the server has no client, then the browser comes back
/// online and the page reconnects by itself.
pub fn while_away(page: &Browser, server: &TestServer, transport: &str, publish: impl FnOnce()) {
    let id = the_client(server, transport);
    page.set_offline(true);
    let (status, body) = server.request("DELETE", &format!("/clients/{id}"), &[], b"");
    assert_eq!(status, 200, "{body}");
    page.wait_for(
        "the page to notice the kick",
        "document.body.dataset.state !== 'live'",
    );
    server.wait_clients(0);
    publish();
    page.set_offline(false);
}

/// Checks the list of a page that lost its connection and came back: `before`,
/// `missed` and `after`, each once and in order, with distinct ids; `missed`
/// replayed, and headed by a line saying how many were recovered.
pub fn assert_recovered(page: &Browser, before: &[String], missed: &[String], after: &[String]) {
    let expected = [before, missed, after].concat();
    assert_eq!(entries(page), expected, "every message once, in order");
    let ids = entry_data(page, "id");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        expected.len(),
        "distinct ids: {ids:?}"
    );
    let replayed: Vec<bool> = entry_data(page, "replayed").iter().map(|r| r == "true").collect();
    let want = [
        vec![false; before.len()],
        vec![true; missed.len()],
        vec![false; after.len()],
    ]
    .concat();
    assert_eq!(replayed, want, "only what was missed is replayed");
    assert_eq!(
        markers(page),
        [format!("{} missed messages recovered", missed.len())]
    );
    assert_eq!(
        page.eval("document.querySelector('#messages > .marker').nextElementSibling.querySelector('.body').textContent"),
        json!(missed[0]),
        "the marker line heads what was recovered"
    );
    assert_eq!(received(page), expected.len().to_string());
    page.eval("document.querySelector('#messages > .marker').scrollIntoView({ block: 'center' })");
}

/// The "received" counter.
pub fn received(page: &Browser) -> String {
    page.eval("document.getElementById('count').textContent")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The pod table's rows, each as [name, image, node].
pub fn pod_rows(page: &Browser) -> Vec<Vec<String>> {
    let rows = page.eval(
        "[...document.querySelectorAll('#pod-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    serde_json::from_value(rows).expect("pod rows")
}

/// `GET /sendall?msg=` with `msg` URL-encoded; asserts it reached `clients` clients.
pub fn sendall(server: &TestServer, msg: &str, clients: usize) {
    let query: String = form_urlencoded::byte_serialize(msg.as_bytes()).collect();
    let (status, body) = server.get(&format!("/sendall?msg={query}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!(r#"{{"clients":{clients}}}"#));
}

/// Stops `server` and starts another on the same two ports with `extra` flags.
pub fn restart_on_same_ports(server: &mut TestServer, extra: &[&str]) -> TestServer {
    let (ws, http) = (server.ws, server.http);
    server.shutdown();
    // tiny_http drops its listener on its own thread just after shutdown returns.
    wait_until("the old ports to be free", || {
        TcpListener::bind(ws).is_ok() && TcpListener::bind(http).is_ok()
    });
    let (ws, http) = (ws.to_string(), http.to_string());
    let mut args = vec!["--ws-addr", ws.as_str(), "--http-addr", http.as_str()];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// A page of `html/` as a file, as someone would open it by double-clicking it.
pub fn file_url(name: &str) -> String {
    format!("file://{}", support::html_dir().join(name).display())
}
