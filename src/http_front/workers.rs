//! The router's helper threads (`--http-threads`): they route the requests
//! that a connection's thread cannot route itself, those too large to go into
//! the router's socket at once, which the thread is still writing there while
//! the route reads them. They never wait on a client: the whole body is
//! already in memory, and the response is read by the connection's thread.

use std::io;
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::threads::{Role, ThreadSpawner};

/// Work for a helper; `None` tells one helper to end.
type Job = Option<Box<dyn FnOnce() + Send>>;

/// Hands work to the helpers.
#[derive(Clone)]
pub struct Workers {
    jobs: Sender<Job>,
}

/// The helpers' threads, to end them at shutdown.
pub struct WorkerThreads {
    jobs: Sender<Job>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts `count` helpers. If one cannot start, the error comes with the
/// ones that did: join them.
pub fn start(count: u16, spawner: &ThreadSpawner) -> (Workers, WorkerThreads, io::Result<()>) {
    let (jobs, queue) = unbounded();
    let mut threads = WorkerThreads {
        jobs: jobs.clone(),
        threads: Vec::new(),
    };
    for n in 0..count {
        let queue: Receiver<Job> = queue.clone();
        let spawned = spawner.spawn(Role::Service, format!("http-{n}"), move || {
            while let Ok(Some(job)) = queue.recv() {
                job();
            }
        });
        match spawned {
            Ok(thread) => threads.threads.push(thread),
            Err(e) => return (Workers { jobs }, threads, Err(e)),
        }
    }
    (Workers { jobs }, threads, Ok(()))
}

impl Workers {
    /// Runs `job` on the first helper free.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), String> {
        self.jobs
            .send(Some(Box::new(job)))
            .map_err(|_| "the side port's helper threads are gone".to_owned())
    }
}

impl WorkerThreads {
    /// Ends the helpers once the jobs given before are done, and waits for them.
    pub fn join(self) {
        for _ in &self.threads {
            let _ = self.jobs.send(None);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn jobs_run_on_the_helpers_and_join_waits_for_the_ones_given() {
        let spawner = ThreadSpawner::new(64 * 1024, 64 * 1024, Counter::default());
        let (workers, threads, started) = start(2, &spawner);
        started.unwrap();
        let (done, results) = mpsc::channel();
        for i in 0..10 {
            let done = done.clone();
            workers.run(move || done.send(i).unwrap()).unwrap();
        }
        threads.join();
        let mut got: Vec<i32> = results.try_iter().collect();
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
