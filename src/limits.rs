//! The machine's ceilings on connections: open files, threads, memory maps.
//!
//! Each connection takes one fd and one thread (plus a writer thread while it
//! has a backlog), and each std thread maps about four memory areas (stack,
//! guard, signal stack and its guard). The default `--max-clients` is the
//! smallest of what these allow, less a reserve, so the server refuses a
//! connection with 503 before the kernel would refuse it a thread or an fd.

use std::fs;

/// Fds kept for listeners, the HTTP side port, logs and files.
const FD_RESERVE: u64 = 256;
/// Memory areas kept for the heap, libraries and the server's own threads.
const MAP_RESERVE: u64 = 2048;
/// Memory areas one std thread maps.
const MAPS_PER_THREAD: u64 = 4;
/// Threads kept for the rest of the machine and the server's fixed threads.
const THREAD_RESERVE: u64 = 2048;
/// Room for writer threads, which exist only while a client has a backlog: one
/// thread per twenty clients.
const WRITER_HEADROOM_PER_MILLE: u64 = 50;

/// The ceilings read at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    /// Soft limit on open files, after raising it.
    pub open_files: u64,
    /// The kernel's `pid_max` and `threads-max`, whichever is lower.
    pub threads: u64,
    /// The kernel's `vm.max_map_count`.
    pub map_count: u64,
}

impl Ceilings {
    /// Raises the soft open-file limit to the hard one and reads the rest.
    pub fn raise_and_read() -> Ceilings {
        let open_files = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("could not raise the open-file limit: {e}");
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
            }
        };
        let pid_max = read_proc_number("/proc/sys/kernel/pid_max").unwrap_or(32_768);
        let threads_max = read_proc_number("/proc/sys/kernel/threads-max").unwrap_or(pid_max);
        let map_count = read_proc_number("/proc/sys/vm/max_map_count").unwrap_or(65_530);
        Ceilings {
            open_files,
            threads: pid_max.min(threads_max),
            map_count,
        }
    }

    /// The client limit these ceilings allow, and which one binds.
    pub fn max_clients(&self) -> (usize, &'static str) {
        let per_client = |budget: u64| budget * 1000 / (1000 + WRITER_HEADROOM_PER_MILLE);
        let by_fds = self.open_files.saturating_sub(FD_RESERVE);
        let by_threads = per_client(self.threads.saturating_sub(THREAD_RESERVE));
        let by_maps = per_client(self.map_count.saturating_sub(MAP_RESERVE) / MAPS_PER_THREAD);
        let (n, why) = [
            (by_fds, "open-file limit"),
            (by_threads, "pid_max/threads-max"),
            (by_maps, "vm.max_map_count"),
        ]
        .into_iter()
        .min_by_key(|(n, _)| *n)
        .unwrap_or((1024, "default"));
        (usize::try_from(n.max(1)).unwrap_or(usize::MAX), why)
    }
}

fn read_proc_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_shape_is_bound_by_memory_maps() {
        let c = Ceilings {
            open_files: 20_000,
            threads: 32_768,
            map_count: 65_530,
        };
        let (n, why) = c.max_clients();
        assert_eq!(why, "vm.max_map_count");
        assert!((15_000..16_000).contains(&n), "{n}");
    }

    #[test]
    fn few_files_bind_first() {
        let c = Ceilings {
            open_files: 1024,
            threads: 32_768,
            map_count: 65_530,
        };
        assert_eq!(c.max_clients(), (768, "open-file limit"));
    }
}
