//! Event streams resume as `/ws/…` clients do: from `Last-Event-ID` (what
//! EventSource sends when it reconnects, which wins over the URL's `since`)
//! or `?since=`, exactly once and in order even while publishes race the
//! reconnects; `?last=N` sends the newest N; an id that cannot be resumed
//! from (another run, evicted, malformed) is an `event: reset` carrying the
//! id to resume from next, never an error a reconnecting client would loop on.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/sse.rs"]
mod sse;
mod support;

use channels::{epoch_of, publish, Got};
use serde_json::json;
use sse::SseClient;
use support::TestServer;

fn ids(messages: &[Got]) -> Vec<String> {
    messages.iter().map(|m| m.id.clone()).collect()
}

#[test]
fn last_event_id_or_since_replays_what_was_missed_then_goes_live() {
    let server = TestServer::start(&[]);
    let mut stream = SseClient::connect(server.ws, "orders");
    stream.expect_subscribed();
    publish(&server, "orders", "seen");
    let seen = stream.next_message();
    drop(stream);
    server.wait_clients(0);
    let missed: Vec<String> = ["o1", "o2"]
        .iter()
        .map(|msg| publish(&server, "orders", msg).1)
        .collect();
    publish(&server, "other", "not for it");

    // EventSource reconnects to the URL it first opened, with the header.
    let header = [("Last-Event-ID", seen.id.as_str())];
    let mut back = SseClient::connect_with(server.ws, "orders", &header);
    assert_eq!(ids(&back.messages(2)), missed);
    let latest = back.expect_subscribed();
    let live = publish(&server, "orders", "live").1;
    assert_eq!(back.next_message().id, live);
    assert_eq!(back.last_event_id(), live);

    // ?since= does the same, and the header wins over an older since.
    let mut by_since = SseClient::connect(server.ws, &format!("orders?since={}", seen.id));
    assert_eq!(ids(&by_since.messages(3))[..2], missed[..]);
    by_since.expect_subscribed();
    let newer = [("Last-Event-ID", latest.as_str())];
    let mut both = SseClient::connect_with(server.ws, &format!("orders?since={}", seen.id), &newer);
    assert_eq!(
        both.next_message().id,
        live,
        "only what came after the header's id"
    );
    both.expect_subscribed();
    let stats = server.counters();
    assert_eq!((stats.resumes, stats.resets, stats.messages_replayed), (3, 0, 6));
}

#[test]
fn an_id_that_cannot_be_resumed_from_is_a_reset_with_the_id_to_resume_from() {
    let server = TestServer::start(&["--history-size", "2"]);
    let since = publish(&server, "a", "0").1;
    for i in 1..=3 {
        publish(&server, "a", &i.to_string());
    }
    let latest = publish(&server, "b", "other").1;
    let other_run = if epoch_of(&latest) == "0000000000000001" {
        "0000000000000002-1"
    } else {
        "0000000000000001-1"
    };
    // Evicted, from another run, malformed (as a header and in the URL).
    for (target, header) in [
        (format!("a?since={since}"), None),
        ("a".to_owned(), Some(since.as_str())),
        ("a".to_owned(), Some(other_run)),
        ("a".to_owned(), Some("garbage, not an id")),
        ("a?since=%ff".to_owned(), None),
    ] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("Last-Event-ID", h)).into_iter().collect();
        let mut stream = SseClient::connect_with(server.ws, &target, &headers);
        assert_eq!(stream.expect_reset(), latest, "{target} {header:?}");
        assert_eq!(stream.expect_subscribed(), latest);
        // What EventSource resends next time resumes cleanly: no loop.
        let resume_at = [("Last-Event-ID", stream.last_event_id())];
        let mut again = SseClient::connect_with(server.ws, "a", &resume_at);
        assert_eq!(again.expect_subscribed(), latest);
    }
    let stats = server.counters();
    assert_eq!((stats.resets, stats.resumes), (5, 5));
}

#[test]
fn last_n_sends_the_newest_stored_messages_then_subscribed() {
    let server = TestServer::start(&[]);
    let mut expected = Vec::new();
    for (channel, msg) in [("a", "1"), ("b", "2"), ("all", "3"), ("a", "4")] {
        let id = publish(&server, channel, msg).1;
        if channel != "b" {
            expected.push(id);
        }
    }
    let mut stream = SseClient::connect(server.ws, "a?last=2");
    let got = stream.messages(2);
    assert_eq!(ids(&got), expected[1..]);
    assert_eq!(got[0].data, json!("3"));
    assert_eq!(stream.expect_subscribed(), expected[2]);
    let mut none = SseClient::connect(server.ws, "a?last=0");
    none.expect_subscribed();
}

/// Reads `count` messages of `c`, reconnecting with `Last-Event-ID` after
/// every `1 + n % 17` events; returns the ids it got and how often it reconnected.
fn resume_over_and_over(server: &TestServer, reader: usize, count: usize) -> (Vec<String>, usize) {
    let mut stream = SseClient::connect(server.ws, "c");
    stream.expect_subscribed();
    let (mut got, mut reconnects, mut events) = (Vec::new(), 0, 0usize);
    while got.len() < count {
        let event = stream.next_event();
        if event.kind == "message" {
            let m = channels::as_message(&event.json()).expect("a channel message");
            assert_eq!(
                m.data,
                json!(got.len().to_string()),
                "reader {reader}: gap or repeat"
            );
            got.push(m.id);
        } else {
            assert_eq!(event.kind, "subscribed", "reader {reader}: {event:?}");
        }
        events += 1;
        if events % (1 + (reader * 5 + reconnects) % 17) == 0 && got.len() < count {
            let resume_at = stream.last_event_id().to_owned();
            drop(stream);
            stream = SseClient::connect_with(server.ws, "c", &[("Last-Event-ID", &resume_at)]);
            reconnects += 1;
            events = 0;
        }
    }
    (got, reconnects)
}

#[test]
fn streams_resuming_over_and_over_during_publishes_get_every_message_once_in_order() {
    const COUNT: usize = 400;
    let server = TestServer::start(&["--history-size", "10000", "--recovery-max", "10000"]);
    channels::assert_resumes_race_publishes(&server, 4, COUNT, COUNT / 20, resume_over_and_over);
}
