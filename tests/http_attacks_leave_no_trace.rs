//! The side-port attacks of issue 9 (huge declared lengths, smuggling, slowloris past the connection cap, slow bodies, a 32 MiB header line, 50,000 headers, HTTP/2, pipelining) against the `wspush` binary: it answers each as it should, keeps serving its WebSocket client, and afterwards its threads and fds return exactly to their baseline and its RSS to within 4 MiB of it.
//!
//! One test function in its own file, on its own process: the counts are that process's.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use support::{assert_refusal, raw_connect, send_raw, wait_until, Responses, WsClient, DEADLINE};

/// How far RSS may stay above its baseline: the allocator keeps some freed
/// memory for reuse, but nothing grows with what the attacks sent.
const RSS_MARGIN_KIB: u64 = 4096;

/// The binary, started on ephemeral ports; killed when dropped.
struct Wspush {
    child: Child,
    ws: SocketAddr,
    http: SocketAddr,
}

impl Wspush {
    fn spawn(args: &[&str]) -> Wspush {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wspush"))
            .args(["--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wspush");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.unwrap_or_default());
            }
        });
        let line = rx.recv_timeout(DEADLINE).expect("the listening line");
        // wspush listening ws=ws://HOST:PORT/echo http=http://HOST:PORT/
        let addr = |key: &str, suffix: &str| -> SocketAddr {
            let field = line.split(' ').find_map(|f| f.strip_prefix(key));
            let addr = field.and_then(|f| f.strip_suffix(suffix));
            addr.and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {key} address in {line:?}"))
        };
        let (ws, http) = (addr("ws=ws://", "/echo"), addr("http=http://", "/"));
        Wspush { child, ws, http }
    }

    fn status_field(&self, name: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
    }

    /// (threads, open fds, RSS in KiB) now.
    fn resources(&self) -> (u64, u64, u64) {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("fd")
            .count();
        (
            self.status_field("Threads:"),
            fds as u64,
            self.status_field("VmRSS:"),
        )
    }

    fn get(&self, path: &str) -> support::HttpResponse {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        support::read_http_response(&mut send_raw(self.http, request.as_bytes()))
    }
}

impl Drop for Wspush {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn side_port_attacks_leave_threads_fds_and_rss_at_their_baseline() {
    // The client reads only when it checks a message: no reaping meanwhile.
    let server = Wspush::spawn(&[
        "--http-header-timeout",
        "1",
        "--http-body-timeout",
        "1",
        "--http-evict-after",
        "0.2",
        "--pong-timeout",
        "600",
    ]);
    let (threads, _, _) = server.resources();
    let mut client = WsClient::connect(&format!("ws://{}/echo", server.ws));
    wait_until("the client registered", || {
        String::from_utf8_lossy(&server.get("/stats").body).contains(r#""clients":1,"#)
    });
    // Warm up what is allocated once, then let every warm-up thread end.
    for n in 0..50 {
        assert_eq!(server.get(&format!("/sendall?msg=warm{n}")).status, 200);
        assert_eq!(client.next_text(), format!("warm{n}"));
        assert_eq!(server.get("/metrics").status, 200);
    }
    // What stays: the threads at start, and the WebSocket client's reader.
    wait_until("the warm-up threads ended", || {
        server.resources().0 == threads + 1
    });
    let baseline = server.resources();

    attack(&server, &mut client);

    let settled = |now: (u64, u64, u64)| {
        now.0 == baseline.0 && now.1 == baseline.1 && now.2 <= baseline.2 + RSS_MARGIN_KIB
    };
    let deadline = std::time::Instant::now() + 2 * DEADLINE;
    let mut now = server.resources();
    while !settled(now) {
        assert!(
            std::time::Instant::now() < deadline,
            "(threads, fds, RSS KiB) {now:?} did not return to {baseline:?} (RSS margin {RSS_MARGIN_KIB} KiB)"
        );
        thread::sleep(std::time::Duration::from_millis(50));
        now = server.resources();
    }
    eprintln!("(threads, fds, RSS KiB): baseline {baseline:?}, after the attacks {now:?}");
    assert_eq!(server.get("/sendall?msg=after").status, 200);
    assert_eq!(client.next_text(), "after");
}

fn attack(server: &Wspush, client: &mut WsClient) {
    for length in ["1000000000000000", "18446744073709551615"] {
        let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        for _ in 0..4 {
            assert_refusal(&mut send_raw(server.http, head.as_bytes()), 413, "over the limit");
        }
    }
    let smuggled = "GET /sendall?msg=SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n";
    for framing in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Content-Length: 0\r\nContent-Length: 47",
        "Transfer-Encoding: gzip",
        "Content-Length: 4x",
    ] {
        let request = format!("POST /sendall HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n0\r\n\r\n{smuggled}");
        assert_refusal(&mut send_raw(server.http, request.as_bytes()), 400, "");
    }
    let chunked = format!("POST /sendall HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n{smuggled}");
    assert_refusal(
        &mut send_raw(server.http, chunked.as_bytes()),
        413,
        "--max-body-bytes",
    );
    for request in [
        &b"GET / HTTP/2.0\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert_refusal(&mut send_raw(server.http, request), 505, "HTTP/2.0");
    }
    huge_heads(server);
    slowloris(server, client);
    pipelined(server, client);
}

/// A 32 MiB header line and 50,000 headers: 431 each, the rest never read.
fn huge_heads(server: &Wspush) {
    let line = [&b"X-Big: "[..], &vec![b'a'; 32 << 20]].concat();
    let headers: Vec<u8> = (0..50_000)
        .flat_map(|n| format!("X-{n}: v\r\n").into_bytes())
        .collect();
    for (bytes, needle) in [(line, "larger than"), (headers, "more than 100")] {
        let mut stream = raw_connect(server.http);
        let mut writer = stream.try_clone().unwrap();
        let flood = thread::spawn(move || {
            let _ = writer.write_all(b"GET / HTTP/1.1\r\n");
            let _ = writer.write_all(&bytes);
        });
        assert_refusal(&mut stream, 431, needle);
        drop(stream);
        flood.join().unwrap();
    }
}

/// 1,500 half-sent heads (past the cap of 256) and 4 slow bodies, while another
/// client publishes; then they all hang up.
fn slowloris(server: &Wspush, client: &mut WsClient) {
    let half: Vec<TcpStream> = (0..1500)
        .map(|_| send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            send_raw(
                server.http,
                b"POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
            )
        })
        .collect();
    wait_until("a publish gets through", || {
        server.get("/sendall?msg=through").status == 200
    });
    assert_eq!(client.next_text(), "through");
    drop((half, slow));
}

/// Five pipelined publishes arrive in order.
fn pipelined(server: &Wspush, client: &mut WsClient) {
    let all: String = (0..5)
        .map(|n| format!("POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\np{n}"))
        .collect();
    let mut stream = send_raw(server.http, all.as_bytes());
    let mut responses = Responses::new(&mut stream);
    for n in 0..5 {
        assert_eq!(responses.next().status, 200);
        assert_eq!(client.next_text(), format!("p{n}"));
    }
}
