//! 500 connect/disconnect cycles of every kind (clean close, abrupt drop, echo, raw handshake, no handshake, refused handshake, protocol error, backlog with a writer thread) leave no thread and no fd behind in this process, and the registry ends empty.
//!
//! One test function in its own file: the thread and fd counts are this process's.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{fd_count, raw_connect, thread_count, RawWs, TestServer, DEADLINE};

const CYCLES: usize = 500;

/// Publishes `body` with a raw, non-pooled HTTP connection (a pooled one would hold an fd and a thread).
fn publish(server: &TestServer, body: &[u8]) {
    let mut request = format!(
        "POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let resp = server.raw_http(&request);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
}

/// Kinds of cycle; the last one builds a backlog.
const KINDS: usize = 8;

fn cycle(server: &TestServer, n: usize, big: &[u8]) {
    match n % KINDS {
        0 => server.client().close(),
        1 => drop(server.client()),
        2 => {
            let mut c = server.client();
            c.send_text(&format!("echo {n}"));
            assert_eq!(c.next_text(), format!("echo {n}"));
            c.close();
        }
        3 => drop(RawWs::connect(server.ws)),
        4 => {
            let mut s = raw_connect(server.ws);
            let _ = s.write_all(b"GET /nope");
        }
        5 => {
            // Refused at the handshake (invalid key): 400, then closed.
            let mut s = raw_connect(server.ws);
            let req = support::upgrade_request(
                server.ws,
                "/echo",
                "Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n",
            );
            s.write_all(req.as_bytes()).unwrap();
            assert_eq!(support::read_http_response(&mut s).status, 400);
        }
        6 => {
            // A protocol error: Close 1002, then closed.
            let mut raw = RawWs::connect(server.ws);
            raw.send_raw(&support::encode_frame(true, 0, support::OP_TEXT, b"x", None));
            assert_eq!(raw.expect_close().0, 1002);
        }
        _ => {
            // A client that does not read while a backlog builds: a writer
            // thread starts, then the client vanishes under it.
            let raw = RawWs::handshake(support::small_window_connect(server.ws), server.ws);
            server.wait_clients(1);
            // The kernel's send buffer grows to a few MiB before the backlog starts.
            let mut backlog = false;
            for _ in 0..32 {
                publish(server, big);
                let clients =
                    server.raw_http(b"GET /clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let clients: serde_json::Value = serde_json::from_slice(&clients.body).unwrap();
                if clients[0]["queued"].as_u64().unwrap() >= 1 {
                    backlog = true;
                    break;
                }
            }
            assert!(backlog, "a backlog built up");
            drop(raw);
        }
    }
}

#[test]
fn connect_disconnect_cycles_leak_nothing() {
    let server = TestServer::start(&["--ping-interval", "0.2", "--handshake-timeout", "1"]);
    // tiny_http creates its thread pool once its accept thread runs: one
    // request (on a connection that closes) makes sure it has. The server's
    // end of that connection is an fd of this process too: wait for it to go.
    let fds = fd_count();
    let resp = server.raw_http(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 200);
    support::wait_until("the side port closed its end", || fd_count() == fds);
    let baseline = (thread_count(), fds);
    let big = vec![0x5a; 512 * 1024];
    for n in 0..CYCLES {
        cycle(&server, n, &big);
        if n % KINDS == KINDS - 1 {
            server.wait_clients(0);
        }
    }
    server.wait_clients(0);

    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = (thread_count(), fd_count());
        if now == baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "threads/fds did not return to the baseline: (threads, fds) {now:?} vs {baseline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = server.counters();
    assert_eq!(stats.clients, 0);
    let without_handshake = (0..CYCLES).filter(|n| matches!(n % KINDS, 4 | 5)).count();
    assert_eq!(stats.connections_accepted as usize, CYCLES - without_handshake);
    assert_eq!(stats.thread_spawn_failures, 0);
}
