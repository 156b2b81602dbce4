//! The cluster's shared log (a Redis stream): nothing answered 200 is lost
//! when a node's link drops or Redis restarts with its data, ids are the same
//! on every node so a client resumes on any of them, and a log that lost
//! messages (trimmed past a node, or gone with a Redis restarted without
//! persistence) gives `reset`s, never a replay with a hole in it.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/redis.rs"]
mod redis;
mod support;
#[path = "support/tokens.rs"]
mod tokens;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

use channels::{epoch_of, Got, Sub};
use redis::{kill_connections, node, node_at, redis_command, wait_health, RedisServer};
use support::{wait_until, TestServer};

/// Publishes `0`, `1`, `2`, ... to `channel` on `node`, one after another,
/// until `stop` is set; returns the numbers answered 200 (503s are expected
/// while the node is degraded). `published` counts the 200s as they come.
fn publish_until(node: &TestServer, channel: &str, stop: &AtomicBool, published: &AtomicUsize) -> Vec<u64> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let url = node.url(&format!("/publish/{channel}"));
    let mut ok = Vec::new();
    for n in 0.. {
        if stop.load(SeqCst) {
            break;
        }
        match agent.get(&url).query("msg", &n.to_string()).call() {
            Ok(_) => {
                ok.push(n);
                published.fetch_add(1, SeqCst);
            }
            Err(ureq::Error::Status(503, _)) => {}
            Err(e) => panic!("publish {n}: {e}"),
        }
    }
    ok
}

/// Publishes numbers to `channel` on `node` (`publish_until`) while `during`
/// runs, then 20 more; returns the numbers answered 200. `during` is given a
/// function that waits until `n` more were answered 200.
fn publishing_while(node: &TestServer, channel: &str, during: impl FnOnce(&dyn Fn(usize))) -> Vec<u64> {
    let stop = AtomicBool::new(false);
    let published = AtomicUsize::new(0);
    thread::scope(|s| {
        let publisher = s.spawn(|| publish_until(node, channel, &stop, &published));
        let _stop = StopOnDrop(&stop);
        let more = |n: usize| {
            let before = published.load(SeqCst);
            wait_until(&format!("{n} more publishes answered 200"), || {
                published.load(SeqCst) >= before + n
            });
        };
        during(&more);
        more(20);
        stop.store(true, SeqCst);
        publisher.join().expect("publisher")
    })
}

/// Sets the flag when dropped: a publisher stops even when the test fails
/// before it tells it to.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// `sub`'s messages up to the one whose data is `end` (excluded). Fails on
/// anything else but a channel message (a reset among them).
fn read_until(sub: &mut Sub, end: &str) -> Vec<Got> {
    let mut got = Vec::new();
    loop {
        let m = sub.next_message();
        if m.data == end {
            return got;
        }
        got.push(m);
    }
}

/// The numbers `got` carries; asserts each came once, in the order
/// published, and that every one of `ok` is among them.
fn assert_once_in_order(got: &[Got], ok: &[u64], who: &str) {
    let numbers: Vec<u64> = got
        .iter()
        .map(|m| m.data.as_str().and_then(|n| n.parse().ok()).expect("a number"))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "{who}: not once each in order: {numbers:?}"
    );
    let missing: Vec<&u64> = ok.iter().filter(|n| numbers.binary_search(n).is_err()).collect();
    assert!(missing.is_empty(), "{who} missed {missing:?} (answered 200)");
    assert!(
        got.windows(2)
            .all(|w| channels::seq_of(&w[0].id) < channels::seq_of(&w[1].id)),
        "{who}: ids not increasing"
    );
}

/// The log's epoch `/cluster` shows on `node`.
fn log_epoch(node: &TestServer) -> Option<String> {
    let view: serde_json::Value = serde_json::from_str(&node.get("/cluster").1).expect("JSON");
    view["epoch"].as_str().map(str::to_owned)
}

