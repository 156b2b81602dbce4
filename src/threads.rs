//! Starting the server's per-connection threads, with set stack sizes.
//!
//! Every connection has a reader thread, and a writer thread while it has a
//! backlog. Their stacks are set small on purpose (they hold one frame parser
//! and a few locals), so that thousands fit in memory. A thread that cannot be
//! created (pid_max, `vm.max_map_count`, memory) is an error the caller
//! handles; the failure is logged once per burst, not once per connection.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
        let body = move || {
            f();
            // libc keeps an exited thread's stack for reuse, and with it the
            // pages that were in use; give them back first (the soak's RSS
            // after churn: see BENCHMARKS.md).
            release_unused_stack();
        };
        match thread::Builder::new().name(name).stack_size(stack).spawn(body) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    fn record_failure(&self, e: &io::Error) {
        let total = self.inner.failures.fetch_add(1, Relaxed) + 1;
        let mut last = self.inner.last_logged.lock();
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

/// Gives back to the kernel the stack pages below the caller's frame.
///
/// The WebSocket handshake runs deep (header parsing, the response) and its
/// stack pages would stay resident for the whole life of an idle connection,
/// which then only ever needs a shallow `read`. Releasing them once the
/// handshake is done keeps an idle connection's stack at a page or two. Pages
/// below the stack pointer hold nothing live, and touching them again simply
/// maps fresh zeroed pages.
pub fn release_unused_stack() {
    let page = rustix::param::page_size();
    let Some(lowest) = stack_lowest_address() else {
        return;
    };
    let start = lowest.div_ceil(page) * page;
    // psm reads the stack pointer inside its own (returned) frame: everything
    // below it is dead.
    let end = (psm::stack_pointer() as usize).saturating_sub(STACK_MARGIN) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside this thread's own stack mapping and
        // below the stack pointer (with a margin for the call's own frames), so
        // nothing live is there; MADV_DONTNEED on private anonymous memory only
        // drops the pages.
        unsafe {
            let _ = rustix::mm::madvise(
                start as *mut std::ffi::c_void,
                end - start,
                rustix::mm::Advice::LinuxDontNeed,
            );
        }
    }
}

/// Room below the stack pointer for the madvise call itself, which must
/// survive it. Optimised, rustix's madvise is the syscall instruction inline
/// and 256 bytes lets an idle reader's stack end at two pages, where 1 KiB
/// kept a third (measured: 18.3 -> 14.7 KiB per idle connection at 10,000
/// clients). Unoptimised (tests), its few wrapper frames need more room.
const STACK_MARGIN: usize = if cfg!(debug_assertions) { 4096 } else { 256 };

/// The lowest address of the calling thread's stack, as pthread reports it.
fn stack_lowest_address() -> Option<usize> {
    // SAFETY: plain pthread calls on a zeroed attr that pthread_getattr_np
    // initialises and pthread_attr_destroy frees.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok.then_some(addr as usize)
    }
}
