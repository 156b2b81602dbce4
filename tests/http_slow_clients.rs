//! Slow, stalled and oversized side-port clients cost others nothing: a head or body must arrive within its deadline even when trickled (408), an idle keep-alive connection is closed at the deadline, a 32 MiB header line or 50,000 headers get 431 without being read whole, half-sent heads and slow bodies do not delay `/healthz` or `/sendall` from another client, and at `--http-max-connections` the connection waiting longest on its client makes room (or, with none to spare, the new one gets 503).

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use support::{assert_refusal, raw_connect, send_raw, wait_until, HttpResponse, Responses, TestServer};

/// A request head with its final blank line missing.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// Writes `bytes` one at a time, 20 ms apart, until they run out or a write
/// fails (the server closed); returns how many were written.
fn trickle(stream: &TcpStream, bytes: Vec<u8>) -> thread::JoinHandle<usize> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        for (n, b) in bytes.iter().enumerate() {
            if stream.write_all(&[*b]).is_err() {
                return n;
            }
            thread::sleep(Duration::from_millis(20));
        }
        bytes.len()
    })
}

/// Writes `parts` in order as fast as the server takes them; returns the bytes
/// written before a write failed (or all of them).
fn flood(
    stream: &TcpStream,
    parts: impl Iterator<Item = Vec<u8>> + Send + 'static,
) -> thread::JoinHandle<usize> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        let mut written = 0;
        for part in parts {
            if stream.write_all(&part).is_err() {
                break;
            }
            written += part.len();
        }
        written
    })
}

/// `request` on a new connection, again (polling) while the answer is 503;
/// returns the first other response and how many 503s came before it.
fn served(addr: SocketAddr, request: &[u8]) -> (HttpResponse, u64) {
    let mut refused = 0;
    let mut answer = None;
    wait_until("an answer other than 503", || {
        let resp = Responses::new(&mut send_raw(addr, request)).next();
        if resp.status == 503 {
            refused += 1;
            return false;
        }
        answer = Some(resp);
        true
    });
    (answer.expect("an answer"), refused)
}

/// A header deadline longer than any wait of a test: at the cap, only an
/// eviction can make room.
const NO_HEADER_TIMEOUT: &str = "600";

/// A server with at most `max` side-port connections, evicting after `evict_after` seconds.
fn capped(max: u32, evict_after: &str) -> TestServer {
    let max = max.to_string();
    TestServer::start(&[
        "--http-max-connections",
        &max,
        "--http-evict-after",
        evict_after,
        "--http-header-timeout",
        NO_HEADER_TIMEOUT,
    ])
}

const HEALTHZ_CLOSE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[test]
fn a_trickled_head_gets_408_at_its_deadline() {
    let server = TestServer::start(&["--http-header-timeout", "0.5"]);
    let mut stream = send_raw(server.http, b"GET /healthz HTTP/1.1\r\n");
    // One byte every 20 ms: a per-read timeout would never fire.
    let writer = trickle(&stream, [&b"X-Slow: "[..], &[b'a'; 8000]].concat());
    assert_refusal(&mut stream, 408, "--http-header-timeout");
    assert!(
        writer.join().unwrap() < 8008,
        "the server answered before the head was complete"
    );
    assert_eq!(server.counters().http_requests_rejected, 1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_silently_at_the_deadline() {
    let server = TestServer::start(&["--http-header-timeout", "0.5"]);
    let mut served = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut silent = raw_connect(server.http);
    let mut responses = Responses::new(&mut served);
    assert_eq!(responses.next().status, 200);
    let (rest, _) = responses.rest();
    assert!(rest.is_empty(), "no 408 for an idle connection: {rest:?}");
    let (rest, _) = Responses::new(&mut silent).rest();
    assert!(
        rest.is_empty(),
        "no 408 for a connection that never sent: {rest:?}"
    );
    assert_eq!(server.counters().http_requests_rejected, 0);
}

#[test]
fn a_trickled_body_gets_408_at_its_deadline_and_is_not_sent() {
    let server = TestServer::start(&["--http-body-timeout", "0.5"]);
    let mut client = server.client();
    server.wait_clients(1);
    let head = b"POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nfirst ten.";
    let mut stream = send_raw(server.http, head);
    let writer = trickle(&stream, vec![b'b'; 990]);
    assert_refusal(&mut stream, 408, "--http-body-timeout");
    assert!(
        writer.join().unwrap() < 990,
        "the server answered before the body was complete"
    );
    assert_eq!(server.get("/sendall?msg=after").0, 200);
    assert_eq!(client.next_text(), "after", "nothing of the slow body was sent");
}

#[test]
fn a_32_mib_header_line_is_431_without_being_read_whole() {
    let server = TestServer::start(&[]);
    let mut stream = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nX-Big: ");
    const TOTAL: usize = 32 << 20;
    let writer = flood(&stream, (0..TOTAL / 65536).map(|_| vec![b'a'; 65536]));
    assert_refusal(&mut stream, 431, "larger than 16384 bytes");
    drop(stream);
    let written = writer.join().unwrap();
    assert!(written < TOTAL, "the server read all {written} bytes of the line");
    assert_eq!(server.get("/healthz"), (200, "ok".to_owned()));
}

#[test]
fn fifty_thousand_headers_are_431() {
    let server = TestServer::start(&[]);
    let mut stream = send_raw(server.http, b"GET /healthz HTTP/1.1\r\n");
    let lines = (0..50_000).map(|n| format!("X-{n}: v\r\n").into_bytes());
    let writer = flood(&stream, lines.chain(std::iter::once(b"\r\n".to_vec())));
    assert_refusal(&mut stream, 431, "more than 100 header fields");
    drop(stream);
    writer.join().unwrap();
    assert_eq!(server.get("/healthz"), (200, "ok".to_owned()));
}

#[test]
fn stalled_heads_and_slow_bodies_do_not_delay_others() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    let mut halves: Vec<TcpStream> = (0..200).map(|_| send_raw(server.http, HALF_HEAD)).collect();
    // As many slow bodies as the router has workers, each too large to be
    // buffered with its head (tiny_http reads up to 1 KiB eagerly).
    const SLOW_LEN: usize = 4096;
    let mut slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let head = format!(
                "POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {SLOW_LEN}\r\n\r\nslow-"
            );
            send_raw(server.http, head.as_bytes())
        })
        .collect();

    let mut other = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = Responses::new(&mut other).next();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    other
        .write_all(b"GET /sendall?msg=fast HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let resp = Responses::new(&mut other).next();
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, &br#"{"clients":1}"#[..])
    );
    assert_eq!(client.next_text(), "fast");

    // The stalled ones were waiting all along, and are served once complete.
    for (n, stream) in slow.iter_mut().enumerate() {
        let rest = format!("{n:<width$}", width = SLOW_LEN - "slow-".len());
        stream.write_all(rest.as_bytes()).unwrap();
        assert_eq!(Responses::new(stream).next().status, 200);
        assert_eq!(client.next_text(), format!("slow-{rest}"));
    }
    for stream in halves.iter_mut().take(3) {
        stream.write_all(b"\r\n").unwrap();
        assert_eq!(Responses::new(stream).next().status, 200);
    }
    assert_eq!(server.counters().http_requests_rejected, 0);
}

