//! The dashboard (`/`, html/index.html with wspush.js) in a real headless
//! Chromium against a real server: it finds the socket, subscribes to `all`,
//! shows its state and transport, shows broadcasts as text (never as HTML),
//! renders and replaces the pod table, pretty-prints JSON, sizes binary data,
//! sends through the echo, keeps the latest 500 messages, fits a phone screen,
//! loads the latest 50 from history, and after losing its connection shows
//! every message it missed, in order and once, or a "history gone" line.
//! (The raw `/echo` page at `/a.html` is tested in browser_echo_page.rs.)
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
use page::{
    assert_recovered, entries, entry_data, file_url, markers, pod_rows, received, restart_on_same_ports,
    sendall, wait_entry,
};
use serde_json::{json, Value};
use support::TestServer;

const HISTORY_GONE: &str = "history gone: messages sent while disconnected may be missing";

/// Waits until the dashboard says it is live, after `reconnects` reconnections.
fn wait_live(page: &Browser, reconnects: u32) {
    page.wait_for(
        &format!("the page to be live after {reconnects} reconnects"),
        &format!(
            "document.body.dataset.state === 'live' && document.getElementById('state').textContent === 'live'
             && document.getElementById('reconnects').textContent === '{reconnects}'"
        ),
    );
}

/// Opens the dashboard of `server` and waits until it is its one live client.
fn open_live(page: &Browser, server: &TestServer) {
    page.open(&server.url("/"));
    wait_live(page, 0);
    server.wait_clients(1);
}

/// Takes the page's connection (on /ws/all) away while `publish` runs (see `page::while_away`).
fn while_away(page: &Browser, server: &TestServer, publish: impl FnOnce()) {
    page::while_away(page, server, "ws", publish);
}

// ---------------------------------------------------------------------------
// Resume
// ---------------------------------------------------------------------------

#[test]
fn kicked_page_recovers_the_20_messages_sent_while_away() {
    let Some(page) = Browser::launch("kicked_page_recovers_the_20_messages_sent_while_away") else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
    let before: Vec<String> = (1..=3).map(|n| format!("before {n}")).collect();
    before.iter().for_each(|m| sendall(&server, m, 1));
    wait_entry(&page, "before 3");
    let missed: Vec<String> = (1..=20).map(|n| format!("missed {n}")).collect();
    while_away(&page, &server, || {
        missed.iter().for_each(|m| sendall(&server, m, 0))
    });
    wait_live(&page, 1);
    sendall(&server, "after", 1);
    wait_entry(&page, "after");
    assert_recovered(&page, &before, &missed, &["after".into()]);
    page.screenshot();
}

/// A page that has received nothing yet resumes from the server's
/// `subscribed` message: without it, it would ask for nothing and miss these.
#[test]
fn quiet_page_recovers_what_was_sent_while_away() {
    let Some(page) = Browser::launch("quiet_page_recovers_what_was_sent_while_away") else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
    while_away(&page, &server, || {
        ["one", "two", "three"]
            .iter()
            .for_each(|m| sendall(&server, m, 0))
    });
    wait_live(&page, 1);
    wait_entry(&page, "three");
    assert_eq!(entries(&page), ["one", "two", "three"]);
    assert_eq!(markers(&page), ["3 missed messages recovered"]);
    page.screenshot();
}

#[test]
fn page_shows_history_gone_when_what_it_missed_was_evicted() {
    let Some(page) = Browser::launch("page_shows_history_gone_when_what_it_missed_was_evicted") else {
        return;
    };
    let server = TestServer::start(&["--history-size", "5"]);
    open_live(&page, &server);
    sendall(&server, "before", 1);
    wait_entry(&page, "before");
    // 10 published while away, of which the server keeps the last 5.
    while_away(&page, &server, || {
        (1..=10).for_each(|n| sendall(&server, &format!("lost {n}"), 0))
    });
    wait_live(&page, 1);
    sendall(&server, "after", 1);
    wait_entry(&page, "after");
    assert_eq!(entries(&page), ["before", "after"], "no partial replay");
    assert_eq!(markers(&page), [HISTORY_GONE]);
    assert_eq!(
        page.eval("document.querySelector('#messages > .marker').dataset.kind"),
        json!("reset")
    );
    page.screenshot();
}

