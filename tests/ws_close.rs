//! Closing: a client's Close gets a Close reply; an oversized message gets 1009, invalid UTF-8 1007 and protocol errors 1002, each followed by the server closing TCP, and the registry empties.

mod support;

use support::{encode_frame, read_to_end, RawWs, TestServer, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

const MASK: [u8; 4] = [1, 2, 3, 4];

/// Reads the server's Close, then expects it to close TCP.
fn expect_close_then_eof(raw: &mut RawWs) -> (u16, String) {
    let close = raw.expect_close();
    let (rest, _) = read_to_end(&mut raw.stream);
    assert!(rest.is_empty(), "nothing after the Close: {rest:?}");
    close
}

#[test]
fn close_gets_a_close_reply() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    client
        .ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .unwrap();
    match client.ws.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the Close reply, got {other:?}"),
    }
    assert!(matches!(
        client.ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    // The server closed TCP first and waits for our end to close too.
    drop(client);
    server.wait_clients(0);

    // The same on a raw socket: the reply, then the server's FIN.
    let mut raw = RawWs::connect(server.ws);
    server.wait_clients(1);
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"leaving");
    raw.send_frame(OP_CLOSE, &payload);
    assert_eq!(expect_close_then_eof(&mut raw), (1001, "leaving".to_owned()));
    drop(raw);
    server.wait_clients(0);
}

#[test]
fn oversized_message_gets_1009() {
    let server = TestServer::start(&["--max-message-bytes", "1024"]);
    // At the limit is fine.
    let mut ok = server.client();
    let at_limit = "a".repeat(1024);
    ok.send_text(&at_limit);
    assert_eq!(ok.next_text(), at_limit);

    // One frame over the limit.
    let mut client = server.client();
    client.ws.send(Message::binary(vec![7u8; 1025])).unwrap();
    let (code, reason) = client.expect_close();
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1025"), "{reason}");

    // Small frames adding up to too much.
    let mut raw = RawWs::connect(server.ws);
    raw.send_raw(&encode_frame(false, 0, OP_TEXT, &[b'b'; 600], Some(MASK)));
    raw.send_raw(&encode_frame(true, 0, OP_CONT, &[b'b'; 600], Some(MASK)));
    let (code, reason) = expect_close_then_eof(&mut raw);
    assert_eq!(code, 1009, "{reason}");
    drop((raw, client));

    ok.close();
    server.wait_clients(0);
}

#[test]
fn invalid_utf8_gets_1007() {
    let server = TestServer::start(&[]);
    let mut raw = RawWs::connect(server.ws);
    raw.send_frame(OP_TEXT, b"fine until \xff\xfe");
    assert_eq!(
        expect_close_then_eof(&mut raw),
        (1007, "invalid UTF-8 in text".to_owned())
    );
    drop(raw);
    // Split across fragments: the bytes do not form a character.
    let mut raw = RawWs::connect(server.ws);
    raw.send_raw(&encode_frame(false, 0, OP_TEXT, b"abc\xc3", Some(MASK)));
    raw.send_raw(&encode_frame(true, 0, OP_CONT, b"\x28", Some(MASK)));
    assert_eq!(expect_close_then_eof(&mut raw).0, 1007);
    drop(raw);
    // A character split across fragments is fine.
    let mut raw = RawWs::connect(server.ws);
    raw.send_raw(&encode_frame(false, 0, OP_TEXT, b"caf\xc3", Some(MASK)));
    raw.send_raw(&encode_frame(true, 0, OP_CONT, b"\xa9", Some(MASK)));
    let echo = raw.read_frame().unwrap();
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (OP_TEXT, "café".as_bytes())
    );
    drop(raw);
    server.wait_clients(0);
}

#[test]
fn protocol_errors_get_1002() {
    let server = TestServer::start(&[]);
    let cases: [(&str, Vec<u8>); 7] = [
        ("unmasked frame", encode_frame(true, 0, OP_TEXT, b"hi", None)),
        ("reserved bits", encode_frame(true, 4, OP_TEXT, b"hi", Some(MASK))),
        ("reserved opcode", encode_frame(true, 0, 0x3, b"hi", Some(MASK))),
        (
            "fragmented ping",
            encode_frame(false, 0, OP_PING, b"hi", Some(MASK)),
        ),
        (
            "ping over 125 bytes",
            encode_frame(true, 0, OP_PING, &[0; 126], Some(MASK)),
        ),
        (
            "continuation first",
            encode_frame(true, 0, OP_CONT, b"hi", Some(MASK)),
        ),
        (
            "new message inside a fragmented one",
            [
                encode_frame(false, 0, OP_TEXT, b"a", Some(MASK)),
                encode_frame(true, 0, OP_BINARY, b"b", Some(MASK)),
            ]
            .concat(),
        ),
    ];
    for (name, bytes) in cases {
        let mut raw = RawWs::connect(server.ws);
        raw.send_raw(&bytes);
        let (code, reason) = expect_close_then_eof(&mut raw);
        assert_eq!(code, 1002, "{name}: {reason}");
        assert!(!reason.is_empty(), "{name}: the reason says what was wrong");
    }
    server.wait_clients(0);
    // Still serving.
    let mut client = server.client();
    client.send_text("ok");
    assert_eq!(client.next_text(), "ok");
    client.close();
    server.wait_clients(0);
}

#[test]
fn echo_returns_text_and_binary_to_the_sender() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.send_text("hello");
    assert_eq!(client.next_text(), "hello");
    client.ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(client.next_binary(), vec![0u8, 1, 2, 255]);
    // A ping from the client gets its pong.
    client
        .ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    loop {
        match client.ws.read().unwrap() {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            Message::Ping(_) => continue,
            other => panic!("expected the pong, got {other:?}"),
        }
    }
    client.close();
    server.wait_clients(0);
}
