//! Shared test helpers: a server on ephemeral ports, a WebSocket client, HTTP calls,
//! raw sockets for bytes no well-behaved client would send, and deadlines.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use wspush::{Config, Server, StartError, StatsSnapshot};

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Whether this is a CI run (`CI` set, and not to `false` or `0`): a test
/// that needs a Debian package then fails when it is missing, not skips.
#[allow(dead_code)] // not every test crate needs a package
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The repository's `html/` folder.
pub fn html_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("html")
}

/// A fresh, empty folder under the system temp dir, unique to this call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wspush-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The full argument list for a test server: ephemeral loopback ports, the repo's html, `extra`.
fn args(extra: &[&str]) -> Vec<String> {
    let html = html_dir().display().to_string();
    let defaults = [
        ("--ws-addr", "127.0.0.1:0"),
        ("--http-addr", "127.0.0.1:0"),
        ("--html-dir", html.as_str()),
    ];
    let mut args = vec!["wspush".to_owned()];
    // clap refuses a flag given twice, so a default is left out when `extra`
    // gives that flag (e.g. `--html-dir`, or `--ws-addr` to restart on the same port).
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts a server with these flags, returning the start error if there is one.
pub fn try_start(extra: &[&str]) -> Result<Server, StartError> {
    let config = Config::try_parse_from(args(extra)).expect("test flags parse");
    Server::start(config)
}

/// A server on 127.0.0.1 ephemeral ports, shut down when dropped.
pub struct TestServer {
    server: Option<Server>,
    /// The WebSocket listener.
    pub ws: SocketAddr,
    /// The HTTP side port.
    pub http: SocketAddr,
}

impl TestServer {
    /// Starts a server with the default flags plus `extra`.
    pub fn start(extra: &[&str]) -> TestServer {
        let server = try_start(extra).expect("server starts");
        TestServer {
            ws: server.ws_addr(),
            http: server.http_addr(),
            server: Some(server),
        }
    }

    /// The `ws://.../echo` URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/echo", self.ws)
    }

    /// A full HTTP URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Connects a WebSocket client to `/echo`.
    pub fn client(&self) -> WsClient {
        WsClient::connect(&self.ws_url())
    }

    /// GET; returns status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        respond(ureq::get(&self.url(path)).call())
    }

    /// GET; returns status, content type and body.
    pub fn get_typed(&self, path: &str) -> (u16, String, Vec<u8>) {
        let response = match ureq::get(&self.url(path)).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP request failed: {e}"),
        };
        let status = response.status();
        let content_type = response.header("Content-Type").unwrap_or_default().to_owned();
        let mut body = Vec::new();
        response.into_reader().read_to_end(&mut body).expect("read body");
        (status, content_type, body)
    }

    /// POST with a content type; returns status and body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        respond(
            ureq::post(&self.url(path))
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    /// Any method, with extra headers; returns status and body.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut req = ureq::request(method, &self.url(path));
        for (name, value) in headers {
            req = req.set(name, value);
        }
        respond(req.send_bytes(body))
    }

    /// Sends `raw` bytes to the HTTP port and reads the response.
    pub fn raw_http(&self, raw: &[u8]) -> HttpResponse {
        let mut stream = raw_connect(self.http);
        stream.write_all(raw).expect("send request");
        read_http_response(&mut stream)
    }

    /// `/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = self.get("/stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats is JSON")
    }

    /// One figure from `/stats`.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no stat {name}"))
    }

    /// The counters read through the library, without an HTTP request.
    pub fn counters(&self) -> StatsSnapshot {
        self.server.as_ref().expect("server running").stats()
    }

    /// Waits until the counters satisfy `cond` (a refusal is counted just
    /// after its response is written, so a client may see it first).
    pub fn wait_counters(&self, what: &str, cond: impl Fn(&StatsSnapshot) -> bool) {
        wait_until(what, || cond(&self.counters()));
    }

    /// Waits until the server has exactly `n` clients (read through the library).
    pub fn wait_clients(&self, n: u64) {
        wait_until(&format!("{n} clients registered"), || {
            self.counters().clients == n
        });
    }

    /// `/clients` as JSON.
    pub fn clients(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/clients");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("clients is a JSON list")
    }

    /// The id `/clients` gives the client whose local address is `addr`.
    pub fn client_id(&self, addr: SocketAddr) -> String {
        self.clients()
            .iter()
            .find(|c| c["peer"] == addr.to_string())
            .and_then(|c| c["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no client with peer {addr} in /clients"))
    }

    /// Stops the server (Close 1001 to clients, then the threads).
    pub fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn respond(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("HTTP request failed: {e}"),
    }
}

