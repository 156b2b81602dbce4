//! The read-only endpoints: `/clients`, `/stats`, `/metrics`, `/healthz` and `/config.json` report what the server is doing, in their documented shapes.

mod support;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use support::TestServer;

#[test]
fn clients_lists_id_peer_since_and_queued() {
    let server = TestServer::start(&[]);
    assert!(server.clients().is_empty());
    let before = SystemTime::now() - Duration::from_secs(1);
    let a = server.client();
    let b = server.client();
    server.wait_clients(2);
    let after = SystemTime::now() + Duration::from_secs(1);
    let list = server.clients();
    assert_eq!(list.len(), 2, "{list:?}");
    let mut ids = Vec::new();
    for client in [&a, &b] {
        let peer = client.local_addr().to_string();
        let entry = list
            .iter()
            .find(|e| e["peer"] == peer.as_str())
            .unwrap_or_else(|| panic!("no entry with peer {peer}: {list:?}"));
        let obj = entry.as_object().expect("object");
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "channels",
                "connected_since",
                "id",
                "peer",
                "queued",
                "transport",
                "user"
            ],
            "{entry}"
        );
        assert_eq!(
            entry["channels"],
            serde_json::json!(["all"]),
            "an /echo client is on all"
        );
        assert_eq!(entry["transport"], "echo");
        assert_eq!(entry["user"], serde_json::Value::Null, "no token, no user");
        let id: u64 = entry["id"]
            .as_str()
            .expect("id is a string")
            .parse()
            .expect("numeric id");
        ids.push(id);
        let since = entry["connected_since"].as_str().expect("string");
        let at = humantime::parse_rfc3339(since).unwrap_or_else(|e| panic!("{since:?} is not RFC 3339: {e}"));
        assert!(before <= at && at <= after, "{since} is not around now");
        assert_eq!(entry["queued"], 0);
    }
    assert_ne!(ids[0], ids[1], "ids are unique");
    let listed: Vec<u64> = list
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(listed[0] < listed[1], "sorted by id: {listed:?}");

    a.close();
    server.wait_clients(1);
    let list = server.clients();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], ids[1].to_string(), "b is the one left");
}

const STAT_FIELDS: [&str; 24] = [
    "broadcasts",
    "channels",
    "clients",
    "clients_kicked",
    "clients_reaped",
    "connections_accepted",
    "deliveries_queued",
    "handshakes_rejected",
    "history_bytes",
    "history_messages",
    "http_connections_evicted",
    "http_connections_refused",
    "http_requests_rejected",
    "messages_published",
    "messages_replayed",
    "resets",
    "resumes",
    "sharded_broadcasts",
    "slow_clients_dropped",
    "thread_spawn_failures",
    "tokens_expired",
    "tokens_minted",
    "tokens_rejected",
    "uptime_seconds",
];

#[test]
fn stats_counts_what_happened() {
    let server = TestServer::start(&[]);
    let stats = server.stats();
    let obj = stats.as_object().expect("object");
    let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, STAT_FIELDS);
    for name in STAT_FIELDS {
        match name {
            "uptime_seconds" => {}
            "channels" => assert_eq!(stats[name], 1, "`all` is always there"),
            _ => assert_eq!(stats[name], 0, "{name} starts at 0"),
        }
    }
    let mut a = server.client();
    let mut b = server.client();
    server.wait_clients(2);
    for i in 0..3 {
        server.get(&format!("/sendall?msg={i}"));
    }
    for c in [&mut a, &mut b] {
        for i in 0..3 {
            assert_eq!(c.next_text(), i.to_string());
        }
    }
    let refused = support::WsClient::try_connect(&format!("ws://{}/nope", server.ws), &[]);
    assert_eq!(refused.err().map(|r| r.status), Some(404));
    server.wait_counters("1 rejected handshake", |s| s.handshakes_rejected == 1);
    let stats = server.stats();
    assert_eq!(stats["clients"], 2);
    assert_eq!(stats["connections_accepted"], 2);
    assert_eq!(stats["broadcasts"], 3);
    assert_eq!(stats["messages_published"], 3);
    assert_eq!(stats["history_messages"], 3, "kept for resumes");
    assert_eq!(stats["deliveries_queued"], 6);
    assert_eq!(stats["handshakes_rejected"], 1);
    assert_eq!(stats["slow_clients_dropped"], 0);
    assert_eq!(stats["clients_reaped"], 0);
    assert!(stats["uptime_seconds"].is_u64());
}

/// `name value` sample lines of a Prometheus text exposition.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {l:?}"));
            (
                name.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

#[test]
fn metrics_has_the_same_figures_with_wspush_names() {
    let server = TestServer::start(&[]);
    let mut a = server.client();
    server.wait_clients(1);
    server.get("/sendall?msg=one");
    assert_eq!(a.next_text(), "one");
    let (status, content_type, body) = server.get_typed("/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text") || content_type.starts_with("text/plain"),
        "{content_type}"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(text.contains("# TYPE wspush_clients gauge"), "{text}");
    assert!(text.contains("# TYPE wspush_broadcasts counter"), "{text}");
    let samples = samples(&text);
    for name in samples.keys() {
        assert!(name.starts_with("wspush_"), "{name} lacks the wspush_ prefix");
    }
    let stats = server.stats();
    for (metric, stat) in [
        ("wspush_clients", "clients"),
        ("wspush_connections_accepted_total", "connections_accepted"),
        ("wspush_broadcasts_total", "broadcasts"),
        ("wspush_deliveries_queued_total", "deliveries_queued"),
        ("wspush_sharded_broadcasts_total", "sharded_broadcasts"),
        ("wspush_slow_clients_dropped_total", "slow_clients_dropped"),
        ("wspush_clients_reaped_total", "clients_reaped"),
        ("wspush_handshakes_rejected_total", "handshakes_rejected"),
        ("wspush_thread_spawn_failures_total", "thread_spawn_failures"),
    ] {
        let value = samples
            .get(metric)
            .unwrap_or_else(|| panic!("no {metric} in {text}"));
        assert_eq!(*value, stats[stat].as_u64().unwrap() as f64, "{metric}");
    }
    assert_eq!(samples["wspush_clients"], 1.0);
    assert_eq!(samples["wspush_broadcasts_total"], 1.0);
    assert!(samples.contains_key("wspush_uptime_seconds"));
}

#[test]
fn healthz_is_ok() {
    let server = TestServer::start(&[]);
    let (status, content_type, body) = server.get_typed("/healthz");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(body, b"ok");
}

#[test]
fn config_json_points_at_the_websocket_port() {
    let server = TestServer::start(&[]);
    let (status, content_type, body) = server.get_typed("/config.json");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"ws_port": server.ws.port(), "ws_path": "/echo", "subscribe_tokens": false})
    );
    // And the page can use it: a client on that port and path connects.
    let url = format!(
        "ws://127.0.0.1:{}{}",
        json["ws_port"],
        json["ws_path"].as_str().unwrap()
    );
    let client = support::WsClient::connect(&url);
    server.wait_clients(1);
    client.close();
}
