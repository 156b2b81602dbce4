//! The built `wspush` binary as a child process: its addresses (read from its
//! listening line), signals, its log, and its memory figures.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{html_dir, DEADLINE};

/// A running `wspush`, killed when dropped.
pub struct Process {
    pub child: Child,
    pub ws: SocketAddr,
    pub http: SocketAddr,
    pub ws_url: String,
    pub http_url: String,
    log: Arc<Mutex<String>>,
    log_reader: Option<thread::JoinHandle<()>>,
}

/// Starts the binary on loopback ephemeral ports with `extra` flags (log level: its default).
pub fn spawn(extra: &[&str]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wspush"))
        .args([
            "--ws-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--html-dir",
        ])
        .arg(html_dir())
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wspush");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let sink = Arc::clone(&log);
    let log_reader = thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {} // keep draining
    });
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("a line on stdout in time")
        .expect("stdout open")
        .expect("a line");
    let (ws, http) = parse_listening_line(&line);
    Process {
        child,
        ws,
        http,
        ws_url: format!("ws://{ws}/echo"),
        http_url: format!("http://{http}"),
        log,
        log_reader: Some(log_reader),
    }
}

/// The two addresses of `wspush listening ws=ws://HOST:PORT/echo http=http://HOST:PORT/`.
fn parse_listening_line(line: &str) -> (SocketAddr, SocketAddr) {
    let rest = line
        .strip_prefix("wspush listening ws=ws://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let (ws, http) = rest
        .split_once(" http=http://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let ws = ws
        .strip_suffix("/echo")
        .unwrap_or_else(|| panic!("no /echo in {line:?}"));
    let http = http
        .strip_suffix('/')
        .unwrap_or_else(|| panic!("no trailing / in {line:?}"));
    let [ws, http] = [ws, http].map(|addr| {
        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("bad address in {line:?}"));
        assert_ne!(addr.port(), 0, "the real port is printed: {line:?}");
        addr
    });
    (ws, http)
}

impl Process {
    /// Sends `sig` to the process.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill failed");
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        ureq::get(&format!("{}/stats", self.http_url))
            .call()
            .expect("GET /stats")
            .into_json()
            .expect("stats is JSON")
    }

    /// A figure of `/proc/PID/status` given in kB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Starts `VmHWM` (the peak RSS) again from the RSS now; false if the kernel refused.
    pub fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").is_ok()
    }

    /// Waits for the process to exit; returns its status and whole log.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("wspush did not exit in time; log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        (status, self.log())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