/// Asserts a response is `status` with a body of exactly `{"error": "..."}`
/// whose message contains `needle` (case-insensitive).
pub fn assert_error(response: &(u16, String), status: u16, needle: &str) {
    let (got, body) = response;
    assert_eq!(*got, status, "status; body: {body}");
    assert_error_body(body.as_bytes(), needle);
}

/// Asserts `body` is exactly `{"error": "..."}` with `needle` in the message.
pub fn assert_error_body(body: &[u8], needle: &str) {
    let text = String::from_utf8_lossy(body);
    let json: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {text}"));
    assert_eq!(object.len(), 1, "error body has only `error`: {text}");
    let message = object["error"]
        .as_str()
        .unwrap_or_else(|| panic!("`error` is not a string: {text}"));
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "error {message:?} should mention {needle:?}"
    );
}

/// Polls `cond` until it holds; fails the test after `DEADLINE`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Threads of this process now.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Open file descriptors of this process now (not counting the one reading the list).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
        - 1
}

// ---------------------------------------------------------------------------
// WebSocket clients
// ---------------------------------------------------------------------------

/// A blocking WebSocket client.
pub struct WsClient {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// A refused WebSocket handshake: status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Vec<u8>,
}

impl WsClient {
    /// Connects to `url`.
    pub fn connect(url: &str) -> WsClient {
        WsClient::try_connect(url, &[]).unwrap_or_else(|r| panic!("WebSocket connect refused: {r:?}"))
    }

