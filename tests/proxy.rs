//! wspush behind Debian's real nginx, configured with the block README.md
//! recommends (read from the README itself; plain HTTP on loopback instead of
//! TLS, see tests/support/nginx.rs): a WebSocket client through nginx gets
//! broadcasts and its echo; nginx hands the upstream the headers wspush reads
//! (Upgrade, Connection, Host, X-Forwarded-For); an event stream that ends
//! only with its connection passes nginx event by event, as it is written;
//! and the README's TLS lines as written pass `nginx -t`.
//!
//! Needs Debian's `nginx` (and `openssl` for the TLS check); without them
//! these tests print one skip line and pass, except with `CI=true`.

#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use nginx::{Nginx, Tls};
use support::{temp_dir, TestServer, WsClient, DEADLINE};

#[test]
fn a_websocket_client_through_nginx_gets_broadcasts_and_its_echo() {
    let server = TestServer::start(&[]);
    let Some(nginx) = Nginx::start(
        "a_websocket_client_through_nginx_gets_broadcasts_and_its_echo",
        server.ws,
    ) else {
        return;
    };
    // A page served by the proxy's origin: accepted only if nginx passes the
    // browser's Host on (wspush's default origin policy is "same host").
    let origin = nginx.origin();
    let mut client = WsClient::try_connect(&nginx.ws_url("/echo"), &[("Origin", origin.as_str())])
        .unwrap_or_else(|r| {
            panic!(
                "the handshake through nginx was refused: {r:?}\n{}",
                nginx.error_log()
            )
        });
    server.wait_clients(1);

    let (status, body) = server.get("/sendall?msg=through%20nginx");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(client.next_text(), "through nginx");

    client.send_text("echo me");
    assert_eq!(client.next_text(), "echo me");

    // Without --trusted-proxy wspush sees nginx, not the client.
    let peers: Vec<String> = server.clients().iter().map(|c| c["peer"].to_string()).collect();
    assert_eq!(peers.len(), 1);
    assert!(!peers[0].contains(&client.local_addr().to_string()), "{peers:?}");
    client.close();
}

