//! The side port's route table: for each path, the methods it takes, whether
//! it needs the token, and its handler. The first matching row answers.

use serde::Serialize;
use subtle::ConstantTimeEq;
use tiny_http::{Method, Request};

use super::body::{self, publication};
use super::error::ApiError;
use super::reply::Reply;
use super::{channels, static_files, tokens, HttpContext};
use crate::channel::ChannelName;
use crate::publish::{Health, Payload, Published};

/// Which request paths a route answers.
enum PathMatch {
    Exact(&'static str),
    /// The path starts with this; the handler gets the rest.
    Prefix(&'static str),
    /// Every path (the static files): the last row.
    Any,
}

/// Whether a route needs `Authorization: Bearer <--publish-token>` (when a
/// token is set). Only what the page needs to load is open: `/healthz`,
/// `/config.json` and the static files; `/clients` shows peer addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Token,
    Open,
}

/// One request as a handler sees it.
pub(super) struct Call<'a> {
    pub(super) path: &'a str,
    pub(super) query: &'a str,
    /// What followed a `Prefix` route's prefix.
    pub(super) rest: &'a str,
}

type Handler = fn(&mut Request, &Call<'_>, &HttpContext) -> Result<Reply, ApiError>;

struct Route {
    path: PathMatch,
    methods: &'static [Method],
    /// The `Allow` header of a 405.
    allow: &'static str,
    auth: Auth,
    handler: Handler,
}

const READ: &[Method] = &[Method::Get, Method::Head];
const GET_OR_POST: &[Method] = &[Method::Get, Method::Post];
const POST: &[Method] = &[Method::Post];
const DELETE: &[Method] = &[Method::Delete];

const fn route(
    path: PathMatch,
    methods: &'static [Method],
    allow: &'static str,
    auth: Auth,
    handler: Handler,
) -> Route {
    Route {
        path,
        methods,
        allow,
        auth,
        handler,
    }
}

static ROUTES: &[Route] = &[
    route(
        PathMatch::Exact("/sendall"),
        GET_OR_POST,
        "GET, POST",
        Auth::Token,
        send_all,
    ),
    route(
        PathMatch::Exact("/sendpods"),
        GET_OR_POST,
        "GET, POST",
        Auth::Token,
        send_pods,
    ),
    route(PathMatch::Exact("/pods"), READ, "GET", Auth::Token, pods),
    route(PathMatch::Prefix("/send/"), POST, "POST", Auth::Token, send_one),
    route(
        PathMatch::Prefix("/publish/"),
        GET_OR_POST,
        "GET, POST",
        Auth::Token,
        channels::publish,
    ),
    route(
        PathMatch::Exact("/channels"),
        READ,
        "GET",
        Auth::Token,
        channels::list,
    ),
    route(
        PathMatch::Prefix("/channels/"),
        READ,
        "GET",
        Auth::Token,
        channels::one,
    ),
    route(
        PathMatch::Exact("/tokens"),
        POST,
        "POST",
        Auth::Token,
        tokens::mint,
    ),
    route(PathMatch::Exact("/clients"), READ, "GET", Auth::Token, clients),
    route(
        PathMatch::Prefix("/clients/"),
        DELETE,
        "DELETE",
        Auth::Token,
        channels::kick,
    ),
    route(PathMatch::Exact("/stats"), READ, "GET", Auth::Token, stats),
    route(PathMatch::Exact("/metrics"), READ, "GET", Auth::Token, metrics),
    route(PathMatch::Exact("/healthz"), READ, "GET", Auth::Open, healthz),
    route(PathMatch::Exact("/cluster"), READ, "GET", Auth::Token, cluster),
    route(
        PathMatch::Exact("/config.json"),
        READ,
        "GET",
        Auth::Open,
        config_json,
    ),
    route(PathMatch::Any, READ, "GET", Auth::Open, static_file),
];

/// Finds the request's route, checks method and token, and runs the handler.
pub fn answer(request: &mut Request, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let (route, rest) = ROUTES
        .iter()
        .find_map(|r| match r.path {
            PathMatch::Exact(p) => (p == path).then_some((r, "")),
            PathMatch::Prefix(p) => path.strip_prefix(p).map(|rest| (r, rest)),
            PathMatch::Any => Some((r, path)),
        })
        .ok_or_else(|| ApiError::NotFound(format!("no route for {path}")))?;
    if !route.methods.contains(request.method()) {
        return Err(ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: path.to_owned(),
            allowed: route.allow,
        });
    }
    if route.auth == Auth::Token {
        authorize(request, ctx.token.as_deref())?;
    }
    (route.handler)(request, &Call { path, query, rest }, ctx)
}

