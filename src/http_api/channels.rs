//! The channel routes: publishing to one channel, listing the channels, and
//! kicking a client.

use serde::Serialize;
use tiny_http::Request;

use super::body::publication;
use super::error::ApiError;
use super::reply::Reply;
use super::routes::Call;
use super::HttpContext;
use crate::channel::ChannelName;
use crate::client::ClientId;
use crate::registry::ChannelView;

/// `/publish/{channel}`: `{"clients":N,"id":"<id>"}`.
pub(super) fn publish(request: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let channel = channel_name(call.rest)?;
    let msg = publication(request, call.path, call.query, ctx.max_body)?;
    Reply::json(&ctx.publisher.publish(&channel, msg)?)
}

/// One entry of `/channels`.
#[derive(Serialize)]
struct ChannelInfo {
    channel: String,
    subscribers: usize,
    history: usize,
    /// `null` when nothing was published to it while it had an entry.
    last_id: Option<String>,
}

impl From<ChannelView> for ChannelInfo {
    fn from(view: ChannelView) -> ChannelInfo {
        ChannelInfo {
            channel: view.name.to_string(),
            subscribers: view.subscribers,
            history: view.stats.history,
            last_id: view.stats.last_id.map(|id| id.to_string()),
        }
    }
}

/// `/channels`: every channel with subscribers or history, sorted by name.
pub(super) fn list(_: &mut Request, _: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let list = ctx.clients.with_hub(|hub| hub.channel_list());
    let list: Vec<ChannelInfo> = list.into_iter().map(ChannelInfo::from).collect();
    Reply::json(&list)
}

/// `/channels/{channel}`: one channel; 404 if it has neither subscribers nor history.
pub(super) fn one(_: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let channel = channel_name(call.rest)?;
    let view = ctx.clients.with_hub(|hub| hub.channel(&channel));
    match view {
        Some(view) => Reply::json(&ChannelInfo::from(view)),
        None => Err(ApiError::NotFound(format!(
            "channel {channel} has no subscribers and no history"
        ))),
    }
}

/// `DELETE /clients/{id}`: closes the client with 1008 `kicked` (this node's
/// clients only: `N`, or `NODE-N` with this node's id).
pub(super) fn kick(_: &mut Request, call: &Call<'_>, ctx: &HttpContext) -> Result<Reply, ApiError> {
    let no_client = || ApiError::NotFound(format!("no client with id {:?} on this node", call.rest));
    let prefix = ctx.clients.id_prefix();
    let number = match prefix.as_deref() {
        Some(node) => call
            .rest
            .strip_prefix(node)
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(call.rest),
        None => call.rest,
    };
    let id = ClientId::parse(number).ok_or_else(no_client)?;
    let client = ctx.clients.get(id).ok_or_else(no_client)?;
    if client.kick(format!("kicked (DELETE /clients/{})", call.rest)) {
        ctx.stats.clients_kicked.inc();
    }
    Reply::json(&serde_json::json!({ "kicked": client.shown_id().to_string() }))
}

/// A channel name from a URL path segment (percent-decoded); 400 if it is not one.
fn channel_name(segment: &str) -> Result<ChannelName, ApiError> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("channel name is not valid UTF-8".into()))?;
    ChannelName::new(&decoded).map_err(|e| ApiError::BadRequest(e.to_string()))
}
