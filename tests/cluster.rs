//! Several nodes sharing publishes through a real Redis (`--redis`): one
//! order, ids and `/send/{id}` across nodes, outages (see `support/redis.rs`
//! for the Redis each test starts). What the shared log keeps through link
//! drops and Redis restarts is in `cluster_log.rs`.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/redis.rs"]
mod redis;
mod support;

use std::collections::HashSet;
use std::thread;

use redis::{kill_connections, node, wait_health, RedisServer};
use support::{wait_until, TestServer, WsClient};

/// `n` clients connected to `node`, registered.
fn clients(node: &TestServer, n: u64) -> Vec<WsClient> {
    let clients = (0..n).map(|_| node.client()).collect();
    node.wait_clients(n);
    clients
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// GET /sendall?msg=`msg` on `node`; asserts 200 and returns the JSON answer.
fn sendall(node: &TestServer, msg: &str) -> serde_json::Value {
    let (status, body) = node.get(&format!("/sendall?msg={msg}"));
    assert_eq!(status, 200, "{body}");
    json(&body)
}

fn expect_all(clients: &mut [WsClient], msg: &str) {
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.next_text(), msg, "client {i}");
    }
}

#[test]
fn a_publish_on_either_node_reaches_every_client_of_both_once() {
    let Some(redis) = RedisServer::start("a_publish_on_either_node_reaches_every_client_of_both_once") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 3);
    all.extend(clients(&b, 3));

    let answer = sendall(&a, "from-a");
    assert_eq!(answer["clients"], 3, "clients counts this node's: {answer}");
    assert_eq!(answer["nodes"], 2, "{answer}");
    expect_all(&mut all, "from-a");

    let answer = sendall(&b, "from-b");
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(3), Some(2))
    );
    expect_all(&mut all, "from-b");

    // Nothing came twice: the next message everyone reads is the next one sent.
    let (status, body) = a.post("/sendpods", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    let pods = a.get("/pods").1;
    expect_all(&mut all, &pods);

    // Ids name their node; /clients and /stats stay per node.
    for (node, prefix) in [(&a, "a-"), (&b, "b-")] {
        let listed = node.clients();
        assert_eq!(listed.len(), 3);
        for c in &listed {
            let id = c["id"].as_str().expect("id is a string");
            assert!(id.starts_with(prefix), "{id}");
        }
        let stats = node.stats();
        assert_eq!(stats["clients"], 3, "{stats}");
        assert_eq!(stats["redis_up"], true, "{stats}");
        assert_eq!(stats["node"], prefix.trim_end_matches('-'), "{stats}");
    }
    assert_eq!(a.stat("redis_publishes"), 2);
    assert_eq!(b.stat("redis_publishes"), 1);

    // /cluster lists both nodes.
    wait_until("/cluster on b lists a and b", || {
        let view = json(&b.get("/cluster").1);
        let ids: Vec<_> = view["nodes"]
            .as_array()
            .map(|n| n.iter().filter_map(|n| n["id"].as_str()).collect())
            .unwrap_or_default();
        ids == ["a", "b"]
    });
    let view = json(&b.get("/cluster").1);
    assert_eq!(
        (view["node"].as_str(), view["redis"].as_str()),
        (Some("b"), Some("up")),
        "{view}"
    );
    assert_eq!(view["nodes"][0]["http"], format!("http://{}/", a.http), "{view}");
}

#[test]
fn a_channel_publish_reaches_its_subscribers_on_both_nodes() {
    let Some(redis) = RedisServer::start("a_channel_publish_reaches_its_subscribers_on_both_nodes") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let (mut a_orders, _) = channels::Sub::joined(&a, "orders");
    let (mut a_billing, _) = channels::Sub::joined(&a, "billing");
    let (mut b_orders, _) = channels::Sub::joined(&b, "orders");
    let mut b_echo = b.client();
    b.wait_clients(2);

    let (status, body) = b.post("/publish/orders", "application/json", br#"{"n":1}"#);
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(1), Some(2)),
        "{answer}"
    );
    let on_b = b_orders.next_message();
    assert_eq!(
        (on_b.channel.as_str(), &on_b.data),
        ("orders", &serde_json::json!({"n": 1}))
    );
    assert_eq!(answer["id"], on_b.id, "the answer carries the id b gave it");
    let on_a = a_orders.next_message();
    assert_eq!(on_a.data, on_b.data, "JSON stays JSON through Redis");
    assert_eq!(on_a.id, on_b.id, "the log's id, the same on every node");

    let (clients, _) = channels::publish(&a, "billing", "bill");
    assert_eq!(clients, 1);
    assert_eq!(sendall(&b, "everyone")["clients"], 2);
    assert_eq!(a_billing.next_message().data, "bill");
    for sub in [&mut a_orders, &mut a_billing, &mut b_orders] {
        let m = sub.next_message();
        assert_eq!(
            (m.channel.as_str(), m.data.as_str()),
            ("all", Some("everyone")),
            "nothing else between"
        );
    }
    assert_eq!(b_echo.next_text(), "everyone", "/echo gets only `all`, raw");

    // Kicks reach this node's clients only, by their shown id.
    let id = a.client_id(a_billing.ws.local_addr());
    assert!(id.starts_with("a-"), "{id}");
    assert_eq!(b.request("DELETE", &format!("/clients/{id}"), &[], b"").0, 404);
    assert_eq!(a.request("DELETE", &format!("/clients/{id}"), &[], b"").0, 200);
    assert_eq!(a_billing.ws.expect_close(), (1008, "kicked".to_owned()));
}

