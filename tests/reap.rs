//! A client that never answers pings is reaped after `--pong-timeout` (`clients_reaped` counts it, its socket is closed), a client that answers stays, and a new client connects fine afterwards.

mod support;

use std::thread;

use support::{RawWs, TestServer, OP_PING};

#[test]
fn silent_client_is_reaped_and_a_new_one_connects() {
    let server = TestServer::start(&["--ping-interval", "0.2", "--pong-timeout", "1"]);
    // Did the handshake, then sends nothing at all.
    let mut mute = RawWs::connect(server.ws);
    // Answers every ping (tungstenite does so as it reads).
    let mut good = server.client();
    server.wait_clients(2);
    let good_reader = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            let text = good.next_text();
            if text == "stop" {
                good.close();
                return got;
            }
            got.push(text);
        }
    });

    support::wait_until("the mute client is reaped", || {
        server.counters().clients_reaped == 1
    });
    server.wait_clients(1);
    // The mute client saw pings, then the server closed its connection.
    let mut pings = 0;
    let end = loop {
        match mute.read_frame() {
            Ok(f) if f.opcode == OP_PING => pings += 1,
            Ok(f) => panic!("unexpected frame {f:?}"),
            Err(e) => break e,
        }
    };
    assert!(pings >= 1, "it was pinged before being reaped");
    assert!(
        matches!(
            end.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "closed by the server, not timed out: {end}"
    );

    // Reconnect after the reap: a new client gets broadcasts.
    let mut again = server.client();
    server.wait_clients(2);
    let (status, body) = server.get("/sendall?msg=after-reap");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    assert_eq!(again.next_text(), "after-reap");
    server.get("/sendall?msg=stop");
    assert_eq!(again.next_text(), "stop");
    assert_eq!(good_reader.join().expect("good client"), ["after-reap"]);
    again.close();
    server.wait_clients(0);
    let stats = server.stats();
    assert_eq!(stats["clients_reaped"], 1, "only the mute client was reaped");
    assert_eq!(stats["slow_clients_dropped"], 0);
}
