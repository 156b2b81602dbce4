//! What nodes say to each other over Redis pub/sub: messages for one client,
//! their answers, and announcements. (Publishes to channels go through the
//! shared log instead: see `entry`.)
//!
//! One Redis message is one line of ASCII header, a newline, then the body as
//! raw bytes (the published text or binary payload itself, never re-encoded):
//!
//! ```text
//! wspush1 <origin-node> <origin-boot> <seq> <type> [type fields...]\n<body>
//! ```
//!
//! - `origin-node`: the publishing node's id; `origin-boot`: 16 hex digits,
//!   random per process start (a restarted node with the same id is another
//!   boot); `seq`: decimal, counts up per boot in the order the node published.
//! - types:
//!   - `one text|binary|json <client-id>` — a message for one client (`NODE-N`);
//!     body = the payload. Published on the holding node's channel `<prefix>.node.<NODE>`.
//!   - `ack <boot> <seq> delivered|refused|absent` — the answer to a `one`,
//!     published by the holding node on the asker's node channel; `<boot> <seq>`
//!     name the asker's `one` message.
//!   - `hello` / `here` — "I am subscribed" (hello also asks every other node to
//!     answer with `here`); body = JSON `{"ws": URL, "http": URL, "clients": N}`.
//!     On the shared channel, every 5 s and when a subscription starts.
//!   - `bye` — the node is shutting down.
//!
//! Node ids contain no spaces or newlines (checked at startup), so the header
//! splits on single spaces. A header longer than `MAX_HEADER` is refused.

use std::fmt::Write as _;

use super::entry::{kind_name, parse_kind};
use crate::frame::PayloadKind;

/// The first token of every message: the format and its version.
pub const MAGIC: &str = "wspush1";
/// Longest header accepted, newline excluded.
pub const MAX_HEADER: usize = 512;

/// What became of a message for one client on the node that holds (or held) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    /// Written or queued for the client.
    Delivered,
    /// The client is connected but closing, or was just dropped as slow.
    Refused,
    /// No client with that id on that node.
    Absent,
}

impl SendResult {
    fn as_str(self) -> &'static str {
        match self {
            SendResult::Delivered => "delivered",
            SendResult::Refused => "refused",
            SendResult::Absent => "absent",
        }
    }

    fn parse(s: &str) -> Option<SendResult> {
        match s {
            "delivered" => Some(SendResult::Delivered),
            "refused" => Some(SendResult::Refused),
            "absent" => Some(SendResult::Absent),
            _ => None,
        }
    }
}

