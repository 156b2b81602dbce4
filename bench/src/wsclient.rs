//! A lean WebSocket client for the load generator: the handshake by hand
//! over tokio ([`Client::connect`]), then a minimal reader of the server's
//! (unmasked) frames on a buffer zero-filled once and reused for the whole
//! connection ([`Frames`]). A reading client leaves tokio after the handshake
//! ([`Client::into_parts`]) for a reader thread's epoll loop (see `pool.rs`),
//! which calls [`Frames::read_from`] once per readiness; [`Client`] itself
//! reads through tokio for the few clients that do more (the soak's churn).
//!
//! It replaces tokio-tungstenite, which zero-filled its read buffer before
//! every read and went through a task wake-up, several wakers and a message
//! allocation per message: at 100,000 deliveries/s that made the load
//! generator cost as much CPU as the server it measures.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sha1::{Digest, Sha1};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpSocket;

use crate::pool::Step;

/// Initial read buffer per connection (grows for a larger frame).
const READ_BUFFER: usize = 4096;
/// Free space below which the buffer grows before a read.
const MIN_FREE: usize = 1024;
/// The longest handshake response accepted.
const MAX_RESPONSE: usize = 16 * 1024;
/// The largest frame or message accepted (tungstenite's default message limit).
const MAX_MESSAGE: usize = 64 << 20;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A frame header, as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    /// Bytes of the header itself (2, 4 or 10).
    pub(crate) header_len: usize,
    pub(crate) payload_len: usize,
}

/// Parses the frame header at the start of `b`: `Ok(None)` until it is complete.
pub(crate) fn parse_header(b: &[u8]) -> Result<Option<Header>, String> {
    let [b0, b1, rest @ ..] = b else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("reserved bits set".into());
    }
    if b1 & 0x80 != 0 {
        return Err("masked frame from the server".into());
    }
    let (payload_len, header_len) = match b1 & 0x7f {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 4),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(l) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(l);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || payload_len > 125 {
                return Err(format!(
                    "bad control frame (opcode {opcode}, {payload_len} bytes)"
                ));
            }
        }
        _ => return Err(format!("unknown opcode {opcode}")),
    }
    if payload_len > MAX_MESSAGE as u64 {
        return Err(format!("frame of {payload_len} bytes"));
    }
    Ok(Some(Header {
        fin,
        opcode,
        header_len,
        payload_len: payload_len as usize,
    }))
}

/// A client frame (masked) with `opcode` and `payload` (at most 125 bytes: control frames only).
fn write_control(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    debug_assert!(payload.len() <= 125);
    out.push(0x80 | opcode);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// splitmix64: masks and keys need only differ, not be secret, here.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut s = crate::load::now_ns() ^ (u64::from(std::process::id()) << 32);
    s ^= COUNTER.fetch_add(1, Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    next_random(&mut s)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The `Sec-WebSocket-Accept` a server answers `key` with.
pub(crate) fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&h.finalize())
}

/// The upgrade request for `GET /echo` on `host` (what tungstenite sent: no `Origin`).
pub(crate) fn request(host: SocketAddr, key: &str) -> String {
    format!(
        "GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )
}

/// Checks the handshake response at the start of `b`: `Ok(None)` until its
/// header block is complete, then the bytes it takes (what follows is frames).
pub(crate) fn parse_response(b: &[u8], key: &str) -> Result<Option<usize>, String> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&b[..end]).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("bad status line {status:?}"));
    }
    if parts.next() != Some("101") {
        return Err(format!("HTTP error: {status}"));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => connection = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")),
            "sec-websocket-accept" => accept = value == accept_key(key),
            _ => {}
        }
    }
    match (upgrade, connection, accept) {
        (false, _, _) => Err("no 'Upgrade: websocket' in the response".into()),
        (_, false, _) => Err("no 'Connection: Upgrade' in the response".into()),
        (_, _, false) => Err("wrong or missing Sec-WebSocket-Accept".into()),
        _ => Ok(Some(end + 4)),
    }
}

/// A connection's receive buffer and frame state, apart from the socket.
pub struct Frames {
    /// Zero-filled once; bytes `start..end` are received and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The whole frame the buffer must hold next, once its header is known.
    need: usize,
    /// A fragmented message being reassembled (the servers send whole messages).
    fragments: Option<Vec<u8>>,
    /// Control frames waiting to be written (pongs, the Close reply).
    out: Vec<u8>,
    close_sent: bool,
    random: u64,
}

