//! Resume: `?since=` replays exactly what a client missed, in order, then
//! `subscribed`, then live messages, even while publishes race the resume;
//! every case where that cannot be complete is an explicit reset (unknown
//! epoch, unreadable or future `since`, evicted by size, TTL or bytes, more
//! than `--recovery-max`, more than the client's queue holds); `?last=N`
//! sends the newest N; `subscribed` names the latest id, so a client that
//! has received nothing yet resumes from it without a gap.

#[path = "support/channels.rs"]
mod channels;
mod support;

use channels::{as_message, epoch_of, publish, Got, Sub};
use serde_json::json;
use support::{wait_until, TestServer};

fn ids(messages: &[Got]) -> Vec<String> {
    messages.iter().map(|m| m.id.clone()).collect()
}

#[test]
fn since_replays_exactly_what_was_missed_in_order_then_goes_live() {
    let server = TestServer::start(&[]);
    let (mut sub, _) = Sub::joined(&server, "orders,billing");
    publish(&server, "orders", "seen");
    let seen = sub.next_message();
    drop(sub);
    server.wait_clients(0);

    let mut missed = Vec::new();
    for (channel, msg) in [
        ("orders", "o1"),
        ("other", "x"),
        ("billing", "b1"),
        ("all", "a1"),
        ("orders", "o2"),
    ] {
        let id = publish(&server, channel, msg).1;
        if channel != "other" {
            missed.push((channel, msg, id));
        }
    }
    let mut back = Sub::connect(&server, &format!("orders,billing?since={}", seen.id));
    let replayed = back.messages(missed.len());
    let got: Vec<_> = replayed
        .iter()
        .map(|m| (m.channel.as_str(), m.data.as_str().unwrap(), m.id.clone()))
        .collect();
    let expected: Vec<_> = missed.iter().map(|(c, m, id)| (*c, *m, id.clone())).collect();
    assert_eq!(
        got, expected,
        "every missed message of its channels, once, in id order"
    );
    assert_eq!(back.expect_subscribed(), missed[3].2.clone(), "latest: o2's id");
    let live = publish(&server, "billing", "live").1;
    assert_eq!(back.next_message().id, live);
    let stats = server.counters();
    assert_eq!((stats.resumes, stats.resets, stats.messages_replayed), (1, 0, 4));
}

#[test]
fn a_quiet_client_resumes_from_subscribed_and_misses_nothing() {
    let server = TestServer::start(&[]);
    let (_, empty) = Sub::joined(&server, "quiet");
    assert!(empty.ends_with("-0"), "before the first publish: {empty}");
    publish(&server, "elsewhere", "x");
    let (sub, latest) = Sub::joined(&server, "quiet");
    assert_eq!(channels::seq_of(&latest), 1, "subscribed carries the latest id");
    assert_eq!(epoch_of(&latest), epoch_of(&empty));
    drop(sub);
    let a = publish(&server, "quiet", "while away 1").1;
    let b = publish(&server, "quiet", "while away 2").1;
    let mut back = Sub::connect(&server, &format!("quiet?since={latest}"));
    assert_eq!(ids(&back.messages(2)), [a.clone(), b.clone()]);
    assert_eq!(back.expect_subscribed(), b);
    // The id of an empty server resumes too.
    let mut from_zero = Sub::connect(&server, &format!("quiet?since={empty}"));
    assert_eq!(ids(&from_zero.messages(2)), [a, b]);
    from_zero.expect_subscribed();
}

