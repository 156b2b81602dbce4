//! Keeping memory small per connection and giving it back once connections
//! have come and gone.
//!
//! glibc's caches suit a few long-lived threads, not one thread per
//! connection: each thread's cache of freed blocks (tcache) stays with every
//! idle reader (about 3 KiB each), the stacks of exited threads are kept for
//! reuse with their resident pages, and with an arena per few threads the
//! blocks of connections that stay end up scattered among those of
//! connections that come and go. These can only be set when the process
//! starts (`GLIBC_TUNABLES`), so the `wspush` command executes itself once
//! more with them set (`run_with_glibc_tunables`). Freed heap also stays
//! inside glibc's arena: the ping thread calls `HeapTrimmer::tick` about once
//! a second, and after a burst of disconnects the free pages go back to the
//! kernel. The before/after figures are in BENCHMARKS.md.

use std::time::{Duration, Instant};

/// The glibc settings `wspush` runs with: no thread-stack cache, no tcache,
/// one malloc arena.
pub const GLIBC_TUNABLES: &str =
    "glibc.pthread.stack_cache_size=0:glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1";

/// Executes this program again, same arguments, with `GLIBC_TUNABLES` put in
/// front of any the user set (so the user's own values still win), and a
/// marker so that the new image does not do it again. Returns only when
/// nothing was done (`Ok`) or the exec failed (`Err`; the caller goes on
/// without them). Call it first thing in `main`, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn run_with_glibc_tunables() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    const DONE: &str = "WSPUSH_GLIBC_TUNABLES_SET";
    if std::env::var_os(DONE).is_some() {
        return Ok(());
    }
    let current = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    let mut value = std::ffi::OsString::from(GLIBC_TUNABLES);
    if !current.is_empty() {
        value.push(":");
        value.push(&current);
    }
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    Err(std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .env("GLIBC_TUNABLES", value)
        .env(DONE, "1")
        .exec())
}

/// Not glibc: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn run_with_glibc_tunables() -> std::io::Result<()> {
    Ok(())
}

/// Longest time between trims while connections keep ending.
const TRIM_AT_LEAST_EVERY: Duration = Duration::from_secs(10);

/// Decides when to trim, from the count of connections ended so far.
#[derive(Debug)]
pub(crate) struct HeapTrimmer {
    ended_at_last_tick: u64,
    ended_at_last_trim: u64,
    last_trim: Instant,
}

impl HeapTrimmer {
    /// A trimmer that has seen no connection end.
    pub fn new() -> HeapTrimmer {
        HeapTrimmer {
            ended_at_last_tick: 0,
            ended_at_last_trim: 0,
            last_trim: Instant::now(),
        }
    }

    /// Trims when connections ended since the last trim and either none ended
    /// since the previous tick (the burst is over) or trims are overdue.
    /// Returns whether it trimmed.
    pub fn tick(&mut self, ended: u64) -> bool {
        let quiet = ended == self.ended_at_last_tick;
        self.ended_at_last_tick = ended;
        let pending = ended != self.ended_at_last_trim;
        if !pending || !(quiet || self.last_trim.elapsed() >= TRIM_AT_LEAST_EVERY) {
            return false;
        }
        self.ended_at_last_trim = ended;
        self.last_trim = Instant::now();
        release_free_heap();
        log::debug!(
            "returned free heap to the kernel in {:.1} ms ({ended} connections ended so far)",
            self.last_trim.elapsed().as_secs_f64() * 1e3
        );
        true
    }
}

impl Default for HeapTrimmer {
    fn default() -> Self {
        HeapTrimmer::new()
    }
}

/// Returns the free pages of every malloc arena to the kernel.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_a_burst_of_disconnects_is_over() {
        let mut t = HeapTrimmer::new();
        assert!(!t.tick(0), "nothing ended");
        assert!(!t.tick(5), "still ending");
        assert!(!t.tick(9), "still ending");
        assert!(t.tick(9), "quiet: trim");
        assert!(!t.tick(9), "already trimmed");
    }

    #[test]
    fn trims_during_endless_churn_when_overdue() {
        let mut t = HeapTrimmer::new();
        t.last_trim -= TRIM_AT_LEAST_EVERY;
        assert!(t.tick(1));
        assert!(!t.tick(2));
    }
}
