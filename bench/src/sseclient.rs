//! A lean EventSource-style client for the load generator: the request a
//! browser's EventSource sends (`Accept: text/event-stream`, `Cache-Control:
//! no-cache`, and `Last-Event-ID` when it resumes), the response head checked
//! with httparse, then the event stream parsed from a buffer zero-filled once
//! and reused ([`Events`]). Like a WebSocket client, a connected one leaves
//! tokio for a reader thread's epoll loop (`pool.rs`), which calls
//! [`Events::read_from`] once per readiness.
//!
//! The body must be delimited by the end of the connection, as both servers
//! send it (wspush closes a stream's connection; Nchan never ends the body).
//! A chunked body is refused with an error rather than misread.

mod events;

use std::net::{IpAddr, SocketAddr, TcpStream};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::wsclient::client_socket;
pub use events::{Event, Events};

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// The request EventSource sends for `target` on `host`, resuming after `last_event_id`.
fn request(host: SocketAddr, target: &str, last_event_id: Option<&str>) -> String {
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\n{resume}\r\n"
    )
}

/// Checks the response head at the start of `b`: `Ok(None)` until it is
/// complete, then its length (what follows is the event stream).
fn parse_head(b: &[u8]) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(b) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = response.code.unwrap_or(0);
    if status != 200 {
        return Err(format!("HTTP {status} {}", response.reason.unwrap_or("")));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("text/event-stream") {
        return Err(format!("Content-Type {content_type:?}, not text/event-stream"));
    }
    if header("transfer-encoding").is_some() || header("content-length").is_some() {
        return Err("a framed body (Transfer-Encoding or Content-Length): not supported".into());
    }
    Ok(Some(len))
}

/// Connects from `src` to `addr`, asks for the stream at `target` (resuming
/// after `last_event_id`) and checks the response head. `rcvbuf`: see
/// [`client_socket`]. Returns the socket
/// (non-blocking, no longer registered with tokio) and the parser, holding
/// whatever of the stream came with the head.
pub async fn connect(
    addr: SocketAddr,
    src: IpAddr,
    target: &str,
    last_event_id: Option<&str>,
    rcvbuf: Option<u32>,
) -> Result<(TcpStream, Events), String> {
    let mut stream = client_socket(src, rcvbuf)?
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .write_all(request(addr, target, last_event_id).as_bytes())
        .await
        .map_err(|e| format!("request: {e}"))?;
    let mut events = Events::new();
    let recv = events.recv();
    loop {
        let n = stream
            .read(recv.spare(0))
            .await
            .map_err(|e| format!("response: {e}"))?;
        if n == 0 {
            return Err("response: connection closed".into());
        }
        recv.filled(n);
        if let Some(len) = parse_head(recv.received())? {
            recv.take(len);
            break;
        }
        if recv.received().len() >= MAX_HEAD {
            return Err("response head too long".into());
        }
    }
    // Non-blocking, as tokio left it.
    let stream = stream.into_std().map_err(|e| e.to_string())?;
    Ok((stream, events))
}

#[cfg(test)]
mod tests;