#[test]
fn concurrent_publishers_on_both_nodes_give_every_client_one_sequence() {
    const PER_PUBLISHER: usize = 25;
    let Some(redis) =
        RedisServer::start("concurrent_publishers_on_both_nodes_give_every_client_one_sequence")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 3);
    all.extend(clients(&b, 3));

    let urls = [a.url("/sendall"), b.url("/sendall")];
    thread::scope(|s| {
        for (n, url) in urls.iter().enumerate() {
            for t in 0..2 {
                s.spawn(move || {
                    for i in 0..PER_PUBLISHER {
                        let r = ureq::get(url).query("msg", &format!("n{n}-t{t}-{i}")).call();
                        assert!(matches!(&r, Ok(r) if r.status() == 200), "{r:?}");
                    }
                });
            }
        }
    });

    let total = 4 * PER_PUBLISHER;
    let sequences: Vec<Vec<String>> = all
        .iter_mut()
        .map(|c| (0..total).map(|_| c.next_text()).collect())
        .collect();
    let distinct: HashSet<_> = sequences[0].iter().collect();
    assert_eq!(distinct.len(), total, "every message exactly once");
    for (i, seq) in sequences.iter().enumerate() {
        assert_eq!(seq, &sequences[0], "client {i} saw another order");
    }
    // Each publisher's own messages keep their order.
    for prefix in ["n0-t0-", "n0-t1-", "n1-t0-", "n1-t1-"] {
        let mine: Vec<usize> = sequences[0]
            .iter()
            .filter_map(|m| m.strip_prefix(prefix)?.parse().ok())
            .collect();
        assert_eq!(mine, (0..PER_PUBLISHER).collect::<Vec<_>>());
    }
}

#[test]
fn send_to_one_client_finds_it_on_the_other_node() {
    let Some(redis) = RedisServer::start("send_to_one_client_finds_it_on_the_other_node") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "node-b");
    let mut on_a = clients(&a, 3);
    let mut on_b = clients(&b, 3);
    let b1 = b.client_id(on_b[1].local_addr());
    let a2 = a.client_id(on_a[2].local_addr());
    assert!(b1.starts_with("node-b-"), "{b1}");

    let (status, body) = a.post(&format!("/send/{b1}"), "text/plain", b"to b1 from a");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_b[1].next_text(), "to b1 from a");

    let (status, body) = b.post(&format!("/send/{a2}"), "application/octet-stream", &[0, 1, 2]);
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_a[2].next_binary(), [0, 1, 2]);

    // A client of the node itself goes through Redis too, and answers the same.
    let (status, body) = a.post(&format!("/send/{a2}"), "text/plain", b"to a2 from a");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_a[2].next_text(), "to a2 from a");

    // 404 when the node has no such client, when no such node is subscribed,
    // and when the id is not an id.
    for missing in ["node-b-999", "a-999", "nosuch-1", "garbage", "999"] {
        let (status, body) = a.post(&format!("/send/{missing}"), "text/plain", b"x");
        assert_eq!(status, 404, "{missing}: {body}");
        assert!(
            json(&body)["error"]
                .as_str()
                .is_some_and(|e| e.contains("no client")),
            "{body}"
        );
    }

    // No one else got the directed messages: everyone's next one is this.
    sendall(&b, "end");
    expect_all(&mut on_a, "end");
    expect_all(&mut on_b, "end");
}