    /// Connects to `url` with extra request headers; a refusal gives its status and body.
    pub fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<WsClient, Refused> {
        let mut request = url.into_client_request().expect("valid URL");
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        match tungstenite::connect(request) {
            Ok((ws, _)) => {
                if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                    s.set_read_timeout(Some(DEADLINE)).expect("set timeout");
                }
                Ok(WsClient { ws })
            }
            Err(tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                body: resp.body().clone().unwrap_or_default(),
            }),
            Err(e) => panic!("WebSocket connect failed: {e}"),
        }
    }

    /// The client's own address (the server's `peer` for it).
    pub fn local_addr(&self) -> SocketAddr {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(s) => s.local_addr().expect("local addr"),
            _ => unreachable!("plain TCP only"),
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next data or close message (pings and pongs are answered and skipped).
    pub fn next(&mut self) -> io::Result<Message> {
        loop {
            match self.ws.read() {
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
                Ok(m) => return Ok(m),
                Err(tungstenite::Error::Io(e)) => return Err(e),
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
    }

    /// The next text message; fails on anything else.
    pub fn next_text(&mut self) -> String {
        match self.next() {
            Ok(Message::Text(t)) => t.to_string(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next binary message; fails on anything else.
    pub fn next_binary(&mut self) -> Vec<u8> {
        match self.next() {
            Ok(Message::Binary(b)) => b.to_vec(),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// Reads until the server's Close frame; returns its code and reason. The
    /// reply tungstenite owes goes out with the read that follows.
    pub fn expect_close(&mut self) -> (u16, String) {
        match self.next() {
            Ok(Message::Close(Some(frame))) => {
                let _ = self.ws.flush();
                (u16::from(frame.code), frame.reason.to_string())
            }
            other => panic!("expected a Close frame, got {other:?}"),
        }
    }

    /// Closes with 1000 and waits for the server's reply and the end of the connection.
    pub fn close(mut self) {
        self.ws.close(None).expect("send close");
        loop {
            match self.ws.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => return,
                Err(e) => panic!("expected a clean close, got {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------

/// A TCP connection with reads and writes limited to `DEADLINE`.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("set timeout");
    stream
}

/// A TCP connection from the local address `from` (any of 127.0.0.0/8
/// works on loopback) to `to`, with reads and writes limited to `DEADLINE`.
pub fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    socket.bind(&local.into()).expect("bind the client's address");
    socket.connect(&to.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("set timeout");
    stream
}

/// An HTTP response read off a raw socket.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP response: the head, then `Content-Length` bytes or up to EOF.
pub fn read_http_response(stream: &mut TcpStream) -> HttpResponse {
    Responses::new(stream).next()
}

/// Reads HTTP responses one after another off one connection, keeping the
/// bytes that follow each one (pipelined responses).
pub struct Responses<'a> {
    stream: &'a mut TcpStream,
    data: Vec<u8>,
}

impl<'a> Responses<'a> {
    /// Nothing read yet.
    pub fn new(stream: &'a mut TcpStream) -> Responses<'a> {
        Responses {
            stream,
            data: Vec::new(),
        }
    }

    /// The next response: `Content-Length` bytes of body, or up to EOF without one.
    pub fn next(&mut self) -> HttpResponse {
        self.read(false)
    }

    /// The next response to a HEAD request: no body, whatever Content-Length says.
    pub fn next_to_head(&mut self) -> HttpResponse {
        self.read(true)
    }

    /// Everything after the responses read so far, to the end of the connection.
    pub fn rest(self) -> (Vec<u8>, Ending) {
        let (more, ending) = read_to_end(self.stream);
        ([self.data, more].concat(), ending)
    }

    /// Reads more; false at EOF or a reset.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.data.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read response: {e}"),
        }
    }

    fn read(&mut self, no_body: bool) -> HttpResponse {
        let head_end = loop {
            if let Some(i) = self.data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                self.fill(),
                "connection closed before a full response head: {:?}",
                String::from_utf8_lossy(&self.data)
            );
        };
        let HttpResponse { status, headers, .. } =
            parse_head(&String::from_utf8_lossy(&self.data[..head_end]));
        self.data.drain(..head_end);
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let body_len = match (no_body, length) {
            (true, _) => 0,
            (false, Some(len)) => {
                while self.data.len() < len {
                    assert!(self.fill(), "connection closed inside the body");
                }
                len
            }
            (false, None) => {
                while self.fill() {}
                self.data.len()
            }
        };
        let body = self.data.drain(..body_len).collect();
        HttpResponse {
            status,
            headers,
            body,
        }
    }
}

/// A response head's status and header lines (names lowercased), with no body.
pub fn parse_head(head: &str) -> HttpResponse {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: Vec::new(),
    }
}

/// Reads up to the end of a response head: the head (its blank line
/// included) and the bytes that came after it.
pub fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("read a response head");
        assert!(
            n > 0,
            "closed before a whole response head: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&chunk[..n]);
    };
    let rest = data.split_off(end);
    (String::from_utf8_lossy(&data).into_owned(), rest)
}

/// Connects to `addr` and sends `bytes`.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = raw_connect(addr);
    stream.write_all(bytes).expect("send request");
    stream
}

/// Asserts that the response waiting on `stream` is a front-door refusal:
/// `status`, `Connection: close`, a JSON error mentioning `needle`, and then
/// the end of the connection with nothing more.
pub fn assert_refusal(stream: &mut TcpStream, status: u16, needle: &str) {
    let mut responses = Responses::new(stream);
    let resp = responses.next();
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    assert_eq!(resp.status, status, "{body}");
    assert_eq!(resp.header("connection"), Some("close"), "{body}");
    assert_error_body(&resp.body, needle);
    let (rest, _) = responses.rest();
    assert!(
        rest.is_empty(),
        "nothing after the {status}: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// How a connection ended when read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed (FIN).
    Eof,
    /// The peer reset the connection.
    Reset,
}

/// Reads and keeps everything until the peer closes or resets; fails at `DEADLINE`.
pub fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Ending) {
    let deadline = Instant::now() + DEADLINE;
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server did not close the connection in time");
        stream.set_read_timeout(Some(left)).expect("set timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (data, Ending::Eof),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (data, Ending::Reset),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

/// The key and accept value from RFC 6455's example.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A WebSocket upgrade request for `path` with the given extra header lines
/// (each ending in `\r\n`), without key and version unless given.
pub fn upgrade_request(host: SocketAddr, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n")
}

/// One WebSocket frame as read or written by the raw client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Opcodes.
pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A client frame's bytes; `mask: None` sends it unmasked (a protocol error).
pub fn encode_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0xF)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A WebSocket client on a raw socket: sends any bytes, reads frames by hand.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects and completes the handshake on `/echo`.
    pub fn connect(addr: SocketAddr) -> RawWs {
        RawWs::handshake(raw_connect(addr), addr)
    }

    /// Completes the handshake on an already connected `stream`.
    pub fn handshake(mut stream: TcpStream, addr: SocketAddr) -> RawWs {
        let request = upgrade_request(
            addr,
            "/echo",
            &format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n"),
        );
        stream.write_all(request.as_bytes()).expect("send handshake");
        let (head, buf) = read_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101"), "handshake refused: {head}");
        assert!(head.contains(SAMPLE_ACCEPT), "wrong accept key: {head}");
        RawWs { stream, buf }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(&encode_frame(
            true,
            0,
            opcode,
            payload,
            Some([0x37, 0xfa, 0x21, 0x3d]),
        ));
    }

    fn fill(&mut self, n: usize) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let got = self.stream.read(&mut chunk)?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(())
    }

    /// Reads the next frame from the server (which never masks).
    pub fn read_frame(&mut self) -> io::Result<RawFrame> {
        self.fill(2)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        assert_eq!(b1 & 0x80, 0, "server frames are not masked");
        let (len, header) = match b1 & 0x7F {
            126 => {
                self.fill(4)?;
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                self.fill(10)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        self.fill(header + len)?;
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Ok(RawFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: b0 & 0xF,
            payload,
        })
    }

    /// Reads frames, skipping pings, until a Close; returns its code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            let frame = self.read_frame().expect("read until Close");
            match frame.opcode {
                OP_PING | OP_PONG => continue,
                OP_CLOSE => return close_parts(&frame.payload),
                other => panic!("expected Close, got opcode {other}: {frame:?}"),
            }
        }
    }
}

/// The code and reason of a Close payload.
pub fn close_parts(payload: &[u8]) -> (u16, String) {
    assert!(payload.len() >= 2, "Close without a code: {payload:?}");
    (
        u16::from_be_bytes([payload[0], payload[1]]),
        String::from_utf8(payload[2..].to_vec()).expect("close reason is UTF-8"),
    )
}

/// Sends a well-formed upgrade request for `/echo` on a raw socket and reads the answer
/// (for refusals: the status, headers and the whole body).
pub fn raw_upgrade_response(addr: SocketAddr) -> HttpResponse {
    let mut stream = raw_connect(addr);
    let request = upgrade_request(
        addr,
        "/echo",
        &format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n"),
    );
    stream.write_all(request.as_bytes()).expect("send upgrade");
    read_http_response(&mut stream)
}

/// A TCP connection with a small receive buffer (set before connecting, so the
/// window stays small): a peer that does not read fills up quickly.
pub fn small_window_connect(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("set timeout");
    stream
}
