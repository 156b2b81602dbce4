//! One entry of the shared log (the Redis stream `<prefix>.log`), and its id.
//!
//! An entry is a publish: its fields are `origin` (the publishing node's id),
//! `boot` (16 hex digits, random per process start), `seq` (decimal, counts up
//! per boot: a publish retried after a lost reply is the same boot and seq,
//! and is delivered once), `channel`, `kind` (`text`, `binary` or `json`) and
//! `payload` (the bytes as published, never re-encoded).
//!
//! Its Redis id `<ms>-<n>` becomes the message's seq, the same on every node:
//! `ms << 20 | n`. That keeps the order of the log and fits a u64 until the
//! year 2527, for up to 2^20 entries in one millisecond; an id past either
//! has no seq (`StreamId::seq` is `None`) and is never shown to a client.

use std::fmt;

use crate::channel::ChannelName;
use crate::frame::PayloadKind;

/// Bits of a seq that hold the entry's number within its millisecond.
const N_BITS: u32 = 20;
/// Largest `n` a seq can hold.
const MAX_N: u64 = (1 << N_BITS) - 1;
/// Largest millisecond a seq can hold.
const MAX_MS: u64 = u64::MAX >> N_BITS;

/// A Redis stream entry id, `<ms>-<n>`; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub n: u64,
}

impl StreamId {
    /// Reads `<ms>-<n>` (both decimal).
    pub fn parse(text: &[u8]) -> Option<StreamId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, n) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(n) {
            return None;
        }
        Some(StreamId {
            ms: ms.parse().ok()?,
            n: n.parse().ok()?,
        })
    }

    /// The seq of the message this entry is: `ms << 20 | n`, if it fits.
    pub fn seq(self) -> Option<u64> {
        (self.ms <= MAX_MS && self.n <= MAX_N).then_some(self.ms << N_BITS | self.n)
    }

    /// The highest seq any entry up to this id can have: a floor that covers
    /// every message up to it.
    pub fn seq_at_most(self) -> u64 {
        if self.ms > MAX_MS {
            return u64::MAX;
        }
        self.ms << N_BITS | self.n.min(MAX_N)
    }

    /// The id just before this one (`0-0` stays `0-0`).
    pub fn before(self) -> StreamId {
        match (self.ms, self.n) {
            (ms, n) if n > 0 => StreamId { ms, n: n - 1 },
            (0, _) => StreamId::default(),
            (ms, _) => StreamId {
                ms: ms - 1,
                n: u64::MAX,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.n)
    }
}

/// A publish as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub origin: &'a str,
    pub boot: u64,
    pub seq: u64,
    pub channel: ChannelName,
    pub kind: PayloadKind,
    pub payload: &'a [u8],
}

/// Why an entry of the log cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a wspush log entry: {0}")]
pub struct EntryError(pub &'static str);

impl Entry<'_> {
    /// Its fields, in the order XADD writes them.
    pub fn fields(&self) -> [(&'static str, Vec<u8>); 6] {
        [
            ("origin", self.origin.as_bytes().to_vec()),
            ("boot", format!("{:016x}", self.boot).into_bytes()),
            ("seq", self.seq.to_string().into_bytes()),
            ("channel", self.channel.as_str().as_bytes().to_vec()),
            ("kind", kind_name(self.kind).as_bytes().to_vec()),
            ("payload", self.payload.to_vec()),
        ]
    }
}

/// Reads an entry from its fields (`name, value, name, value, ...`), in any order.
pub fn decode<'a>(fields: &[&'a [u8]]) -> Result<Entry<'a>, EntryError> {
    if fields.len() % 2 != 0 {
        return Err(EntryError("odd field list"));
    }
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair[0] == name.as_bytes())
            .map(|pair| pair[1])
            .ok_or(EntryError("a field is missing"))
    };
    let text = |name: &str| std::str::from_utf8(field(name)?).map_err(|_| EntryError("a field is not UTF-8"));
    Ok(Entry {
        origin: text("origin")?,
        boot: u64::from_str_radix(text("boot")?, 16).map_err(|_| EntryError("bad boot"))?,
        seq: text("seq")?.parse().map_err(|_| EntryError("bad seq"))?,
        channel: ChannelName::new(text("channel")?).map_err(|_| EntryError("bad channel"))?,
        kind: parse_kind(text("kind")?).ok_or(EntryError("bad kind"))?,
        payload: field("payload")?,
    })
}