#[test]
fn a_redis_outage_degrades_the_nodes_and_they_recover_by_themselves() {
    let Some(mut redis) =
        RedisServer::start("a_redis_outage_degrades_the_nodes_and_they_recover_by_themselves")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut on_a = clients(&a, 2);
    let mut on_b = clients(&b, 2);
    let a1 = a.client_id(on_a[1].local_addr());
    sendall(&a, "before");
    expect_all(&mut on_a, "before");
    expect_all(&mut on_b, "before");

    redis.kill();
    wait_health(&a, 503);
    wait_health(&b, 503);
    assert_eq!(a.get("/healthz").1, "degraded");
    for publish in ["/sendall?msg=lost", "/publish/orders?msg=lost"] {
        let (status, body) = a.get(publish);
        assert_eq!(
            (status, body.as_str()),
            (503, r#"{"error":"redis unavailable"}"#),
            "{publish}"
        );
    }
    let (status, body) = b.post(&format!("/send/{a1}"), "text/plain", b"lost too");
    assert_eq!((status, body.as_str()), (503, r#"{"error":"redis unavailable"}"#));
    assert_eq!(json(&a.get("/cluster").1)["redis"], "down");

    // Local clients stay connected and served.
    for c in on_a.iter_mut().chain(on_b.iter_mut()) {
        c.send_text("still here");
        assert_eq!(c.next_text(), "still here");
    }
    assert_eq!((a.stat("clients"), b.stat("clients")), (2, 2));

    // Same port, same nodes: they resubscribe on their own.
    redis.restart();
    wait_health(&a, 200);
    wait_health(&b, 200);
    sendall(&a, "back");
    expect_all(&mut on_a, "back");
    expect_all(&mut on_b, "back");
    sendall(&b, "back-from-b");
    expect_all(&mut on_a, "back-from-b");
    expect_all(&mut on_b, "back-from-b");

    for node in [&a, &b] {
        assert!(node.stat("redis_reconnects") >= 1, "{}", node.stats());
    }
    assert!(a.stat("redis_publish_failures") >= 1, "{}", a.stats());
    assert!(b.stat("redis_publish_failures") >= 1, "{}", b.stats());
    let metrics = a.get("/metrics").1;
    for name in [
        "wspush_redis_up 1",
        "wspush_redis_reconnects_total",
        "wspush_redis_publish_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[test]
fn a_publish_connection_closed_by_redis_is_replaced_without_a_repeat() {
    let Some(redis) = RedisServer::start("a_publish_connection_closed_by_redis_is_replaced_without_a_repeat")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 2);
    all.extend(clients(&b, 2));
    sendall(&a, "first");
    expect_all(&mut all, "first");

    // Redis closes the nodes' publishing connections, not their log readers
    // or subscriptions: the next publish fails on its idle connection, is
    // sent again on a new one, and still arrives once.
    assert_eq!(kill_connections(redis.port, ".a.publisher"), 1);
    kill_connections(redis.port, ".b.publisher");
    let answer = sendall(&a, "after-kill");
    assert_eq!(answer["nodes"], 2, "{answer}");
    expect_all(&mut all, "after-kill");
    sendall(&b, "next");
    expect_all(&mut all, "next");
    assert_eq!(a.stat("redis_publish_failures"), 0);
}

#[test]
fn a_node_started_before_redis_serves_degraded_then_joins() {
    let Some(mut redis) = RedisServer::stopped("a_node_started_before_redis_serves_degraded_then_joins")
    else {
        return;
    };
    let url = redis.url();
    let a = TestServer::start(&["--redis", &url, "--node-id", "early"]);
    let mut c = a.client();
    a.wait_clients(1);
    assert_eq!(a.get("/healthz"), (503, "degraded".to_owned()));
    assert_eq!(a.get("/sendall?msg=x").0, 503);

    redis.restart();
    wait_health(&a, 200);
    let answer = sendall(&a, "joined");
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(c.next_text(), "joined");
}

#[test]
fn without_redis_there_is_no_cluster() {
    let single = TestServer::start(&[]);
    let (status, body) = single.get("/cluster");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("--redis"), "{body}");
    assert_eq!(single.get("/healthz"), (200, "ok".to_owned()));
    let stats = single.stats();
    assert!(
        stats.get("redis_up").is_none() && stats.get("node").is_none(),
        "{stats}"
    );
}

#[test]
fn bad_cluster_flags_stop_the_start() {
    for flags in [
        &["--redis", "http://127.0.0.1:1"][..],
        &["--redis", "redis://127.0.0.1:1", "--node-id", "has space"],
        &["--redis", "redis://127.0.0.1:1", "--redis-channel", ""],
    ] {
        match support::try_start(flags) {
            Err(wspush::StartError::Invalid(reason)) => assert!(!reason.is_empty()),
            Err(e) => panic!("{flags:?}: wrong error {e}"),
            Ok(server) => {
                server.shutdown();
                panic!("{flags:?} started");
            }
        }
    }
}
