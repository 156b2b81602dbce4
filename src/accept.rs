//! A listener's accept loop, shared by both ports: it runs until the stop,
//! and an accept error (EMFILE, say) is logged at most every few seconds and
//! followed by a pause, so the loop neither spins nor floods the log.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::stop::StopToken;

/// Pause after an accept error, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Accept errors are logged at most this often.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(5);

/// Hands every connection `listener` accepts to `admit` until `stop` is
/// given; the stopping server wakes the blocked `accept` with a connection of
/// its own, which is not admitted. `port` names the listener in the log.
pub fn accept_until_stopped(
    listener: &TcpListener,
    stop: &StopToken,
    port: &str,
    mut admit: impl FnMut(TcpStream, SocketAddr),
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = listener.accept();
        if stop.is_stopped() {
            return;
        }
        match accepted {
            Ok((stream, peer)) => admit(stream, peer),
            Err(e) => {
                if last_error_log.is_none_or(|t| t.elapsed() > ACCEPT_ERROR_LOG_EVERY) {
                    log::error!("{port}: accept failed: {e}");
                    last_error_log = Some(Instant::now());
                }
                thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}
