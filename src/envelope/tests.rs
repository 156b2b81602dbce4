//! Envelopes are valid JSON whatever the payload, and carry it unchanged.

use std::time::Instant;

use serde_json::{json, Value};

use super::*;
use crate::history::Epoch;

fn id(seq: u64) -> MessageId {
    MessageId::new(Epoch::from_raw(0x0123_4567_89ab_cdef), seq)
}

fn orders() -> ChannelName {
    ChannelName::new("orders").unwrap()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_json_publish_is_embedded_as_sent() {
    let body = "\n { \"b\" : [1, 2.50, \"x\"], \"a\":null }\r\n";
    let text = message(&orders(), &id(42), &Data::new(Payload::Json(body)));
    // Not re-serialised: key order, spacing and 2.50 stay; only the outer whitespace goes.
    assert_eq!(
        text,
        r#"{"channel":"orders","id":"0123456789abcdef-42","data":{ "b" : [1, 2.50, "x"], "a":null }}"#
    );
    assert_eq!(parse(&text)["data"]["b"][2], "x");
}

#[test]
fn text_is_a_json_string_whatever_it_holds() {
    let tricky = [
        "",
        "plain",
        "quote \" and backslash \\ and slash /",
        "controls \u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
        "non-ASCII: é 日本 🎉 \u{2028}\u{2029} \u{feff}",
        "looks like JSON: {\"a\":1}",
        "</script><!--",
        "\\u0000 literally",
    ];
    for text in tricky {
        let data = Data::new(Payload::Text(text));
        let envelope = parse(&message(&orders(), &id(1), &data));
        assert_eq!(
            envelope,
            json!({"channel": "orders", "id": "0123456789abcdef-1", "data": text})
        );
        assert_eq!(parse(&echo(&data)), json!({"type": "echo", "data": text}));
        assert_eq!(parse(&direct(&data)), json!({"type": "direct", "data": text}));
    }
}

#[test]
fn binary_is_base64_in_an_object() {
    let bytes: Vec<u8> = (0..=255).collect();
    let data = Data::new(Payload::Binary(&bytes));
    let envelope = parse(&message(&ChannelName::all(), &id(7), &data));
    let encoded = envelope["data"]["base64"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(encoded).unwrap(),
        bytes
    );
    assert_eq!(envelope["channel"], "all");
    assert_eq!(Data::new(Payload::Binary(b"")).as_str(), r#"{"base64":""}"#);
    assert_eq!(Data::new(Payload::Binary(b"hi")).as_str(), r#"{"base64":"aGk="}"#);
    assert_eq!(
        echo(&Data::new(Payload::Binary(b"hi"))),
        r#"{"type":"echo","data":{"base64":"aGk="}}"#
    );
}

#[test]
fn every_channel_character_and_any_id_need_no_escaping() {
    let channel = ChannelName::new("Az09_.:@-").unwrap();
    let max = id(u64::MAX);
    let envelope = parse(&message(&channel, &max, &Data::new(Payload::Json("1"))));
    assert_eq!(envelope["channel"], "Az09_.:@-");
    assert_eq!(envelope["id"], max.to_string());
    assert_eq!(envelope["data"], 1);
}

#[test]
fn reset_names_the_latest_id() {
    assert_eq!(reset(&id(9)), r#"{"type":"reset","id":"0123456789abcdef-9"}"#);
    assert_eq!(parse(&reset(&id(0)))["id"], "0123456789abcdef-0");
}

/// Encoding cost per publish, printed (run with `--ignored --nocapture`):
/// `Data::new` outside the lock, `message` under it, and the WebSocket frame.
#[test]
#[ignore = "a timing report, not a test"]
fn encoding_cost() {
    const ROUNDS: u32 = 200_000;
    for size in [100, 1024] {
        let plain = "a".repeat(size);
        // One character in six needs escaping or is not ASCII.
        let tricky: String = "abcd\"é".chars().cycle().take(size).collect();
        let json = format!("{{\"t\":\"{}\"}}", "a".repeat(size - 8));
        let bytes = vec![0x5au8; size];
        for (kind, payload) in [
            ("json", Payload::Json(&json)),
            ("text", Payload::Text(&plain)),
            ("text with escapes", Payload::Text(&tricky)),
            ("binary", Payload::Binary(&bytes)),
        ] {
            let (channel, id) = (orders(), id(123_456));
            let data = time(ROUNDS, || Data::new(payload));
            let wrapped = time(ROUNDS, || message(&channel, &id, &Data::new(payload)));
            let framed = time(ROUNDS, || {
                crate::frame::text(&message(&channel, &id, &Data::new(payload)))
            });
            println!(
                "{size:>5} B {kind:<17}: data {data:>5} ns, + envelope {wrapped:>5} ns, + ws frame {framed:>5} ns"
            );
        }
    }
}

fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> u128 {
    let mut samples: Vec<u128> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(f());
            }
            start.elapsed().as_nanos() / u128::from(rounds)
        })
        .collect();
    samples.sort_unstable();
    samples[3]
}

#[test]
fn subscribed_names_the_latest_id_and_every_channel() {
    let channels = ChannelSet::parse("orders,billing", 16).unwrap();
    let text = subscribed(&id(7), &channels);
    assert_eq!(
        parse(&text),
        json!({"type": "subscribed", "id": "0123456789abcdef-7", "channels": ["all", "orders", "billing"]})
    );
}

#[test]
fn message_len_is_the_length_of_the_message() {
    for data in [
        Data::new(Payload::Text("héllo")),
        Data::new(Payload::Binary(&[0, 255])),
    ] {
        for seq in [0, 9, 10, 123_456] {
            let text = message(&orders(), &id(seq), &data);
            assert_eq!(message_len(&orders(), &id(seq), &data), text.len());
        }
    }
}