#[test]
fn at_the_cap_the_connection_waiting_longest_makes_room_with_a_408() {
    let server = capped(4, "0.2");
    let mut oldest = send_raw(server.http, HALF_HEAD);
    let mut others: Vec<TcpStream> = (0..3).map(|_| send_raw(server.http, HALF_HEAD)).collect();
    let (resp, refused) = served(server.http, HEALTHZ_CLOSE);
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    assert_refusal(&mut oldest, 408, "make room");
    for stream in &mut others {
        stream.write_all(b"\r\n").unwrap();
        assert_eq!(Responses::new(stream).next().status, 200, "still served");
    }
    let stats = server.counters();
    assert_eq!(stats.http_connections_evicted, 1);
    assert_eq!(stats.http_connections_refused, refused);
    assert_eq!(stats.http_requests_rejected, 1, "the 408");
}

#[test]
fn at_the_cap_an_idle_keep_alive_connection_makes_room_silently() {
    let server = capped(2, "0.2");
    let mut idle = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut idle = Responses::new(&mut idle);
    assert_eq!(idle.next().status, 200);
    let mut half = send_raw(server.http, HALF_HEAD);
    let (resp, _) = served(server.http, HEALTHZ_CLOSE);
    assert_eq!(resp.status, 200);
    let (rest, _) = idle.rest();
    assert!(rest.is_empty(), "closed without an answer: {rest:?}");
    half.write_all(b"\r\n").unwrap();
    assert_eq!(Responses::new(&mut half).next().status, 200);
    assert_eq!(server.counters().http_connections_evicted, 1);
}

#[test]
fn at_the_cap_with_none_to_evict_the_new_connection_gets_503() {
    let server = capped(4, "1000");
    let mut stalled: Vec<TcpStream> = (0..4).map(|_| send_raw(server.http, HALF_HEAD)).collect();
    let mut refused = raw_connect(server.http);
    assert_refusal(&mut refused, 503, "--http-max-connections");
    for stream in &mut stalled {
        stream.write_all(b"\r\n").unwrap();
        assert_eq!(
            Responses::new(stream).next().status,
            200,
            "the open ones are served"
        );
    }
    assert_eq!(server.counters().http_connections_refused, 1);
}

#[test]
fn with_256_stalled_connections_healthz_and_sendall_still_answer() {
    let server = TestServer::start(&[
        "--http-evict-after",
        "0.2",
        "--http-header-timeout",
        NO_HEADER_TIMEOUT,
    ]);
    let mut client = server.client();
    server.wait_clients(1);
    let _stalled: Vec<TcpStream> = (0..256).map(|_| send_raw(server.http, HALF_HEAD)).collect();
    let (resp, _) = served(server.http, HEALTHZ_CLOSE);
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    let (resp, _) = served(
        server.http,
        b"GET /sendall?msg=through HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(client.next_text(), "through");
}
