//! wspush: a WebSocket push server. An HTTP call on the side port sends a
//! message to every connected WebSocket client at once.
//!
//! To follow one message from `curl` to the browser: `http_front` (the side
//! port's front door) reads and checks the request and relays it to
//! `http_api::routes`, which looks it up in the route table, turns it into a
//! `publish::Payload` and hands it to the `publish::Publish` the server chose:
//! `broadcast::Fanout` for a single node (encode once, offer to every client
//! under one registry lock), or the `cluster` (PUBLISH to Redis; every node's
//! subscriber hands what comes back to its own fan-out). Each offer goes
//! through `client::outbox` (a non-blocking write, or the queue and a writer
//! thread); `session` is the connection's own thread, from handshake to
//! close. `server` builds what each thread needs and starts them all.

mod accept;
mod acceptor;
mod broadcast;
#[allow(dead_code)] // wired in by the channels work
mod channel;
mod client;
mod cluster;
mod config;
#[allow(dead_code)] // wired in by the channels work
mod envelope;
mod frame;
#[allow(dead_code, unused_imports)] // wired in by the channels work
mod history;
mod http_api;
mod http_error;
mod http_front;
mod limits;
pub mod memory;
mod metrics;
mod origin;
mod pinger;
mod pods;
#[allow(dead_code)] // wired in with the SSE transport
mod proxy;
mod publish;
mod refuser;
mod registry;
mod server;
mod session;
#[allow(dead_code)] // wired in with the SSE transport
mod sse;
mod stats;
mod stop;
mod threads;

pub use config::{Config, PingStyle};
pub use server::{Server, StartError};
pub use stats::StatsSnapshot;