/// The part of a message that depends on its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// For one client.
    One {
        kind: PayloadKind,
        node: &'a str,
        /// The client's number on that node.
        client: u64,
        payload: &'a [u8],
    },
    /// The answer to a `One`.
    Ack {
        /// The asker's boot.
        boot: u64,
        /// The asker's `One` message.
        seq: u64,
        result: SendResult,
    },
    /// A node announces itself and asks the others to answer.
    Hello(&'a [u8]),
    /// A node announces itself.
    Here(&'a [u8]),
    /// A node is leaving.
    Bye,
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub origin: &'a str,
    /// The sending node's boot.
    pub boot: u64,
    /// The sender's message counter.
    pub seq: u64,
    /// Type and contents.
    pub body: Body<'a>,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a wspush message: {0}")]
pub struct WireError(&'static str);

/// The bytes to PUBLISH for `env`.
pub fn encode(env: &Envelope<'_>) -> Vec<u8> {
    let mut header = format!("{MAGIC} {} {:016x} {}", env.origin, env.boot, env.seq);
    // Writing into a String cannot fail.
    let body: &[u8] = match &env.body {
        Body::One {
            kind,
            node,
            client,
            payload,
        } => {
            let _ = write!(header, " one {} {node}-{client}", kind_name(*kind));
            payload
        }
        Body::Ack { boot, seq, result } => {
            let _ = write!(header, " ack {boot:016x} {seq} {}", result.as_str());
            &[]
        }
        Body::Hello(info) => {
            header.push_str(" hello");
            info
        }
        Body::Here(info) => {
            header.push_str(" here");
            info
        }
        Body::Bye => {
            header.push_str(" bye");
            &[]
        }
    };
    let mut out = Vec::with_capacity(header.len() + 1 + body.len());
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Reads a message published by a node.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, WireError> {
    let end = bytes
        .iter()
        .take(MAX_HEADER + 1)
        .position(|&b| b == b'\n')
        .ok_or(WireError("no header line"))?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| WireError("header is not UTF-8"))?;
    let body = &bytes[end + 1..];
    let mut fields = header.split(' ');
    let mut next = |what: &'static str| fields.next().filter(|f| !f.is_empty()).ok_or(WireError(what));
    if next("no magic")? != MAGIC {
        return Err(WireError("unknown format or version"));
    }
    let origin = next("no origin")?;
    let boot = parse_hex(next("no boot")?)?;
    let seq = next("no seq")?.parse().map_err(|_| WireError("bad seq"))?;
    let body = match next("no type")? {
        "one" => {
            let kind = parse_kind(next("no kind")?).ok_or(WireError("bad kind"))?;
            let (node, client) = next("no client id")?
                .rsplit_once('-')
                .ok_or(WireError("bad client id"))?;
            let client = client.parse().map_err(|_| WireError("bad client id"))?;
            Body::One {
                kind,
                node,
                client,
                payload: body,
            }
        }
        "ack" => Body::Ack {
            boot: parse_hex(next("no acked boot")?)?,
            seq: next("no acked seq")?
                .parse()
                .map_err(|_| WireError("bad acked seq"))?,
            result: SendResult::parse(next("no result")?).ok_or(WireError("bad result"))?,
        },
        "hello" => Body::Hello(body),
        "here" => Body::Here(body),
        "bye" => Body::Bye,
        _ => return Err(WireError("unknown type")),
    };
    if fields.next().is_some() {
        return Err(WireError("extra header fields"));
    }
    Ok(Envelope {
        origin,
        boot,
        seq,
        body,
    })
}

fn parse_hex(s: &str) -> Result<u64, WireError> {
    u64::from_str_radix(s, 16).map_err(|_| WireError("bad boot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: Body<'_>) {
        let env = Envelope {
            origin: "node-a",
            boot: 0xdead_beef_0000_0001,
            seq: 42,
            body,
        };
        let bytes = encode(&env);
        assert_eq!(decode(&bytes), Ok(env));
    }

    #[test]
    fn every_type_round_trips() {
        round_trip(Body::One {
            kind: PayloadKind::Text,
            node: "a",
            client: 1,
            payload: "héllo\nworld".as_bytes(),
        });
        round_trip(Body::One {
            kind: PayloadKind::Binary,
            node: "a",
            client: 1,
            payload: &[0, 10, 255, b'\n'],
        });
        round_trip(Body::One {
            kind: PayloadKind::Text,
            node: "b-2",
            client: 17,
            payload: b"x",
        });
        round_trip(Body::Ack {
            boot: 7,
            seq: 9,
            result: SendResult::Absent,
        });
        round_trip(Body::Hello(br#"{"clients":1}"#));
        round_trip(Body::Here(b""));
        round_trip(Body::Bye);
    }

    #[test]
    fn header_is_readable_and_payload_is_raw() {
        let bytes = encode(&Envelope {
            origin: "a",
            boot: 1,
            seq: 3,
            body: Body::One {
                kind: PayloadKind::Json,
                node: "b",
                client: 7,
                payload: b"{}",
            },
        });
        assert_eq!(bytes, b"wspush1 a 0000000000000001 3 one json b-7\n{}");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            &b""[..],
            b"hello",
            b"wspush2 a 1 1 all text\nx",
            b"wspush1 a zz 1 all text\n",
            b"wspush1 a 1 1 pub all text\nx",
            b"wspush1 a 1 1 one jpeg b-1\n",
            b"wspush1 a 1 1 one text 5\n",
            b"wspush1 a 1 1 bye extra\n",
            b"wspush1  1 1 bye\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!("wspush1 {} 1 1 bye\n", "a".repeat(MAX_HEADER));
        assert!(decode(long.as_bytes()).is_err());
    }
}
