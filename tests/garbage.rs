//! Garbage bytes on either port are answered 400 (or dropped) without harming the server: new clients and requests keep working, and nothing stays registered.

mod support;

use std::io::Write;

use support::{assert_error_body, raw_connect, read_http_response, read_to_end, TestServer};

const GARBAGE: [&[u8]; 5] = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-that-looks-like-tls\r\n\r\n",
    b"\x00\x01\x02\x03\xff\xfe\xfd\r\n\r\n",
    b"HELLO THERE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /echo HTTP/9.9\r\nHost\r\n\r\n",
];

#[test]
fn garbage_on_the_websocket_port() {
    let server = TestServer::start(&[]);
    let mut before = server.client();
    server.wait_clients(1);
    for bytes in GARBAGE {
        let mut stream = raw_connect(server.ws);
        stream.write_all(bytes).unwrap();
        let resp = read_http_response(&mut stream);
        assert_eq!(resp.status, 400, "{bytes:?}");
        assert_error_body(&resp.body, "not a valid WebSocket upgrade");
        let (rest, _) = read_to_end(&mut stream);
        assert!(rest.is_empty(), "nothing after the 400");
    }
    // Garbage then silence, and a connection that sends nothing and hangs up.
    for bytes in [&b"\xff\xff\xff\xff"[..], b""] {
        let mut stream = raw_connect(server.ws);
        stream.write_all(bytes).unwrap();
        drop(stream);
    }
    // A huge header block without an end.
    let mut stream = raw_connect(server.ws);
    let _ = stream.write_all(b"GET /echo HTTP/1.1\r\n");
    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for _ in 0..200 {
        if stream.write_all(line.as_bytes()).is_err() {
            break; // refused mid-stream: fine
        }
    }
    let _ = read_to_end(&mut stream);

    assert_eq!(server.counters().clients, 1);
    let mut after = server.client();
    server.wait_clients(2);
    let (status, body) = server.get("/sendall?msg=still%20serving");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    assert_eq!(before.next_text(), "still serving");
    assert_eq!(after.next_text(), "still serving");
    before.close();
    after.close();
    server.wait_clients(0);
    server.wait_counters("the garbage counted as rejected handshakes", |s| {
        s.handshakes_rejected >= GARBAGE.len() as u64
    });
}

#[test]
fn garbage_on_the_http_port() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    // The front door answers each with a JSON error and closes: 400 for what
    // is not HTTP, 505 for an HTTP version it does not speak.
    // One status per entry of GARBAGE (the length is checked when compiled).
    let statuses: [u16; GARBAGE.len()] = [400, 400, 400, 400, 505];
    for (bytes, status) in GARBAGE.iter().zip(statuses) {
        let mut stream = raw_connect(server.http);
        stream.write_all(bytes).unwrap();
        let resp = read_http_response(&mut stream);
        assert_eq!(resp.status, status, "{bytes:?}");
        assert_eq!(resp.header("connection"), Some("close"), "{bytes:?}");
        assert_error_body(&resp.body, if status == 400 { "malformed" } else { "HTTP/9.9" });
        let (rest, _) = read_to_end(&mut stream);
        assert!(rest.is_empty(), "nothing after the {status}");
    }
    let mut stream = raw_connect(server.http);
    stream.write_all(b"\xff\xff\xff\xff").unwrap();
    drop(stream);

    let (status, body) = server.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = server.get("/sendall?msg=fine");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(client.next_text(), "fine");
    client.close();
    server.wait_clients(0);
    server.wait_counters("the garbage counted as rejected requests", |s| {
        s.http_requests_rejected == GARBAGE.len() as u64
    });
}
