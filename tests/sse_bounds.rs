//! An event stream's end and cost: a client that never reads is dropped by
//! the outbox's bounds (and resumes from history); a client that closes is
//! noticed at once by the ping comment its end of input triggers, while one
//! that only half-closed keeps its stream until it is gone, which the next
//! ping comment shows; a message is encoded as an event once, however many
//! streams get it, and not at all for a channel without one.

#[path = "support/channels.rs"]
mod channels;
#[path = "support/sse.rs"]
mod sse;
mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::Instant;

use sse::{Item, SseClient};
use support::{read_to_end, small_window_connect, wait_until, TestServer, DEADLINE};

#[test]
fn a_stream_that_is_never_read_is_dropped_by_the_bounds_and_resumes() {
    // A write timeout far away, so only the full queue can drop the client.
    let server = TestServer::start(&["--queue-len", "16", "--write-timeout", "30"]);
    let mut mute = small_window_connect(server.ws);
    mute.write_all(sse::request(server.ws, "a", &[]).as_bytes())
        .expect("send the request");
    let mut reader = SseClient::connect(server.ws, "a");
    reader.expect_subscribed();
    server.wait_clients(2);
    let big = "x".repeat(8192);
    let mut ids = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while server.counters().slow_clients_dropped == 0 {
        assert!(Instant::now() < deadline, "the mute stream was never dropped");
        ids.push(channels::publish(&server, "a", &big).1);
        assert_eq!(
            reader.next_message().id,
            ids[ids.len() - 1],
            "the reader keeps up"
        );
    }
    assert!(
        ids.len() > 16,
        "the queue filled only after the socket buffers did"
    );
    server.wait_clients(1);
    // The server ended the mute stream; reconnecting, it gets what it missed.
    let _ = read_to_end(&mut mute);
    let resume_at = [("Last-Event-ID", ids[ids.len() - 2].as_str())];
    let mut back = SseClient::connect_with(server.ws, "a", &resume_at);
    assert_eq!(back.next_message().id, ids[ids.len() - 1]);
    back.expect_subscribed();
    assert_eq!(server.counters().clients_reaped, 0);
}

#[test]
fn a_client_that_closes_is_noticed_at_once_without_waiting_for_a_ping() {
    // No ping of the pinger's comes within the test: with `text` its rounds
    // ping everyone once an interval (frame pings are spread over it).
    let server = TestServer::start(&[
        "--ping-style",
        "text",
        "--ping-interval",
        "3600",
        "--pong-timeout",
        "7200",
    ]);
    let mut stream = SseClient::connect(server.ws, "a");
    stream.expect_subscribed();
    server.wait_clients(1);
    drop(stream);
    server.wait_clients(0);
    let mut shut = SseClient::connect(server.ws, "a");
    shut.expect_subscribed();
    server.wait_clients(1);
    shut.stream.shutdown(Shutdown::Both).expect("shutdown");
    server.wait_clients(0);
}

#[test]
fn a_half_closed_client_keeps_its_stream_until_a_ping_comment_finds_it_gone() {
    let server = TestServer::start(&["--ping-interval", "0.2"]);
    let mut stream = SseClient::connect(server.ws, "a");
    stream.expect_subscribed();
    // Done sending, still reading (as `nc -N` is).
    stream.stream.shutdown(Shutdown::Write).expect("half-close");
    let id = channels::publish(&server, "a", "still here").1;
    assert_eq!(stream.next_message().id, id);
    let mut pings = 0;
    while pings < 3 {
        if stream.next_item().expect("the stream goes on") == Item::Comment("ping".into()) {
            pings += 1;
        }
    }
    assert_eq!(server.counters().clients, 1);
    // Gone for good: the next ping comment is answered with a reset.
    drop(stream);
    server.wait_clients(0);
    assert_eq!(server.counters().slow_clients_dropped, 0);
}

#[test]
fn a_message_is_encoded_as_an_event_once_for_a_thousand_streams() {
    const STREAMS: usize = 1000;
    let server = TestServer::start(&[]);
    let mut streams: Vec<SseClient> = (0..STREAMS).map(|_| SseClient::connect(server.ws, "a")).collect();
    let (mut quiet, _) = channels::Sub::joined(&server, "quiet");
    server.wait_clients(STREAMS as u64 + 1);
    let published: Vec<String> = ["1", "2", "3"]
        .iter()
        .map(|msg| channels::publish(&server, "a", msg).1)
        .collect();
    // A channel no stream is on: its message is never made into an event.
    let (clients, _) = channels::publish(&server, "quiet", "ws only");
    assert_eq!(clients, 1);
    assert_eq!(quiet.next_message().data, serde_json::json!("ws only"));
    let mut datas = Vec::new();
    for stream in &mut streams {
        stream.expect_subscribed();
        let got = stream.messages(3);
        assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), published);
        datas.push(got);
    }
    assert!(datas.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(server.stat("sse_events_encoded"), 3, "once per message");
    // A replay shares the events made for the live streams.
    let mut back = SseClient::connect_with(server.ws, "a", &[("Last-Event-ID", &published[0])]);
    let replayed: Vec<String> = back.messages(2).into_iter().map(|m| m.id).collect();
    assert_eq!(replayed, published[1..]);
    back.expect_subscribed();
    wait_until("the replay counted", || server.counters().messages_replayed == 2);
    assert_eq!(server.stat("sse_events_encoded"), 3);
}
