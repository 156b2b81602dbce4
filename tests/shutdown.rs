//! The built binary prints its listening line; on SIGTERM (or SIGINT) it sends Close 1001 "going away" to every client and exits 0, and a second signal during the shutdown exits at once. It also runs with its glibc settings (re-executed once with `GLIBC_TUNABLES`).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use support::{RawWs, WsClient, DEADLINE};

/// The running binary, its addresses, and its stderr (the log) for failure messages.
struct Process {
    child: Child,
    ws_url: String,
    http_url: String,
    log: thread::JoinHandle<String>,
}

fn spawn() -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wspush"))
        .args([
            "--ws-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--html-dir",
        ])
        .arg(support::html_dir())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wspush");
    let mut stderr = child.stderr.take().unwrap();
    let log = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
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
    let rest = line
        .strip_prefix("wspush listening ws=ws://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let (ws, http) = rest
        .split_once(" http=http://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let ws_addr = ws
        .strip_suffix("/echo")
        .unwrap_or_else(|| panic!("no /echo in {line:?}"));
    let http_addr = http
        .strip_suffix('/')
        .unwrap_or_else(|| panic!("no trailing / in {line:?}"));
    for addr in [ws_addr, http_addr] {
        let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|_| panic!("bad address in {line:?}"));
        assert_ne!(addr.port(), 0, "the real port is printed: {line:?}");
    }
    Process {
        child,
        ws_url: format!("ws://{ws_addr}/echo"),
        http_url: format!("http://{http_addr}"),
        log,
    }
}

impl Process {
    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill failed");
    }

    /// Waits for the process to exit; returns its status and log.
    fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "wspush did not exit in time; log:\n{}",
                    self.log.join().unwrap_or_default()
                );
            }
            thread::sleep(std::time::Duration::from_millis(10));
        };
        (status, self.log.join().unwrap_or_default())
    }
}

/// The binary runs with its glibc settings: it executed itself once with
/// `GLIBC_TUNABLES` set (same pid, see `wspush::memory`), then served.
#[test]
fn the_binary_runs_with_its_glibc_settings() {
    let process = spawn();
    let environ = std::fs::read(format!("/proc/{}/environ", process.child.id())).expect("environ");
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        vars.iter().any(|v| v == "WSPUSH_GLIBC_TUNABLES_SET=1"),
        "not re-executed: {vars:?}"
    );
    let first = wspush::memory::GLIBC_TUNABLES.split(':').next().unwrap();
    assert!(
        vars.iter()
            .any(|v| v.starts_with(&format!("GLIBC_TUNABLES={first}"))),
        "no GLIBC_TUNABLES: {vars:?}"
    );
    process.signal(libc::SIGTERM);
    let (status, log) = process.wait();
    assert!(status.success(), "{log}");
}

#[test]
fn sigterm_closes_clients_with_1001_and_exits_0() {
    let process = spawn();
    let mut a = WsClient::connect(&process.ws_url);
    let mut b = WsClient::connect(&process.ws_url);
    support::wait_until("2 clients registered", || {
        let stats: serde_json::Value = ureq::get(&format!("{}/stats", process.http_url))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        stats["clients"] == 2
    });
    let resp = ureq::get(&format!("{}/sendall?msg=before", process.http_url))
        .call()
        .unwrap();
    assert_eq!(resp.into_string().unwrap(), r#"{"clients":2}"#);
    assert_eq!(a.next_text(), "before");
    assert_eq!(b.next_text(), "before");

    process.signal(libc::SIGTERM);
    for c in [&mut a, &mut b] {
        assert_eq!(c.expect_close(), (1001, "going away".to_owned()));
        assert!(matches!(c.ws.read(), Err(tungstenite::Error::ConnectionClosed)));
    }
    drop((a, b));
    let (status, log) = process.wait();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains("shut down"), "{log}");
}

#[test]
fn sigint_with_no_clients_exits_0() {
    let process = spawn();
    process.signal(libc::SIGINT);
    let (status, log) = process.wait();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let process = spawn();
    let addr = process
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/echo")
        .parse()
        .unwrap();
    // Reads the Close but never answers it: shutdown waits for it.
    let mut stubborn = RawWs::connect(addr);
    process.signal(libc::SIGTERM);
    assert_eq!(stubborn.expect_close(), (1001, "going away".to_owned()));
    // Shutdown is now waiting (up to 2 s) for this client; a second signal ends it now.
    process.signal(libc::SIGTERM);
    let (status, log) = process.wait();
    assert_eq!(
        status.code(),
        Some(1),
        "the immediate exit; status {status}; log:\n{log}"
    );
}
