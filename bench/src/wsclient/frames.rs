//! The frames of a client connection: parsing the server's (unmasked)
//! frames out of its receive buffer ([`Frames`]), and queueing the
//! client's (masked) control frames.

use std::io::{self, Write};
use std::net::TcpStream;

use super::next_random;
use crate::pool::{Step, HANGUP};
use crate::recvbuf::RecvBuf;

/// The largest frame or message accepted (tungstenite's default message limit).
const MAX_MESSAGE: usize = 64 << 20;

pub(super) const OP_CONTINUATION: u8 = 0x0;
pub(super) const OP_TEXT: u8 = 0x1;
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
pub(super) const OP_PING: u8 = 0x9;
pub(super) const OP_PONG: u8 = 0xA;

/// A frame header, as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Bytes of the header itself (2, 4 or 10).
    header_len: usize,
    payload_len: usize,
}

/// Parses the frame header at the start of `b`: `Ok(None)` until it is complete.
fn parse_header(b: &[u8]) -> Result<Option<Header>, String> {
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

/// A fresh masking key (a field of its own, so it can be drawn while the receive buffer is borrowed).
fn mask(random: &mut u64) -> [u8; 4] {
    (next_random(random) as u32).to_ne_bytes()
}

/// A client frame (masked) with `opcode` and `payload` (at most 125 bytes: control frames only).
fn write_control(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    debug_assert!(payload.len() <= 125);
    out.push(0x80 | opcode);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// A connection's receive buffer and frame state, apart from the socket.
pub struct Frames {
    recv: RecvBuf,
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
    pub(super) fn new(random: u64) -> Frames {
        Frames {
            recv: RecvBuf::default(),
            need: 0,
            fragments: None,
            out: Vec::new(),
            close_sent: false,
            random,
        }
    }

    /// Free space to read into (room for the next frame too).
    pub(super) fn spare(&mut self) -> &mut [u8] {
        self.recv.spare(self.need)
    }

    /// `n` bytes were read into [`Frames::spare`].
    pub(super) fn filled(&mut self, n: usize) {
        self.recv.filled(n);
    }

    /// Bytes received and not yet handled.
    pub(super) fn received(&self) -> &[u8] {
        self.recv.received()
    }

    /// Where the unhandled bytes lie in the buffer: (start, end).
    #[cfg(test)]
    pub(super) fn span(&self) -> (usize, usize) {
        self.recv.span()
    }

    /// The first `n` bytes received were handled apart (the handshake response).
    pub(super) fn consume(&mut self, n: usize) {
        self.recv.take(n);
    }

    /// Queues bytes to write as they are (the upgrade request).
    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// What waits to be written.
    pub(super) fn queued(&self) -> &[u8] {
        &self.out
    }

    /// The first `n` bytes queued were written.
    pub(super) fn written(&mut self, n: usize) {
        self.out.drain(..n);
    }

    /// Handles every complete frame received: each message goes to
    /// `on_message`, pings are answered (queued in `out`). `Ok(false)` once
    /// the server sent Close (its reply queued unless we sent ours first).
    pub(super) fn process(&mut self, mut on_message: impl FnMut(&[u8])) -> Result<bool, String> {
        loop {
            let Some(h) = parse_header(self.received())? else {
                self.need = 0;
                return Ok(true);
            };
            let frame_len = h.header_len + h.payload_len;
            if self.received().len() < frame_len {
                self.need = frame_len;
                return Ok(true);
            }
            let frame = self.recv.take(frame_len);
            let payload = self.recv.at(frame.start + h.header_len..frame.end);
            match (h.opcode, &mut self.fragments) {
                (OP_TEXT | OP_BINARY, None) if h.fin => on_message(payload),
                (OP_TEXT | OP_BINARY, None) => self.fragments = Some(payload.to_vec()),
                (OP_TEXT | OP_BINARY, Some(_)) => return Err("new message inside a fragmented one".into()),
                (OP_CONTINUATION, Some(message)) => {
                    if message.len() + h.payload_len > MAX_MESSAGE {
                        return Err("message too long".into());
                    }
                    message.extend_from_slice(payload);
                    if h.fin {
                        if let Some(message) = self.fragments.take() {
                            on_message(&message);
                        }
                    }
                }
                (OP_CONTINUATION, None) => return Err("continuation without a message".into()),
                (OP_PING, _) => {
                    let mask = mask(&mut self.random);
                    write_control(&mut self.out, OP_PONG, payload, mask);
                }
                (OP_CLOSE, _) => {
                    if !self.close_sent {
                        // Echo the status code, as tungstenite does.
                        let mask = mask(&mut self.random);
                        let code = if h.payload_len >= 2 {
                            &payload[..2]
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
        let filled = match self.recv.read_from(sock, self.need) {
            Ok(filled) => filled,
            Err(step) => return step,
        };
        let open = self.process(on_message);
        if !self.out.is_empty() && self.write_to(sock).is_err() {
            return Step::Closed;
        }
        filled.step(open == Ok(true))
    }

    /// Before a reader thread reads on `events`: writes what is queued (the
    /// rest of a pong). `Some(step)` when there is nothing to read (the
    /// socket only became writable) or the write failed.
    pub(crate) fn before_read(&mut self, sock: &TcpStream, events: u32) -> Option<Step> {
        if events & (libc::EPOLLIN as u32 | HANGUP) == 0 {
            return Some(match self.write_to(sock) {
                Ok(()) => Step::Drained,
                Err(_) => Step::Closed,
            });
        }
        if self.must_write() && self.write_to(sock).is_err() {
            return Some(Step::Closed);
        }
        None
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
    pub(super) fn queue_close(&mut self) {
        if !self.close_sent {
            let mask = mask(&mut self.random);
            write_control(&mut self.out, OP_CLOSE, &[], mask);
            self.close_sent = true;
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
