//! Starting every server thread: one spawner, a role for each thread.
//!
//! A role sets the stack size. Connection threads (a reader per connection, a
//! writer while it has a backlog) get small stacks on purpose (they hold one
//! frame parser and a few locals), so that thousands fit in memory; a
//! side-port connection's thread gets a fixed small one of its own; the few
//! long-lived threads get the default. A thread that cannot be created
//! (pid_max, `vm.max_map_count`, memory) is an error the caller handles; it is
//! counted in `thread_spawn_failures` and logged once per burst, not once per
//! connection. Every thread gives its unused stack pages back as it ends.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;

/// How long failures are summed into one log line.
const FAILURE_LOG_WINDOW: Duration = Duration::from_secs(5);

/// Stack of a fan-out shard: it only makes non-blocking sends and queue pushes.
const SHARD_STACK: usize = 128 * 1024;
/// Stack of a side-port connection's thread: a request head's 100 parsed
/// fields, and the route that answers it (a publish with its fan-out, a
/// relay to Redis, a JSON answer; buffers are on the heap). Every side-port
/// test passes on a debug build with 64 KiB (40 KiB overflows in the
/// cluster's publish): 256 KiB leaves four times that. Fixed rather than
/// `--reader-stack-kib`, so that a WebSocket setting too small for the front
/// door's parsing cannot take the side port (and with it publishing) down.
const HTTP_CONN_STACK: usize = 256 * 1024;

/// What a thread does, which decides its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A connection's reader (`--reader-stack-kib`).
    Reader,
    /// A connection's backlog writer (`--writer-stack-kib`).
    Writer,
    /// Helps one broadcast offer to a share of the clients.
    Shard,
    /// Reads, checks and routes one side-port connection's requests (`http_front`).
    HttpConn,
    /// The acceptors of both ports, the refuser, pinger, side-port helpers and cluster threads.
    Service,
}

/// Starts threads and counts the ones that could not start.
#[derive(Clone, Debug)]
pub struct ThreadSpawner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reader_stack: usize,
    writer_stack: usize,
    failures: Counter,
    last_logged: Mutex<Option<(Instant, u64)>>,
}

impl ThreadSpawner {
    /// A spawner with these connection stack sizes in bytes, counting failures into `failures`.
    pub fn new(reader_stack: usize, writer_stack: usize, failures: Counter) -> ThreadSpawner {
        ThreadSpawner {
            inner: Arc::new(Inner {
                reader_stack,
                writer_stack,
                failures,
                last_logged: Mutex::new(None),
            }),
        }
    }

    fn stack(&self, role: Role) -> Option<usize> {
        match role {
            Role::Reader => Some(self.inner.reader_stack),
            Role::Writer => Some(self.inner.writer_stack),
            Role::Shard => Some(SHARD_STACK),
            Role::HttpConn => Some(HTTP_CONN_STACK),
            Role::Service => None,
        }
    }

    fn builder(&self, role: Role, name: String) -> thread::Builder {
        let builder = thread::Builder::new().name(name);
        match self.stack(role) {
            Some(stack) => builder.stack_size(stack),
            None => builder,
        }
    }

    /// Starts a thread named `name` for `role`.
    pub fn spawn<T: Send + 'static>(
        &self,
        role: Role,
        name: String,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let body = move || {
            let out = f();
            // libc keeps an exited thread's stack for reuse, and with it the
            // pages that were in use; give them back first (the soak's RSS
            // after churn: see BENCHMARKS.md).
            release_unused_stack();
            out
        };
        self.builder(role, name)
            .spawn(body)
            .inspect_err(|e| self.record_failure(e))
    }

    /// Starts a thread inside `scope` (it may borrow what the scope outlives).
    pub fn spawn_scoped<'scope, 'env, T: Send + 'scope>(
        &self,
        scope: &'scope Scope<'scope, 'env>,
        role: Role,
        name: String,
        f: impl FnOnce() -> T + Send + 'scope,
    ) -> io::Result<ScopedJoinHandle<'scope, T>> {
        self.builder(role, name)
            .spawn_scoped(scope, f)
            .inspect_err(|e| self.record_failure(e))
    }

    fn record_failure(&self, e: &io::Error) {
        let total = self.inner.failures.inc() + 1;
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
