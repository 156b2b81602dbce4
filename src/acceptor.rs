//! The WebSocket listener's accept loop.
//!
//! Each accepted connection takes a slot under `--max-clients` and gets a
//! reader thread (`session`). When there is no slot, or no thread can be
//! created, the connection goes to the refuser (`refuser`), which answers
//! 503, so the accept loop itself never waits on a client.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::accept::accept_until_stopped;
use crate::refuser::{self, Refuse};
use crate::registry::Registry;
use crate::session::{self, SessionContext};
use crate::stats::Stats;
use crate::stop::StopToken;
use crate::threads::{Role, ThreadSpawner};

/// What the accept loop needs.
pub struct Acceptor {
    pub listener: TcpListener,
    /// Slots under `--max-clients`.
    pub registry: Arc<Registry>,
    pub spawner: ThreadSpawner,
    pub session: Arc<SessionContext>,
    pub stats: Arc<Stats>,
    /// Checked after each accept: shutdown wakes the loop with a connection of its own.
    pub stop: StopToken,
}

/// Starts the accept loop and its refuser; both end once the stop is given
/// and a connection (the server's own wake-up call) arrives.
pub fn start(acceptor: Acceptor) -> io::Result<(JoinHandle<()>, JoinHandle<()>)> {
    let spawner = acceptor.spawner.clone();
    let (refuse, refuser) = refuser::start(&spawner)?;
    let accepting = spawner.spawn(Role::Service, "acceptor".into(), move || acceptor.run(&refuse))?;
    Ok((accepting, refuser))
}

impl Acceptor {
    fn run(&self, refuse: &Refuse) {
        accept_until_stopped(&self.listener, &self.stop, "WebSocket port", |stream, peer| {
            self.admit(stream, peer, refuse);
        });
    }

    /// Gives the connection a slot and a reader thread, or hands it to the refuser.
    fn admit(&self, stream: TcpStream, peer: SocketAddr, refuse: &Refuse) {
        let Some(slot) = self.registry.reserve() else {
            self.stats.handshakes_rejected.inc();
            log::warn!(
                "connection from {peer} refused: max clients ({}) reached",
                self.registry.max_clients()
            );
            refuse.send(stream, "server is at its client limit");
            return;
        };
        let keep = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("connection from {peer} dropped: {e}");
                return;
            }
        };
        let ctx = Arc::clone(&self.session);
        let spawned = self.spawner.spawn(Role::Reader, format!("conn-{peer}"), move || {
            session::run(stream, peer, slot, &ctx);
        });
        if spawned.is_err() {
            // The closure (and with it the slot) is gone; `keep` is the same socket.
            self.stats.handshakes_rejected.inc();
            refuse.send(keep, "server cannot create a thread for this connection");
        }
    }
}
