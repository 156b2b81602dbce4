//! The one check every subscribing transport makes before it starts: may this
//! request read the channels it names?
//!
//! The WebSocket handshake (`/ws/…`, `/echo`) calls `Gate::admit` from its
//! upgrade callback, before it answers 101; an event stream (`/events/…`)
//! calls it the same way before it writes its head. The caller gives what the
//! request asked for (its channel set, `all` first; `/echo` is `all` alone),
//! its query string (without `?`), its `Cookie` header values and the time, and
//! gets either what the token grants, or the refusal: `TokenError::status()`
//! (401 or 403) and its text as the JSON reason. The gate counts each refusal
//! (`tokens_rejected`); the caller logs its one line, with the reason and
//! never the token (`strip_query` for any target it shows).
//!
//! Without a subscribe secret the gate is open: every request is admitted with
//! no grant, and nothing is read.

use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;

use super::carrier::find_token;
use super::secret::Secret;
use super::verify::{Grant, TokenError, Verifier, DEFAULT_LEEWAY};
use crate::channel::ChannelSet;

/// Who may subscribe: open, or checking tokens against the secret.
pub struct Gate {
    verifier: Option<Verifier>,
    /// Refusals, shared with `/stats` (`tokens_rejected`).
    rejected: Counter,
}

impl Gate {
    /// A gate that checks tokens signed with `secret`, or lets everyone in without one.
    pub fn new(secret: Option<&Secret>, rejected: Counter) -> Gate {
        Gate {
            verifier: secret.map(|secret| Verifier::new(secret, DEFAULT_LEEWAY)),
            rejected,
        }
    }

    /// Admits a request for `channels` as of `now`: `Ok(None)` when the gate is
    /// open, `Ok(Some(grant))` for a token that covers every channel asked for.
    pub fn admit<'a>(
        &self,
        channels: &ChannelSet,
        query: Option<&str>,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
        now: SystemTime,
    ) -> Result<Option<Grant>, TokenError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let checked = check(verifier, channels, query, cookie_headers, now);
        if checked.is_err() {
            self.rejected.inc();
        }
        checked.map(Some)
    }
}

fn check<'a>(
    verifier: &Verifier,
    channels: &ChannelSet,
    query: Option<&str>,
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    now: SystemTime,
) -> Result<Grant, TokenError> {
    let token = find_token(query, cookie_headers).ok_or(TokenError::Missing)?;
    let grant = verifier.verify(&token, now)?;
    grant.covers_all(channels).map_err(TokenError::NotCovered)?;
    Ok(grant)
}
