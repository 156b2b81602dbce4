//! Server-to-client frames, encoded once and shared.
//!
//! Frames a server sends are never masked, so the bytes of one broadcast are the
//! same for every client: they are encoded here once and handed around as an
//! `Arc<[u8]>`, never re-serialised per client.

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
}

fn encode(frame: Frame) -> EncodedFrame {
    let mut out = Vec::with_capacity(frame.len());
    // Writing into a Vec cannot fail.
    let _ = frame.format(&mut out);
    out.into()
}

/// A complete data frame carrying `payload`.
pub fn data(kind: PayloadKind, payload: &[u8]) -> EncodedFrame {
    let opcode = match kind {
        PayloadKind::Text => Data::Text,
        PayloadKind::Binary => Data::Binary,
    };
    encode(Frame::message(payload.to_vec(), OpCode::Data(opcode), true))
}

/// A text frame.
pub fn text(payload: &str) -> EncodedFrame {
    data(PayloadKind::Text, payload.as_bytes())
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

    #[test]
    fn small_text_frame_is_header_plus_payload() {
        let f = text("hi");
        assert_eq!(&f[..], &[0x81, 2, b'h', b'i']);
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let f = close(CloseCode::Policy, &"é".repeat(100));
        // 2 header bytes + 2 code bytes + at most 123 reason bytes.
        assert!(f.len() <= 127, "{}", f.len());
        assert_eq!(f[0], 0x88);
    }
}
