//! The HTTP side port: publishing, client and server status, and the page.
//!
//! A small pool of threads takes requests from one `tiny_http` server, which
//! gets only requests the front door (`http_front`) read and checked. A
//! publish request is turned into one encoded frame and handed to the fan-out
//! (`broadcast`); everything else reads the registry, the counters or files.

mod body;
mod reply;
mod static_files;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use serde::Serialize;
use subtle::ConstantTimeEq;
use tiny_http::{Method, Request};

pub use self::reply::Reply;
use crate::error::ApiError;
use crate::frame::PayloadKind;
use crate::handshake::WS_PATH;
use crate::http_front::PEER_HEADER;
use crate::server::Shared;

/// `{"error": reason}` as a JSON string.
pub fn error_json(reason: &str) -> String {
    serde_json::json!({ "error": reason }).to_string()
}

/// The running side port: its threads and the server they read from.
pub struct HttpApi {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

impl HttpApi {
    /// Starts `threads` workers answering requests from `server`.
    pub fn start(server: tiny_http::Server, threads: u16, shared: Arc<Shared>) -> std::io::Result<HttpApi> {
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for n in 0..threads {
            let (server, shared, stopping) =
                (Arc::clone(&server), Arc::clone(&shared), Arc::clone(&stopping));
            let worker = thread::Builder::new()
                .name(format!("http-{n}"))
                .spawn(move || serve(&server, &shared, &stopping))?;
            workers.push(worker);
        }
        Ok(HttpApi {
            server,
            workers,
            stopping,
        })
    }

    /// Stops taking requests and waits for the workers to finish the ones they have.
    pub fn stop(self) {
        self.stopping.store(true, SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn serve(server: &tiny_http::Server, shared: &Shared, stopping: &AtomicBool) {
    while !stopping.load(SeqCst) {
        let Ok(mut request) = server.recv() else { continue };
        let reply = route(&mut request, shared).unwrap_or_else(|err| {
            log::info!(
                "http {} {} {} from {}: {err}",
                err.status(),
                request.method(),
                request.url(),
                // The front door says who the client is: the router sees only its Unix socket.
                body::header(&request, PEER_HEADER).unwrap_or_else(|| "?".to_owned())
            );
            Reply::error(&err)
        });
        reply.send(request);
    }
}

#[derive(Serialize)]
struct ClientInfo {
    id: String,
    peer: String,
    connected_since: String,
    queued: usize,
}

fn route(request: &mut Request, shared: &Shared) -> Result<Reply, ApiError> {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let max_body = shared.config.max_body_bytes;
    match path {
        "/sendall" => {
            allow(request, path, &[Method::Get, Method::Post], "GET, POST")?;
            authorize(request, shared)?;
            let msg = body::publication(request, query, max_body)?;
            let delivery = shared.publisher.broadcast(msg.kind, &msg.payload, None)?;
            Ok(Reply::json(&delivery))
        }
        "/sendpods" => {
            allow(request, path, &[Method::Get, Method::Post], "GET, POST")?;
            authorize(request, shared)?;
            let pods = &shared.pods;
            let delivery =
                shared
                    .publisher
                    .broadcast(PayloadKind::Text, pods.json.as_bytes(), Some(&pods.frame))?;
            Ok(Reply::json(&delivery))
        }
        "/pods" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            Ok(Reply::raw_json(shared.pods.json.clone()))
        }
        _ if path.starts_with("/send/") => {
            allow(request, path, &[Method::Post], "POST")?;
            authorize(request, shared)?;
            let target = shared.publisher.target(&path["/send/".len()..])?;
            let msg = body::publication(request, query, max_body)?;
            let delivery = shared.publisher.send_to(&target, msg.kind, &msg.payload)?;
            Ok(Reply::json(&delivery))
        }
        "/clients" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            let list: Vec<ClientInfo> = shared
                .registry
                .snapshot()
                .iter()
                .map(|c| ClientInfo {
                    id: c.id.to_string(),
                    peer: c.peer.to_string(),
                    connected_since: humantime::format_rfc3339_seconds(c.connected_at).to_string(),
                    queued: c.outbox.pending(),
                })
                .collect();
            Ok(Reply::json(&list))
        }
        "/stats" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            Ok(Reply::json(&shared.stats_snapshot()))
        }
        "/metrics" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            let text = shared.stats_snapshot().to_prometheus();
            Ok(Reply::with_type(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text.into_bytes(),
            ))
        }
        "/healthz" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            if shared.publisher.is_healthy() {
                Ok(Reply::with_type(200, "text/plain; charset=utf-8", b"ok".to_vec()))
            } else {
                Ok(Reply::with_type(
                    503,
                    "text/plain; charset=utf-8",
                    b"degraded".to_vec(),
                ))
            }
        }
        "/cluster" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            match shared.publisher.cluster() {
                Some(cluster) => Ok(Reply::json(&cluster.view())),
                None => Err(ApiError::NotFound(
                    "this node runs alone: start it with --redis to join a cluster".into(),
                )),
            }
        }
        "/config.json" => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            Ok(Reply::json(&serde_json::json!({
                "ws_port": shared.ws_addr.port(),
                "ws_path": WS_PATH,
            })))
        }
        _ => {
            allow(request, path, &[Method::Get, Method::Head], "GET")?;
            static_files::serve(&shared.config.html_dir, path)
        }
    }
}

fn allow(request: &Request, path: &str, methods: &[Method], allowed: &'static str) -> Result<(), ApiError> {
    if methods.contains(request.method()) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: path.to_owned(),
            allowed,
        })
    }
}

/// With `--publish-token`, checks `Authorization: Bearer <token>` in constant time.
fn authorize(request: &Request, shared: &Shared) -> Result<(), ApiError> {
    let Some(token) = &shared.config.publish_token else {
        return Ok(());
    };
    let given = body::header(request, "Authorization").unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or("").trim();
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
