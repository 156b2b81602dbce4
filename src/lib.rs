//! wspush: a WebSocket push server. An HTTP call on the side port sends a
//! message to every connected WebSocket client at once.
//!
//! To follow one message from `curl` to the browser, read `http_front` (the
//! request read and checked), `http_api` (routed), `broadcast` (encode once, offer to every client under one lock),
//! `client::outbox` (a non-blocking write, or the queue and a writer thread),
//! then `client::session` (the connection's reader and its close).
#![deny(missing_docs)]

mod acceptor;
mod broadcast;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod frame;
mod handshake;
pub mod http_api;
mod http_front;
pub mod limits;
pub mod memory;
pub mod origin;
mod pinger;
pub mod pods;
pub mod registry;
pub mod server;
pub mod stats;
pub mod threads;

pub use config::{Config, PingStyle};
pub use server::{Server, StartError};
pub use stats::StatsSnapshot;