/// With a token set, checks `Authorization: Bearer <token>` (the scheme in
/// any case, RFC 7235), comparing the token in constant time.
fn authorize(request: &Request, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let header = body::header(request, "Authorization").unwrap_or_default();
    if bool::from(bearer(&header).as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The token of a `Bearer` credential; empty for any other.
fn bearer(header: &str) -> &str {
    match header.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    }
}

fn send_all(request: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let msg = publication(request, call.path, call.query, ctx.max_body)?;
    broadcast(ctx, msg)
}

fn send_pods(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    broadcast(ctx, ctx.pods.payload.clone())
}

/// Publishes to `all`, answering as `/sendall` always has: without the id
/// (`/publish/all` answers it).
fn broadcast(ctx: &HttpContext, msg: Payload) -> Result<Reply, ApiError> {
    let published = ctx.publisher.publish(&ChannelName::all(), msg)?;
    Reply::json(&Published {
        id: None,
        ..published
    })
}

fn pods(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    Ok(Reply::raw_json(ctx.pods.json.clone()))
}

fn send_one(request: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let msg = publication(request, call.path, call.query, ctx.max_body)?;
    Reply::json(&ctx.publisher.send_to(call.rest, msg)?)
}

#[derive(Serialize)]
struct ClientInfo {
    id: String,
    peer: String,
    connected_since: String,
    queued: usize,
    /// `all` first.
    channels: Vec<String>,
    /// `echo` (raw frames) or `ws` (envelopes).
    transport: &'static str,
    /// The `sub` of its subscribe token; `null` without one.
    user: Option<String>,
}

fn clients(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let list: Vec<ClientInfo> = ctx
        .clients
        .snapshot()
        .iter()
        .map(|c| ClientInfo {
            id: c.shown_id().to_string(),
            peer: c.peer.to_string(),
            connected_since: humantime::format_rfc3339_seconds(c.connected_at).to_string(),
            queued: c.outbox.pending(),
            channels: c.subscription.channels.iter().map(|n| n.to_string()).collect(),
            transport: c.transport().as_str(),
            user: c.user().map(str::to_owned),
        })
        .collect();
    Reply::json(&list)
}

fn stats(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    Reply::json(&ctx.metrics.snapshot())
}

fn metrics(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let text = ctx
        .metrics
        .encode()
        .map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(Reply::with_type(
        200,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text.into_bytes(),
    ))
}

fn healthz(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let (status, body) = match ctx.publisher.health() {
        Health::Ok => (200, "ok"),
        Health::Degraded => (503, "degraded"),
    };
    Ok(Reply::with_type(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    ))
}

fn cluster(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    match ctx.publisher.cluster_view() {
        Some(Ok(view)) => Ok(Reply::raw_json(view)),
        Some(Err(e)) => Err(ApiError::Internal(format!("cannot encode the cluster view: {e}"))),
        None => Err(ApiError::NotFound(
            "this node runs alone: start it with --redis to join a cluster".into(),
        )),
    }
}

fn config_json(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    Reply::json(&serde_json::json!({
        "ws_port": ctx.ws_port,
        "ws_path": ctx.ws_path,
        // With --subscribe-secret the page gets its tokens from POST /tokens.
        "subscribe_tokens": ctx.tokens.is_some(),
    }))
}

fn static_file(_: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    static_files::serve(&ctx.html_dir, call.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        assert_eq!(bearer("Bearer abc"), "abc");
        assert_eq!(bearer("bearer abc"), "abc");
        assert_eq!(bearer("BEARER  abc "), "abc");
        assert_eq!(bearer("Basic abc"), "");
        assert_eq!(bearer("abc"), "");
        assert_eq!(bearer("Bearer"), "");
    }
}
