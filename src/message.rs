//! One message as each transport receives it, encoded once per publish.
//!
//! A publish to a channel is encoded once per transport, never per client:
//! the JSON envelope in a text frame for `/ws/…` clients, and for a publish
//! to `all` also the raw payload frame for `/echo` clients (who are on `all`
//! only). What does not depend on the message's id (the raw frame, the
//! envelope's `data`) is encoded by `Prepared::new` before the hub lock is
//! taken; `Prepared::frames` only copies it around the id, into the frame's
//! one allocation, under the lock. The result (`Frames`) is what the history
//! stores and every subscriber is offered. The raw frame is not stored:
//! `/echo` clients get no replay, so it goes with the publish's own fan-out
//! (`Prepared::raw`) and no further.
//!
//! The event an event-stream client (`/events/…`) gets is the same envelope
//! as a Server-Sent Event (`sse`). It is made only when a message goes to
//! such a client: the first one (in the publish's fan-out, or in a replay)
//! encodes it into the message's `OnceLock`, and every other shares it. The
//! history then counts the bytes it grew by (`History::recharge`).

use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;

use crate::channel::{ChannelName, ChannelSet};
use crate::client::Transport;
use crate::envelope::{self, Data};
use crate::frame::{self, EncodedFrame, PayloadKind};
use crate::history::{HeldBytes, MessageId, Stored};
use crate::publish::Payload;
use crate::sse::{self, Control, EncodedEvent};

/// One published message's frames, one per transport.
#[derive(Debug)]
pub struct Frames {
    /// `{"channel","id","data"}` in one text frame, for `/ws/…` clients.
    envelope: EncodedFrame,
    /// The envelope as an event, for event-stream clients: made by the first.
    event: OnceLock<EncodedEvent>,
}

impl Frames {
    /// The envelope frame.
    #[cfg(test)]
    pub fn envelope(&self) -> &EncodedFrame {
        &self.envelope
    }
}

impl HeldBytes for Frames {
    fn held_bytes(&self) -> usize {
        self.envelope.held_bytes() + self.event.get().map_or(0, HeldBytes::held_bytes)
    }
}

