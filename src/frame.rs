//! Server-to-client frames, encoded once and shared.
//!
//! Frames a server sends are never masked, so the bytes of one broadcast are the
//! same for every client: they are encoded here once and handed around as an
//! `Arc<[u8]>`, never re-serialised per client.

use std::io;
use std::iter;
use std::sync::Arc;

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

/// The wire bytes of one complete WebSocket frame, shared by every client it goes to.
pub type EncodedFrame = Arc<[u8]>;

/// Longest close reason the protocol allows (a control payload is 125 bytes, 2 hold the code).
const MAX_CLOSE_REASON: usize = 123;

/// What a published message is, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// A text frame; the payload is valid UTF-8.
    Text,
    /// A binary frame.
    Binary,
    /// A text frame whose text is one JSON value (checked by the caller): on
    /// `/ws/…` the envelope embeds it as itself rather than as a string.
    Json,
}

/// Longest frame header a server writes: 2 bytes and an 8-byte length.
const MAX_HEADER: usize = 10;
/// First header byte of a complete (FIN) text frame.
const FIN_TEXT: u8 = 0x81;

fn encode(frame: Frame) -> EncodedFrame {
    let mut out = Vec::with_capacity(frame.len());
    // Writing into a Vec cannot fail.
    let _ = frame.format(&mut out);
    out.into()
}

/// A complete data frame carrying `payload`.
pub fn data(kind: PayloadKind, payload: &[u8]) -> EncodedFrame {
    let opcode = match kind {
        PayloadKind::Text | PayloadKind::Json => Data::Text,
        PayloadKind::Binary => Data::Binary,
    };
    encode(Frame::message(payload.to_vec(), OpCode::Data(opcode), true))
}

/// A text frame.
pub fn text(payload: &str) -> EncodedFrame {
    data(PayloadKind::Text, payload.as_bytes())
}

/// A complete text frame of exactly `len` payload bytes, which `fill` writes
/// into the frame's one allocation (no intermediate copy of the payload).
/// `fill` must write `len` bytes: fewer leave zeros, more are cut off, both
/// caught by a debug assertion.
pub fn text_written(len: usize, fill: impl FnOnce(&mut io::Cursor<&mut [u8]>)) -> EncodedFrame {
    let mut header = [0u8; MAX_HEADER];
    let head = text_header(&mut header, len);
    // An exact-size iterator gives the `Arc` its one allocation up front.
    let mut out: EncodedFrame = iter::repeat_n(0u8, head + len).collect();
    let buf = Arc::make_mut(&mut out);
    buf[..head].copy_from_slice(&header[..head]);
    let mut cursor = io::Cursor::new(&mut buf[head..]);
    fill(&mut cursor);
    debug_assert_eq!(cursor.position() as usize, len, "text_written: wrong length");
    out
}

/// The payload of a text frame this module encoded (server frames are never
/// masked); empty if it is not one.
pub fn text_payload(frame: &[u8]) -> &str {
    let head = match frame.get(1).map(|b| b & 0x7F) {
        Some(126) => 4,
        Some(127) => MAX_HEADER,
        Some(_) => 2,
        None => return "",
    };
    frame
        .get(head..)
        .and_then(|payload| std::str::from_utf8(payload).ok())
        .unwrap_or("")
}

/// Writes a FIN text frame's header for `len` payload bytes; returns its length.
fn text_header(out: &mut [u8; MAX_HEADER], len: usize) -> usize {
    out[0] = FIN_TEXT;
    match len {
        0..=125 => {
            out[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    }
}

/// A ping with an empty payload.
pub fn ping() -> EncodedFrame {
    encode(Frame::ping(Vec::new()))
}

/// A close frame with `code` and `reason` (cut at a character boundary to fit).
pub fn close(code: CloseCode, reason: &str) -> EncodedFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode(Frame::close(Some(CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn small_text_frame_is_header_plus_payload() {
        let f = text("hi");
        assert_eq!(&f[..], &[0x81, 2, b'h', b'i']);
    }

    #[test]
    fn a_written_text_frame_is_the_same_as_an_encoded_one() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let written = text_written(len, |w| {
                let _ = w.write_all(payload.as_bytes());
            });
            assert_eq!(written, text(&payload), "{len}");
        }
    }

    #[test]
    fn a_text_frames_payload_is_read_back_whatever_its_length() {
        for len in [0, 125, 126, 65535, 65536] {
            let payload = "é".repeat(len / 2);
            assert_eq!(text_payload(&text(&payload)), payload, "{len}");
        }
        assert_eq!(text_payload(&[]), "");
    }

    #[test]
    fn json_goes_out_as_a_text_frame() {
        assert_eq!(data(PayloadKind::Json, b"{}"), text("{}"));
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let f = close(CloseCode::Policy, &"é".repeat(100));
        // 2 header bytes + 2 code bytes + at most 123 reason bytes.
        assert!(f.len() <= 127, "{}", f.len());
        assert_eq!(f[0], 0x88);
    }
}
