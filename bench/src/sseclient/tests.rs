use super::*;
use crate::pool::Step;

/// Every event `bytes` holds, fed `step` bytes at a time, as (kind, id, data).
fn events_of(bytes: &[u8], step: usize) -> Vec<(String, String, String)> {
    let mut parser = Events::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step) {
        parser.recv().spare(0)[..piece.len()].copy_from_slice(piece);
        parser.recv().filled(piece.len());
        parser
            .process(|e| out.push((e.kind.to_owned(), e.id.to_owned(), e.data.to_owned())))
            .unwrap();
    }
    out
}

fn ev(kind: &str, id: &str, data: &str) -> (String, String, String) {
    (kind.to_owned(), id.to_owned(), data.to_owned())
}

#[test]
fn wspush_streams_parse_at_any_split() {
    // What src/sse.rs writes: the stream start, a message, a ping, control events.
    let stream = b"retry: 2000\n\nid: e-7\ndata: {\"channel\":\"all\",\"id\":\"e-7\",\"data\":\"x\"}\n\n\
: ping\n\nevent: subscribed\nid: e-7\ndata: {\"type\":\"subscribed\",\"id\":\"e-7\"}\n\n\
event: direct\ndata: {\"type\":\"direct\",\"data\":1}\n\nevent: reset\nid: f-0\ndata: {\"type\":\"reset\",\"id\":\"f-0\"}\n\n";
    let expected = vec![
        ev("message", "e-7", r#"{"channel":"all","id":"e-7","data":"x"}"#),
        ev("subscribed", "e-7", r#"{"type":"subscribed","id":"e-7"}"#),
        // No id line: the last one stays (EventSource's lastEventId).
        ev("direct", "e-7", r#"{"type":"direct","data":1}"#),
        ev("reset", "f-0", r#"{"type":"reset","id":"f-0"}"#),
    ];
    for step in [1, 2, 7, stream.len()] {
        assert_eq!(events_of(stream, step), expected, "fed {step} bytes at a time");
    }
}

#[test]
fn nchan_streams_and_the_standard_s_corner_cases() {
    // Nchan: a comment first, then `id:` and `data:` lines, multi-line data.
    let nchan =
        b": hi\n\nid: 1796185351:0\ndata: hello one\n\nid: 1796185351:1\ndata: line1\ndata: line2\n\n";
    assert_eq!(
        events_of(nchan, 3),
        [
            ev("message", "1796185351:0", "hello one"),
            ev("message", "1796185351:1", "line1\nline2")
        ]
    );
    // CRLF line ends; no space after the colon; a field without a colon; an
    // event without data is not dispatched but its id counts; an id with NUL
    // is ignored; unknown fields are ignored; an empty data line is data.
    let corner = b"data:no space\r\n\r\nid: a-1\nevent: lonely\n\nfoo: bar\ndata\n\nid: b\0d\ndata: \n\n";
    assert_eq!(
        events_of(corner, 1),
        [
            ev("message", "", "no space"),
            ev("message", "a-1", ""),
            ev("message", "a-1", "")
        ]
    );
}

#[test]
fn bad_input_is_an_error() {
    let mut p = Events::new();
    let bad = b"data: \xff\n\n";
    p.recv().spare(0)[..bad.len()].copy_from_slice(bad);
    p.recv().filled(bad.len());
    assert!(p.process(|_| {}).is_err());
}

#[test]
fn response_heads() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n\r\nretry";
    assert_eq!(parse_head(ok), Ok(Some(ok.len() - 5)));
    assert_eq!(parse_head(&ok[..20]), Ok(None));
    let refused = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        parse_head(refused),
        Err("HTTP 503 Service Unavailable".to_owned())
    );
    let json = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
    assert!(parse_head(json).unwrap_err().contains("not text/event-stream"));
    let chunked = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(parse_head(chunked).unwrap_err().contains("not supported"));
    assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
}

/// A whole connection against a scripted server on loopback: the request
/// with `Last-Event-ID`, an event in the same segment as the head, a later
/// event, the end of the stream.
#[test]
fn client_against_a_scripted_server() {
    use std::io::Write;
    let (addr, server) = crate::wsclient::tests::scripted_server(|mut s, req| {
        assert!(req.starts_with("GET /events/all HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nAccept: text/event-stream\r\n"), "{req}");
        assert!(req.contains("\r\nLast-Event-ID: e-41\r\n"), "{req}");
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 2000\n\nid: e-42\ndata: one\n\n")
            .unwrap();
        s.write_all(b": ping\n\nid: e-43\ndata: two\n\n").unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let src = "127.0.0.1".parse().unwrap();
    let (sock, mut events) = rt
        .block_on(connect(addr, src, "/events/all", Some("e-41"), None))
        .unwrap();
    server.join().unwrap();
    // Blocking reads with a deadline: each read waits for the server's next bytes.
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while events.read_from(&sock, |e| got.push((e.id.to_owned(), e.data.to_owned()))) != Step::Closed {
        assert!(std::time::Instant::now() < deadline, "the stream never ended");
    }
    assert_eq!(
        got,
        [
            ("e-42".to_owned(), "one".to_owned()),
            ("e-43".to_owned(), "two".to_owned())
        ]
    );
    assert_eq!(events.comments, 1);
}
