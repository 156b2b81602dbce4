//! The two servers' channel interfaces side by side: where a subscriber
//! connects and a publisher posts, how a resume is asked for, what frames
//! and publish answers look like.
//!
//! wspush (issue 11's contract): `ws://HOST/ws/NAME[?since=ID]`, envelopes
//! `{"channel","id","data"}`, `POST /publish/NAME` answering
//! `{"clients":N,"id":ID}`. Nchan (`nchan_config`): `ws://HOST/sub/NAME`
//! with the `ws+meta.nchan` subprotocol (so each frame carries its id),
//! `?last_event_id=ID` to resume from its message buffer, `POST /pub/NAME`
//! answering its channel info with `last_message_id`.
//!
//! Event streams (issue 12) are `GET /events/NAME` on both, resumed with the
//! `Last-Event-ID` header. wspush's events carry the same envelope as its
//! frames (`event: reset` and the other control events too); Nchan's carry
//! the published data itself, its id on the `id:` line.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use std::borrow::Cow;

use super::envelope::{self, Incoming};
use crate::servers::Kind;
use crate::sseclient::Event;

/// What may stay unencoded in a query value (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Which channel interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// wspush's `/ws/NAME` and `/publish/NAME`.
    Wspush,
    /// Nchan's `/sub/NAME` (websocket, `ws+meta.nchan`) and `/pub/NAME`.
    Nchan,
}

impl Dialect {
    /// The interface of a server kind.
    pub fn of(kind: Kind) -> Dialect {
        match kind {
            Kind::Wspush => Dialect::Wspush,
            Kind::Nchan => Dialect::Nchan,
        }
    }

    /// The WebSocket subprotocol a subscriber asks for.
    pub fn protocol(self) -> Option<&'static str> {
        match self {
            Dialect::Wspush => None,
            Dialect::Nchan => Some("ws+meta.nchan"),
        }
    }

    /// The request target that subscribes to `channel`, resuming after `since` if given.
    pub fn subscribe_target(self, channel: &str, since: Option<&str>) -> String {
        let (path, key) = match self {
            Dialect::Wspush => ("/ws/", "since"),
            Dialect::Nchan => ("/sub/", "last_event_id"),
        };
        match since {
            Some(id) => format!("{path}{channel}?{key}={}", utf8_percent_encode(id, QUERY_VALUE)),
            None => format!("{path}{channel}"),
        }
    }

    /// The request target of `channel`'s event stream (a resume goes in `Last-Event-ID`).
    pub fn events_target(self, channel: &str) -> String {
        format!("/events/{channel}")
    }

    /// Parses an event of a subscriber's stream.
    pub fn parse_event(self, event: Event<'_>) -> Result<Incoming<'_>, String> {
        match self {
            Dialect::Wspush => envelope::wspush(event.data.as_bytes()),
            Dialect::Nchan if event.kind == "message" => Ok(Incoming::Message {
                channel: None,
                id: Cow::Borrowed(event.id),
                data: Cow::Borrowed(event.data),
            }),
            Dialect::Nchan => Ok(Incoming::Other),
        }
    }

    /// Where to publish to `channel`.
    pub fn publish_path(self, channel: &str) -> String {
        match self {
            Dialect::Wspush => format!("/publish/{channel}"),
            Dialect::Nchan => format!("/pub/{channel}"),
        }
    }

    /// Parses a frame a subscriber received.
    pub fn parse(self, frame: &[u8]) -> Result<Incoming<'_>, String> {
        match self {
            Dialect::Wspush => envelope::wspush(frame),
            Dialect::Nchan => envelope::nchan_meta(frame),
        }
    }

    /// The id of the message a publish answer (JSON; Nchan's with `Accept: application/json`) reports.
    pub fn published_id(self, body: &[u8]) -> Option<String> {
        let key = match self {
            Dialect::Wspush => "id",
            Dialect::Nchan => "last_message_id",
        };
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.get(key)?.as_str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_paths() {
        let (w, n) = (Dialect::Wspush, Dialect::Nchan);
        assert_eq!(w.subscribe_target("ch-07", None), "/ws/ch-07");
        assert_eq!(
            w.subscribe_target("ch-07", Some("k3-42")),
            "/ws/ch-07?since=k3-42"
        );
        assert_eq!(
            n.subscribe_target("ch-07", Some("1796177637:3")),
            "/sub/ch-07?last_event_id=1796177637%3A3"
        );
        // Ids are opaque: anything outside the unreserved set is encoded.
        assert_eq!(
            w.subscribe_target("c", Some("a b&c=d/é")),
            "/ws/c?since=a%20b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(w.publish_path("iso"), "/publish/iso");
        assert_eq!(n.publish_path("iso"), "/pub/iso");
        assert_eq!(w.events_target("ch-07"), "/events/ch-07");
        assert_eq!(n.events_target("ch-07"), "/events/ch-07");
        assert_eq!((w.protocol(), n.protocol()), (None, Some("ws+meta.nchan")));
    }

    #[test]
    fn events_of_both_servers() {
        let event = |kind, id, data| Event { kind, id, data };
        let envelope = r#"{"channel":"all","id":"e-7","data":"0000beef 0000000001 x"}"#;
        let message = Incoming::Message {
            channel: Some(Cow::Borrowed("all")),
            id: Cow::Borrowed("e-7"),
            data: Cow::Borrowed("0000beef 0000000001 x"),
        };
        assert_eq!(
            Dialect::Wspush.parse_event(event("message", "e-7", envelope)),
            Ok(message)
        );
        let reset = event("reset", "f-0", r#"{"type":"reset","id":"f-0"}"#);
        assert_eq!(
            Dialect::Wspush.parse_event(reset),
            Ok(Incoming::Reset {
                id: Cow::Borrowed("f-0")
            })
        );
        let subscribed = event(
            "subscribed",
            "e-7",
            r#"{"type":"subscribed","id":"e-7","channels":["all"]}"#,
        );
        assert_eq!(Dialect::Wspush.parse_event(subscribed), Ok(Incoming::Other));
        assert_eq!(
            Dialect::Nchan.parse_event(event("message", "5:0", "0000beef 0000000001 x")),
            Ok(Incoming::Message {
                channel: None,
                id: Cow::Borrowed("5:0"),
                data: Cow::Borrowed("0000beef 0000000001 x"),
            })
        );
        assert_eq!(
            Dialect::Nchan.parse_event(event("other", "5:0", "x")),
            Ok(Incoming::Other)
        );
    }

    #[test]
    fn ids_in_publish_answers() {
        assert_eq!(
            Dialect::Wspush.published_id(br#"{"clients":100,"id":"k3-42"}"#),
            Some("k3-42".to_owned())
        );
        let nchan =
            br#"{"messages": 2, "requested": -1, "subscribers": 0, "last_message_id": "1796177637:1" }"#;
        assert_eq!(
            Dialect::Nchan.published_id(nchan),
            Some("1796177637:1".to_owned())
        );
        assert_eq!(Dialect::Wspush.published_id(br#"{"clients":1}"#), None);
        assert_eq!(Dialect::Nchan.published_id(b"queued messages: 1"), None);
    }
}