/// `text`, `binary` or `json`, on the wire.
pub fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Text => "text",
        PayloadKind::Binary => "binary",
        PayloadKind::Json => "json",
    }
}

pub fn parse_kind(s: &str) -> Option<PayloadKind> {
    match s {
        "text" => Some(PayloadKind::Text),
        "binary" => Some(PayloadKind::Binary),
        "json" => Some(PayloadKind::Json),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, n: u64) -> StreamId {
        StreamId { ms, n }
    }

    #[test]
    fn a_seq_keeps_the_order_of_the_log() {
        let ids = [
            id(1, 0),
            id(1, 1),
            id(1, MAX_N),
            id(2, 0),
            id(1_796_185_281_102, 3),
        ];
        let seqs: Vec<u64> = ids.iter().map(|i| i.seq().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(id(1_796_185_281_102, 3).seq(), Some(1_796_185_281_102 << 20 | 3));
        assert_eq!(id(MAX_MS, MAX_N).seq(), Some(u64::MAX));
    }

    #[test]
    fn an_id_that_does_not_fit_has_no_seq_and_floors_cover_it() {
        for big in [id(5, MAX_N + 1), id(MAX_MS + 1, 0)] {
            assert_eq!(big.seq(), None, "{big}");
        }
        assert_eq!(id(5, MAX_N + 1).seq_at_most(), id(5, MAX_N).seq().unwrap());
        assert_eq!(id(MAX_MS + 1, 0).seq_at_most(), u64::MAX);
        assert_eq!(id(5, 3).seq_at_most(), id(5, 3).seq().unwrap());
    }

    #[test]
    fn neighbours_and_parsing() {
        assert_eq!(id(5, 3).before(), id(5, 2));
        assert_eq!(id(5, 0).before(), id(4, u64::MAX));
        assert_eq!(id(0, 0).before(), id(0, 0));
        assert!(id(4, u64::MAX) < id(5, 0));
        assert_eq!(
            StreamId::parse(b"1796185281102-7"),
            Some(id(1_796_185_281_102, 7))
        );
        assert_eq!(id(12, 3).to_string(), "12-3");
        for bad in [
            &b""[..],
            b"12",
            b"12-",
            b"-3",
            b"1-2-3",
            b"a-1",
            b"1-+2",
            b"99999999999999999999-0",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_entry_reads_back_from_its_fields_in_any_order() {
        let entry = Entry {
            origin: "node-a",
            boot: 0xdead_beef,
            seq: 42,
            channel: ChannelName::new("orders").unwrap(),
            kind: PayloadKind::Binary,
            payload: &[0, b'\n', 255],
        };
        let fields = entry.fields();
        let mut flat: Vec<&[u8]> = fields
            .iter()
            .flat_map(|(name, value)| [name.as_bytes(), value.as_slice()])
            .collect();
        assert_eq!(flat[2..4], [&b"boot"[..], b"00000000deadbeef"]);
        assert_eq!(decode(&flat), Ok(entry.clone()));
        flat.rotate_left(4);
        assert_eq!(decode(&flat), Ok(entry));
    }

    #[test]
    fn a_bad_entry_is_refused() {
        let good: Vec<&[u8]> = vec![
            b"origin", b"a", b"boot", b"1", b"seq", b"1", b"channel", b"c", b"kind", b"text", b"payload",
            b"x",
        ];
        assert!(decode(&good).is_ok());
        for (at, bad) in [
            (1, &b"\xff"[..]),
            (3, b"zz"),
            (5, b"-1"),
            (7, b"a b"),
            (9, b"jpeg"),
        ] {
            let mut fields = good.clone();
            fields[at] = bad;
            assert!(decode(&fields).is_err(), "field {at} = {bad:?}");
        }
        assert!(decode(&good[..10]).is_err(), "no payload");
        assert!(decode(&good[..11]).is_err(), "odd");
    }
}
