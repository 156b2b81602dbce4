//! Several nodes sharing publishes through a real Redis (`--redis`).
//!
//! Each test starts its own `redis-server` (Debian package `redis-server`) on a
//! free port below the ephemeral range (`free_port`), without persistence, and kills it by its PID when done (a guard
//! does it on panic too). With `CI=true` a missing `redis-server` fails these
//! tests; elsewhere they print one skip line and pass.

#[path = "support/channels.rs"]
mod channels;
mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use support::{wait_until, TestServer, WsClient, DEADLINE};

/// A `redis-server` child on 127.0.0.1, killed when dropped.
struct RedisServer {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// A fresh server on a free port, or `None` (after one skip line) when
    /// `redis-server` is not installed and this is not CI.
    fn start(test: &str) -> Option<RedisServer> {
        let bin = redis_server_bin(test)?;
        for _ in 0..5 {
            let mut redis = RedisServer {
                bin: bin.clone(),
                port: free_port(),
                child: None,
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
    fn stopped(test: &str) -> Option<RedisServer> {
        Some(RedisServer {
            bin: redis_server_bin(test)?,
            port: free_port(),
            child: None,
        })
    }

    fn url(&self) -> String {
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
    fn restart(&mut self) {
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on port {}: {e}", self.port);
        }
    }

    /// Kills it by its PID (SIGKILL: the node sees its connections die) and reaps it.
    fn kill(&mut self) {
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
        if std::env::var("CI").is_ok_and(|v| v == "true") {
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
fn node(redis: &RedisServer, id: &str) -> TestServer {
    let url = redis.url();
    let node = TestServer::start(&["--redis", &url, "--node-id", id]);
    wait_health(&node, 200);
    node
}

fn wait_health(node: &TestServer, status: u16) {
    wait_until(&format!("/healthz answers {status} on {}", node.http), || {
        node.get("/healthz").0 == status
    });
}

/// `n` clients connected to `node`, registered.
fn clients(node: &TestServer, n: u64) -> Vec<WsClient> {
    let clients = (0..n).map(|_| node.client()).collect();
    node.wait_clients(n);
    clients
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// GET /sendall?msg=`msg` on `node`; asserts 200 and returns the JSON answer.
fn sendall(node: &TestServer, msg: &str) -> serde_json::Value {
    let (status, body) = node.get(&format!("/sendall?msg={msg}"));
    assert_eq!(status, 200, "{body}");
    json(&body)
}

fn expect_all(clients: &mut [WsClient], msg: &str) {
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.next_text(), msg, "client {i}");
    }
}

#[test]
fn a_publish_on_either_node_reaches_every_client_of_both_once() {
    let Some(redis) = RedisServer::start("a_publish_on_either_node_reaches_every_client_of_both_once") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 3);
    all.extend(clients(&b, 3));

    let answer = sendall(&a, "from-a");
    assert_eq!(answer["clients"], 3, "clients counts this node's: {answer}");
    assert_eq!(answer["nodes"], 2, "{answer}");
    expect_all(&mut all, "from-a");

    let answer = sendall(&b, "from-b");
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(3), Some(2))
    );
    expect_all(&mut all, "from-b");

    // Nothing came twice: the next message everyone reads is the next one sent.
    let (status, body) = a.post("/sendpods", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    let pods = a.get("/pods").1;
    expect_all(&mut all, &pods);

    // Ids name their node; /clients and /stats stay per node.
    for (node, prefix) in [(&a, "a-"), (&b, "b-")] {
        let listed = node.clients();
        assert_eq!(listed.len(), 3);
        for c in &listed {
            let id = c["id"].as_str().expect("id is a string");
            assert!(id.starts_with(prefix), "{id}");
        }
        let stats = node.stats();
        assert_eq!(stats["clients"], 3, "{stats}");
        assert_eq!(stats["redis_up"], true, "{stats}");
        assert_eq!(stats["node"], prefix.trim_end_matches('-'), "{stats}");
    }
    assert_eq!(a.stat("redis_publishes"), 2);
    assert_eq!(b.stat("redis_publishes"), 1);

    // /cluster lists both nodes.
    wait_until("/cluster on b lists a and b", || {
        let view = json(&b.get("/cluster").1);
        let ids: Vec<_> = view["nodes"]
            .as_array()
            .map(|n| n.iter().filter_map(|n| n["id"].as_str()).collect())
            .unwrap_or_default();
        ids == ["a", "b"]
    });
    let view = json(&b.get("/cluster").1);
    assert_eq!(
        (view["node"].as_str(), view["redis"].as_str()),
        (Some("b"), Some("up")),
        "{view}"
    );
    assert_eq!(view["nodes"][0]["http"], format!("http://{}/", a.http), "{view}");
}

#[test]
fn a_channel_publish_reaches_its_subscribers_on_both_nodes() {
    let Some(redis) = RedisServer::start("a_channel_publish_reaches_its_subscribers_on_both_nodes") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let (mut a_orders, _) = channels::Sub::joined(&a, "orders");
    let (mut a_billing, _) = channels::Sub::joined(&a, "billing");
    let (mut b_orders, _) = channels::Sub::joined(&b, "orders");
    let mut b_echo = b.client();
    b.wait_clients(2);

    let (status, body) = b.post("/publish/orders", "application/json", br#"{"n":1}"#);
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(1), Some(2)),
        "{answer}"
    );
    let on_b = b_orders.next_message();
    assert_eq!(
        (on_b.channel.as_str(), &on_b.data),
        ("orders", &serde_json::json!({"n": 1}))
    );
    assert_eq!(answer["id"], on_b.id, "the answer carries the id b gave it");
    let on_a = a_orders.next_message();
    assert_eq!(on_a.data, on_b.data, "JSON stays JSON through Redis");
    assert_eq!(on_a.id, on_b.id, "the log's id, the same on every node");

    let (clients, _) = channels::publish(&a, "billing", "bill");
    assert_eq!(clients, 1);
    assert_eq!(sendall(&b, "everyone")["clients"], 2);
    assert_eq!(a_billing.next_message().data, "bill");
    for sub in [&mut a_orders, &mut a_billing, &mut b_orders] {
        let m = sub.next_message();
        assert_eq!(
            (m.channel.as_str(), m.data.as_str()),
            ("all", Some("everyone")),
            "nothing else between"
        );
    }
    assert_eq!(b_echo.next_text(), "everyone", "/echo gets only `all`, raw");

    // Kicks reach this node's clients only, by their shown id.
    let id = a.client_id(a_billing.ws.local_addr());
    assert!(id.starts_with("a-"), "{id}");
    assert_eq!(b.request("DELETE", &format!("/clients/{id}"), &[], b"").0, 404);
    assert_eq!(a.request("DELETE", &format!("/clients/{id}"), &[], b"").0, 200);
    assert_eq!(a_billing.ws.expect_close(), (1008, "kicked".to_owned()));
}

#[test]
fn concurrent_publishers_on_both_nodes_give_every_client_one_sequence() {
    const PER_PUBLISHER: usize = 25;
    let Some(redis) =
        RedisServer::start("concurrent_publishers_on_both_nodes_give_every_client_one_sequence")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 3);
    all.extend(clients(&b, 3));

    let urls = [a.url("/sendall"), b.url("/sendall")];
    thread::scope(|s| {
        for (n, url) in urls.iter().enumerate() {
            for t in 0..2 {
                s.spawn(move || {
                    for i in 0..PER_PUBLISHER {
                        let r = ureq::get(url).query("msg", &format!("n{n}-t{t}-{i}")).call();
                        assert!(matches!(&r, Ok(r) if r.status() == 200), "{r:?}");
                    }
                });
            }
        }
    });

    let total = 4 * PER_PUBLISHER;
    let sequences: Vec<Vec<String>> = all
        .iter_mut()
        .map(|c| (0..total).map(|_| c.next_text()).collect())
        .collect();
    let distinct: HashSet<_> = sequences[0].iter().collect();
    assert_eq!(distinct.len(), total, "every message exactly once");
    for (i, seq) in sequences.iter().enumerate() {
        assert_eq!(seq, &sequences[0], "client {i} saw another order");
    }
    // Each publisher's own messages keep their order.
    for prefix in ["n0-t0-", "n0-t1-", "n1-t0-", "n1-t1-"] {
        let mine: Vec<usize> = sequences[0]
            .iter()
            .filter_map(|m| m.strip_prefix(prefix)?.parse().ok())
            .collect();
        assert_eq!(mine, (0..PER_PUBLISHER).collect::<Vec<_>>());
    }
}

#[test]
fn send_to_one_client_finds_it_on_the_other_node() {
    let Some(redis) = RedisServer::start("send_to_one_client_finds_it_on_the_other_node") else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "node-b");
    let mut on_a = clients(&a, 3);
    let mut on_b = clients(&b, 3);
    let b1 = b.client_id(on_b[1].local_addr());
    let a2 = a.client_id(on_a[2].local_addr());
    assert!(b1.starts_with("node-b-"), "{b1}");

