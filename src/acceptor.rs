//! The WebSocket listener's accept loop, and refusals that need no thread of their own.
//!
//! Each accepted connection takes a slot under `--max-clients` and gets a
//! reader thread (`client::session`). When there is no slot, or no thread can
//! be created, the connection is handed to the one refuser thread, which reads
//! the request and answers 503, so the accept loop itself never blocks on a
//! client.

use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::client::session;
use crate::handshake;
use crate::server::Shared;

/// Connections waiting for a 503; more than this are simply closed.
const REFUSE_BACKLOG: usize = 256;
/// How long the refuser waits for a request before answering anyway.
const REFUSE_READ_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Starts the accept loop on `listener`; it ends once shutdown is flagged and
/// a connection (the server's own wake-up call) arrives.
pub fn start(listener: TcpListener, shared: Arc<Shared>) -> io::Result<(JoinHandle<()>, JoinHandle<()>)> {
    let (refuse_tx, refuse_rx) = crossbeam_channel::bounded(REFUSE_BACKLOG);
    let refuser = thread::Builder::new()
        .name("refuser".into())
        .spawn(move || refuse_all(&refuse_rx))?;
    let acceptor = thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept_loop(&listener, &shared, &refuse_tx))?;
    Ok((acceptor, refuser))
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, refuse: &Sender<(TcpStream, &'static str)>) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                if shared.is_shutting_down() {
                    return;
                }
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    log::error!("accept failed: {e}");
                    last_error_log = Some(Instant::now());
                }
                thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        if shared.is_shutting_down() {
            return;
        }
        let Some(slot) = shared.registry.reserve() else {
            shared.stats.handshakes_rejected.inc();
            log::warn!(
                "connection from {peer} refused: max clients ({}) reached",
                shared.registry.max_clients()
            );
            let _ = refuse.try_send((stream, "server is at its client limit"));
            continue;
        };
        let keep = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("connection from {peer} dropped: {e}");
                continue;
            }
        };
        let for_thread = Arc::clone(shared);
        let spawned = shared.spawner.spawn_reader(format!("conn-{peer}"), move || {
            session::run(stream, peer, slot, for_thread);
        });
        if spawned.is_err() {
            // The closure (and with it the slot) is gone; `keep` is the same socket.
            shared.stats.handshakes_rejected.inc();
            let _ = refuse.try_send((keep, "server cannot create a thread for this connection"));
        }
    }
}

/// The refuser: reads each refused connection's request, then answers 503.
fn refuse_all(queue: &Receiver<(TcpStream, &'static str)>) {
    for (stream, reason) in queue {
        let _ = stream.set_read_timeout(Some(REFUSE_READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REFUSE_READ_TIMEOUT));
        read_request_head(&stream);
        handshake::refuse(&stream, 503, "Service Unavailable", reason, "retry-after: 1\r\n");
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// Reads until the end of the request head, a limit, or the timeout, so that
/// closing the socket does not reset it under the client's response.
fn read_request_head(mut stream: &TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}
