//! Channel patterns in a token's `channels` claim, and whether they cover a channel.
//!
//! A pattern is one of:
//! - a channel name (`orders`): covers that channel only;
//! - a prefix followed by `*` (`user.42.*`): covers every channel whose name
//!   starts with the prefix and has at least one more character, dots
//!   included. `user.42.*` covers `user.42.x` and `user.42.x.y`, not
//!   `user.42.`, `user.42`, `user.420` or `user.43.x`. The match is plain
//!   text, so end the prefix with a separator: `user.42*` would cover
//!   `user.420` too. A prefix never covers `all`, the broadcast channel
//!   (`a*` would otherwise);
//! - `*` alone: covers every channel, `all` included.
//!
//! The prefix and the name follow `ChannelName`'s rules (`[A-Za-z0-9_.:@-]`, at
//! most 128 bytes), so `*` anywhere but at the end is refused.

use std::fmt;

use crate::channel::{ChannelError, ChannelName};

/// Most patterns one token (or one `POST /tokens`) may carry.
pub const MAX_PATTERNS: usize = 64;

/// One entry of the `channels` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this channel.
    Exact(ChannelName),
    /// Every channel that starts with this prefix and is longer than it.
    Prefix(ChannelName),
    /// Every channel.
    Any,
}

/// Why a `channels` claim (or the `channels` of a `POST /tokens`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// An entry is neither a channel name, a prefix ending in `*`, nor `*`.
    #[error("{0} (a channel pattern is a name, a prefix ending in `*`, or `*` alone)")]
    Invalid(ChannelError),
    /// More than `MAX_PATTERNS` entries.
    #[error("too many channel patterns: at most {MAX_PATTERNS}")]
    TooMany,
}

impl Pattern {
    /// Reads one pattern.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        match text.strip_suffix('*') {
            Some(prefix) => ChannelName::new(prefix).map(Pattern::Prefix),
            None => ChannelName::new(text).map(Pattern::Exact),
        }
        .map_err(PatternError::Invalid)
    }

    /// Whether this pattern lets a client read `channel`.
    pub fn covers(&self, channel: &ChannelName) -> bool {
        match self {
            Pattern::Exact(name) => name == channel,
            Pattern::Prefix(prefix) => {
                let (name, prefix) = (channel.as_str(), prefix.as_str());
                name.len() > prefix.len() && name.starts_with(prefix) && !channel.is_all()
            }
            Pattern::Any => true,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(name) => write!(f, "{name}"),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
            Pattern::Any => f.write_str("*"),
        }
    }
}

/// The patterns of one token, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    /// Reads every pattern; at most `MAX_PATTERNS`.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Patterns, PatternError> {
        if texts.len() > MAX_PATTERNS {
            return Err(PatternError::TooMany);
        }
        let patterns = texts.iter().map(|text| Pattern::parse(text.as_ref()));
        Ok(Patterns(patterns.collect::<Result<_, _>>()?))
    }

    /// Whether any of the patterns covers `channel`.
    pub fn covers(&self, channel: &ChannelName) -> bool {
        self.0.iter().any(|pattern| pattern.covers(channel))
    }

    /// The patterns as they are written in a token.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Pattern::to_string).collect()
    }

    /// The patterns.
    pub fn iter(&self) -> std::slice::Iter<'_, Pattern> {
        self.0.iter()
    }

    /// How many patterns.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (such a token covers no channel).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
