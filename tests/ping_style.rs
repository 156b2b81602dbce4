//! Each `--ping-interval` the server sends a Ping frame; with `--ping-style text` it is followed by a text message `ping`, and with the default style by nothing.

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
