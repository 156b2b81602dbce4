//! What the browser tests read from wspush's two pages (the dashboard at `/` and
//! the raw `/echo` page at `/a.html`, which share their markup) and the server
//! calls they make around them.
#![allow(dead_code)]

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