/// Reads `count` messages of `c`, reconnecting with `since` after every
/// `1 + n % 23` frames (politely or by dropping the socket); returns what it got.
fn resume_over_and_over(server: &TestServer, reader: usize, count: usize) -> (Vec<String>, usize) {
    let (mut sub, _) = Sub::joined(server, "c");
    let (mut got, mut reconnects, mut frames) = (Vec::new(), 0, 0usize);
    while got.len() < count {
        // The last message or `subscribed` read: where to resume from.
        let resume_at: String;
        let v = sub.next_json();
        if let Some(m) = as_message(&v) {
            assert_eq!(
                m.data,
                json!((got.len()).to_string()),
                "reader {reader}: gap or repeat"
            );
            resume_at = m.id.clone();
            got.push(m.id);
        } else {
            assert_eq!(v["type"], "subscribed", "reader {reader}: {v}");
            resume_at = v["id"].as_str().unwrap().to_owned();
        }
        frames += 1;
        if frames % (1 + (reader * 7 + reconnects) % 23) == 0 && got.len() < count {
            if reconnects % 2 == 0 {
                sub.ws.close();
            } else {
                drop(sub);
            }
            sub = Sub::connect(server, &format!("c?since={resume_at}"));
            reconnects += 1;
            frames = 0;
        }
    }
    (got, reconnects)
}

#[test]
fn clients_resuming_over_and_over_during_publishes_get_every_message_once_in_order() {
    const COUNT: usize = 600;
    let server = TestServer::start(&["--history-size", "10000", "--recovery-max", "10000"]);
    channels::assert_resumes_race_publishes(&server, 4, COUNT, COUNT / 30, resume_over_and_over);
}

/// Subscribes to `target` expecting a reset: returns the reset's id after
/// checking `subscribed` follows with the same id.
fn expect_reset(server: &TestServer, target: &str) -> String {
    let mut sub = Sub::connect(server, target);
    let reset = sub.expect_reset();
    assert_eq!(
        sub.expect_subscribed(),
        reset,
        "{target}: reset and subscribed name the latest id"
    );
    reset
}

#[test]
fn since_from_another_run_unreadable_or_in_the_future_is_a_reset() {
    let server = TestServer::start(&[]);
    let latest = publish(&server, "a", "x").1;
    let epoch = epoch_of(&latest);
    let other = if epoch == "0000000000000001" {
        "0000000000000002"
    } else {
        "0000000000000001"
    };
    for since in [
        format!("{other}-1"),
        "garbage".to_owned(),
        String::new(),
        format!("{epoch}-2"),
        format!("{epoch}-01"),
    ] {
        assert_eq!(
            expect_reset(&server, &format!("a?since={since}")),
            latest,
            "since={since:?}"
        );
    }
    assert_eq!(server.counters().resets, 5);
    assert_eq!(server.counters().resumes, 0);
}

#[test]
fn messages_evicted_by_size_or_bytes_make_a_reset() {
    let server = TestServer::start(&["--history-size", "2"]);
    let since = publish(&server, "a", "0").1;
    for i in 1..=3 {
        publish(&server, "a", &i.to_string());
    }
    let latest = publish(&server, "b", "other").1;
    assert_eq!(expect_reset(&server, &format!("a?since={since}")), latest);
    // The two kept are replayed to a client that saw what came just before them.
    let kept_from = format!("{}-2", epoch_of(&since));
    let mut sub = Sub::connect(&server, &format!("a?since={kept_from}"));
    let data: Vec<_> = sub.messages(2).into_iter().map(|m| m.data).collect();
    assert_eq!(data, [json!("2"), json!("3")]);
    sub.expect_subscribed();

    let bytes = TestServer::start(&["--history-bytes", "3000"]);
    let since = publish(&bytes, "a", "small").1;
    let big = "x".repeat(1000);
    let mut last = String::new();
    for _ in 0..3 {
        last = publish(&bytes, "a", &big).1;
    }
    assert_eq!(expect_reset(&bytes, &format!("a?since={since}")), last);
    assert!(bytes.stat("history_bytes") <= 3000, "{}", bytes.stats());
}