#[test]
fn first_load_shows_the_latest_50_from_history() {
    let Some(page) = Browser::launch("first_load_shows_the_latest_50_from_history") else {
        return;
    };
    let server = TestServer::start(&[]);
    for n in 1..=60 {
        sendall(&server, &format!("earlier {n}"), 0);
    }
    open_live(&page, &server);
    sendall(&server, "live", 1);
    wait_entry(&page, "live");
    let mut expected: Vec<String> = (11..=60).map(|n| format!("earlier {n}")).collect();
    expected.push("live".into());
    assert_eq!(entries(&page), expected);
    assert_eq!(markers(&page), ["50 earlier messages from history"]);
    assert_eq!(
        page.eval("document.querySelector('#messages > .marker').nextElementSibling.querySelector('.body').textContent"),
        json!("earlier 11"),
    );
    page.screenshot();
}

#[test]
fn page_reconnects_by_itself_after_a_server_restart_and_says_history_is_gone() {
    let Some(page) =
        Browser::launch("page_reconnects_by_itself_after_a_server_restart_and_says_history_is_gone")
    else {
        return;
    };
    let mut server = TestServer::start(&[]);
    open_live(&page, &server);
    sendall(&server, "before the restart", 1);
    wait_entry(&page, "before the restart");
    page.eval("window.notReloaded = true");

    server.shutdown();
    page.wait_for(
        "the page to notice",
        r"document.body.dataset.state === 'reconnecting'
          && /^reconnecting in \d+ s$/.test(document.getElementById('state').textContent)",
    );
    let server = restart_on_same_ports(&mut server, &[]);
    wait_live(&page, 1);
    server.wait_clients(1);
    sendall(&server, "after the restart", 1);
    wait_entry(&page, "after the restart");
    assert_eq!(entries(&page), ["before the restart", "after the restart"]);
    assert_eq!(
        markers(&page),
        [HISTORY_GONE],
        "a new server knows nothing of the old one's ids"
    );
    assert_eq!(
        page.eval("window.notReloaded === true"),
        json!(true),
        "the same page, not a reload"
    );
    page.screenshot();
}

// ---------------------------------------------------------------------------
// What the page shows
// ---------------------------------------------------------------------------

#[test]
fn page_finds_the_socket_through_config_json_and_shows_its_transport() {
    let Some(page) = Browser::launch("page_finds_the_socket_through_config_json_and_shows_its_transport")
    else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(format!("ws://{}/ws/all", server.ws))
    );
    assert_eq!(
        page.eval("document.getElementById('transport').textContent"),
        json!("websocket")
    );
    assert_eq!(
        page.eval("document.getElementById('send-button').disabled"),
        json!(false)
    );
    assert_eq!(received(&page), "0");
    assert_eq!(entries(&page), Vec::<String>::new());
    assert_eq!(
        markers(&page),
        Vec::<String>::new(),
        "nothing in history, no marker"
    );
    page.screenshot();
}

