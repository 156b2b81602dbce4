//! Shared test helpers: a server on ephemeral ports, a WebSocket client, HTTP calls, deadlines.
#![allow(dead_code)]

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use wspush::{Config, Server};

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The repository's `html/` folder.
pub fn html_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("html")
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
        let html = html_dir();
        let mut args = vec![
            "wspush".to_owned(),
            "--ws-addr".into(),
            "127.0.0.1:0".into(),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
            "--html-dir".into(),
            html.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = Config::try_parse_from(&args).expect("test flags parse");
        let server = Server::start(config).expect("server starts");
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

    /// POST with a content type; returns status and body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        respond(
            ureq::post(&self.url(path))
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
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

    /// Waits until `/stats` reports exactly `n` clients.
    pub fn wait_clients(&self, n: u64) {
        wait_until(&format!("{n} clients registered"), || self.stat("clients") == n);
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

/// Polls `cond` until it holds; fails the test after `DEADLINE`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A blocking WebSocket client.
pub struct WsClient {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects to `url`.
    pub fn connect(url: &str) -> WsClient {
        let (ws, _) = tungstenite::connect(url).expect("WebSocket connects");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(DEADLINE)).expect("set timeout");
        }
        WsClient { ws }
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
}