#[test]
fn messages_past_the_ttl_are_dropped_and_make_a_reset() {
    let server = TestServer::start(&["--history-ttl", "0.3", "--ping-interval", "0.05"]);
    let (mut sub, since) = Sub::joined(&server, "a");
    let id = publish(&server, "a", "soon gone").1;
    assert_eq!(sub.next_message().id, id);
    // The pinger's tick drops it: no publish needed.
    wait_until("the message expired", || server.stat("history_messages") == 0);
    assert_eq!(expect_reset(&server, &format!("a?since={since}")), id);
    // From its own id nothing is missing: no reset.
    let mut fine = Sub::connect(&server, &format!("a?since={id}"));
    assert_eq!(fine.expect_subscribed(), id);
}

#[test]
fn more_than_recovery_max_or_the_queue_holds_is_a_reset() {
    let server = TestServer::start(&["--recovery-max", "3"]);
    let since = publish(&server, "a", "0").1;
    let three: Vec<String> = (1..=3).map(|i| publish(&server, "a", &i.to_string()).1).collect();
    let mut sub = Sub::connect(&server, &format!("a?since={since}"));
    assert_eq!(ids(&sub.messages(3)), three, "exactly --recovery-max is replayed");
    sub.expect_subscribed();
    let fourth = publish(&server, "a", "4").1;
    sub.next_message();
    assert_eq!(expect_reset(&server, &format!("a?since={since}")), fourth);

    // Three missed messages and `subscribed` are four frames: over --queue-len 3.
    let frames = TestServer::start(&["--queue-len", "3"]);
    let since = publish(&frames, "a", "0").1;
    let missed: Vec<String> = (1..=3).map(|i| publish(&frames, "a", &i.to_string()).1).collect();
    let mut latest = missed[2].clone();
    assert_eq!(expect_reset(&frames, &format!("a?since={since}")), latest);
    let two_back = format!("{}-2", epoch_of(&since));
    let mut fits = Sub::connect(&frames, &format!("a?since={two_back}"));
    assert_eq!(ids(&fits.messages(2)), missed[1..], "two and subscribed fit");
    fits.expect_subscribed();

    // Over --queue-bytes: 3 × 1,000 bytes do not fit 2,500.
    let bytes = TestServer::start(&["--queue-bytes", "2500"]);
    let since = publish(&bytes, "a", "0").1;
    for _ in 0..3 {
        latest = publish(&bytes, "a", &"y".repeat(1000)).1;
    }
    assert_eq!(expect_reset(&bytes, &format!("a?since={since}")), latest);
    assert_eq!(bytes.counters().slow_clients_dropped, 0);
}

#[test]
fn last_n_sends_the_newest_stored_messages_of_the_channels() {
    let server = TestServer::start(&["--queue-len", "5"]);
    let mut expected = Vec::new();
    for (channel, msg) in [
        ("a", "1"),
        ("all", "2"),
        ("b", "3"),
        ("a", "4"),
        ("all", "5"),
        ("a", "6"),
    ] {
        let id = publish(&server, channel, msg).1;
        if channel != "b" {
            expected.push(id);
        }
    }
    let mut sub = Sub::connect(&server, "a?last=3");
    assert_eq!(
        ids(&sub.messages(3)),
        expected[2..],
        "the newest 3 of a and all, in order"
    );
    assert_eq!(sub.expect_subscribed(), expected[4]);
    let mut none = Sub::connect(&server, "a?last=0");
    none.expect_subscribed();
    // More than the queue holds (5 frames with `subscribed`): the newest 4.
    let mut trimmed = Sub::connect(&server, "a?last=100");
    assert_eq!(ids(&trimmed.messages(4)), expected[1..]);
    trimmed.expect_subscribed();
    let live = publish(&server, "a", "live").1;
    for sub in [&mut sub, &mut none, &mut trimmed] {
        assert_eq!(sub.next_message().id, live);
    }
    let stats = server.counters();
    assert_eq!((stats.messages_replayed, stats.resumes, stats.resets), (7, 0, 0));
}
