//! What `sse` writes reads back, through a parser written from the standard,
//! as the events, ids and data that were encoded.

mod parser;

use parser::{parse, Event};

use super::*;
use crate::history::Epoch;

fn id(seq: u64) -> MessageId {
    MessageId::new(Epoch::from_raw(0x0123_4567_89ab_cdef), seq)
}

fn event(kind: &str, data: &str, last_event_id: &str) -> Event {
    Event {
        kind: kind.to_owned(),
        data: data.to_owned(),
        last_event_id: last_event_id.to_owned(),
    }
}

/// `text` as an SSE client gets it back: CR and CRLF become LF.
fn as_received(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[test]
fn a_message_is_its_id_and_the_envelope_as_data() {
    let envelope = r#"{"channel":"orders","id":"0123456789abcdef-7","data":"hi"}"#;
    let bytes = message(&id(7), envelope);
    assert_eq!(
        &*bytes,
        format!("id: 0123456789abcdef-7\ndata: {envelope}\n\n").as_bytes()
    );
    let stream = parse(&bytes);
    assert_eq!(stream.events, [event("message", envelope, "0123456789abcdef-7")]);
}

#[test]
fn the_start_and_pings_dispatch_nothing_but_set_the_retry() {
    let mut bytes = STREAM_START.to_vec();
    bytes.extend_from_slice(&ping());
    bytes.extend_from_slice(&message(&id(1), "{}"));
    bytes.extend_from_slice(PING);
    let stream = parse(&bytes);
    assert_eq!(stream.retry_ms, Some(2000));
    assert_eq!(stream.events, [event("message", "{}", "0123456789abcdef-1")]);
}

#[test]
fn controls_are_named_events_and_only_those_with_an_id_move_the_resume_point() {
    let reset = r#"{"type":"reset","id":"0123456789abcdef-9"}"#;
    let direct = r#"{"type":"direct","data":"just you"}"#;
    let subscribed = r#"{"type":"subscribed","id":"0123456789abcdef-9","channels":["all"]}"#;
    let mut bytes = message(&id(3), "{}").to_vec();
    bytes.extend_from_slice(&control(Control::Reset, Some(&id(9)), reset));
    bytes.extend_from_slice(&control(Control::Direct, None, direct));
    bytes.extend_from_slice(&control(Control::Subscribed, Some(&id(9)), subscribed));
    let stream = parse(&bytes);
    assert_eq!(
        stream.events,
        [
            event("message", "{}", "0123456789abcdef-3"),
            event("reset", reset, "0123456789abcdef-9"),
            // No `id:` line: an empty one would have cleared the resume point.
            event("direct", direct, "0123456789abcdef-9"),
            event("subscribed", subscribed, "0123456789abcdef-9"),
        ]
    );
    assert_eq!(stream.last_event_id, "0123456789abcdef-9");
    assert!(!String::from_utf8_lossy(&control(Control::Direct, None, direct)).contains("id:"));
}

#[test]
fn any_text_arrives_as_sent_with_line_breaks_as_lf() {
    let cases = [
        "",
        " ",
        "  two leading spaces",
        "a\nb",
        "a\r\nb",
        "a\rb",
        "ends with a break\n",
        "\n",
        "\r\n\r\n",
        "\r\r",
        "blank\n\nline inside",
        "data: looks like a field\nid: 99\nevent: reset\n: comment\nretry: 1",
        "żółw 🐢 \u{feff} ünïcödé",
        "{\n  \"pretty\": true\r\n}",
        "nul \0 inside",
    ];
    for (seq, text) in (1..).zip(cases) {
        let stream = parse(&message(&id(seq), text));
        assert_eq!(
            stream.events,
            [event("message", &as_received(text), &id(seq).to_string())],
            "data {text:?}"
        );
    }
}

#[test]
fn every_mix_of_breaks_and_characters_round_trips() {
    // Every text of up to four pieces: each line-break kind, both orders of CR
    // and LF, spaces and colons where a parser could take them for syntax.
    let pieces = ["a", "\n", "\r", "\r\n", " ", ":", "é", "\n\r"];
    let mut texts = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = texts
            .iter()
            .flat_map(|t| pieces.iter().map(move |p| format!("{t}{p}")))
            .collect();
        texts.extend(longer);
    }
    texts.sort();
    texts.dedup();
    let mut bytes = STREAM_START.to_vec();
    for (seq, text) in (1..).zip(&texts) {
        bytes.extend_from_slice(&message(&id(seq), text));
        bytes.extend_from_slice(PING);
    }
    let stream = parse(&bytes);
    let got: Vec<String> = stream.events.into_iter().map(|e| e.data).collect();
    let want: Vec<String> = texts.iter().map(|t| as_received(t)).collect();
    assert_eq!(got, want);
}