    let (status, body) = a.post(&format!("/send/{b1}"), "text/plain", b"to b1 from a");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_b[1].next_text(), "to b1 from a");

    let (status, body) = b.post(&format!("/send/{a2}"), "application/octet-stream", &[0, 1, 2]);
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_a[2].next_binary(), [0, 1, 2]);

    // A client of the node itself goes through Redis too, and answers the same.
    let (status, body) = a.post(&format!("/send/{a2}"), "text/plain", b"to a2 from a");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(on_a[2].next_text(), "to a2 from a");

    // 404 when the node has no such client, when no such node is subscribed,
    // and when the id is not an id.
    for missing in ["node-b-999", "a-999", "nosuch-1", "garbage", "999"] {
        let (status, body) = a.post(&format!("/send/{missing}"), "text/plain", b"x");
        assert_eq!(status, 404, "{missing}: {body}");
        assert!(
            json(&body)["error"]
                .as_str()
                .is_some_and(|e| e.contains("no client")),
            "{body}"
        );
    }

    // No one else got the directed messages: everyone's next one is this.
    sendall(&b, "end");
    expect_all(&mut on_a, "end");
    expect_all(&mut on_b, "end");
}

#[test]
fn a_redis_outage_degrades_the_nodes_and_they_recover_by_themselves() {
    let Some(mut redis) =
        RedisServer::start("a_redis_outage_degrades_the_nodes_and_they_recover_by_themselves")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut on_a = clients(&a, 2);
    let mut on_b = clients(&b, 2);
    let a1 = a.client_id(on_a[1].local_addr());
    sendall(&a, "before");
    expect_all(&mut on_a, "before");
    expect_all(&mut on_b, "before");

    redis.kill();
    wait_health(&a, 503);
    wait_health(&b, 503);
    assert_eq!(a.get("/healthz").1, "degraded");
    let (status, body) = a.get("/sendall?msg=lost");
    assert_eq!((status, body.as_str()), (503, r#"{"error":"redis unavailable"}"#));
    let (status, body) = b.post(&format!("/send/{a1}"), "text/plain", b"lost too");
    assert_eq!((status, body.as_str()), (503, r#"{"error":"redis unavailable"}"#));
    assert_eq!(json(&a.get("/cluster").1)["redis"], "down");

    // Local clients stay connected and served.
    for c in on_a.iter_mut().chain(on_b.iter_mut()) {
        c.send_text("still here");
        assert_eq!(c.next_text(), "still here");
    }
    assert_eq!((a.stat("clients"), b.stat("clients")), (2, 2));

    // Same port, same nodes: they resubscribe on their own.
    redis.restart();
    wait_health(&a, 200);
    wait_health(&b, 200);
    sendall(&a, "back");
    expect_all(&mut on_a, "back");
    expect_all(&mut on_b, "back");
    sendall(&b, "back-from-b");
    expect_all(&mut on_a, "back-from-b");
    expect_all(&mut on_b, "back-from-b");

    for node in [&a, &b] {
        assert!(node.stat("redis_reconnects") >= 1, "{}", node.stats());
    }
    assert!(a.stat("redis_publish_failures") >= 1, "{}", a.stats());
    assert!(b.stat("redis_publish_failures") >= 1, "{}", b.stats());
    let metrics = a.get("/metrics").1;
    for name in [
        "wspush_redis_up 1",
        "wspush_redis_reconnects_total",
        "wspush_redis_publish_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[test]
fn a_publish_connection_closed_by_redis_is_replaced_without_a_repeat() {
    let Some(redis) = RedisServer::start("a_publish_connection_closed_by_redis_is_replaced_without_a_repeat")
    else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut all: Vec<WsClient> = clients(&a, 2);
    all.extend(clients(&b, 2));
    sendall(&a, "first");
    expect_all(&mut all, "first");

    // Redis closes the nodes' publishing connections, not their log readers
    // or subscriptions: the next publish fails on its idle connection, is
    // sent again on a new one, and still arrives once.
    assert_eq!(kill_connections(redis.port, ".publisher"), 2);
    let answer = sendall(&a, "after-kill");
    assert_eq!(answer["nodes"], 2, "{answer}");
    expect_all(&mut all, "after-kill");
    sendall(&b, "next");
    expect_all(&mut all, "next");
    assert_eq!(a.stat("redis_publish_failures"), 0);
}

/// Closes (`CLIENT KILL ID`) every connection to the Redis on `port` whose
/// name ends with `suffix` (nodes name theirs `<prefix>.<node>.<role>`);
/// returns how many.
fn kill_connections(port: u16, suffix: &str) -> usize {
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
fn redis_bulk(port: u16, command: &str) -> String {
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
fn redis_command(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to redis");
    s.set_read_timeout(Some(DEADLINE)).expect("set timeout");
    s.write_all(format!("{command}\r\n").as_bytes())
        .expect("send to redis");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("redis answers");
    String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
}

#[test]
fn a_node_started_before_redis_serves_degraded_then_joins() {
    let Some(mut redis) = RedisServer::stopped("a_node_started_before_redis_serves_degraded_then_joins")
    else {
        return;
    };
    let url = redis.url();
    let a = TestServer::start(&["--redis", &url, "--node-id", "early"]);
    let mut c = a.client();
    a.wait_clients(1);
    assert_eq!(a.get("/healthz"), (503, "degraded".to_owned()));
    assert_eq!(a.get("/sendall?msg=x").0, 503);

    redis.restart();
    wait_health(&a, 200);
    let answer = sendall(&a, "joined");
    assert_eq!(
        (answer["clients"].as_u64(), answer["nodes"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(c.next_text(), "joined");
}

#[test]
fn without_redis_there_is_no_cluster() {
    let single = TestServer::start(&[]);
    let (status, body) = single.get("/cluster");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("--redis"), "{body}");
    assert_eq!(single.get("/healthz"), (200, "ok".to_owned()));
    let stats = single.stats();
    assert!(
        stats.get("redis_up").is_none() && stats.get("node").is_none(),
        "{stats}"
    );
}

#[test]
fn bad_cluster_flags_stop_the_start() {
    for flags in [
        &["--redis", "http://127.0.0.1:1"][..],
        &["--redis", "redis://127.0.0.1:1", "--node-id", "has space"],
        &["--redis", "redis://127.0.0.1:1", "--redis-channel", ""],
    ] {
        match support::try_start(flags) {
            Err(wspush::StartError::Invalid(reason)) => assert!(!reason.is_empty()),
            Err(e) => panic!("{flags:?}: wrong error {e}"),
            Ok(server) => {
                server.shutdown();
                panic!("{flags:?} started");
            }
        }
    }
}
