//! Starting the server's per-connection threads, with set stack sizes.
//!
//! Every connection has a reader thread, and a writer thread while it has a
//! backlog. Their stacks are set small on purpose (they hold one frame parser
//! and a few locals), so that thousands fit in memory. A thread that cannot be
//! created (pid_max, `vm.max_map_count`, memory) is an error the caller
//! handles; the failure is logged once per burst, not once per connection.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Stack size of a connection's reader thread.
pub const READER_STACK_BYTES: usize = 128 * 1024;
/// Stack size of a backlog writer thread.
pub const WRITER_STACK_BYTES: usize = 64 * 1024;

/// How long failures are summed into one log line.
const FAILURE_LOG_WINDOW: Duration = Duration::from_secs(5);

/// Starts reader and writer threads and counts the ones that could not start.
#[derive(Clone, Debug)]
pub struct ThreadSpawner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reader_stack: usize,
    writer_stack: usize,
    failures: AtomicU64,
    last_logged: Mutex<Option<(Instant, u64)>>,
}

impl ThreadSpawner {
    /// A spawner with the given stack sizes in bytes.
    pub fn new(reader_stack: usize, writer_stack: usize) -> ThreadSpawner {
        ThreadSpawner {
            inner: Arc::new(Inner {
                reader_stack,
                writer_stack,
                failures: AtomicU64::new(0),
                last_logged: Mutex::new(None),
            }),
        }
    }

    /// Threads that could not be created since start.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Relaxed)
    }

    /// Starts a connection's reader thread.
    pub fn spawn_reader(&self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.spawn(name, self.inner.reader_stack, f)
    }

    /// Starts a backlog writer thread.
    pub fn spawn_writer(&self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.spawn(name, self.inner.writer_stack, f)
    }

    fn spawn(&self, name: String, stack: usize, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        match thread::Builder::new().name(name).stack_size(stack).spawn(f) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    fn record_failure(&self, e: &io::Error) {
        let total = self.inner.failures.fetch_add(1, Relaxed) + 1;
        let mut last = self.inner.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        let due = match *last {
            None => true,
            Some((at, _)) => at.elapsed() >= FAILURE_LOG_WINDOW,
        };
        if due {
            let since = last.map_or(total, |(_, logged_total)| total - logged_total);
            log::error!(
                "cannot create a thread: {e} ({since} failure(s) since the last report, {total} in all); \
                 connections are refused until threads can be created again"
            );
            *last = Some((Instant::now(), total));
        }
    }
}
