//! Channel names and the set of channels one connection subscribes to.
//!
//! A `ChannelName` owns a validated name (`[A-Za-z0-9_.:@-]{1,128}`) behind an
//! `Arc<str>`, so the hub's maps, every stored message and every subscription
//! share one allocation per name and cloning one is a reference-count bump.
//! `ChannelSet` owns the parsed path segment of `GET /ws/{channel}[,{channel}…]`:
//! distinct names, `all` always first.
//!
//! `all` does not count toward `--max-channels-per-client`: every connection
//! is on it whether it names it or not, so the limit counts the channels a
//! client chose. A set therefore holds at most limit + 1 names.

use std::borrow::Borrow;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// Longest channel name, in bytes (all its characters are ASCII).
pub const MAX_NAME_LEN: usize = 128;

/// Name of the channel every connection is on.
pub const ALL: &str = "all";

/// How much of a refused name an error message quotes (its log line and 400 body stay short).
const QUOTED_NAME_LEN: usize = 40;

static ALL_NAME: LazyLock<ChannelName> = LazyLock::new(|| ChannelName(Arc::from(ALL)));

/// A valid channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

/// Why a name is not a channel name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidName {
    /// Zero characters (for example `/ws/a,,b`).
    Empty,
    /// More than `MAX_NAME_LEN` bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9_.:@-]`.
    BadChar {
        /// The character.
        ch: char,
    },
    /// Its percent-encoding does not decode to UTF-8.
    NotUtf8,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidName::Empty => write!(f, "it is empty"),
            InvalidName::TooLong { len } => write!(f, "it is {len} bytes long, the limit is {MAX_NAME_LEN}"),
            InvalidName::BadChar { ch } => {
                write!(f, "it contains {ch:?}; allowed are letters, digits and _ . : @ -")
            }
            InvalidName::NotUtf8 => write!(f, "its percent-encoding is not UTF-8"),
        }
    }
}

/// Why a subscribe path is refused; the message is the body of the 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// One of the names is not a channel name.
    #[error("invalid channel name {quoted}: {reason}")]
    Invalid {
        /// The name as given (cut to 40 characters), quoted.
        quoted: String,
        /// What is wrong with it.
        reason: InvalidName,
    },
    /// More distinct channels than the limit.
    #[error(
        "too many channels: at most {limit} per connection (--max-channels-per-client), not counting `all`"
    )]
    TooMany {
        /// `--max-channels-per-client`.
        limit: usize,
    },
}

impl ChannelName {
    /// Checks `name` and keeps it.
    pub fn new(name: &str) -> Result<ChannelName, ChannelError> {
        validate(name).map_err(|reason| invalid(name, reason))?;
        if name == ALL {
            return Ok(ChannelName::all());
        }
        Ok(ChannelName(Arc::from(name)))
    }

    /// The channel every connection is on.
    pub fn all() -> ChannelName {
        ALL_NAME.clone()
    }

    /// Whether this is `all`.
    pub fn is_all(&self) -> bool {
        &*self.0 == ALL
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() {
        return Err(InvalidName::Empty);
    }
    if let Some(ch) = name.chars().find(|&c| !allowed(c)) {
        return Err(InvalidName::BadChar { ch });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InvalidName::TooLong { len: name.len() });
    }
    Ok(())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')
}

fn invalid(name: &str, reason: InvalidName) -> ChannelError {
    let mut quoted: String = name.chars().take(QUOTED_NAME_LEN).collect();
    if quoted.len() < name.len() {
        quoted.push('…');
    }
    ChannelError::Invalid {
        quoted: format!("{quoted:?}"),
        reason,
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets a `HashMap<ChannelName, _>` be searched with a `&str`.
impl Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The distinct channels one connection is on: `all` first, then the others in
/// the order the client named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSet(Vec<ChannelName>);

impl ChannelSet {
    /// Just `all` (what `/echo` and a bare subscription get).
    pub fn all_only() -> ChannelSet {
        ChannelSet(vec![ChannelName::all()])
    }

    /// Parses the `{channel}[,{channel}…]` segment of `/ws/…` (without `?query`).
    /// The segment is percent-decoded first: a comma cannot be in a name, so an
    /// encoded `%2C` still separates names. Duplicates are dropped; `all` is always
    /// in the set and does not count toward `max` named channels.
    pub fn parse(segment: &str, max: usize) -> Result<ChannelSet, ChannelError> {
        let decoded = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| invalid(segment, InvalidName::NotUtf8))?;
        let mut set = ChannelSet::all_only();
        for name in decoded.split(',') {
            let name = ChannelName::new(name)?;
            if set.contains(name.as_str()) {
                continue;
            }
            // Checked per distinct name, so a long list costs at most max + 1 lookups each.
            if set.0.len() > max {
                return Err(ChannelError::TooMany { limit: max });
            }
            set.0.push(name);
        }
        Ok(set)
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|c| c.as_str() == name)
    }

    /// The channels, `all` first.
    pub fn iter(&self) -> std::slice::Iter<'_, ChannelName> {
        self.0.iter()
    }

    /// How many channels, `all` included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (`all` is always in); here because clippy asks for it beside `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ChannelSet {
    type Item = &'a ChannelName;
    type IntoIter = std::slice::Iter<'a, ChannelName>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests;
