//! Message ids: `<epoch>-<seq>`, and reading a client's `since` back.
//!
//! The epoch is 16 random hex digits drawn once per server start, the seq one
//! counter for the whole server, so ids are unique per server lifetime and totally
//! ordered within an epoch. (In a cluster both come from the shared log: its
//! epoch, and each entry's place in it.) A `since` from another epoch, or one that does not
//! parse, is kept as a value that cannot be resumed from, never an error: a
//! reconnecting client must get a reset, not a 400 it would retry forever.

use std::fmt;

/// Digits of an epoch on the wire.
const EPOCH_DIGITS: usize = 16;

/// Longest decimal u64.
const MAX_SEQ_DIGITS: usize = 20;

/// One server run: ids of another run cannot be compared with this one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// A fresh random epoch. Should the OS fail to give randomness (it does not on
    /// Linux), the clock and pid still make a value unlikely to repeat.
    pub fn random() -> Epoch {
        Epoch(getrandom::u64().unwrap_or_else(|_| fallback_seed()))
    }

    /// A given epoch: a cluster's shared log's, or a test's.
    pub fn from_raw(raw: u64) -> Epoch {
        Epoch(raw)
    }

    /// Its value (what the wire shows as 16 hex digits).
    pub fn raw(self) -> u64 {
        self.0
    }
}

fn fallback_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// The id of one published message: its server run and its place in that run's one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId {
    epoch: Epoch,
    seq: u64,
}

impl MessageId {
    /// The id with `seq` in `epoch`; seq 0 is "before the first message".
    pub fn new(epoch: Epoch, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    /// The server run.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The place in the run's order (the first message is 1).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes of the wire form, without formatting it.
    pub fn wire_len(&self) -> usize {
        EPOCH_DIGITS + 1 + decimal_digits(self.seq)
    }
}

fn decimal_digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The wire form `<16 hex digits>-<decimal seq>`.
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch.0, self.seq)
    }
}

/// Where a resuming client says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// It has seen every message of its channels up to this id.
    After(MessageId),
    /// What it sent is not an id: it cannot be resumed, only reset.
    Unreadable,
}

impl Since {
    /// Reads the `since` query value. Strict (exactly the wire form, lower- or
    /// upper-case hex), so that two spellings never name one position.
    pub fn parse(text: &str) -> Since {
        parse_id(text).map_or(Since::Unreadable, Since::After)
    }
}

fn parse_id(text: &str) -> Option<MessageId> {
    let (epoch, seq) = text.split_once('-')?;
    let epoch_ok = epoch.len() == EPOCH_DIGITS && epoch.bytes().all(|b| b.is_ascii_hexdigit());
    let seq_ok = (1..=MAX_SEQ_DIGITS).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit())
        && (seq == "0" || !seq.starts_with('0'));
    if !epoch_ok || !seq_ok {
        return None;
    }
    Some(MessageId {
        epoch: Epoch(u64::from_str_radix(epoch, 16).ok()?),
        seq: seq.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back_as_itself() {
        let epoch = Epoch::from_raw(0xdead_beef);
        for seq in [0, 1, 9, 10, 12345, u64::MAX] {
            let id = MessageId::new(epoch, seq);
            let wire = id.to_string();
            assert_eq!(wire.len(), id.wire_len(), "{wire}");
            assert_eq!(Since::parse(&wire), Since::After(id));
        }
        assert_eq!(MessageId::new(epoch, 7).to_string(), "00000000deadbeef-7");
        assert_eq!(
            Since::parse("00000000DEADBEEF-7"),
            Since::After(MessageId::new(epoch, 7))
        );
    }

    #[test]
    fn anything_else_is_unreadable_not_an_error() {
        for text in [
            "",
            "-",
            "7",
            "00000000deadbeef",
            "00000000deadbeef-",
            "0000000deadbeef-7",
            "000000000deadbeef-7",
            "00000000deadbeef-07",
            "00000000deadbeef-+7",
            "00000000deadbeef--7",
            "00000000deadbeef-7-1",
            "00000000deadbeez-7",
            "+0000000deadbeef-7",
            "00000000deadbeef-18446744073709551616",
            "00000000deadbeef-7 ",
            "0000000ödeadbee-7",
        ] {
            assert_eq!(Since::parse(text), Since::Unreadable, "{text:?}");
        }
    }

    #[test]
    fn epochs_differ_between_starts() {
        assert_ne!(Epoch::random(), Epoch::random());
    }
}
