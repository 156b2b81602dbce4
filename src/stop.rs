//! The one way every server thread learns that the server is stopping.
//!
//! `Stop::stop` sets a flag and drops the only `Sender` of a channel nobody
//! sends on. A thread holds a `StopToken` and, as suits its loop, polls the
//! flag, puts `token.channel()` in a `select!` (a dropped sender makes that
//! arm ready at once), or waits on it with a timeout. Threads blocked in a
//! system call (an `accept`, a read) are woken by their owner after `stop`
//! (a connection of its own, a shutdown of their socket).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

/// Nothing is ever sent: the channel only ever disconnects.
pub enum Never {}

/// Held by the server; stopping is final.
pub struct Stop {
    flag: Arc<AtomicBool>,
    sender: Mutex<Option<Sender<Never>>>,
    receiver: Receiver<Never>,
}

/// A thread's view of the `Stop`.
#[derive(Clone)]
pub struct StopToken {
    flag: Arc<AtomicBool>,
    receiver: Receiver<Never>,
}

impl Stop {
    pub fn new() -> Stop {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            sender: Mutex::new(Some(sender)),
            receiver,
        }
    }

    pub fn token(&self) -> StopToken {
        StopToken {
            flag: Arc::clone(&self.flag),
            receiver: self.receiver.clone(),
        }
    }

    /// Tells every token; later calls do nothing.
    pub fn stop(&self) {
        self.flag.store(true, SeqCst);
        self.sender.lock().take();
    }
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl StopToken {
    pub fn is_stopped(&self) -> bool {
        self.flag.load(SeqCst)
    }

    /// Ready (disconnected) once stopped: for a `select!` arm.
    pub fn channel(&self) -> &Receiver<Never> {
        &self.receiver
    }

    /// Waits up to `timeout`; true if the server is stopping.
    pub fn wait(&self, timeout: Duration) -> bool {
        match self.receiver.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => self.is_stopped(),
            Ok(never) => match never {},
            Err(RecvTimeoutError::Disconnected) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_token_sees_the_stop_by_flag_wait_and_select() {
        let stop = Stop::new();
        let token = stop.token();
        assert!(!token.is_stopped());
        assert!(!token.wait(Duration::from_millis(1)));
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || token.wait(Duration::from_secs(60)))
        };
        let started = Instant::now();
        stop.stop();
        assert!(waiter.join().unwrap(), "the wait ended with the stop");
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(token.is_stopped());
        crossbeam_channel::select! {
            recv(token.channel()) -> _ => {}
            default(Duration::from_secs(60)) => panic!("the select arm was not ready"),
        }
        stop.stop();
    }
}
