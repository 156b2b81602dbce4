//! The page in `html/` in a real headless Chromium against a real server: it
//! finds the socket, connects, shows broadcasts as text (never as HTML), hides
//! the tutorial's text pings, renders and replaces the pod table, pretty-prints
//! JSON, sizes binary frames, sends through the echo, keeps the latest 500
//! messages, fits a phone screen, and reconnects by itself after a restart.
//!
//! Each test saves what the page showed as `target/e2e/<test name>.png`.
//! Needs Debian's `chromium` and `chromium-driver`; without them the tests are
//! skipped with one line on stderr, except with `CI=true`, where they fail.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::net::TcpListener;

use browser::Browser;
use serde_json::{json, Value};
use support::{wait_until, TestServer};

// ---------------------------------------------------------------------------
// What the page shows
// ---------------------------------------------------------------------------

/// The texts of the message list, oldest first.
const ENTRY_TEXTS: &str =
    "[...document.querySelectorAll('#messages > .msg > .body')].map(e => e.textContent)";

/// Waits until the page says it is connected.
fn wait_connected(page: &Browser) {
    page.wait_for(
        "the page to be connected",
        "document.body.dataset.state === 'connected' && document.getElementById('state').textContent === 'connected'",
    );
}

/// Waits until the message list has an entry reading exactly `text`.
fn wait_entry(page: &Browser, text: &str) {
    page.wait_for(
        &format!("an entry {text:?}"),
        &format!("{ENTRY_TEXTS}.includes({})", json!(text)),
    );
}

fn entries(page: &Browser) -> Vec<String> {
    serde_json::from_value(page.eval(ENTRY_TEXTS)).expect("entry texts")
}

