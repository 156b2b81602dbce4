//! An event-stream client on a raw socket, for the SSE tests: it sends a plain
//! `GET /events/…` (no `Accept` header unless asked, as curl does), reads the
//! response head, then parses the body as EventSource does (fields, comments,
//! `id:` kept across events, dispatch at a blank line). A chunked body (what
//! nginx sends an HTTP/1.1 client) is de-chunked first.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;

use crate::channels::{as_message, Got};
use crate::support::{connect_from, parse_head, raw_connect, read_head, read_to_end, Ending, HttpResponse};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` unless an `event:` field named another type.
    pub kind: String,
    pub data: String,
    /// The `id:` field of this event, if it had one.
    pub id: Option<String>,
    /// EventSource's `lastEventId` after this event: what it would resume from.
    pub last_event_id: String,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.data))
    }
}

/// What the stream holds next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A comment line (`: ping`), without the colon and one space.
    Comment(String),
    /// The `retry:` field's value.
    Retry(u64),
    Event(Event),
}

/// An open event stream.
pub struct SseClient {
    pub stream: TcpStream,
    /// The response head (its body is the stream).
    pub head: HttpResponse,
    /// The body's bytes not parsed yet.
    buf: Vec<u8>,
    /// With a chunked body: the bytes not de-chunked yet.
    chunked: Option<Vec<u8>>,
    last_event_id: String,
    /// The fields of the event being read: its type, data lines (each
    /// followed by LF), and `id:` if it had one.
    kind: String,
    data: String,
    id: Option<String>,
}

/// The request for `/events/{target}` with these extra header lines.
pub fn request(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> String {
    let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    format!("GET /events/{target} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n")
}

impl SseClient {
    /// Opens `/events/{target}` on `addr`; fails the test unless it is a 200 stream.
    pub fn connect(addr: SocketAddr, target: &str) -> SseClient {
        SseClient::connect_with(addr, target, &[])
    }

    /// Opens `/events/{target}` with extra headers; fails unless it is a 200 stream.
    pub fn connect_with(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> SseClient {
        SseClient::try_connect(addr, target, headers).unwrap_or_else(|refused| {
            panic!(
                "/events/{target} refused: {} {}",
                refused.status,
                String::from_utf8_lossy(&refused.body)
            )
        })
    }

    /// Opens `/events/{target}`; a refusal gives the whole response.
    pub fn try_connect(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<SseClient, HttpResponse> {
        SseClient::open(raw_connect(addr), addr, target, headers)
    }

    /// Opens `/events/{target}` from the local address `from`; fails unless it is a 200 stream.
    pub fn connect_from(from: &str, addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> SseClient {
        SseClient::open(connect_from(from, addr), addr, target, headers)
            .unwrap_or_else(|refused| panic!("/events/{target} refused: {}", refused.status))
    }

    fn open(
        mut stream: TcpStream,
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<SseClient, HttpResponse> {
        stream
            .write_all(request(addr, target, headers).as_bytes())
            .expect("send the request");
        SseClient::read_head(stream)
    }

    /// Reads the response head off a stream whose request was sent.
    pub fn read_head(mut stream: TcpStream) -> Result<SseClient, HttpResponse> {
        let (head, buf) = read_head(&mut stream);
        let head = parse_head(&head);
        if head.status != 200 {
            // A refusal is closed after its body.
            let (rest, _) = read_to_end(&mut stream);
            let body = [buf, rest].concat();
            return Err(HttpResponse { body, ..head });
        }
        let (buf, chunked) = match head.header("transfer-encoding") {
            Some("chunked") => (Vec::new(), Some(buf)),
            _ => (buf, None),
        };
        Ok(SseClient {
            stream,
            head,
            buf,
            chunked,
            last_event_id: String::new(),
            kind: String::new(),
            data: String::new(),
            id: None,
        })
    }

    /// The client's own address (the server's `peer` for it).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    /// What EventSource would send as `Last-Event-ID` now.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The next comment, `retry` or event; `Err` at the end of the stream.
    pub fn next_item(&mut self) -> io::Result<Item> {
        loop {
            let line = self.next_line()?;
            if let Some(item) = self.process(&line) {
                return Ok(item);
            }
        }
    }

    /// The next event, skipping comments and `retry`.
    pub fn next_event(&mut self) -> Event {
        loop {
            match self.next_item() {
                Ok(Item::Event(event)) => return event,
                Ok(_) => continue,
                Err(e) => panic!("the stream ended before an event: {e}"),
            }
        }
    }

    /// The next event, which must be a channel message.
    pub fn next_message(&mut self) -> Got {
        let event = self.next_event();
        assert_eq!(event.kind, "message", "{event:?}");
        let got = as_message(&event.json()).unwrap_or_else(|| panic!("not a channel message: {event:?}"));
        assert_eq!(
            event.id.as_deref(),
            Some(got.id.as_str()),
            "the id: line is the message's id"
        );
        got
    }

    /// `n` channel messages.
    pub fn messages(&mut self, n: usize) -> Vec<Got> {
        (0..n).map(|_| self.next_message()).collect()
    }

    /// The next event, which must be `event: <kind>` carrying `{"type": kind}`.
    pub fn expect_control(&mut self, kind: &str) -> Event {
        let event = self.next_event();
        assert_eq!(event.kind, kind, "{event:?}");
        assert_eq!(event.json()["type"], kind, "{event:?}");
        event
    }

    /// The next event, which must be `subscribed`; returns its id (also its `id:` line).
    pub fn expect_subscribed(&mut self) -> String {
        let event = self.expect_control("subscribed");
        let id = event.json()["id"]
            .as_str()
            .expect("subscribed has an id")
            .to_owned();
        assert_eq!(event.id.as_deref(), Some(id.as_str()), "{event:?}");
        id
    }

    /// The next event, which must be `reset`; returns its id (also its `id:` line).
    pub fn expect_reset(&mut self) -> String {
        let event = self.expect_control("reset");
        let id = event.json()["id"].as_str().expect("reset has an id").to_owned();
        assert_eq!(event.id.as_deref(), Some(id.as_str()), "{event:?}");
        id
    }

    /// Everything up to the end of the stream: the items, and how it ended.
    pub fn rest(&mut self) -> (Vec<Item>, Ending) {
        let mut items = Vec::new();
        loop {
            match self.next_item() {
                Ok(item) => items.push(item),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (items, Ending::Reset),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (items, Ending::Eof),
                Err(e) => panic!("the stream did not end: {e}"),
            }
        }
    }

    /// One line without its end (LF, CRLF or CR); `UnexpectedEof` at the end.
    fn next_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                // A CR at the end of what has arrived may be half of a CRLF.
                if self.buf[i] == b'\r' && i + 1 == self.buf.len() {
                    self.fill()?;
                    continue;
                }
                let skip = if self.buf[i..].starts_with(b"\r\n") { 2 } else { 1 };
                let line: Vec<u8> = self.buf.drain(..i + skip).take(i).collect();
                return Ok(String::from_utf8(line).expect("UTF-8 stream"));
            }
            self.fill()?;
        }
    }

    /// More body bytes; `UnexpectedEof` at the end of the body.
    fn fill(&mut self) -> io::Result<()> {
        let Some(mut raw) = self.chunked.take() else {
            return read_more(&mut self.stream, &mut self.buf);
        };
        let result = loop {
            match dechunk(&mut raw, &mut self.buf) {
                Some(true) => break Ok(()),
                Some(false) => break Err(io::ErrorKind::UnexpectedEof.into()),
                None => {
                    if let Err(e) = read_more(&mut self.stream, &mut raw) {
                        break Err(e);
                    }
                }
            }
        };
        self.chunked = Some(raw);
        result
    }

    /// One line as EventSource processes it; an item when it completes one.
    fn process(&mut self, line: &str) -> Option<Item> {
        if line.is_empty() {
            return self.dispatch();
        }
        if let Some(comment) = line.strip_prefix(':') {
            return Some(Item::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_owned(),
            ));
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.kind = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.id = Some(value.to_owned());
                self.last_event_id = value.to_owned();
            }
            "retry" => return value.parse().ok().map(Item::Retry),
            _ => {}
        }
        None
    }

    /// The event read so far, if it has data (the standard dispatches none without).
    fn dispatch(&mut self) -> Option<Item> {
        let kind = std::mem::take(&mut self.kind);
        let id = self.id.take();
        let mut data = std::mem::take(&mut self.data);
        data.pop()?;
        Some(Item::Event(Event {
            kind: if kind.is_empty() {
                "message".to_owned()
            } else {
                kind
            },
            data,
            id,
            last_event_id: self.last_event_id.clone(),
        }))
    }
}

/// Appends what the socket has; `UnexpectedEof` at its end.
fn read_more(stream: &mut TcpStream, into: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk)? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n => {
            into.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Moves the first whole chunk of `raw` into `out`: `Some(true)` when one
/// was, `Some(false)` at the last chunk, `None` when more bytes are needed.
fn dechunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) -> Option<bool> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
    let size_line = String::from_utf8_lossy(&raw[..line_end]).into_owned();
    let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
        .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
    if size == 0 {
        return Some(false);
    }
    let start = line_end + 2;
    if raw.len() < start + size + 2 {
        return None;
    }
    assert_eq!(
        &raw[start + size..start + size + 2],
        b"\r\n",
        "a chunk ends with CRLF"
    );
    out.extend_from_slice(&raw[start..start + size]);
    raw.drain(..start + size + 2);
    Some(true)
}
