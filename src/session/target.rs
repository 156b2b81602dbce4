//! What an upgrade request's target asks for: `/echo`, or
//! `/ws/{channel}[,{channel}…]` with `?since=ID` or `?last=N`.
//!
//! A bad channel list or `last` is refused with 400 before the upgrade. A
//! `since` that cannot be read is not: it becomes a reset, since a client
//! that reconnects must not loop on an error. With both, `since` wins and
//! `last` is not looked at.

use crate::channel::ChannelSet;
use crate::client::Subscription;
use crate::history::Since;
use crate::join::Start;
use crate::token::Grant;

/// The raw-frame path of the tutorial.
pub const ECHO_PATH: &str = "/echo";
/// Where channel subscriptions start: `/ws/{channels}`.
pub const WS_PREFIX: &str = "/ws/";

/// The caps a target is checked against.
#[derive(Debug, Clone, Copy)]
pub struct TargetLimits {
    /// `--max-channels-per-client` (not counting `all`).
    pub max_channels: usize,
    /// `--recovery-max`: the largest `last`.
    pub recovery_max: usize,
}

/// What the connection asked for.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub subscription: Subscription,
    pub start: Start,
    /// What its subscribe token grants (set by the handshake once the gate admits it).
    pub grant: Option<Grant>,
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadTarget {
    /// No endpoint at this path (404).
    NoEndpoint,
    /// A channel list or `last` that cannot work (400); the reason.
    Invalid(String),
}

/// Reads the target's path and query.
pub fn parse(path: &str, query: Option<&str>, limits: &TargetLimits) -> Result<Wanted, BadTarget> {
    if path == ECHO_PATH {
        return Ok(Wanted {
            subscription: Subscription::echo(),
            start: Start::Live,
            grant: None,
        });
    }
    let segment = path.strip_prefix(WS_PREFIX).ok_or(BadTarget::NoEndpoint)?;
    let channels =
        ChannelSet::parse(segment, limits.max_channels).map_err(|e| BadTarget::Invalid(e.to_string()))?;
    Ok(Wanted {
        subscription: Subscription::ws(channels),
        start: start(query.unwrap_or(""), limits.recovery_max)?,
        grant: None,
    })
}

fn start(query: &str, recovery_max: usize) -> Result<Start, BadTarget> {
    let param = |key: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(since) = param("since") {
        return Ok(Start::Since(Since::parse(&since)));
    }
    let Some(last) = param("last") else {
        return Ok(Start::Live);
    };
    match last.parse::<usize>() {
        Ok(n) if n <= recovery_max && last.bytes().all(|b| b.is_ascii_digit()) => Ok(Start::Last(n)),
        _ => Err(BadTarget::Invalid(format!(
            "last must be a whole number from 0 to {recovery_max} (--recovery-max), not {:?}",
            cut(&last)
        ))),
    }
}

/// At most 40 characters of a value, for an error message.
fn cut(value: &str) -> String {
    value.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Transport;

    const LIMITS: TargetLimits = TargetLimits {
        max_channels: 2,
        recovery_max: 100,
    };

    fn start_of(query: &str) -> Result<Start, BadTarget> {
        parse("/ws/a", Some(query), &LIMITS).map(|w| w.start)
    }

    #[test]
    fn echo_and_channel_paths() {
        let echo = parse("/echo", Some("since=x"), &LIMITS).unwrap();
        assert_eq!(echo.subscription.transport, Transport::Echo);
        assert_eq!(echo.start, Start::Live, "/echo has no resume");
        let ws = parse("/ws/a,b", None, &LIMITS).unwrap();
        assert_eq!(ws.subscription.transport, Transport::Ws);
        let names: Vec<_> = ws.subscription.channels.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["all", "a", "b"]);
        for path in ["/", "/ws", "/echo/", "/wss/a"] {
            assert_eq!(
                parse(path, None, &LIMITS).err(),
                Some(BadTarget::NoEndpoint),
                "{path}"
            );
        }
        for path in ["/ws/", "/ws/a,b,c", "/ws/a b", "/ws/a,,b"] {
            assert!(
                matches!(parse(path, None, &LIMITS), Err(BadTarget::Invalid(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn since_wins_and_never_fails_last_is_checked() {
        assert_eq!(start_of(""), Ok(Start::Live));
        assert_eq!(start_of("since=nonsense"), Ok(Start::Since(Since::Unreadable)));
        assert_eq!(
            start_of("last=oops&since=nonsense"),
            Ok(Start::Since(Since::Unreadable))
        );
        assert_eq!(start_of("last=0"), Ok(Start::Last(0)));
        assert_eq!(start_of("last=100"), Ok(Start::Last(100)));
        for bad in ["last=101", "last=-1", "last=+5", "last=", "last=x", "last=1e3"] {
            assert!(
                matches!(start_of(bad), Err(BadTarget::Invalid(r)) if r.contains("--recovery-max")),
                "{bad}"
            );
        }
    }
}
