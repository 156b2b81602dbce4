//! A real `redis-server` for the cluster tests (Debian package
//! `redis-server`), nodes on it, and commands sent to it.
//!
//! Each test starts its own server on a free port below the ephemeral range
//! (`free_port`), without persistence unless asked, and kills it by its PID
//! when done (a guard does it on panic too). With `CI=true` a missing
//! `redis-server` fails the tests; elsewhere they print one skip line and pass.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{wait_until, TestServer, DEADLINE};

/// A `redis-server` child on 127.0.0.1, killed when dropped.
pub struct RedisServer {
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// Settings besides port and bind (persistence off unless they turn it on).
    settings: Vec<String>,
}

impl RedisServer {
    /// A fresh server on a free port, or `None` (after one skip line) when
    /// `redis-server` is not installed and this is not CI.
    pub fn start(test: &str) -> Option<RedisServer> {
        RedisServer::start_with(test, &[])
    }

    /// A fresh server with these settings besides the defaults (`--save ''
    /// --appendonly no`): e.g. `--appendonly yes --dir D` keeps its data in D
    /// across `kill` and `restart`.
    pub fn start_with(test: &str, settings: &[&str]) -> Option<RedisServer> {
        let bin = redis_server_bin(test)?;
        for _ in 0..5 {
            let mut redis = RedisServer {
                bin: bin.clone(),
                port: free_port(),
                child: None,
                settings: settings.iter().map(|s| s.to_string()).collect(),
            };
            match redis.spawn() {
                Ok(()) => return Some(redis),
                Err(e) => eprintln!(
                    "redis-server on port {} did not start ({e}); another port",
                    redis.port
                ),
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A server that is not running yet, on a port that was free just now.
    pub fn stopped(test: &str) -> Option<RedisServer> {
        Some(RedisServer {
            bin: redis_server_bin(test)?,
            port: free_port(),
            child: None,
            settings: Vec::new(),
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts `redis-server` on `self.port` and waits for its PONG; says why
    /// not (exiting at once most likely means the port was taken meanwhile).
    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let child = Command::new(&self.bin)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.settings)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let child = self.child.insert(child);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("it exited at once: {status}"));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("no PONG within {DEADLINE:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port (after `kill`).
    pub fn restart(&mut self) {
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on port {}: {e}", self.port);
        }
    }

    /// Kills it by its PID (SIGKILL: the node sees its connections die) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-server` on PATH (or Debian's place); `None` after a skip line outside CI.
fn redis_server_bin(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|p| is_executable(p));
    if found.is_none() {
        if crate::support::in_ci() {
            panic!("redis-server is not installed; CI must install the Debian package redis-server");
        }
        static SKIP: Once = Once::new();
        SKIP.call_once(|| {
            // Straight to stderr, past the test harness's capture, once per run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED cluster tests (first: {test}): redis-server not found; apt-get install redis-server"
            );
        });
    }
    found
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port for a `redis-server`, free when picked, and below the kernel's
/// ephemeral range.
///
/// Tests stop Redis and start it again on the same port (the nodes know its
/// URL). An ephemeral port would be free for anyone meanwhile: every
/// outgoing connection on the machine (other tests', other builds') takes
/// its local port from that range, and one that got this port keeps Redis
/// from binding it again (EADDRINUSE: "redis-server did not restart"); a
/// node retrying a closed ephemeral port can even connect to itself. Below
/// the range only an explicit bind takes a port. The start is random so that
/// parallel tests spread out.
fn free_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(1024).min(10_000);
    assert!(
        span >= 1000,
        "ephemeral range starts at {low}: no room below it for test ports"
    );
    let start = getrandom::u32().expect("random") % u32::from(span);
    (0..u32::from(span))
        .map(|i| low - 1 - ((start + i) % u32::from(span)) as u16)
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// Whether a Redis answers PING on `port`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// A node of the cluster on `redis`, with id `id`, serving once subscribed.
pub fn node(redis: &RedisServer, id: &str) -> TestServer {
    node_at(&redis.url(), id, &[])
}

/// A node with id `id` on the Redis at `url`, with `extra` flags, serving once up.
pub fn node_at(url: &str, id: &str, extra: &[&str]) -> TestServer {
    let mut flags = vec!["--redis", url, "--node-id", id];
    flags.extend_from_slice(extra);
    let node = TestServer::start(&flags);
    wait_health(&node, 200);
    node
}

pub fn wait_health(node: &TestServer, status: u16) {
    wait_until(&format!("/healthz answers {status} on {}", node.http), || {
        node.get("/healthz").0 == status
    });
}

/// Closes (`CLIENT KILL ID`) every connection to the Redis on `port` whose
/// name ends with `suffix` (nodes name theirs `<prefix>.<node>.<role>`);
/// returns how many.
pub fn kill_connections(port: u16, suffix: &str) -> usize {
    let list = redis_bulk(port, "CLIENT LIST");
    let ids: Vec<&str> = list
        .lines()
        .filter(|line| {
            line.split(' ')
                .any(|f| f.strip_prefix("name=").is_some_and(|n| n.ends_with(suffix)))
        })
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    for id in &ids {
        let killed = redis_command(port, &format!("CLIENT KILL ID {id}"));
        assert_eq!(killed, ":1", "CLIENT KILL ID {id}");
    }
    ids.len()
}

/// Sends one inline command whose reply is a bulk string (`$N\r\n…\r\n`) to
/// the Redis on `port`; returns the string.
pub fn redis_bulk(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to redis");
    s.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    s.write_all(format!("{command}\r\n").as_bytes())
        .expect("send to redis");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("redis answers");
        assert!(n > 0, "redis closed before the whole reply of {command}");
        reply.extend_from_slice(&buf[..n]);
        let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        let header = std::str::from_utf8(&reply[..end]).expect("ASCII header");
        let len: usize = header
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{command}: not a bulk string: {header}"));
        if reply.len() >= end + 2 + len {
            return String::from_utf8_lossy(&reply[end + 2..end + 2 + len]).into_owned();
        }
    }
}

/// Sends one inline command to the Redis on `port`; returns the first reply line.
pub fn redis_command(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to redis");
    s.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    s.write_all(format!("{command}\r\n").as_bytes())
        .expect("send to redis");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("redis answers");
    String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
}