impl Frames {
    pub(crate) fn new(random: u64) -> Frames {
        Frames {
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            need: 0,
            fragments: None,
            out: Vec::new(),
            close_sent: false,
            random,
        }
    }

    /// Free space to read into (at least `MIN_FREE` bytes, and room for the next frame).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < MIN_FREE || self.buf.len() < self.need {
            let len = (self.buf.len() * 2).max(self.need).max(self.end + MIN_FREE);
            self.buf.resize(len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Frames::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    fn received(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn mask(&mut self) -> [u8; 4] {
        (next_random(&mut self.random) as u32).to_ne_bytes()
    }

    /// Handles every complete frame received: each message goes to
    /// `on_message`, pings are answered (queued in `out`). `Ok(false)` once
    /// the server sent Close (its reply queued unless we sent ours first).
    pub(crate) fn process(&mut self, mut on_message: impl FnMut(&[u8])) -> Result<bool, String> {
        loop {
            let Some(h) = parse_header(self.received())? else {
                self.need = 0;
                return Ok(true);
            };
            let frame_len = h.header_len + h.payload_len;
            if self.end - self.start < frame_len {
                self.need = frame_len;
                return Ok(true);
            }
            let payload = self.start + h.header_len..self.start + frame_len;
            self.start += frame_len;
            match (h.opcode, &mut self.fragments) {
                (OP_TEXT | OP_BINARY, None) if h.fin => on_message(&self.buf[payload]),
                (OP_TEXT | OP_BINARY, None) => self.fragments = Some(self.buf[payload].to_vec()),
                (OP_TEXT | OP_BINARY, Some(_)) => return Err("new message inside a fragmented one".into()),
                (OP_CONTINUATION, Some(message)) => {
                    if message.len() + h.payload_len > MAX_MESSAGE {
                        return Err("message too long".into());
                    }
                    message.extend_from_slice(&self.buf[payload]);
                    if h.fin {
                        if let Some(message) = self.fragments.take() {
                            on_message(&message);
                        }
                    }
                }
                (OP_CONTINUATION, None) => return Err("continuation without a message".into()),
                (OP_PING, _) => {
                    let mask = self.mask();
                    write_control(&mut self.out, OP_PONG, &self.buf[payload], mask);
                }
                (OP_CLOSE, _) => {
                    if !self.close_sent {
                        // Echo the status code, as tungstenite does.
                        let mask = self.mask();
                        let code = if h.payload_len >= 2 {
                            &self.buf[payload][..2]
                        } else {
                            &[][..]
                        };
                        write_control(&mut self.out, OP_CLOSE, code, mask);
                        self.close_sent = true;
                    }
                    return Ok(false);
                }
                _ => {} // Pong
            }
        }
    }

    /// Reads once from `sock` (non-blocking) and handles the frames received (see
    /// [`Frames::process`]), writing any reply at once as far as the socket takes it.
    pub(crate) fn read_from(&mut self, sock: &TcpStream, on_message: impl FnMut(&[u8])) -> Step {
        let spare = self.spare();
        let free = spare.len();
        let (n, eof) = match (&*sock).read(spare) {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::More,
            Err(_) => return Step::Closed,
        };
        self.filled(n);
        let open = self.process(on_message);
        if !self.out.is_empty() && self.write_to(sock).is_err() {
            return Step::Closed;
        }
        match open {
            Ok(true) if eof => Step::Closed,
            Ok(true) if n == free => Step::More,
            Ok(true) => Step::Drained,
            _ => Step::Closed,
        }
    }

    /// Writes what is queued as far as `sock` takes it without blocking (the
    /// rest when it is writable again).
    pub(crate) fn write_to(&mut self, sock: &TcpStream) -> io::Result<()> {
        while !self.out.is_empty() {
            match (&*sock).write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether frames wait to be written.
    pub(crate) fn must_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues a Close frame without a status (as tungstenite's `Message::Close(None)`).
    pub(crate) fn queue_close(&mut self) {
        if !self.close_sent {
            let mask = self.mask();
            write_control(&mut self.out, OP_CLOSE, &[], mask);
            self.close_sent = true;
        }
    }
}

/// One WebSocket client connection.
pub struct Client {
    fd: AsyncFd<TcpStream>,
    frames: Frames,
    /// Bytes that came with the handshake response and are not processed yet.
    unprocessed: bool,
}

impl Client {
    /// Connects from `src` to `ws` and completes the handshake for `/echo`.
    /// `rcvbuf`: a small receive buffer and an Ethernet-sized MSS (clients that stop reading).
    pub async fn connect(ws: SocketAddr, src: IpAddr, rcvbuf: Option<u32>) -> Result<Client, String> {
        let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| format!("bind {src}: {e}"))?;
        if let Some(n) = rcvbuf {
            sock.set_recv_buffer_size(n)
                .map_err(|e| format!("SO_RCVBUF: {e}"))?;
            // Loopback's 64 KiB segments make the server's send buffer grow past
            // a megabyte; an Ethernet-sized MSS keeps it near what a real network
            // gives, so a client that stops reading fills it within ~50 KiB.
            set_mss(&sock, 1460).map_err(|e| format!("TCP_MAXSEG: {e}"))?;
        }
        let stream = sock.connect(ws).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        // Non-blocking, as tokio left it.
        let stream = stream.into_std().map_err(|e| e.to_string())?;
        // SAFETY: the std::net::TcpStream owns its descriptor, and the AsyncFd owns the stream.
        let fd = unsafe { AsyncFd::register(stream) }.map_err(|e| format!("register: {e}"))?;
        let mut random = seed();
        let key = base64(
            &[
                next_random(&mut random).to_ne_bytes(),
                next_random(&mut random).to_ne_bytes(),
            ]
            .concat(),
        );
        let mut client = Client {
            fd,
            frames: Frames::new(random),
            unprocessed: false,
        };
        client.frames.out.extend_from_slice(request(ws, &key).as_bytes());
        client.flush().await.map_err(|e| format!("handshake: {e}"))?;
        loop {
            match client.fill().await {
                Ok(0) => return Err("handshake: connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("handshake: {e}")),
            }
            let f = &mut client.frames;
            if let Some(len) = parse_response(f.received(), &key).map_err(|e| format!("handshake: {e}"))? {
                f.start += len;
                client.unprocessed = f.start < f.end;
                return Ok(client);
            }
            if f.end >= MAX_RESPONSE {
                return Err("handshake: response head too long".into());
            }
        }
    }

    /// The socket (non-blocking, no longer registered with tokio) and the frame
    /// state, bytes that came with the handshake included, for a reader thread.
    pub fn into_parts(self) -> (TcpStream, Frames) {
        (self.fd.into_inner(), self.frames)
    }

    /// Waits until the socket is readable and reads once; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        loop {
            let spare = self.frames.spare();
            let free = spare.len();
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(spare)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < free {
                        // Drained: wait for the next event instead of an EAGAIN read.
                        guard.clear_ready();
                    }
                    self.frames.filled(n);
                    return Ok(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Waits for data and reads it once (bytes that came with the handshake first).
    async fn read(&mut self) -> Result<(), String> {
        if std::mem::take(&mut self.unprocessed) {
            return Ok(());
        }
        match self.fill().await {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Handles the complete frames read (see [`Frames::process`]); then call
    /// [`Client::flush`] if [`Client::must_flush`].
    fn process(&mut self, on_message: impl FnMut(&[u8])) -> Result<bool, String> {
        self.frames.process(on_message)
    }

    /// Whether frames (pongs, Close) wait to be written.
    fn must_flush(&self) -> bool {
        !self.frames.out.is_empty()
    }

    /// Writes the queued frames (cancel-safe: what was written is dropped from the queue at once).
    async fn flush(&mut self) -> io::Result<()> {
        while !self.frames.out.is_empty() {
            let mut guard = self.fd.writable().await?;
            let out = &self.frames.out;
            match guard.try_io(|fd| fd.get_ref().write(out)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => {
                    self.frames.out.drain(..n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Reads once and handles what came, dropping the messages: `Ok(false)` after the server's Close.
    pub async fn skip(&mut self) -> Result<bool, String> {
        self.read().await?;
        let open = self.process(|_| {})?;
        if self.must_flush() {
            self.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(open)
    }

    /// Sends a Close frame (then [`Client::skip`] until `Ok(false)` or an error waits for the reply).
    pub async fn close(&mut self) -> Result<(), String> {
        self.frames.queue_close();
        self.flush().await.map_err(|e| e.to_string())
    }
}

fn set_mss(sock: &TcpSocket, mss: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mss as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame (unmasked).
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `bytes` to `f` in reads of at most `chunk` bytes; the messages and what `process` said last.
    fn feed(f: &mut Frames, bytes: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Result<bool, String>) {
        let mut messages = Vec::new();
        let mut last = Ok(true);
        for part in bytes.chunks(chunk) {
            let mut part = part;
            while !part.is_empty() {
                let spare = f.spare();
                let n = spare.len().min(part.len());
                spare[..n].copy_from_slice(&part[..n]);
                f.filled(n);
                part = &part[n..];
                last = f.process(|m| messages.push(m.to_vec()));
            }
        }
        (messages, last)
    }

    /// The client frames in `out`, unmasked: (opcode, payload).
    fn client_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            assert_eq!(out[0] & 0x80, 0x80, "FIN");
            assert_eq!(out[1] & 0x80, 0x80, "client frames are masked");
            let len = usize::from(out[1] & 0x7f);
            assert!(len <= 125);
            let mask = &out[2..6];
            let payload = out[6..6 + len]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            frames.push((out[0] & 0x0f, payload));
            out = &out[6 + len..];
        }
        frames
    }

    #[test]
    fn header_lengths() {
        let h = |b: &[u8]| parse_header(b).unwrap();
        assert_eq!(h(&[0x81]), None);
        assert_eq!(
            h(&[0x81, 5]),
            Some(Header {
                fin: true,
                opcode: OP_TEXT,
                header_len: 2,
                payload_len: 5
            })
        );
        assert_eq!(h(&[0x82, 126, 1]), None);
        assert_eq!(
            h(&[0x82, 126, 1, 0]).map(|h| (h.header_len, h.payload_len)),
            Some((4, 256))
        );
        assert_eq!(h(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(
            h(&[0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0]).map(|h| (h.fin, h.header_len, h.payload_len)),
            Some((false, 10, 65536))
        );
        assert!(parse_header(&[0x81, 0x85]).is_err(), "masked");
        assert!(parse_header(&[0xC1, 5]).is_err(), "RSV1");
        assert!(parse_header(&[0x83, 5]).is_err(), "opcode 3");
        assert!(parse_header(&[0x89, 126, 0, 126]).is_err(), "long ping");
        assert!(parse_header(&[0x09, 0]).is_err(), "fragmented ping");
        assert!(
            parse_header(&[0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "huge"
        );
    }

    #[test]
    fn frames_split_across_reads() {
        let mut bytes = frame(true, OP_TEXT, b"first");
        bytes.extend(frame(true, OP_BINARY, b"second"));
        for chunk in 1..bytes.len() {
            let mut f = Frames::new(1);
            let (messages, last) = feed(&mut f, &bytes, chunk);
            assert_eq!(
                messages,
                [b"first".to_vec(), b"second".to_vec()],
                "reads of {chunk}"
            );
            assert_eq!(last, Ok(true));
            assert_eq!(f.start, f.end);
        }
    }

    #[test]
    fn sixteen_and_sixty_four_bit_lengths_and_growth() {
        let medium: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let large: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let mut bytes = frame(true, OP_TEXT, &medium);
        bytes.extend(frame(true, OP_BINARY, &large));
        bytes.extend(frame(true, OP_TEXT, b"after"));
        for chunk in [1, 7, 1000, 4096, bytes.len()] {
            let mut f = Frames::new(1);
            let (messages, last) = feed(&mut f, &bytes, chunk);
            assert_eq!(
                messages,
                [medium.clone(), large.clone(), b"after".to_vec()],
                "reads of {chunk}"
            );
            assert_eq!(last, Ok(true));
        }
    }

    #[test]
    fn ping_gets_a_masked_pong_with_its_payload() {
        let mut f = Frames::new(7);
        let mut bytes = frame(true, OP_PING, b"are you there");
        bytes.extend(frame(true, OP_TEXT, b"msg"));
        bytes.extend(frame(true, OP_PONG, b"ignored"));
        bytes.extend(frame(true, OP_PING, b""));
        let (messages, last) = feed(&mut f, &bytes, 3);
        assert_eq!(messages, [b"msg".to_vec()]);
        assert_eq!(last, Ok(true));
        assert_eq!(
            client_frames(&f.out),
            [(OP_PONG, b"are you there".to_vec()), (OP_PONG, Vec::new())]
        );
    }

    #[test]
    fn close_is_answered_with_its_code_and_ends() {
        let mut f = Frames::new(3);
        let mut bytes = frame(true, OP_TEXT, b"last");
        bytes.extend(frame(true, OP_CLOSE, &[0x03, 0xe9, b'b', b'y', b'e']));
        bytes.extend(frame(true, OP_TEXT, b"never"));
        let (messages, last) = feed(&mut f, &bytes, bytes.len());
        assert_eq!(messages, [b"last".to_vec()]);
        assert_eq!(last, Ok(false));
        assert_eq!(client_frames(&f.out), [(OP_CLOSE, vec![0x03, 0xe9])]);

        // Our own Close first: the server's reply is not answered again.
        let mut f = Frames::new(3);
        f.queue_close();
        f.queue_close();
        let (_, last) = feed(&mut f, &frame(true, OP_CLOSE, &[]), 100);
        assert_eq!(last, Ok(false));
        assert_eq!(client_frames(&f.out), [(OP_CLOSE, Vec::new())]);
    }

    #[test]
    fn fragments_are_reassembled_around_a_ping() {
        let mut bytes = frame(false, OP_TEXT, b"one ");
        bytes.extend(frame(false, OP_CONTINUATION, b"two "));
        bytes.extend(frame(true, OP_PING, b"p"));
        bytes.extend(frame(true, OP_CONTINUATION, b"three"));
        bytes.extend(frame(true, OP_TEXT, b"whole"));
        let mut f = Frames::new(1);
        let (messages, last) = feed(&mut f, &bytes, 5);
        assert_eq!(messages, [b"one two three".to_vec(), b"whole".to_vec()]);
        assert_eq!(last, Ok(true));
        assert_eq!(client_frames(&f.out), [(OP_PONG, b"p".to_vec())]);

        let mut f = Frames::new(1);
        assert!(feed(&mut f, &frame(true, OP_CONTINUATION, b"x"), 10).1.is_err());
        let mut f = Frames::new(1);
        let mut bytes = frame(false, OP_TEXT, b"a");
        bytes.extend(frame(true, OP_TEXT, b"b"));
        assert!(feed(&mut f, &bytes, 10).1.is_err());
    }

    #[test]
    fn accept_key_and_base64() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    fn response(key: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
        .into_bytes()
    }

    #[test]
    fn response_with_a_message_right_behind_it() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = response(key);
        let mut bytes = head.clone();
        bytes.extend(frame(true, OP_TEXT, b"newest"));
        bytes.extend(&frame(true, OP_TEXT, b"next")[..3]);
        for cut in 0..head.len() {
            assert_eq!(parse_response(&bytes[..cut], key), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse_response(&bytes, key), Ok(Some(head.len())));

        // The rest is the start of the frame buffer, as `Client::connect` keeps it.
        let mut f = Frames::new(1);
        let spare = f.spare();
        spare[..bytes.len()].copy_from_slice(&bytes);
        f.filled(bytes.len());
        f.start = head.len();
        let mut messages = Vec::new();
        assert_eq!(f.process(|m| messages.push(m.to_vec())), Ok(true));
        assert_eq!(messages, [b"newest".to_vec()]);
        let (messages, _) = feed(&mut f, &frame(true, OP_TEXT, b"next")[3..], 100);
        assert_eq!(messages, [b"next".to_vec()]);
    }

    #[test]
    fn responses_that_fail() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let fails = |r: &str| parse_response(r.as_bytes(), key).is_err();
        assert!(fails("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
        assert!(fails("HTTP/1.1 200 OK\r\n\r\n"));
        assert!(fails("SSH-2.0\r\n\r\n"));
        let wrong = String::from_utf8(response("c29tZXRoaW5nIGVsc2U=")).unwrap();
        assert!(fails(&wrong));
        let no_upgrade = String::from_utf8(response(key))
            .unwrap()
            .replace("Upgrade: websocket\r\n", "");
        assert!(fails(&no_upgrade));
        // Header names in any case, `Connection` with several tokens.
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nserver: x\r\nUPGRADE: WebSocket\r\n\
             connection: keep-alive, Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
            accept_key(key)
        );
        assert_eq!(parse_response(ok.as_bytes(), key), Ok(Some(ok.len())));
    }

    /// A connected pair on loopback: (the client's non-blocking end, the server's blocking end).
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// `read_from` until `until(frames, messages)` holds after a read that drained the socket
    /// (or the connection closed; at most a second).
    fn read_all(
        f: &mut Frames,
        sock: &TcpStream,
        until: impl Fn(&Frames, &[Vec<u8>]) -> bool,
    ) -> (Vec<Vec<u8>>, Vec<Step>) {
        let (mut messages, mut steps) = (Vec::new(), Vec::new());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let step = f.read_from(sock, |m| messages.push(m.to_vec()));
            steps.push(step);
            let done = until(f, &messages) || std::time::Instant::now() > deadline;
            if step == Step::Closed || (step == Step::Drained && done) {
                return (messages, steps);
            }
            if step == Step::Drained {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn read_from_a_socket() {
        use std::io::{Read, Write};
        let (client, mut server) = socket_pair();
        let mut f = Frames::new(5);

        // Nothing there yet: drained, no message.
        assert_eq!(f.read_from(&client, |_| panic!("no message")), Step::Drained);

        // Half a frame, then the rest.
        let frame1 = frame(true, OP_TEXT, &[b'a'; 300]);
        server.write_all(&frame1[..150]).unwrap();
        let (messages, _) = read_all(&mut f, &client, |f, _| f.end - f.start == 150);
        assert!(messages.is_empty());
        server.write_all(&frame1[150..]).unwrap();
        let (messages, steps) = read_all(&mut f, &client, |_, m| m.len() == 1);
        assert_eq!(messages, [vec![b'a'; 300]]);
        assert_eq!(steps.last(), Some(&Step::Drained));

        // More than the buffer holds: a read that fills it says to read again.
        let mut burst = Vec::new();
        for i in 0..100u8 {
            burst.extend(frame(true, OP_BINARY, &[i; 100]));
        }
        server.write_all(&burst).unwrap();
        let (messages, steps) = read_all(&mut f, &client, |_, m| m.len() == 100);
        assert_eq!(messages.len(), 100);
        assert!(messages.iter().enumerate().all(|(i, m)| m == &[i as u8; 100]));
        assert!(steps.contains(&Step::More), "{steps:?}");

        // A ping is answered on the socket at once.
        server.write_all(&frame(true, OP_PING, b"hi")).unwrap();
        read_all(&mut f, &client, |f, _| {
            !f.must_write() && f.start == f.end && f.end > 0
        });
        let mut pong = [0u8; 8];
        server.read_exact(&mut pong).unwrap();
        assert_eq!(client_frames(&pong), [(OP_PONG, b"hi".to_vec())]);

        // The end of the stream, after a last message.
        server.write_all(&frame(true, OP_TEXT, b"bye")).unwrap();
        drop(server);
        let (messages, steps) = read_all(&mut f, &client, |_, _| false);
        assert_eq!(messages, [b"bye".to_vec()]);
        assert_eq!(steps.last(), Some(&Step::Closed));
    }

    /// A whole connection against a scripted server on loopback: the message
    /// sent in the same segment as the 101 response, a ping, a Close.
    #[test]
    fn client_against_a_scripted_server() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0);
                req.extend_from_slice(&b[..n]);
            }
            let req = String::from_utf8(req).unwrap();
            assert!(req.starts_with("GET /echo HTTP/1.1\r\n"), "{req}");
            let key = req
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_owned();
            let mut out = response(&key);
            out.extend(frame(true, OP_TEXT, b"newest"));
            s.write_all(&out).unwrap();
            s.write_all(&frame(true, OP_PING, b"ping!")).unwrap();
            let mut pong = [0u8; 11];
            s.read_exact(&mut pong).unwrap();
            assert_eq!(client_frames(&pong), [(OP_PONG, b"ping!".to_vec())]);
            s.write_all(&frame(true, OP_TEXT, &[b'y'; 200])).unwrap();
            s.write_all(&frame(true, OP_CLOSE, &1000u16.to_be_bytes()))
                .unwrap();
            let mut close = [0u8; 8];
            s.read_exact(&mut close).unwrap();
            assert_eq!(
                client_frames(&close),
                [(OP_CLOSE, 1000u16.to_be_bytes().to_vec())]
            );
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let messages = rt.block_on(async {
            let mut c = Client::connect(addr, "127.0.0.1".parse().unwrap(), None)
                .await
                .unwrap();
            let mut messages = Vec::new();
            loop {
                c.read().await.unwrap();
                let open = c.process(|m| messages.push(m.to_vec())).unwrap();
                if c.must_flush() {
                    c.flush().await.unwrap();
                }
                if !open {
                    break;
                }
            }
            messages
        });
        server.join().unwrap();
        assert_eq!(messages, [b"newest".to_vec(), vec![b'y'; 200]]);
    }
}
