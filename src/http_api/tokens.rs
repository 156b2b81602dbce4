//! `POST /tokens`: subscribe tokens made on the side port, with the URLs that
//! use them on this server's public port.
//!
//! The body is `{"channels":[…],"sub":"…","ttl":600}` (`token::MintRequest`:
//! the checks and the signing are `token::Minter`'s). The answer adds to the
//! token and its expiry `ws_url` and `sse_url`: `/ws/{channels}?token=…` and
//! `/events/{channels}?token=…` on the address the public port is bound to (a
//! wildcard address as loopback), naming the token's exact channels. A token
//! of prefixes only names no channel, so its URLs are `null`: the caller picks
//! the channels. Without a subscribe secret nothing is checked and nothing can
//! be minted: 404 with the reason.

use std::net::SocketAddr;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use tiny_http::Request;

use super::body::{header, read_body};
use super::error::ApiError;
use super::reply::Reply;
use super::routes::Call;
use super::HttpContext;
use crate::http_front::PEER_HEADER;
use crate::token::{MintRequest, Minter, Pattern, Patterns, TOKEN_PARAM};

/// What `POST /tokens` needs: the minter, and where the public port is.
pub struct TokenMint {
    minter: Minter,
    /// `127.0.0.1:8080`: the public port as reachable from here.
    public: SocketAddr,
    /// `tokens_minted`.
    minted: Counter,
}

impl TokenMint {
    /// Mints with `minter` for the public port at `public`, counting in `minted`.
    pub fn new(minter: Minter, public: SocketAddr, minted: Counter) -> TokenMint {
        TokenMint {
            minter,
            public,
            minted,
        }
    }
}

/// `POST /tokens`: `{"token","expires","ws_url","sse_url"}`.
pub(super) fn mint(request: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let Some(mint) = &ctx.tokens else {
        return Err(ApiError::NotFound(
            "no --subscribe-secret is set, so subscribing is open to anyone and there are no tokens to make"
                .into(),
        ));
    };
    let body = read_body(request, ctx.max_body)?;
    let asked = MintRequest::from_json(&body)?;
    let minted = mint.minter.mint(&asked, SystemTime::now())?;
    mint.minted.inc();
    let path = Patterns::parse(&asked.channels)
        .ok()
        .and_then(|p| channels_path(&p));
    let url = |scheme: &str, prefix: &str| {
        path.as_ref().map(|path| {
            format!(
                "{scheme}://{}/{prefix}/{path}?{TOKEN_PARAM}={}",
                mint.public, minted.token
            )
        })
    };
    let mut answer = minted.to_json();
    answer["ws_url"] = url("ws", "ws").into();
    answer["sse_url"] = url("http", "events").into();
    log::info!(
        "http POST /tokens from {}: a token for {} on {}, until {}",
        header(request, PEER_HEADER).unwrap_or_else(|| "?".to_owned()),
        asked
            .sub
            .as_deref()
            .map_or("no sub".to_owned(), |sub| format!("user {sub:?}")),
        asked.channels.join(","),
        answer["expires"].as_str().unwrap_or("?"),
    );
    Reply::json(&answer)
}

/// The `{channels}` of a URL that subscribes with a token for `patterns`: its
/// exact names, or `all` for `*` alone; `None` for prefixes only.
fn channels_path(patterns: &Patterns) -> Option<String> {
    let exact: Vec<&str> = patterns
        .iter()
        .filter_map(|p| match p {
            Pattern::Exact(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !exact.is_empty() {
        return Some(exact.join(","));
    }
    patterns
        .iter()
        .any(|p| *p == Pattern::Any)
        .then(|| "all".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(patterns: &[&str]) -> Option<String> {
        channels_path(&Patterns::parse(patterns).expect("patterns"))
    }

    #[test]
    fn urls_name_the_exact_channels_or_all_for_a_wildcard() {
        assert_eq!(
            path(&["orders", "user.42.*", "news"]).as_deref(),
            Some("orders,news")
        );
        assert_eq!(path(&["*"]).as_deref(), Some("all"));
        assert_eq!(path(&["*", "orders"]).as_deref(), Some("orders"));
        assert_eq!(path(&["user.42.*"]), None, "prefixes only: the caller picks");
    }
}
