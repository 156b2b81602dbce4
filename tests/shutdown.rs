//! The built binary prints its listening line; on SIGTERM (or SIGINT) it sends Close 1001 "going away" to every client and exits 0, and a second signal during the shutdown exits at once. It also runs with its glibc settings (re-executed once with `GLIBC_TUNABLES`).

#[path = "support/process.rs"]
mod process;
mod support;

use process::spawn;
use support::{RawWs, WsClient};

/// The binary runs with its glibc settings: it executed itself once with
/// `GLIBC_TUNABLES` set (same pid, see `wspush::memory`), then served.
#[test]
fn the_binary_runs_with_its_glibc_settings() {
    let process = spawn(&[]);
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
    let process = spawn(&[]);
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
    let process = spawn(&[]);
    process.signal(libc::SIGINT);
    let (status, log) = process.wait();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let process = spawn(&[]);
    let addr = process.ws;
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