/// The "received" counter.
fn received(page: &Browser) -> String {
    page.eval("document.getElementById('count').textContent")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The pod table's rows, each as [name, image, node].
fn pod_rows(page: &Browser) -> Vec<Vec<String>> {
    let rows = page.eval(
        "[...document.querySelectorAll('#pod-table tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    serde_json::from_value(rows).expect("pod rows")
}

/// `GET /sendall?msg=` with `msg` URL-encoded; asserts it reached `clients` clients.
fn sendall(server: &TestServer, msg: &str, clients: usize) {
    let query: String = form_urlencoded::byte_serialize(msg.as_bytes()).collect();
    let (status, body) = server.get(&format!("/sendall?msg={query}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!(r#"{{"clients":{clients}}}"#));
}

/// Stops `server` and starts another on the same two ports with `extra` flags.
fn restart_on_same_ports(server: &mut TestServer, extra: &[&str]) -> TestServer {
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

/// The page as a file, as someone would open it by double-clicking it.
fn file_url() -> String {
    format!("file://{}", support::html_dir().join("index.html").display())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn page_finds_the_socket_through_config_json_and_connects() {
    let Some(page) = Browser::launch("page_finds_the_socket_through_config_json_and_connects") else {
        return;
    };
    let server = TestServer::start(&[]);
    // The tutorial's file name is the same page.
    page.open(&server.url("/a.html"));
    wait_connected(&page);
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(server.ws_url())
    );
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    assert_eq!(received(&page), "0");
    assert_eq!(entries(&page), Vec::<String>::new());
    page.screenshot();
}

#[test]
fn sendall_message_appears_with_its_receive_time() {
    let Some(page) = Browser::launch("sendall_message_appears_with_its_receive_time") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    sendall(&server, "deploy finished", 1);
    sendall(&server, "second message", 1);
    wait_entry(&page, "second message");
    assert_eq!(
        entries(&page),
        ["deploy finished", "second message"],
        "newest at the bottom"
    );
    assert_eq!(received(&page), "2");
    let time = page.eval(
        "(() => { const t = document.querySelector('#messages > .msg:last-child > time');
                  return { iso: t.dateTime, shown: t.textContent }; })()",
    );
    assert!(
        time["iso"]
            .as_str()
            .is_some_and(|s| s.len() >= 20 && s.ends_with('Z')),
        "{time}"
    );
    assert!(time["shown"].as_str().is_some_and(|s| s.contains(':')), "{time}");
    page.screenshot();
}

#[test]
fn sendpods_renders_a_table_that_a_new_pod_list_replaces() {
    let Some(page) = Browser::launch("sendpods_renders_a_table_that_a_new_pod_list_replaces") else {
        return;
    };
    let mut first = TestServer::start(&[]);
    page.open(&first.url("/"));
    wait_connected(&page);
    first.wait_clients(1);
    let (status, body) = first.get("/sendpods");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    page.wait_for(
        "3 pod rows",
        "document.querySelectorAll('#pod-table tbody tr').length === 3",
    );
    assert_eq!(
        pod_rows(&page),
        [
            ["pod-101", "nginx:1.18", "node1"],
            ["pod-76xs", "alpine:3.12", "node2"],
            ["pod-F#ff3", "tomcat:8", "node3"],
        ]
    );

    // One server has one pod list: bring it back on the same ports with another.
    let pods = write_other_pod_list();
    let second = restart_on_same_ports(&mut first, &["--pods", pods.to_str().unwrap()]);
    page.wait_for(
        "the page to reconnect",
        "document.body.dataset.state === 'connected' && document.getElementById('reconnects').textContent === '1'",
    );
    second.wait_clients(1);
    let (status, body) = second.get("/sendpods");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    page.wait_for(
        "the new pod list",
        "document.querySelector('#pod-table tbody td')?.textContent === 'api-7f9c'",
    );
    assert_eq!(
        pod_rows(&page),
        [
            ["api-7f9c", "registry.local/api:2.4.1", "node-a"],
            ["web-5d2b", "nginx:1.27", "node-b"],
            ["worker-0", "registry.local/worker:2.4.1", "node-c"],
            ["redis-0", "redis:7.2", "node-a"],
        ],
        "the new list replaced the old rows"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('table').length"),
        json!(1),
        "still one table"
    );
    assert_eq!(entries(&page), ["pod list: 3 pods", "pod list: 4 pods"]);
    page.screenshot();
    let _ = std::fs::remove_file(pods);
}

/// A pod list of four pods, written to a file of its own; returns its path.
fn write_other_pod_list() -> std::path::PathBuf {
    let pods = std::env::temp_dir().join(format!("wspush-e2e-pods-{}.json", std::process::id()));
    let other: Value = json!([
        {"PodName": "api-7f9c", "PodImage": "registry.local/api:2.4.1", "PodNode": "node-a"},
        {"PodName": "web-5d2b", "PodImage": "nginx:1.27", "PodNode": "node-b"},
        {"PodName": "worker-0", "PodImage": "registry.local/worker:2.4.1", "PodNode": "node-c"},
        {"PodName": "redis-0", "PodImage": "redis:7.2", "PodNode": "node-a"},
    ]);
    std::fs::write(&pods, other.to_string()).expect("write the pod list");
    pods
}

#[test]
fn text_pings_are_not_shown() {
    let Some(page) = Browser::launch("text_pings_are_not_shown") else {
        return;
    };
    let server = TestServer::start(&["--ping-style", "text", "--ping-interval", "0.2"]);
    page.open(&server.url("/"));
    wait_connected(&page);
    page.wait_for("three text pings", "Number(document.body.dataset.pings) >= 3");
    sendall(&server, "after the pings", 1);
    wait_entry(&page, "after the pings");
    assert_eq!(entries(&page), ["after the pings"], "no ping in the list");
    assert_eq!(received(&page), "1", "pings are not counted as messages");
    page.screenshot();
}

#[test]
fn html_in_a_message_is_shown_as_text_and_never_runs() {
    let Some(page) = Browser::launch("html_in_a_message_is_shown_as_text_and_never_runs") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    let payload = "<img src=x onerror=alert(1)>";
    let flagged = r#"<img src=x onerror="document.body.dataset.pwned='yes'"><script>document.body.dataset.pwned='yes'</script>"#;
    sendall(&server, payload, 1);
    sendall(&server, flagged, 1);
    wait_entry(&page, flagged);
    assert_eq!(entries(&page), [payload, flagged], "shown literally");
    assert_eq!(
        page.eval("document.querySelectorAll('#messages img, #messages script').length"),
        json!(0)
    );
    // Positive control: an onerror handler that really is in the DOM fires in
    // this page. Once it has, one injected earlier would have fired too.
    page.run(
        "const probe = document.createElement('div');
         probe.id = 'probe';
         probe.innerHTML = '<img src=x onerror=\"document.body.dataset.probe=1\">';
         document.body.append(probe);",
        json!([]),
    );
    page.wait_for(
        "the control image's onerror",
        "document.body.dataset.probe === '1'",
    );
    assert_eq!(page.alert_text(), None, "no alert() ran");
    assert_eq!(
        page.eval("document.body.dataset.pwned ?? null"),
        Value::Null,
        "no handler ran"
    );
    page.eval("document.getElementById('probe').remove()");
    page.screenshot();
}

#[test]
fn send_box_round_trips_through_the_echo() {
    let Some(page) = Browser::launch("send_box_round_trips_through_the_echo") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    page.wait_for(
        "the send button",
        "!document.getElementById('send-button').disabled",
    );
    page.type_into("#send-input", "hello from the page");
    page.click("#send-button");
    wait_entry(&page, "hello from the page");
    assert_eq!(
        page.eval("document.getElementById('send-input').value"),
        json!("")
    );
    page.type_into("#send-input", "and with the Enter key\u{E007}");
    wait_entry(&page, "and with the Enter key");
    assert_eq!(entries(&page), ["hello from the page", "and with the Enter key"]);
    page.screenshot();
}

#[test]
fn two_pages_both_receive_one_broadcast() {
    let name = "two_pages_both_receive_one_broadcast";
    let Some(page) = Browser::launch(name) else {
        return;
    };
    let server = TestServer::start(&[]);
    let first = page.window();
    page.open(&server.url("/"));
    wait_connected(&page);
    let second = page.new_window();
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(2);
    sendall(&server, "to everyone", 2);
    for window in [&second, &first] {
        page.switch_to(window);
        wait_entry(&page, "to everyone");
        assert_eq!(entries(&page), ["to everyone"]);
    }
    page.screenshot();
    page.switch_to(&second);
    page.screenshot_as(&format!("{name}-second"));
}

#[test]
fn page_reconnects_by_itself_after_a_server_restart() {
    let Some(page) = Browser::launch("page_reconnects_by_itself_after_a_server_restart") else {
        return;
    };
    let mut server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    sendall(&server, "before the restart", 1);
    wait_entry(&page, "before the restart");
    page.eval("window.notReloaded = true");

    server.shutdown();
    page.wait_for(
        "the page to notice",
        r"document.body.dataset.state !== 'connected'
          && /^disconnected, retrying in \d+ s$/.test(document.getElementById('state').textContent)",
    );
    let server = restart_on_same_ports(&mut server, &[]);
    page.wait_for(
        "the page to reconnect",
        "document.body.dataset.state === 'connected' && document.getElementById('reconnects').textContent === '1'",
    );
    server.wait_clients(1);
    sendall(&server, "after the restart", 1);
    wait_entry(&page, "after the restart");
    assert_eq!(entries(&page), ["before the restart", "after the restart"]);
    assert_eq!(
        page.eval("window.notReloaded === true"),
        json!(true),
        "the same page, not a reload"
    );
    page.screenshot();
}

#[test]
fn six_hundred_broadcasts_leave_the_latest_500() {
    let Some(page) = Browser::launch("six_hundred_broadcasts_leave_the_latest_500") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    for n in 1..=600 {
        sendall(&server, &format!("message {n}"), 1);
    }
    page.wait_for(
        "600 received",
        "document.getElementById('count').textContent === '600'",
    );
    let shown = entries(&page);
    assert_eq!(shown.len(), 500);
    assert_eq!(shown.first().map(String::as_str), Some("message 101"));
    assert_eq!(shown.last().map(String::as_str), Some("message 600"));
    page.screenshot();
}

#[test]
fn json_is_pretty_printed_and_binary_shows_its_size() {
    let Some(page) = Browser::launch("json_is_pretty_printed_and_binary_shows_its_size") else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    let (status, _) = server.post(
        "/sendall",
        "application/json",
        br#"{"service":"api","replicas":[1,2]}"#,
    );
    assert_eq!(status, 200);
    let (status, _) = server.post("/sendall", "application/octet-stream", &[0, 1, 2, 3, 4]);
    assert_eq!(status, 200);
    sendall(&server, "42", 1);
    wait_entry(&page, "42");
    let pretty = "{\n  \"service\": \"api\",\n  \"replicas\": [\n    1,\n    2\n  ]\n}";
    assert_eq!(entries(&page), [pretty, "binary message, 5 bytes", "42"]);
    let kinds = page.eval("[...document.querySelectorAll('#messages > .msg')].map(e => e.dataset.kind)");
    assert_eq!(kinds, json!(["json", "binary", "text"]));
    page.screenshot();
}

#[test]
fn ws_query_parameter_overrides_the_discovered_socket() {
    let Some(page) = Browser::launch("ws_query_parameter_overrides_the_discovered_socket") else {
        return;
    };
    let serving = TestServer::start(&[]);
    let other = TestServer::start(&[]);
    let target: String = form_urlencoded::byte_serialize(other.ws_url().as_bytes()).collect();
    page.open(&serving.url(&format!("/?ws={target}")));
    wait_connected(&page);
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(other.ws_url())
    );
    other.wait_clients(1);
    assert_eq!(serving.stat("clients"), 0);
    sendall(&other, "from the other server", 1);
    wait_entry(&page, "from the other server");
    page.screenshot();
}

#[test]
fn page_opened_as_a_file_uses_localhost_8080() {
    let Some(page) = Browser::launch("page_opened_as_a_file_uses_localhost_8080") else {
        return;
    };
    page.open(&file_url());
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
    page.open(&file_url());
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

#[test]
fn phone_width_has_no_horizontal_scroll() {
    let Some(page) = Browser::launch_phone("phone_width_has_no_horizontal_scroll", (375, 812)) else {
        return;
    };
    let server = TestServer::start(&[]);
    page.open(&server.url("/"));
    wait_connected(&page);
    server.wait_clients(1);
    assert_eq!(page.eval("window.innerWidth"), json!(375));
    server.get("/sendpods");
    sendall(&server, &"unbroken".repeat(40), 1);
    let long_json = json!({"description": "x".repeat(200), "labels": {"app": "wspush", "tier": "frontend"}});
    let (status, _) = server.post("/sendall", "application/json", long_json.to_string().as_bytes());
    assert_eq!(status, 200);
    page.wait_for(
        "3 messages",
        "document.querySelectorAll('#messages > .msg').length === 3",
    );
    let widths = page.eval(
        "({ page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
            list: document.getElementById('messages').scrollWidth,
            listView: document.getElementById('messages').clientWidth })",
    );
    assert!(
        widths["page"].as_u64() <= widths["view"].as_u64(),
        "page scrolls sideways: {widths}"
    );
    assert!(
        widths["list"].as_u64() <= widths["listView"].as_u64(),
        "list scrolls sideways: {widths}"
    );
    page.screenshot();
}
