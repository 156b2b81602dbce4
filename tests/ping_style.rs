//! Each `--ping-interval` the server sends a Ping frame; with `--ping-style text` it is followed by a text message `ping` (to `/echo` clients only: a `/ws/…` client gets envelopes only), and with the default style by nothing.

#[path = "support/channels.rs"]
mod channels;
mod support;

use support::{RawWs, TestServer, OP_PING, OP_TEXT};

#[test]
fn text_style_sends_a_ping_frame_and_a_text_ping() {
    let server = TestServer::start(&["--ping-style", "text", "--ping-interval", "0.2"]);
    let mut raw = RawWs::connect(server.ws);
    for _ in 0..2 {
        let ping = raw.read_frame().unwrap();
        assert_eq!(
            (ping.opcode, ping.fin, ping.payload.len()),
            (OP_PING, true, 0),
            "{ping:?}"
        );
        let text = raw.read_frame().unwrap();
        assert_eq!((text.opcode, text.fin), (OP_TEXT, true), "{text:?}");
        assert_eq!(text.payload, b"ping");
    }
}

#[test]
fn frame_style_sends_only_ping_frames() {
    let server = TestServer::start(&["--ping-interval", "0.2"]);
    let mut raw = RawWs::connect(server.ws);
    for _ in 0..2 {
        let ping = raw.read_frame().unwrap();
        assert_eq!((ping.opcode, ping.payload.len()), (OP_PING, 0), "{ping:?}");
    }
    let (status, _) = server.get("/sendall?msg=marker");
    assert_eq!(status, 200);
    loop {
        let frame = raw.read_frame().unwrap();
        match frame.opcode {
            OP_PING => continue,
            OP_TEXT => {
                assert_eq!(frame.payload, b"marker", "no text but the broadcast");
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
}

#[test]
fn text_style_sends_no_text_ping_to_channel_clients() {
    let server = TestServer::start(&["--ping-style", "text", "--ping-interval", "0.1"]);
    let (mut sub, _) = channels::Sub::joined(&server, "a");
    let mut raw = RawWs::connect(server.ws);
    // Two rounds reached the /echo client, so they reached the /ws client too
    // (a round goes to every client under one lock).
    let mut text_pings = 0;
    while text_pings < 2 {
        let frame = raw.read_frame().unwrap();
        text_pings += usize::from(frame.opcode == OP_TEXT && frame.payload == b"ping");
    }
    server.get("/sendall?msg=marker");
    // Ping frames are answered and skipped; a text `ping` would not be an envelope.
    assert_eq!(sub.next_message().data, "marker");
}
