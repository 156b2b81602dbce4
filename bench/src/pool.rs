//! The load generator's client threads: each runs its own single-threaded
//! tokio runtime, and clients are spread over them round-robin. Compared with
//! one work-stealing runtime this avoids cross-thread wake-ups and stealing,
//! which matters when 10,000 sockets each get a message at once.

use std::future::Future;
use std::thread;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `n` threads, each driving a current-thread runtime until the pool is dropped.
pub struct Pool {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Pool {
    /// Starts `n` client threads.
    pub fn new(n: usize) -> Pool {
        let mut pool = Pool {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
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
        }
        pool
    }

    /// Runs `f` on thread `i % n`.
    pub fn spawn<F>(&self, i: usize, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(f)
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
    }
}
