//! wspush: a WebSocket push server. An HTTP call on the side port sends a
//! message to every client on a channel (`all`: every client), over a
//! WebSocket or an event stream, at once, and keeps it a while for clients
//! that reconnect.
//!
//! To follow one message from `curl` to the browser: `http_front` (the side
//! port's front door) reads and checks the request and relays it to
//! `http_api::routes`, which looks it up in the route table, turns it into a
//! `publish::Payload` and hands it to the `publish::Publish` the server chose:
//! `broadcast::Fanout` for a single node (encode once per transport in
//! `message`, then under one registry lock give it an id, store it in the
//! `history` and offer it to the channel's subscribers: `registry::Hub`), or
//! the `cluster` (XADD to one Redis stream, the log; every node's log reader
//! hands each entry to its own fan-out with the log's id, `broadcast::logged`).
//! Each offer goes through `client::outbox` (a
//! non-blocking write, or the queue and a writer thread); `session` is the
//! connection's own thread, from its request head to a WebSocket handshake
//! (its target: `/echo` or `/ws/{channels}`) or an event stream
//! (`/events/{channels}`, its events written by `sse`), both let in only
//! with a subscribe token under `--subscribe-secret` (`token::Gate`), and
//! `join` (replay or reset, then live) to close; `proxy` names a client
//! behind a trusted proxy.
//! `server` builds what each thread needs and starts them all.

mod accept;
mod acceptor;
mod broadcast;
mod channel;
mod client;
mod cluster;
mod config;
mod envelope;
mod frame;
mod history;
mod http_api;
mod http_error;
mod http_front;
mod join;
mod limits;
pub mod memory;
mod message;
mod metrics;
mod origin;
mod pinger;
mod pods;
mod proxy;
mod publish;
mod refuser;
mod registry;
mod server;
mod session;
mod sse;
mod stats;
mod stop;
mod threads;
mod token;

pub use config::{Config, PingStyle};
pub use server::{Server, StartError};
pub use stats::StatsSnapshot;