/// What a client of `transport` is sent for `stored`; `None` for `/echo`
/// clients, whose raw frame is not stored (`Prepared::raw`).
/// The first event-stream client encodes the event, counted in `events_encoded`.
pub fn outgoing<'a>(
    stored: &'a Stored<Frames>,
    transport: Transport,
    events_encoded: &Counter,
) -> Option<&'a EncodedFrame> {
    let frames = stored.frames();
    match transport {
        Transport::Ws => Some(&frames.envelope),
        Transport::Echo => None,
        Transport::Sse => Some(frames.event.get_or_init(|| {
            events_encoded.inc();
            sse::message(&stored.id(), frame::text_payload(&frames.envelope))
        })),
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

    /// The raw frame `/echo` clients are sent: only for a publish to `all`.
    pub fn raw(&self) -> Option<&EncodedFrame> {
        self.raw.as_ref()
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
            event: OnceLock::new(),
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
/// on `/ws/…` and as an `event: direct` (no id) on `/events/…`, the raw
/// frame on `/echo`.
pub fn direct(payload: &Payload, transport: Transport) -> EncodedFrame {
    match transport {
        Transport::Echo => payload.frame(),
        Transport::Ws => frame::text(&envelope::direct(&data(payload))),
        Transport::Sse => sse::control(Control::Direct, None, &envelope::direct(&data(payload))),
    }
}

/// What a WebSocket client sent, back to it alone: `{"type":"echo",…}` on
/// `/ws/…` (text as a string, binary as base64), the same frame on `/echo`.
/// (An event-stream client sends nothing, so it never asks for one; it would
/// get the `/ws/…` frame.)
pub fn echo(kind: PayloadKind, bytes: &[u8], transport: Transport) -> EncodedFrame {
    match transport {
        Transport::Echo => frame::data(kind, bytes),
        Transport::Ws | Transport::Sse => {
            frame::text(&envelope::echo(&Data::new(envelope_payload(kind, bytes))))
        }
    }
}

/// `{"type":"reset","id":…}` in a frame, or as an `event: reset` with the id.
pub fn reset(latest: &MessageId, transport: Transport) -> EncodedFrame {
    control(Control::Reset, latest, &envelope::reset(latest), transport)
}

/// `{"type":"subscribed","id":…,"channels":[…]}` in a frame, or as an
/// `event: subscribed` with the id.
pub fn subscribed(latest: &MessageId, channels: &ChannelSet, transport: Transport) -> EncodedFrame {
    control(
        Control::Subscribed,
        latest,
        &envelope::subscribed(latest, channels),
        transport,
    )
}

/// A control envelope carrying `id` (a resume point) for `transport`.
fn control(kind: Control, id: &MessageId, envelope: &str, transport: Transport) -> EncodedFrame {
    match transport {
        Transport::Echo | Transport::Ws => frame::text(envelope),
        Transport::Sse => sse::control(kind, Some(id), envelope),
    }
}

/// What every client is sent when the server shuts down, encoded once per
/// transport: Close 1001, or the end of an event stream.
#[derive(Clone)]
pub struct GoingAway {
    close: EncodedFrame,
    stream_end: EncodedEvent,
}

impl GoingAway {
    pub fn new() -> GoingAway {
        GoingAway {
            close: frame::close(
                tungstenite::protocol::frame::coding::CloseCode::Away,
                "going away",
            ),
            stream_end: Arc::from(sse::GOING_AWAY),
        }
    }

    /// The last bytes a client of `transport` gets.
    pub fn for_transport(&self, transport: Transport) -> EncodedFrame {
        match transport {
            Transport::Echo | Transport::Ws => Arc::clone(&self.close),
            Transport::Sse => Arc::clone(&self.stream_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::history::{Epoch, History, HistoryLimits};

    fn id(seq: u64) -> MessageId {
        MessageId::new(Epoch::from_raw(0xabc), seq)
    }

    fn stored(channel: &ChannelName, payload: &Payload, seq: u64) -> Arc<Stored<Frames>> {
        let mut history = History::with_epoch(HistoryLimits::default(), Epoch::from_raw(0xabc));
        let prepared = Prepared::new(channel, payload);
        for _ in 1..seq {
            history.publish(&ChannelName::all(), Instant::now(), |id| prepared.frames(id));
        }
        history.publish(channel, Instant::now(), |id| prepared.frames(id))
    }

    #[test]
    fn a_publish_to_all_has_a_raw_frame_and_stores_only_the_envelope() {
        let payload = Payload::new(PayloadKind::Json, &br#"{"a":1}"#[..]);
        let encoded = Counter::default();
        let all = stored(&ChannelName::all(), &payload, 3);
        let out = |s, t| outgoing(s, t, &encoded).cloned();
        assert_eq!(
            out(&all, Transport::Ws),
            Some(frame::text(
                r#"{"channel":"all","id":"0000000000000abc-3","data":{"a":1}}"#
            ))
        );
        assert_eq!(out(&all, Transport::Echo), None, "not stored");
        let all_channel = ChannelName::all();
        let prepared = Prepared::new(&all_channel, &payload);
        assert_eq!(prepared.raw(), Some(&frame::text(r#"{"a":1}"#)));
        let orders = ChannelName::new("orders").unwrap();
        assert_eq!(Prepared::new(&orders, &payload).raw(), None);
        assert_eq!(all.frames().held_bytes(), all.frames().envelope().held_bytes());
        assert_eq!(encoded.get(), 0, "no event made for WebSocket clients");
    }

    #[test]
    fn the_event_is_the_envelope_made_once_by_the_first_event_stream_client() {
        let payload = Payload::new(PayloadKind::Text, &b"hi"[..]);
        let orders = ChannelName::new("orders").unwrap();
        let one = stored(&orders, &payload, 2);
        let before = one.frames().held_bytes();
        let encoded = Counter::default();
        let first = outgoing(&one, Transport::Sse, &encoded).cloned().unwrap();
        assert_eq!(
            &*first,
            b"id: 0000000000000abc-2\ndata: {\"channel\":\"orders\",\"id\":\"0000000000000abc-2\",\"data\":\"hi\"}\n\n"
        );
        let again = outgoing(&one, Transport::Sse, &encoded).cloned().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "shared, not encoded again");
        assert_eq!(encoded.get(), 1);
        assert_eq!(one.frames().held_bytes(), before + first.held_bytes());
    }

    #[test]
    fn controls_follow_the_transport() {
        let latest = id(9);
        let channels = ChannelSet::all_only();
        assert_eq!(
            reset(&latest, Transport::Ws),
            frame::text(r#"{"type":"reset","id":"0000000000000abc-9"}"#)
        );
        assert_eq!(
            &*reset(&latest, Transport::Sse),
            b"event: reset\nid: 0000000000000abc-9\ndata: {\"type\":\"reset\",\"id\":\"0000000000000abc-9\"}\n\n"
        );
        let sse = subscribed(&latest, &channels, Transport::Sse);
        assert!(sse.starts_with(b"event: subscribed\nid: 0000000000000abc-9\n"));
        let text = Payload::new(PayloadKind::Text, &b"hi"[..]);
        assert_eq!(
            &*direct(&text, Transport::Sse),
            b"event: direct\ndata: {\"type\":\"direct\",\"data\":\"hi\"}\n\n"
        );
        let away = GoingAway::new();
        assert_eq!(&*away.for_transport(Transport::Sse), sse::GOING_AWAY);
        assert_eq!(away.for_transport(Transport::Echo)[0], 0x88, "a Close frame");
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