#[test]
fn a_line_per_data_line_and_the_capacity_is_exact_for_one_line() {
    assert_eq!(
        &*message(&id(1), "a\r\nb\rc\n"),
        b"id: 0123456789abcdef-1\ndata: a\ndata: b\ndata: c\ndata: \n\n"
    );
    let one_line = encode(Some("reset"), Some(&id(12345)), r#"{"x":1}"#);
    assert_eq!(one_line.len(), one_line.capacity(), "one allocation, no growth");
}

#[test]
fn a_stream_cut_inside_an_event_loses_only_that_event() {
    let mut bytes = message(&id(1), "kept").to_vec();
    let second = message(&id(2), "cut");
    for cut in 0..second.len() {
        let mut cut_stream = bytes.clone();
        cut_stream.extend_from_slice(&second[..cut]);
        let stream = parse(&cut_stream);
        assert_eq!(stream.events.len(), 1, "cut after {cut} bytes");
        assert_eq!(stream.events[0].data, "kept");
    }
    bytes.extend_from_slice(&second);
    assert_eq!(parse(&bytes).events.len(), 2);
}

/// The head as an HTTP client parses it: status and headers, lowercased names.
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let status = response.parse(head.as_bytes()).expect("a valid response head");
    assert_eq!(
        status,
        httparse::Status::Complete(head.len()),
        "complete, nothing after the blank line"
    );
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8(h.value.to_vec()).expect("ASCII value"),
            )
        })
        .collect();
    (response.code.expect("a status"), headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_head_is_an_event_stream_for_any_proxy_and_without_a_length() {
    let (status, headers) = parse_head(&response_head(None));
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    assert_eq!(header(&headers, "x-accel-buffering"), Some("no"));
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(header(&headers, "vary"), Some("Origin"));
    for absent in [
        "content-length",
        "transfer-encoding",
        "access-control-allow-origin",
    ] {
        assert_eq!(header(&headers, absent), None, "{absent}");
    }
}

#[test]
fn cors_echoes_the_allowed_origin_and_credentials_only_when_asked() {
    let page = "https://app.example.com:8443";
    let (_, headers) = parse_head(&response_head(Some(Cors {
        origin: page,
        credentials: false,
    })));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(page));
    assert_eq!(header(&headers, "access-control-allow-credentials"), None);
    assert_eq!(header(&headers, "vary"), Some("Origin"));

    let (_, headers) = parse_head(&response_head(Some(Cors {
        origin: page,
        credentials: true,
    })));
    assert_eq!(header(&headers, "access-control-allow-credentials"), Some("true"));
}

#[test]
fn an_origin_that_would_break_the_head_gets_no_cors_headers() {
    for origin in [
        "",
        "https://a.example\r\nSet-Cookie: x=1",
        "https://ä.example",
        "https://a b",
    ] {
        let head = response_head(Some(Cors {
            origin,
            credentials: true,
        }));
        let (status, headers) = parse_head(&head);
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{origin:?}"
        );
        assert_eq!(header(&headers, "set-cookie"), None, "{origin:?}");
    }
}

#[test]
fn a_kick_or_an_expiry_is_a_named_event_that_leaves_the_resume_point_and_endings_are_comments() {
    let mut bytes = message(&id(4), "{}").to_vec();
    bytes.extend_from_slice(&kicked());
    bytes.extend_from_slice(&expired());
    bytes.extend_from_slice(GOING_AWAY);
    bytes.extend_from_slice(SLOW_CONSUMER);
    let stream = parse(&bytes);
    assert_eq!(
        stream.events,
        [
            event("message", "{}", "0123456789abcdef-4"),
            event("kicked", KICKED_ENVELOPE, "0123456789abcdef-4"),
            event("expired", EXPIRED_ENVELOPE, "0123456789abcdef-4"),
        ]
    );
}