#[test]
fn nginx_hands_the_upstream_the_headers_wspush_reads() {
    let upstream = FakeUpstream::start();
    let Some(nginx) = Nginx::start("nginx_hands_the_upstream_the_headers_wspush_reads", upstream.addr) else {
        return;
    };
    // From 127.0.0.2, sending an X-Forwarded-For of its own, as a spoofer would.
    let upgrade = "GET /ws/orders HTTP/1.1\r\nHost: push.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
    let _ws = connect_from("127.0.0.2", nginx.addr, upgrade);
    let head = upstream.next_head();
    assert!(head.starts_with("GET /ws/orders HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "upgrade"), Some("websocket"), "{head}");
    assert_eq!(header(&head, "connection"), Some("upgrade"), "{head}");
    assert_eq!(header(&head, "host"), Some("push.example.com"), "{head}");
    // nginx appends the address it saw: the rightmost entry is the real client.
    assert_eq!(
        header(&head, "x-forwarded-for"),
        Some("6.6.6.6, 127.0.0.2"),
        "{head}"
    );

    let stream = "GET /events/orders HTTP/1.1\r\nHost: push.example.com\r\nAccept: text/event-stream\r\n\r\n";
    let _sse = connect_from("127.0.0.2", nginx.addr, stream);
    let head = upstream.next_head();
    assert!(head.starts_with("GET /events/orders HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "upgrade"), None, "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(header(&head, "x-forwarded-for"), Some("127.0.0.2"), "{head}");
}

#[test]
fn an_event_stream_passes_nginx_event_by_event() {
    let upstream = FakeUpstream::start();
    let Some(nginx) = Nginx::start("an_event_stream_passes_nginx_event_by_event", upstream.addr) else {
        return;
    };
    let request = "GET /events/orders HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    let client = connect_from("127.0.0.1", nginx.addr, request);
    upstream.next_head();
    // The head wspush sends, less X-Accel-Buffering: the README's
    // `proxy_buffering off` alone must stream. No length: the body ends with the connection.
    let mut conn = upstream.connection();
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
        .expect("write head");
    conn.write_all(b"retry: 2000\n\nid: 1\ndata: first\n\n")
        .expect("write event");

    let mut reader = BufReader::new(client);
    let head = read_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"), "{head}");
    // nginx frames the length-less body in chunks towards an HTTP/1.1 client.
    assert_eq!(header(&head, "transfer-encoding"), Some("chunked"), "{head}");
    let mut body = Chunked::new(&mut reader);
    // Each event arrives while the upstream is still writing to the stream.
    assert_eq!(body.next_event(), "retry: 2000\n\n");
    assert_eq!(body.next_event(), "id: 1\ndata: first\n\n");
    conn.write_all("id: 2\ndata: second 🐢\n\n".as_bytes())
        .expect("write event");
    assert_eq!(body.next_event(), "id: 2\ndata: second 🐢\n\n");
    // The upstream closing ends the stream cleanly for the client.
    drop(conn);
    assert_eq!(body.next_chunk(), None, "the last chunk");
    assert!(body.pending.is_empty());
}

#[test]
fn the_readme_block_with_its_tls_lines_passes_nginx_t() {
    let test = "the_readme_block_with_its_tls_lines_passes_nginx_t";
    let dir = temp_dir("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=push.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match openssl {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("openssl failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            assert!(!support::in_ci(), "CI=true but openssl cannot run: {e}");
            eprintln!("SKIPPED {test}: openssl not found ({e})");
            return;
        }
    }
    let upstream: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let verdict = nginx::check_tls_config(
        test,
        upstream,
        Tls {
            cert: &cert,
            key: &key,
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    let Some(verdict) = verdict else { return };
    let output = verdict.unwrap_or_else(|e| panic!("nginx -t refused the README's block:\n{e}"));
    assert!(output.contains("test is successful"), "{output}");
}

/// A TCP connection from local address `from` to `to`, with `request` sent.
fn connect_from(from: &str, to: SocketAddr, request: &str) -> TcpStream {
    let mut stream = support::connect_from(from, to);
    stream.write_all(request.as_bytes()).expect("send the request");
    stream
}

/// An upstream that hands each connection's request head to the test, and the connection.
struct FakeUpstream {
    addr: SocketAddr,
    heads: mpsc::Receiver<(String, TcpStream)>,
    last: std::cell::RefCell<Option<TcpStream>>,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, heads) = mpsc::channel();
        // Ends when the test drops the receiver and a connection comes, or with the test binary.
        thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let _ = conn.set_read_timeout(Some(DEADLINE));
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let head = read_head(&mut reader);
                if tx.send((head, conn)).is_err() {
                    return;
                }
            }
        });
        FakeUpstream {
            addr,
            heads,
            last: std::cell::RefCell::new(None),
        }
    }

    /// The head of the next request nginx forwards.
    fn next_head(&self) -> String {
        let (head, conn) = self
            .heads
            .recv_timeout(DEADLINE)
            .expect("a request reaches the upstream");
        *self.last.borrow_mut() = Some(conn);
        head
    }

    /// The connection the last request came on.
    fn connection(&self) -> TcpStream {
        self.last.borrow_mut().take().expect("a request came first")
    }
}

/// Reads up to and including the blank line after a head.
fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read a head line");
        assert!(n > 0, "the connection closed inside a head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            return head;
        }
    }
}

/// The first value of header `name` in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A chunked body read chunk by chunk, and event by event.
struct Chunked<'a, R> {
    reader: &'a mut R,
    pending: Vec<u8>,
}

impl<'a, R: BufRead> Chunked<'a, R> {
    fn new(reader: &'a mut R) -> Self {
        Chunked {
            reader,
            pending: Vec::new(),
        }
    }

    /// The next chunk's data; `None` for the last (empty) chunk.
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        self.reader.read_line(&mut size).expect("read a chunk size");
        let size =
            usize::from_str_radix(size.trim(), 16).unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).expect("read a chunk");
        assert!(data.ends_with(b"\r\n"), "chunk ends with CRLF");
        data.truncate(size);
        (size > 0).then_some(data)
    }

    /// The stream up to and including the next blank line (one event).
    fn next_event(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..end + 2).collect();
                return String::from_utf8(event).expect("UTF-8 events");
            }
            let chunk = self.next_chunk().expect("more of the stream");
            self.pending.extend(chunk);
        }
    }
}
