//! The load generator's client threads. Each of the `n` `clients-N` threads
//! runs its own single-threaded tokio runtime, which connects clients (and
//! runs the few that do more than read: the slow clients, the soak's churn);
//! each of the `n` `readers-N` threads runs a plain epoll loop that reads the
//! connected clients handed to it. Clients are spread over both round-robin.
//! Compared with one work-stealing runtime this avoids cross-thread wake-ups
//! and stealing, which matters when 10,000 sockets each get a message at once;
//! compared with a tokio task per reading client, the epoll loop costs no
//! waker, task state or readiness bookkeeping per message.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a read did, for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The socket is drained: wait for its next event.
    Drained,
    /// The read filled the buffer: read again (no new event comes for data already there).
    More,
    /// The connection is over: drop it.
    Closed,
}

/// A connection a `readers-N` thread drives.
pub trait Readable: Send + 'static {
    /// Its socket (non-blocking).
    fn fd(&self) -> RawFd;
    /// The socket reported `events` (`EPOLLIN`, `EPOLLOUT`, ...): read once
    /// (or write what is queued) and handle it. Also called once on adoption,
    /// for bytes that came with the handshake.
    fn ready(&mut self, events: u32) -> Step;
    /// The loop drops the connection: after [`Step::Closed`], or when it could not watch it.
    fn closed(&mut self);
}

enum Command {
    Adopt(Box<dyn Readable>),
    Stop,
}

/// Where to send a `readers-N` thread connections (from any thread).
#[derive(Clone)]
pub struct Adopter {
    inbox: Arc<Mutex<Vec<Command>>>,
    /// An eventfd the loop polls: written after a command is queued.
    wake: Arc<OwnedFd>,
}

impl Adopter {
    /// Hands `conn` to the reader thread, which reads it until it is closed.
    pub fn adopt(&self, conn: Box<dyn Readable>) {
        self.send(Command::Adopt(conn));
    }

