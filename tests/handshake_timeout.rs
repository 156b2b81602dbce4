//! A connection that never completes its handshake is closed by the server after `--handshake-timeout`, counted as rejected, and leaves no client behind.

mod support;

use std::io::Write;
use std::time::Instant;

use support::{raw_connect, read_to_end, Ending, TestServer};

#[test]
fn unfinished_handshakes_are_dropped() {
    let server = TestServer::start(&["--handshake-timeout", "0.5"]);
    let started = Instant::now();
    // Silent; half a request; a request trickling in a byte at a time would
    // also be cut at the deadline, however slowly it comes.
    let mut silent = raw_connect(server.ws);
    let mut partial = raw_connect(server.ws);
    partial
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    let mut trickle = raw_connect(server.ws);
    let request = support::upgrade_request(server.ws, "/echo", "");
    let writer = {
        let mut s = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in request.bytes() {
                if s.write_all(&[b]).is_err() {
                    return; // closed by the server: expected
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    let mut live = server.client();
    server.wait_clients(1);

    for (name, stream) in [
        ("silent", &mut silent),
        ("partial", &mut partial),
        ("trickle", &mut trickle),
    ] {
        let (data, ending) = read_to_end(stream);
        assert!(
            data.is_empty(),
            "{name}: nothing is sent before closing: {data:?}"
        );
        // The trickle's writer may send one more byte after the server
        // closed, and the kernel answers it with a reset: closed all the same.
        let closed = ending == Ending::Eof || (name == "trickle" && ending == Ending::Reset);
        assert!(closed, "{name}: closed by the server, got {ending:?}");
    }
    let waited = started.elapsed();
    writer.join().unwrap();
    // A lower bound only: the server cannot close them before its deadline.
    assert!(waited.as_secs_f64() >= 0.5, "closed only after the timeout");
    assert_eq!(server.counters().handshakes_rejected, 3);
    assert_eq!(server.counters().clients, 1);

    // The established client is untouched by the handshake deadline.
    server.get("/sendall?msg=alive");
    assert_eq!(live.next_text(), "alive");
    live.close();
    server.wait_clients(0);
}
