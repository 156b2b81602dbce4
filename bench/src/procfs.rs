//! What `/proc` says about a process: resident memory, threads, open files, CPU time.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// User plus system CPU time of all its threads (dead ones included), ms.
    pub cpu_ms: f64,
}

/// Reads `/proc/PID`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let mut s = sample_light(pid)?;
    s.fds = fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    s.cpu_ms = cpu_ms(pid)?;
    Some(s)
}

/// [`sample`] from `/proc/PID/status` alone: listing 10,000 fds, or summing
/// the CPU time of 10,000 threads for `/proc/PID/stat`, costs milliseconds.
pub fn sample_light(pid: u32) -> Option<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds: 0,
        cpu_ms: 0.0,
    })
}

/// utime + stime of a process, in ms.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line: utime, stime (clock ticks).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 * 1000.0 / clock_ticks() as f64)
}

/// This process's own CPU time (all threads), ms.
pub fn self_cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t
    } else {
        100
    }
}

/// Peaks seen by a [`Watcher`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Peaks {
    /// Highest RSS, KiB.
    pub rss_kib: u64,
    /// Most threads.
    pub threads: u64,
}

/// Samples a process every `every` on its own thread and keeps the peaks
/// (RSS and threads only: see [`sample_light`]).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    handle: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `pid`.
    pub fn start(pid: u32, every: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let handle = {
            let (stop, peaks) = (Arc::clone(&stop), Arc::clone(&peaks));
            thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if let Some(s) = sample_light(pid) {
                        let mut p = peaks.lock().unwrap();
                        p.rss_kib = p.rss_kib.max(s.rss_kib);
                        p.threads = p.threads.max(s.threads);
                    }
                    thread::sleep(every);
                }
            })
        };
        Watcher {
            stop,
            peaks,
            handle: Some(handle),
        }
    }

    /// Stops and returns the peaks.
    pub fn finish(mut self) -> Peaks {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        *self.peaks.lock().unwrap()
    }
}

/// Resident memory by kind of mapping, KiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RssBreakdown {
    /// `[heap]`: malloc's main arena.
    pub heap: u64,
    /// Anonymous memory followed by a reserved (`---p`) rest: malloc's other arenas.
    pub arenas: u64,
    /// Anonymous memory right above a one-page guard: thread stacks (live or cached by libc).
    pub stacks: u64,
    /// Other anonymous memory (large allocations, the registry's table).
    pub other_anon: u64,
    /// Mapped files.
    pub files: u64,
}

/// Reads `/proc/PID/smaps` into an [`RssBreakdown`].
pub fn rss_breakdown(pid: u32) -> Option<RssBreakdown> {
    struct Map {
        lo: u64,
        hi: u64,
        perms: String,
        name: String,
        rss: u64,
    }
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut maps: Vec<Map> = Vec::new();
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = parts.next().unwrap_or("").to_owned();
            maps.push(Map {
                lo: u64::from_str_radix(lo, 16).unwrap_or(0),
                hi: u64::from_str_radix(hi, 16).unwrap_or(0),
                perms,
                name: parts.nth(3).unwrap_or("").to_owned(),
                rss: 0,
            });
        } else if first == "Rss:" {
            if let Some(m) = maps.last_mut() {
                m.rss = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
    }
    let mut b = RssBreakdown::default();
    let reserved = |m: Option<&Map>| m.is_some_and(|m| m.perms == "---p" && m.name.is_empty());
    for (i, m) in maps.iter().enumerate() {
        if m.name == "[heap]" {
            b.heap += m.rss;
        } else if !m.name.is_empty() {
            b.files += m.rss;
        } else if m.perms != "rw-p" {
            continue;
        } else if i > 0
            && reserved(maps.get(i - 1))
            && maps[i - 1].hi == m.lo
            && maps[i - 1].hi - maps[i - 1].lo == 4096
        {
            b.stacks += m.rss;
        } else if reserved(maps.get(i + 1)) && maps[i + 1].lo == m.hi {
            b.arenas += m.rss;
        } else {
            b.other_anon += m.rss;
        }
    }
    Some(b)
}