    fn send(&self, command: Command) {
        self.inbox.lock().unwrap().push(command);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live array to the eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

/// `n` tokio threads and `n` epoll threads, until the pool is dropped.
pub struct Pool {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
    loops: Vec<(Adopter, thread::JoinHandle<()>)>,
}

impl Pool {
    /// Starts `n` client threads and `n` reader threads.
    pub fn new(n: usize) -> Pool {
        let mut pool = Pool {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            loops: Vec::new(),
        };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            pool.handles.push(rt.handle().clone());
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            pool.stops.push(stop_tx);
            pool.threads.push(
                thread::Builder::new()
                    .name(format!("clients-{i}"))
                    .spawn(move || {
                        let _ = rt.block_on(stop_rx);
                    })
                    .expect("client thread"),
            );
            pool.loops.push(start_loop(i).expect("reader thread"));
        }
        pool
    }

    /// Runs `f` on the tokio thread `i % n`.
    pub fn spawn<F>(&self, i: usize, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(f)
    }

    /// The reader thread `i % n`.
    pub fn reader(&self, i: usize) -> Adopter {
        self.loops[i % self.loops.len()].0.clone()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for (adopter, thread) in self.loops.drain(..) {
            adopter.send(Command::Stop);
            let _ = thread.join();
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The eventfd's token; connections use their slot index.
const WAKE: u64 = u64::MAX;

/// Events after which a read may find the end of the stream.
pub const HANGUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

fn start_loop(i: usize) -> io::Result<(Adopter, thread::JoinHandle<()>)> {
    // SAFETY: plain syscalls; each descriptor returned is owned from here on.
    let (epoll, wake) = unsafe {
        let epoll = OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?);
        let wake = OwnedFd::from_raw_fd(check(libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?);
        (epoll, wake)
    };
    ctl(
        &epoll,
        libc::EPOLL_CTL_ADD,
        wake.as_raw_fd(),
        libc::EPOLLIN as u32,
        WAKE,
    )?;
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let wake = Arc::new(wake);
    let thread = {
        let (inbox, wake) = (Arc::clone(&inbox), Arc::clone(&wake));
        thread::Builder::new()
            .name(format!("readers-{i}"))
            .spawn(move || run_loop(&epoll, &wake, &inbox))?
    };
    Ok((Adopter { inbox, wake }, thread))
}

fn ctl(epoll: &OwnedFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a live epoll_event; epoll_ctl only reads it.
    check(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
}

/// The loop: edge-triggered, one read per event; a connection whose read
/// filled its buffer is read again after the others.
fn run_loop(epoll: &OwnedFd, wake: &OwnedFd, inbox: &Mutex<Vec<Command>>) {
    let mut conns: Vec<Option<Box<dyn Readable>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // Connections to read again, with the events that made them ready.
    let mut again: Vec<(usize, u32)> = Vec::new();
    let mut retry: Vec<(usize, u32)> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let watch = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    // Reads slot `k` once; drops it when closed.
    let drive = |conns: &mut Vec<Option<Box<dyn Readable>>>,
                 free: &mut Vec<usize>,
                 again: &mut Vec<(usize, u32)>,
                 k: usize,
                 ev: u32| {
        let Some(conn) = conns.get_mut(k).and_then(Option::as_mut) else {
            return;
        };
        match conn.ready(ev) {
            // Edge-triggered: the end of the stream behind the data read gets no event of its own.
            Step::Drained if ev & HANGUP != 0 => again.push((k, ev)),
            Step::Drained => {}
            Step::More => again.push((k, ev)),
            Step::Closed => {
                let _ = ctl(epoll, libc::EPOLL_CTL_DEL, conn.fd(), 0, 0);
                conn.closed();
                conns[k] = None;
                free.push(k);
            }
        }
    };
    loop {
        let timeout = if again.is_empty() { -1 } else { 0 };
        // SAFETY: `events` has room for `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("reader thread: epoll_wait: {}", io::Error::last_os_error());
            return;
        }
        std::mem::swap(&mut again, &mut retry);
        for ev in &events[..n as usize] {
            let (flags, token) = (ev.events, ev.u64);
            if token != WAKE {
                drive(&mut conns, &mut free, &mut again, token as usize, flags);
                continue;
            }
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a live array.
            unsafe { libc::read(wake.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            let commands = std::mem::take(&mut *inbox.lock().unwrap());
            for command in commands {
                let mut conn = match command {
                    Command::Adopt(conn) => conn,
                    Command::Stop => return,
                };
                let k = free.pop().unwrap_or(conns.len());
                if k == conns.len() {
                    conns.push(None);
                }
                if let Err(e) = ctl(epoll, libc::EPOLL_CTL_ADD, conn.fd(), watch, k as u64) {
                    eprintln!("reader thread: epoll_ctl: {e}");
                    conn.closed();
                    free.push(k);
                    continue;
                }
                conns[k] = Some(conn);
                // Bytes that came with the handshake, and any that came since.
                drive(&mut conns, &mut free, &mut again, k, libc::EPOLLIN as u32);
            }
        }
        for (k, ev) in retry.drain(..) {
            drive(&mut conns, &mut free, &mut again, k, ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    /// Reads 7 bytes at a time (so a burst needs `Step::More`), counts them, reports the total at the end.
    struct Counter {
        sock: TcpStream,
        total: usize,
        done: mpsc::Sender<usize>,
    }

    impl Readable for Counter {
        fn fd(&self) -> RawFd {
            self.sock.as_raw_fd()
        }

        fn ready(&mut self, _events: u32) -> Step {
            let mut b = [0u8; 7];
            match (&self.sock).read(&mut b) {
                Ok(0) => Step::Closed,
                Ok(n) => {
                    self.total += n;
                    if n == b.len() {
                        Step::More
                    } else {
                        Step::Drained
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Drained,
                Err(_) => Step::Closed,
            }
        }

        fn closed(&mut self) {
            let _ = self.done.send(self.total);
        }
    }

    #[test]
    fn reader_threads_read_every_byte_and_drop_closed_connections() {
        let pool = Pool::new(2);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let mut servers = Vec::new();
        for i in 0..6 {
            let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            sock.set_nonblocking(true).unwrap();
            let (server, _) = listener.accept().unwrap();
            // Sent before the connection is adopted: read on adoption.
            (&server).write_all(&[1; 5]).unwrap();
            let done = done_tx.clone();
            pool.reader(i).adopt(Box::new(Counter { sock, total: 0, done }));
            servers.push(server);
        }
        for (i, server) in servers.iter_mut().enumerate() {
            for _ in 0..10 {
                server.write_all(&vec![2; 1000 * (i + 1)]).unwrap();
            }
        }
        drop(servers);
        let mut totals: Vec<usize> = (0..6)
            .map(|_| done_rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap())
            .collect();
        totals.sort_unstable();
        assert_eq!(totals, (1..=6).map(|i| 5 + 10_000 * i).collect::<Vec<_>>());
    }
}
