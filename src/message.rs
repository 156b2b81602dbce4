//! One message as each transport receives it, encoded once per publish.
//!
//! A publish to a channel is encoded once per transport, never per client:
//! the JSON envelope in a text frame for `/ws/…` clients, and for a publish
//! to `all` also the raw payload frame for `/echo` clients (who are on `all`
//! only). What does not depend on the message's id (the raw frame, the
//! envelope's `data`) is encoded by `Prepared::new` before the hub lock is
//! taken; `Prepared::frames` only copies it around the id, into the frame's
//! one allocation, under the lock. The result (`Frames`) is what the history
//! stores and every subscriber is offered.
//!
//! An SSE transport (issue 12) adds its event here as a third field, encoded
//! the same way (or lazily, in a `OnceLock`, when no SSE client is connected).

use crate::channel::{ChannelName, ChannelSet};
use crate::client::Transport;
use crate::envelope::{self, Data};
use crate::frame::{self, EncodedFrame, PayloadKind};
use crate::history::{HeldBytes, MessageId};
use crate::publish::Payload;

/// One published message's frames, one per transport.
#[derive(Debug)]
pub struct Frames {
    /// `{"channel","id","data"}` in one text frame, for `/ws/…` clients.
    envelope: EncodedFrame,
    /// The payload as its own frame, for `/echo` clients: only on `all`.
    raw: Option<EncodedFrame>,
}

impl Frames {
    /// The frame a client of `transport` is sent; `None` when such clients
    /// cannot be on the message's channel.
    pub fn for_transport(&self, transport: Transport) -> Option<&EncodedFrame> {
        match transport {
            Transport::Ws => Some(&self.envelope),
            Transport::Echo => self.raw.as_ref(),
        }
    }

    /// The envelope frame (what a resuming `/ws/…` client is replayed).
    pub fn envelope(&self) -> &EncodedFrame {
        &self.envelope
    }
}

impl HeldBytes for Frames {
    fn held_bytes(&self) -> usize {
        self.envelope.held_bytes() + self.raw.held_bytes()
    }
}

/// A publish encoded as far as it can be before its id is known.
pub struct Prepared<'a> {
    channel: &'a ChannelName,
    data: Data,
    raw: Option<EncodedFrame>,
}

impl<'a> Prepared<'a> {
    /// Encodes `payload` for `channel`: the envelope's `data`, and the raw
    /// frame when `/echo` clients are on the channel (`all`).
    pub fn new(channel: &'a ChannelName, payload: &Payload) -> Prepared<'a> {
        Prepared {
            channel,
            data: data(payload),
            raw: channel.is_all().then(|| payload.frame()),
        }
    }

    /// The frames of the message with `id` (called under the hub lock).
    pub fn frames(&self, id: MessageId) -> Frames {
        let len = envelope::message_len(self.channel, &id, &self.data);
        let envelope = frame::text_written(len, |out| {
            // The buffer has exactly `len` bytes: the writes cannot fail.
            let _ = envelope::write_message(out, self.channel, &id, &self.data);
        });
        Frames {
            envelope,
            raw: self.raw.clone(),
        }
    }
}

/// The envelope's `data` for `payload`: JSON as itself, text as a string,
/// binary as `{"base64":…}`.
pub fn data(payload: &Payload) -> Data {
    Data::new(envelope_payload(payload.kind, &payload.bytes))
}

/// `bytes` as the envelope sees them. Text and JSON are UTF-8 (checked when
/// they came in); should they not be, they go as binary rather than wrongly.
fn envelope_payload(kind: PayloadKind, bytes: &[u8]) -> envelope::Payload<'_> {
    match (kind, std::str::from_utf8(bytes)) {
        (PayloadKind::Json, Ok(json)) => envelope::Payload::Json(json),
        (PayloadKind::Text, Ok(text)) => envelope::Payload::Text(text),
        _ => envelope::Payload::Binary(bytes),
    }
}

/// A message for one client (`/send/{id}`, not stored): `{"type":"direct",…}`
/// on `/ws/…`, the raw frame on `/echo`.
pub fn direct(payload: &Payload, transport: Transport) -> EncodedFrame {
    match transport {
        Transport::Echo => payload.frame(),
        Transport::Ws => frame::text(&envelope::direct(&data(payload))),
    }
}

/// What a client sent, back to it alone: `{"type":"echo",…}` on `/ws/…`
/// (text as a string, binary as base64), the same frame on `/echo`.
pub fn echo(kind: PayloadKind, bytes: &[u8], transport: Transport) -> EncodedFrame {
    match transport {
        Transport::Echo => frame::data(kind, bytes),
        Transport::Ws => frame::text(&envelope::echo(&Data::new(envelope_payload(kind, bytes)))),
    }
}

/// `{"type":"reset","id":…}` in a frame.
pub fn reset(latest: &MessageId) -> EncodedFrame {
    frame::text(&envelope::reset(latest))
}

/// `{"type":"subscribed","id":…,"channels":[…]}` in a frame.
pub fn subscribed(latest: &MessageId, channels: &ChannelSet) -> EncodedFrame {
    frame::text(&envelope::subscribed(latest, channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Epoch;

    fn id(seq: u64) -> MessageId {
        MessageId::new(Epoch::from_raw(0xabc), seq)
    }

    #[test]
    fn a_publish_to_all_has_both_frames_and_to_a_channel_only_the_envelope() {
        let payload = Payload::new(PayloadKind::Json, &br#"{"a":1}"#[..]);
        let all = Prepared::new(&ChannelName::all(), &payload).frames(id(3));
        assert_eq!(
            all.for_transport(Transport::Ws),
            Some(&frame::text(
                r#"{"channel":"all","id":"0000000000000abc-3","data":{"a":1}}"#
            ))
        );
        assert_eq!(
            all.for_transport(Transport::Echo),
            Some(&frame::text(r#"{"a":1}"#))
        );
        let orders = ChannelName::new("orders").unwrap();
        let one = Prepared::new(&orders, &payload).frames(id(4));
        assert_eq!(one.for_transport(Transport::Echo), None);
        assert!(one.held_bytes() < all.held_bytes());
    }

    #[test]
    fn echoes_and_direct_messages_follow_the_transport() {
        let text = Payload::new(PayloadKind::Text, &b"hi"[..]);
        assert_eq!(direct(&text, Transport::Echo), frame::text("hi"));
        assert_eq!(
            direct(&text, Transport::Ws),
            frame::text(r#"{"type":"direct","data":"hi"}"#)
        );
        assert_eq!(
            echo(PayloadKind::Binary, &[1, 2, 3], Transport::Ws),
            frame::text(r#"{"type":"echo","data":{"base64":"AQID"}}"#)
        );
        assert_eq!(
            echo(PayloadKind::Binary, &[1, 2, 3], Transport::Echo),
            frame::data(PayloadKind::Binary, &[1, 2, 3])
        );
    }
}