#[test]
fn sendall_message_appears_with_its_receive_time() {
    let Some(page) = Browser::launch("sendall_message_appears_with_its_receive_time") else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
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
    open_live(&page, &first);
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
    wait_live(&page, 1);
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
fn html_in_a_message_is_shown_as_text_and_never_runs() {
    let Some(page) = Browser::launch("html_in_a_message_is_shown_as_text_and_never_runs") else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
    let payload = "<img src=x onerror=alert(1)>";
    let flagged = r#"<img src=x onerror="document.body.dataset.pwned='yes'"><script>document.body.dataset.pwned='yes'</script>"#;
    sendall(&server, payload, 1);
    sendall(&server, flagged, 1);
    let in_json = json!({ "html": flagged });
    let (status, _) = server.post("/sendall", "application/json", in_json.to_string().as_bytes());
    assert_eq!(status, 200);
    page.type_into("#send-input", &format!("{payload}\u{E007}"));
    page.wait_for(
        "the echo",
        "document.querySelector('#messages > .msg[data-type=echo]')",
    );
    let pretty = serde_json::to_string_pretty(&in_json).unwrap();
    assert_eq!(
        entries(&page),
        [payload, flagged, &pretty, payload],
        "shown literally"
    );
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
    open_live(&page, &server);
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
    assert_eq!(
        entry_data(&page, "type"),
        ["echo", "echo"],
        "echoes, not broadcasts"
    );
    assert_eq!(entry_data(&page, "id"), ["", ""], "an echo has no id");
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
    open_live(&page, &server);
    let second = page.new_window();
    page.open(&server.url("/"));
    wait_live(&page, 0);
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
fn six_hundred_broadcasts_leave_the_latest_500() {
    let Some(page) = Browser::launch("six_hundred_broadcasts_leave_the_latest_500") else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
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
    open_live(&page, &server);
    let (status, _) = server.post(
        "/sendall",
        "application/json",
        br#"{"service":"api","replicas":[1,2]}"#,
    );
    assert_eq!(status, 200);
    // 5, 4 and 6 bytes: base64 with one, two and no padding characters.
    for bytes in [&[0, 1, 2, 3, 4][..], &[255; 4], &[7; 6]] {
        let (status, _) = server.post("/sendall", "application/octet-stream", bytes);
        assert_eq!(status, 200);
    }
    sendall(&server, "42", 1);
    wait_entry(&page, "42");
    let pretty = "{\n  \"service\": \"api\",\n  \"replicas\": [\n    1,\n    2\n  ]\n}";
    let binary = [
        "binary message, 5 bytes",
        "binary message, 4 bytes",
        "binary message, 6 bytes",
    ];
    assert_eq!(entries(&page), [&[pretty][..], &binary, &["42"]].concat());
    assert_eq!(
        entry_data(&page, "kind"),
        ["json", "binary", "binary", "binary", "text"]
    );
    page.screenshot();
}

#[test]
fn ws_query_parameter_overrides_the_discovered_socket() {
    let Some(page) = Browser::launch("ws_query_parameter_overrides_the_discovered_socket") else {
        return;
    };
    let serving = TestServer::start(&[]);
    let other = TestServer::start(&[]);
    let base = format!("ws://{}", other.ws);
    let target: String = form_urlencoded::byte_serialize(base.as_bytes()).collect();
    page.open(&serving.url(&format!("/?ws={target}")));
    wait_live(&page, 0);
    assert_eq!(
        page.eval("document.getElementById('ws-url').textContent"),
        json!(format!("{base}/ws/all"))
    );
    other.wait_clients(1);
    assert_eq!(serving.stat("clients"), 0);
    sendall(&other, "from the other server", 1);
    wait_entry(&page, "from the other server");
    page.screenshot();
}

#[test]
fn page_opened_as_a_file_says_where_to_open_it() {
    let Some(page) = Browser::launch("page_opened_as_a_file_says_where_to_open_it") else {
        return;
    };
    page.open(&file_url("index.html"));
    page.wait_for(
        "the hint",
        "document.getElementById('state').textContent.startsWith(\"open this page from wspush's side port\")",
    );
    page.screenshot();
}

#[test]
fn phone_width_has_no_horizontal_scroll() {
    let Some(page) = Browser::launch_phone("phone_width_has_no_horizontal_scroll", (375, 812)) else {
        return;
    };
    let server = TestServer::start(&[]);
    open_live(&page, &server);
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
