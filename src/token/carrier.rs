//! Where a subscribe token travels, and keeping it out of what is shown.
//!
//! Browsers cannot set headers on a WebSocket or an EventSource, so the token
//! comes as `?token=` on the URL or as the `wspush_token` cookie. The query
//! wins when both are there (it is what the page chose for this connection).
//! Query values are form-decoded (`%XX`, `+`); cookie values are
//! percent-decoded (what `encodeURIComponent` wrote) and may be quoted. An
//! empty value counts as none. Since the token is in the URL, every log line
//! and `/clients` show the path only: `strip_query`.

use std::borrow::Cow;

/// The query parameter that carries a token.
pub const TOKEN_PARAM: &str = "token";

/// The cookie that carries a token.
pub const TOKEN_COOKIE: &str = "wspush_token";

/// The token of a request, from its query (without `?`) or else its `Cookie` headers.
pub fn find_token<'a>(
    query: Option<&str>,
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
) -> Option<String> {
    let from_query = query.and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name == TOKEN_PARAM && !value.is_empty())
            .map(|(_, value)| value.into_owned())
    });
    from_query.or_else(|| cookie_headers.into_iter().find_map(token_cookie))
}

/// The `wspush_token` value in one `Cookie` header (`a=1; wspush_token=…; b=2`).
fn token_cookie(header: &[u8]) -> Option<String> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        if name != TOKEN_COOKIE.as_bytes() {
            return None;
        }
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        let decoded: Cow<[u8]> = percent_encoding::percent_decode(value).into();
        let token = String::from_utf8_lossy(&decoded).into_owned();
        (!token.is_empty()).then_some(token)
    })
}

/// A request target without its query string: what may be logged or shown.
pub fn strip_query(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}