#[test]
fn a_nodes_log_link_killed_while_publishing_loses_nothing_answered_200() {
    const KILLS: u64 = 3;
    let Some(redis) =
        RedisServer::start("a_nodes_log_link_killed_while_publishing_loses_nothing_answered_200")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let (mut on_a, _) = Sub::joined(&a, "orders");
    let (mut on_b, _) = Sub::joined(&b, "orders");
    let ok = publishing_while(&a, "orders", |more| {
        for kill in 1..=KILLS {
            more(20);
            // Redis closes b's log reader connection (not Redis, not a's).
            assert_eq!(kill_connections(redis.port, ".b.reader"), 1);
            wait_until("b noticed", || b.stat("redis_link_drops") == kill);
            wait_health(&b, 200);
        }
    });
    channels::publish(&a, "orders", "end");

    let got_a = read_until(&mut on_a, "end");
    let got_b = read_until(&mut on_b, "end");
    assert_once_in_order(&got_b, &ok, "b's client");
    assert_eq!(got_b, got_a, "b's client got what a's got, with the same ids");
    assert!(
        b.stat("redis_messages_recovered") > 0,
        "messages were logged while b was down: {}",
        b.stats()
    );
    assert_eq!((b.stat("redis_resets"), b.stat("redis_reconnects")), (0, KILLS));
    assert_eq!(a.stat("redis_link_drops"), 0);
}

