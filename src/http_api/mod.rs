//! The HTTP side port: publishing, client and server status, and the page.
//!
//! The front door (`http_front`) reads and checks each request, tiny_http
//! parses it again, and the thread that routes it (the request's connection
//! thread, or a front-door helper) asks `HttpApi` for the answer, found in the
//! route table (`routes`). A publish request becomes one
//! `Payload` handed to the publisher (`publish::Publish`: this node's fan-out,
//! or a relay); `tokens` makes subscribe tokens; everything else reads the
//! registry (`channels`: the channel list and kicks), the figures or files.
//! A request's query string is never logged: it may carry a token.

mod body;
mod channels;
mod error;
mod reply;
mod routes;
mod static_files;
mod tokens;

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tiny_http::{Request, Response};

use self::reply::Reply;
pub use self::tokens::TokenMint;
use crate::http_front::Routes;
use crate::metrics::Metrics;
use crate::pods::PodList;
use crate::publish::Publish;
use crate::registry::Registry;
use crate::stats::Stats;

/// What the side port's handlers read.
pub struct HttpContext {
    /// Where publishes go.
    pub publisher: Arc<dyn Publish>,
    /// Listed by `/clients` and `/channels`, kicked by `DELETE /clients/{id}`.
    pub clients: Arc<Registry>,
    /// Where kicks are counted.
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
    pub pods: PodList,
    pub html_dir: PathBuf,
    /// `--publish-token`.
    pub token: Option<String>,
    /// Where the page finds the WebSocket (`/config.json`).
    pub ws_port: u16,
    pub ws_path: &'static str,
    /// `--max-body-bytes`.
    pub max_body: usize,
    /// `POST /tokens`, with `--subscribe-secret`.
    pub tokens: Option<TokenMint>,
}

/// The side port's answers to the requests the front door passes on.
pub struct HttpApi {
    ctx: HttpContext,
}

impl HttpApi {
    pub fn new(ctx: HttpContext) -> HttpApi {
        HttpApi { ctx }
    }
}

impl Routes for HttpApi {
    fn answer(&self, request: &mut Request, peer: SocketAddr) -> Response<Cursor<Vec<u8>>> {
        let reply = routes::answer(request, peer, &self.ctx).unwrap_or_else(|err| {
            log::info!(
                "http {} {} {} from {peer}: {err}",
                err.status(),
                request.method(),
                crate::token::strip_query(request.url()),
            );
            Reply::error(&err)
        });
        reply.into_response()
    }
}
