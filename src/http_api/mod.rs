//! The HTTP side port: publishing, client and server status, and the page.
//!
//! A small pool of threads takes requests from one `tiny_http` server, which
//! gets only requests the front door (`http_front`) read and checked, and
//! looks each up in the route table (`routes`). A publish request becomes one
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

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use self::reply::Reply;
pub use self::tokens::TokenMint;
use crate::http_front::PEER_HEADER;
use crate::metrics::Metrics;
use crate::pods::PodList;
use crate::publish::Publish;
use crate::registry::Registry;
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::threads::{Role, ThreadSpawner};

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

/// The running side port: its threads and the server they read from.
pub struct HttpApi {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl HttpApi {
    /// Starts `threads` workers answering requests from `server` until `stop`.
    /// If one cannot start, the error comes with the ones that did: join them
    /// once the stop is given.
    pub fn start(
        server: tiny_http::Server,
        threads: u16,
        ctx: Arc<HttpContext>,
        spawner: &ThreadSpawner,
        stop: &StopToken,
    ) -> (HttpApi, std::io::Result<()>) {
        let mut api = HttpApi {
            server: Arc::new(server),
            workers: Vec::new(),
        };
        for n in 0..threads {
            let (server, ctx, stop) = (Arc::clone(&api.server), Arc::clone(&ctx), stop.clone());
            let worker = spawner.spawn(Role::Service, format!("http-{n}"), move || {
                serve(&server, &ctx, &stop);
            });
            match worker {
                Ok(worker) => api.workers.push(worker),
                Err(e) => return (api, Err(e)),
            }
        }
        (api, Ok(()))
    }

    /// Waits for the workers to finish the requests they have (call after the stop).
    pub fn join(self) {
        // Each worker may be blocked in `recv`: one wake-up each.
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn serve(server: &tiny_http::Server, ctx: &HttpContext, stop: &StopToken) {
    while !stop.is_stopped() {
        let mut request = match server.recv() {
            Ok(request) => request,
            Err(e) => {
                if !stop.is_stopped() {
                    log::warn!("http: receiving a request failed: {e}");
                }
                continue;
            }
        };
        let reply = routes::answer(&mut request, ctx).unwrap_or_else(|err| {
            log::info!(
                "http {} {} {} from {}: {err}",
                err.status(),
                request.method(),
                crate::token::strip_query(request.url()),
                // The front door says who the client is: the router sees only its Unix socket.
                body::header(&request, PEER_HEADER).unwrap_or_else(|| "?".to_owned())
            );
            Reply::error(&err)
        });
        reply.send(request);
    }
}