#[test]
fn a_redis_restarted_with_aof_loses_nothing_answered_200() {
    let dir = support::temp_dir("aof");
    let dir = dir.display().to_string();
    let aof = ["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir];
    let Some(mut redis) =
        RedisServer::start_with("a_redis_restarted_with_aof_loses_nothing_answered_200", &aof)
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let (mut on_a, _) = Sub::joined(&a, "orders");
    let (mut on_b, _) = Sub::joined(&b, "orders");
    let epoch = log_epoch(&a);
    let ok = publishing_while(&a, "orders", |more| {
        more(30);
        redis.kill();
        wait_health(&a, 503);
        redis.restart();
        wait_health(&a, 200);
        wait_health(&b, 200);
    });
    channels::publish(&a, "orders", "end");

    let got_a = read_until(&mut on_a, "end");
    let got_b = read_until(&mut on_b, "end");
    assert_once_in_order(&got_a, &ok, "a's client");
    assert_once_in_order(&got_b, &ok, "b's client");
    assert_eq!(got_b, got_a);
    assert_eq!(log_epoch(&b), epoch, "the same log, kept by Redis");
    assert_eq!((a.stat("redis_resets"), b.stat("redis_resets")), (0, 0));
    // A client resumes from before the restart, on either node.
    let first = &got_a[0].id;
    for node in [&a, &b] {
        let mut sub = Sub::connect(node, &format!("orders?since={first}"));
        let replay = read_until_subscribed(&mut sub);
        let (end, replay) = replay.split_last().expect("a replay");
        assert_eq!((replay, &end.data), (&got_a[1..], &serde_json::json!("end")));
    }
}

/// `sub`'s messages up to its `subscribed` (the replay of a resume).
fn read_until_subscribed(sub: &mut Sub) -> Vec<Got> {
    let mut got = Vec::new();
    loop {
        let v = sub.next_json();
        if v["type"] == "subscribed" {
            return got;
        }
        got.push(channels::as_message(&v).unwrap_or_else(|| panic!("not a message: {v}")));
    }
}

#[test]
fn a_redis_restarted_without_persistence_resets_clients_instead_of_replaying() {
    let Some(mut redis) =
        RedisServer::start("a_redis_restarted_without_persistence_resets_clients_instead_of_replaying")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let (mut live, _) = Sub::joined(&a, "orders");
    let first = channels::publish(&a, "orders", "1").1;
    channels::publish(&b, "orders", "2");
    assert_eq!(live.messages(2).len(), 2);
    let old = log_epoch(&a).expect("an epoch");

    redis.kill();
    redis.restart();
    for node in [&a, &b] {
        wait_until("a new log", || {
            log_epoch(node).is_some_and(|e| e != old) && node.get("/healthz").0 == 200
        });
    }
    // The connected client is told at once that history is gone.
    let reset = live.expect_reset();
    let new = log_epoch(&a).expect("an epoch");
    assert_eq!(epoch_of(&reset), new);
    let (_, after) = channels::publish(&b, "orders", "3");
    let m = live.next_message();
    assert_eq!((m.id.as_str(), m.data.as_str()), (after.as_str(), Some("3")));

    // A resume from before the loss is a reset on either node, not "3" as
    // if it came right after "1".
    for node in [&a, &b] {
        let mut sub = Sub::connect(node, &format!("orders?since={first}"));
        assert_eq!(epoch_of(&sub.expect_reset()), new);
        sub.expect_subscribed();
    }
    assert_eq!((a.stat("redis_resets"), b.stat("redis_resets")), (1, 0));
}

#[test]
fn a_client_resumes_on_another_node_even_one_started_after_its_messages() {
    let Some(redis) =
        RedisServer::start("a_client_resumes_on_another_node_even_one_started_after_its_messages")
    else {
        return;
    };
    let a = node(&redis, "a");
    for n in 1..=3 {
        channels::publish(&a, "orders", &n.to_string());
    }
    let mut sub = Sub::connect(&a, "orders?last=3");
    let stored = read_until_subscribed(&mut sub);
    assert_eq!(stored.len(), 3);
    drop(sub);

    // b starts now: it reads the log from its start.
    let b = node(&redis, "b");
    channels::publish(&b, "orders", "4");
    channels::publish(&a, "orders", "5");
    let mut sub = Sub::connect(&b, &format!("orders?since={}", stored[0].id));
    let missed = read_until_subscribed(&mut sub);
    let data: Vec<&str> = missed.iter().filter_map(|m| m.data.as_str()).collect();
    assert_eq!(data, ["2", "3", "4", "5"], "what came after 1, from b");
    assert_eq!(missed[..2], stored[1..], "the same ids as on a");
    // From the last id a gave it: exactly what it missed, nothing twice.
    let mut from_last = Sub::connect(&b, &format!("orders?since={}", stored[2].id));
    assert_eq!(read_until_subscribed(&mut from_last), missed[2..]);
    channels::publish(&a, "orders", "6");
    assert_eq!(sub.next_message().data, "6", "then live");

    // And back to a, from the last id b gave.
    let mut sub = Sub::connect(&a, &format!("orders?since={}", missed[3].id));
    let data: Vec<_> = read_until_subscribed(&mut sub)
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(data, ["6"]);
    assert_eq!((a.stat("resets"), b.stat("resets")), (0, 0));
}

#[test]
fn a_node_back_after_the_log_was_trimmed_past_it_resets_its_clients() {
    let Some(redis) = RedisServer::start_with(
        "a_node_back_after_the_log_was_trimmed_past_it_resets_its_clients",
        &["--stream-node-max-entries", "10"],
    ) else {
        return;
    };
    assert_eq!(
        redis_command(redis.port, "ACL SETUSER node-b on >secret ~* &* +@all"),
        "+OK"
    );
    let max_len = ["--redis-stream-max-len", "20"];
    let a = node_at(&redis.url(), "a", &max_len);
    let b_url = format!("redis://node-b:secret@127.0.0.1:{}", redis.port);
    let b = node_at(&b_url, "b", &max_len);
    let (mut on_b, _) = Sub::joined(&b, "orders");
    let before = channels::publish(&a, "orders", "before").1;
    assert_eq!(on_b.next_message().id, before);

    // b loses its link and cannot come back while a publishes 100.
    assert_eq!(redis_command(redis.port, "ACL SETUSER node-b off"), "+OK");
    assert!(redis_command(redis.port, "CLIENT KILL USER node-b").starts_with(':'));
    wait_health(&b, 503);
    for n in 0..100 {
        channels::publish(&a, "orders", &n.to_string());
    }
    assert_eq!(redis_command(redis.port, "ACL SETUSER node-b on"), "+OK");
    wait_health(&b, 200);

    // Its client is told, then gets what the log still holds, in order.
    let reset = on_b.expect_reset();
    channels::publish(&a, "orders", "end");
    let rest = read_until(&mut on_b, "end");
    let numbers: Vec<u64> = rest
        .iter()
        .map(|m| m.data.as_str().and_then(|n| n.parse().ok()).expect("a number"))
        .collect();
    assert!(
        !numbers.is_empty() && numbers.len() < 100,
        "the log keeps about 20: {numbers:?}"
    );
    let from = numbers[0];
    assert_eq!(numbers, (from..100).collect::<Vec<_>>(), "the rest, in order");
    assert!(channels::seq_of(&rest[0].id) > channels::seq_of(&reset));
    assert_eq!(b.stat("redis_resets"), 1);

    // Later resumes across the gap are reset too; from the reset, complete.
    let mut sub = Sub::connect(&b, &format!("orders?since={before}"));
    sub.expect_reset();
    sub.expect_subscribed();
    let mut sub = Sub::connect(&b, &format!("orders?since={reset}"));
    let replay = read_until_subscribed(&mut sub);
    assert_eq!(replay[..rest.len()], rest[..]);
}

#[test]
fn a_node_whose_log_link_stays_down_is_degraded_then_recovers_what_was_logged_meanwhile() {
    const MEANWHILE: u64 = 50;
    let Some(redis) = RedisServer::start(
        "a_node_whose_log_link_stays_down_is_degraded_then_recovers_what_was_logged_meanwhile",
    ) else {
        return;
    };
    assert_eq!(
        redis_command(redis.port, "ACL SETUSER node-b on >secret ~* &* +@all"),
        "+OK"
    );
    let a = node(&redis, "a");
    let b = node_at(
        &format!("redis://node-b:secret@127.0.0.1:{}", redis.port),
        "b",
        &[],
    );
    let (mut on_a, _) = Sub::joined(&a, "orders");
    let (mut on_b, _) = Sub::joined(&b, "orders");
    channels::publish(&a, "orders", "before");
    assert_eq!(on_a.next_message().data, "before");
    assert_eq!(on_b.next_message().data, "before");

    // Redis closes b's log reader connection, and b cannot log in again
    // until it is let: b says so at once, and refuses publishes.
    assert_eq!(redis_command(redis.port, "ACL SETUSER node-b off"), "+OK");
    assert_eq!(kill_connections(redis.port, ".b.reader"), 1);
    wait_health(&b, 503);
    assert_eq!(b.get("/healthz").1, "degraded");
    assert_eq!(b.stats()["redis_up"], false);
    let refused = b.get("/publish/orders?msg=refused");
    assert_eq!(refused, (503, r#"{"error":"redis unavailable"}"#.to_owned()));
    for n in 0..MEANWHILE {
        channels::publish(&a, "orders", &n.to_string());
    }
    assert_eq!(b.stat("redis_link_drops"), 1);
    assert_eq!(b.get("/healthz").0, 503, "still down while it cannot log in");

    assert_eq!(redis_command(redis.port, "ACL SETUSER node-b on"), "+OK");
    wait_health(&b, 200);
    channels::publish(&a, "orders", "end");
    let got_a = read_until(&mut on_a, "end");
    let got_b = read_until(&mut on_b, "end");
    let all: Vec<u64> = (0..MEANWHILE).collect();
    assert_once_in_order(&got_b, &all, "b's client");
    assert_eq!(
        got_b, got_a,
        "the same messages and ids as a's client, the refused one on neither"
    );

    let counted = (
        b.stat("redis_link_drops"),
        b.stat("redis_reconnects"),
        b.stat("redis_messages_recovered"),
        b.stat("redis_resets"),
    );
    assert_eq!(counted, (1, 1, MEANWHILE, 0), "{}", b.stats());
    // Read from the log: `before`, the ones logged meanwhile and `end` (the
    // announcements on the subscription are not messages).
    let read = MEANWHILE + 2;
    wait_until("b counts what it read", || {
        b.stat("redis_messages_received") >= read
    });
    assert_eq!(b.stat("redis_messages_received"), read, "{}", b.stats());
    let metrics = b.get("/metrics").1;
    for line in [
        "wspush_redis_up 1".to_owned(),
        "wspush_redis_link_drops_total 1".to_owned(),
        format!("wspush_redis_messages_recovered_total {MEANWHILE}"),
        "wspush_redis_resets_total 0".to_owned(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from:\n{metrics}"
        );
    }
}

#[test]
fn a_token_minted_on_one_node_resumes_its_client_on_the_other() {
    let Some(redis) = RedisServer::start("a_token_minted_on_one_node_resumes_its_client_on_the_other") else {
        return;
    };
    let secret = ["--subscribe-secret", tokens::SECRET];
    let a = node_at(&redis.url(), "a", &secret);
    let b = node_at(&redis.url(), "b", &secret);
    let minted = tokens::mint(&a, &serde_json::json!({"channels": ["orders"], "ttl": 300}));
    let token = minted["token"].as_str().expect("a token");

    let (mut on_a, _) = Sub::joined(&a, &format!("orders?token={token}"));
    let (_, first) = channels::publish(&a, "orders", "1");
    assert_eq!(on_a.next_message().id, first);
    drop(on_a);
    channels::publish(&a, "orders", "2");

    assert_eq!(Sub::refused(&b, &format!("orders?since={first}")).status, 401);
    let mut on_b = Sub::connect(&b, &format!("orders?since={first}&token={token}"));
    let missed: Vec<_> = read_until_subscribed(&mut on_b)
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(missed, ["2"]);
}
