//! What a channel subscriber receives, parsed: wspush's JSON envelope
//! (`{"channel","id","data"}`, or `{"type":"reset","id"}`) or Nchan's
//! `ws+meta.nchan` frame (`id: ID\ncontent-type: TYPE\n\nDATA`).

use std::borrow::Cow;

use serde::Deserialize;

/// One text frame of a channel subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A published message. `channel` is absent where the URL alone names it (Nchan).
    Message {
        /// The channel the server says it was published to.
        channel: Option<Cow<'a, str>>,
        /// Its id.
        id: Cow<'a, str>,
        /// The payload, as published (text).
        data: Cow<'a, str>,
    },
    /// The server could not resume from `since`: live messages follow, from `id` on.
    Reset {
        /// The latest id at the reset.
        id: Cow<'a, str>,
    },
    /// Any other typed frame (an echo): not a delivery.
    Other,
}

/// wspush's envelope. The benchmark publishes text only, so `data` is a string.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// Parses a wspush `/ws/…` frame.
pub fn wspush(frame: &[u8]) -> Result<Incoming<'_>, String> {
    let e: Envelope<'_> = serde_json::from_slice(frame).map_err(|e| format!("not an envelope: {e}"))?;
    match (e.kind.as_deref(), e.id, e.data) {
        (Some("reset"), Some(id), _) => Ok(Incoming::Reset { id }),
        (Some("reset"), None, _) => Err("reset without an id".into()),
        (Some(_), _, _) => Ok(Incoming::Other),
        (None, Some(id), Some(data)) => Ok(Incoming::Message {
            channel: e.channel,
            id,
            data,
        }),
        (None, None, _) => Err("message without an id".into()),
        (None, Some(_), None) => Err("message without data".into()),
    }
}

/// Parses an Nchan `ws+meta.nchan` frame: header lines, a blank line, the data.
pub fn nchan_meta(frame: &[u8]) -> Result<Incoming<'_>, String> {
    let text = std::str::from_utf8(frame).map_err(|_| "frame is not UTF-8".to_owned())?;
    let (head, data) = text
        .split_once("\n\n")
        .ok_or_else(|| "no blank line after the meta headers".to_owned())?;
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .ok_or_else(|| "no id line".to_owned())?;
    Ok(Incoming::Message {
        channel: None,
        id: Cow::Borrowed(id),
        data: Cow::Borrowed(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(channel: Option<&'a str>, id: &'a str, data: &'a str) -> Incoming<'a> {
        Incoming::Message {
            channel: channel.map(Cow::Borrowed),
            id: Cow::Borrowed(id),
            data: Cow::Borrowed(data),
        }
    }

    #[test]
    fn wspush_envelopes() {
        let m = br#"{"channel":"ch-07","id":"k3x9-42","data":"0000beef 0000000001 x"}"#;
        assert_eq!(
            wspush(m),
            Ok(message(Some("ch-07"), "k3x9-42", "0000beef 0000000001 x"))
        );
        // Any key order, unknown keys ignored, escapes decoded.
        let m = br#"{"data":"a\"b\u0041","extra":1,"id":"e-1","channel":"x"}"#;
        assert_eq!(wspush(m), Ok(message(Some("x"), "e-1", "a\"bA")));
        assert_eq!(
            wspush(br#"{"type":"reset","id":"e-99"}"#),
            Ok(Incoming::Reset {
                id: Cow::Borrowed("e-99")
            })
        );
        assert_eq!(wspush(br#"{"type":"echo","data":"hi"}"#), Ok(Incoming::Other));
    }

    #[test]
    fn wspush_frames_that_are_not_deliveries() {
        for bad in [
            &b"0000beef 0000000001 raw payload"[..],
            br#"{"channel":"x","data":"no id"}"#,
            br#"{"channel":"x","id":"e-1"}"#,
            br#"{"type":"reset"}"#,
            // JSON data: the benchmark never publishes it, so it is not a delivery of its.
            br#"{"channel":"x","id":"e-1","data":{"a":1}}"#,
            br#"{"channel":"x","id":"e-1","data":"cut"#,
        ] {
            assert!(wspush(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nchan_meta_frames() {
        let m = b"id: 1796177637:3\ncontent-type: text/plain\n\n0000beef 0000000001 x\n\ny";
        assert_eq!(
            nchan_meta(m),
            Ok(message(None, "1796177637:3", "0000beef 0000000001 x\n\ny"))
        );
        // The content-type line may be missing.
        assert_eq!(nchan_meta(b"id: 5:0\n\ndata"), Ok(message(None, "5:0", "data")));
        assert!(nchan_meta(b"0000beef 0000000001 raw").is_err());
        assert!(nchan_meta(b"content-type: text/plain\n\ndata").is_err());
        assert!(nchan_meta(&[0xff, 0xfe, b'\n', b'\n']).is_err());
    }
}
