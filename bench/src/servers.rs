//! The servers under test: wspush (its release binary) and nginx + Nchan, each
//! started fresh for one run on loopback ports and stopped after it.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// This repository's server.
    Wspush,
    /// nginx with the Nchan module.
    Nchan,
}

impl Kind {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wspush => "wspush",
            Kind::Nchan => "nchan",
        }
    }
}

/// A server as the suite runs it: its kind, its name in the tables
/// (`wspush`, `wspush@4115bf9`, `nchan`) and how to start it.
#[derive(Debug, Clone)]
pub struct Contender {
    /// Which server.
    pub kind: Kind,
    /// Its name in tables and JSON.
    pub name: String,
    /// How to start it (the wspush binary).
    pub launch: Launch,
}

impl Contender {
    /// Starts it; logs go to `<work_dir>/<label>.log`.
    pub fn start(&self, label: &str) -> Result<Running, String> {
        let mut running = Running::start(self.kind, &self.launch, label)?;
        running.name.clone_from(&self.name);
        Ok(running)
    }
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The wspush binary.
    pub wspush_bin: PathBuf,
    /// Extra flags for wspush.
    pub wspush_args: Vec<String>,
    /// Where logs and nginx's files go.
    pub work_dir: PathBuf,
}

/// A running server.
pub struct Running {
    /// Which one.
    pub kind: Kind,
    /// Its name in tables (the kind's, unless a [`Contender`] names it).
    pub name: String,
    /// Its process (the only one: nginx runs without a master).
    pub child: Child,
    /// The WebSocket endpoint.
    pub ws: SocketAddr,
    /// Where to publish (`POST /sendall`) and ask for the subscriber count.
    pub http: SocketAddr,
}

impl Running {
    /// Starts `kind`; logs go to `<work_dir>/<label>.log`.
    pub fn start(kind: Kind, launch: &Launch, label: &str) -> Result<Running, String> {
        fs::create_dir_all(&launch.work_dir).map_err(|e| format!("{}: {e}", launch.work_dir.display()))?;
        match kind {
            Kind::Wspush => start_wspush(launch, label, &[]),
            Kind::Nchan => start_nchan(launch, label),
        }
    }

    /// The process id whose `/proc` entry is sampled.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Subscribers the server reports now.
    pub async fn subscribers(&self) -> Option<u64> {
        match self.kind {
            Kind::Wspush => {
                let r = http::once(self.http, "GET", "/stats", &[], b"").await.ok()?;
                let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                v["clients"].as_u64()
            }
            Kind::Nchan => {
                let r = http::once(
                    self.http,
                    "GET",
                    "/sendall",
                    &[("Accept", "application/json")],
                    b"",
                )
                .await
                .ok()?;
                if r.status == 404 {
                    return Some(0);
                }
                let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                v["subscribers"].as_u64()
            }
        }
    }

    /// Connections subscribed to any channel: wspush's `/stats` `clients`,
    /// Nchan's `nchan_stub_status` `subscribers`.
    pub async fn total_subscribers(&self) -> Option<u64> {
        match self.kind {
            Kind::Wspush => self.subscribers().await,
            Kind::Nchan => {
                let r = http::once(self.http, "GET", "/nchan_status", &[], b"")
                    .await
                    .ok()?;
                let text = String::from_utf8_lossy(&r.body);
                text.lines()
                    .find_map(|l| l.strip_prefix("subscribers:"))
                    .and_then(|v| v.trim().parse().ok())
            }
        }
    }

    /// The server's own counters, where it has them (wspush `/stats`).
    pub async fn counters(&self) -> Option<serde_json::Value> {
        if self.kind != Kind::Wspush {
            return None;
        }
        let r = http::once(self.http, "GET", "/stats", &[], b"").await.ok()?;
        serde_json::from_slice(&r.body).ok()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        terminate(&mut self.child, grace);
    }
}

/// Starts one wspush node of a cluster: `--redis redis://127.0.0.1:PORT
/// --redis-channel CHANNEL --node-id NODE`; logs to `<work_dir>/<label>.log`.
pub fn start_wspush_node(
    launch: &Launch,
    label: &str,
    redis_port: u16,
    channel: &str,
    node_id: &str,
) -> Result<Running, String> {
    let extra = [
        "--redis".to_owned(),
        format!("redis://127.0.0.1:{redis_port}"),
        "--redis-channel".to_owned(),
        channel.to_owned(),
        "--node-id".to_owned(),
        node_id.to_owned(),
    ];
    start_wspush(launch, label, &extra)
}

/// Starts wspush with `extra` flags after the launch's; logs to `<work_dir>/<label>.log`.
pub fn start_wspush(launch: &Launch, label: &str, extra: &[String]) -> Result<Running, String> {
    fs::create_dir_all(&launch.work_dir).map_err(|e| format!("{}: {e}", launch.work_dir.display()))?;
    if !launch.wspush_bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release` first",
            launch.wspush_bin.display()
        ));
    }
    let log = log_file(&launch.work_dir, label)?;
    let mut child = Command::new(&launch.wspush_bin)
        .args(["--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(&launch.wspush_args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", launch.wspush_bin.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    let read = stdout.read_line(&mut line);
    if read.is_err() || !line.starts_with("wspush listening") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "wspush did not start (see {}): {line:?}",
            launch.work_dir.join(format!("{label}.log")).display()
        ));
    }
    // Keep draining stdout (in cluster mode a `wspush node ...` line follows):
    // a closed pipe would fail the server's next print.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    // wspush listening ws=ws://HOST:PORT/echo http=http://HOST:PORT/
    let addr_after = |key: &str| -> Result<SocketAddr, String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|url| url.split('/').nth(2))
            .and_then(|hp| hp.parse().ok())
            .ok_or_else(|| format!("cannot parse {key} in {line:?}"))
    };
    Ok(Running {
        kind: Kind::Wspush,
        name: Kind::Wspush.name().to_owned(),
        ws: addr_after("ws=")?,
        http: addr_after("http=")?,
        child,
    })
}

/// The Nchan module as Debian installs it.
pub const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// Whether nginx and the Nchan module are installed.
pub fn nchan_available() -> bool {
    Path::new(NCHAN_MODULE).exists() && Command::new("nginx").arg("-v").output().is_ok()
}

/// A channel name as wspush accepts it (issue 11), as an nginx regex.
const CHANNEL_NAME: &str = "[A-Za-z0-9_.:@-]{1,128}";

/// Nchan's message buffer on the channel locations: what wspush keeps by
/// default (`--history-size 100`, `--history-ttl 300s`).
const NCHAN_BUFFER: &str =
    "            nchan_message_buffer_length 100;\n            nchan_message_timeout 300s;\n";

/// The peer's configuration, exactly as the benchmark issue gives it plus
/// what one process with 15,000+ connections needs (connection and fd limits),
/// the channel locations (`/sub/NAME`, `/pub/NAME`) and `/nchan_status`
/// of the channel scenarios, and the event streams (`/events/NAME`) of the
/// SSE scenarios, which the broadcast scenarios do not touch.
pub fn nchan_config(prefix: &Path, ws_port: u16, http_port: u16) -> String {
    let p = prefix.display();
    format!(
        r#"load_module {NCHAN_MODULE};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {p}/nginx.pid;
error_log {p}/error.log error;
events {{
    worker_connections 19000;
}}
http {{
    access_log off;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{ws_port} backlog=4096;
        location = /echo {{
            nchan_subscriber websocket;
            nchan_channel_id all;
            nchan_subscriber_first_message newest;
        }}
        # The channel scenarios: one channel per URL. A new subscriber waits
        # for the next message (`newest`, in Nchan 1.3.6); `?last_event_id=ID`
        # (Nchan's default `nchan_subscriber_last_message_id`) resumes after
        # ID from the message buffer.
        location ~ "^/sub/({CHANNEL_NAME})$" {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
{NCHAN_BUFFER}        }}
        # The event-stream scenarios: EventSource subscribers, resumed with
        # the Last-Event-ID header (Nchan's default
        # `nchan_subscriber_last_message_id` reads it first). `/events/all`
        # is the channel `/sendall` publishes to.
        location ~ "^/events/({CHANNEL_NAME})$" {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
{NCHAN_BUFFER}        }}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        location = /sendall {{
            nchan_publisher;
            nchan_channel_id all;
        }}
        location ~ "^/pub/({CHANNEL_NAME})$" {{
            nchan_publisher;
            nchan_channel_id $1;
{NCHAN_BUFFER}        }}
        location = /nchan_status {{
            nchan_stub_status;
        }}
    }}
}}
"#
    )
}

fn start_nchan(launch: &Launch, label: &str) -> Result<Running, String> {
    if !nchan_available() {
        return Err("nginx with the Nchan module is not installed (scripts/bench.sh installs it)".into());
    }
    let prefix = launch.work_dir.join("nchan");
    fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
    let prefix = prefix.canonicalize().map_err(|e| e.to_string())?;
    let [ws_port, http_port] = free_ports()?;
    let conf = prefix.join("nginx.conf");
    fs::write(&conf, nchan_config(&prefix, ws_port, http_port)).map_err(|e| e.to_string())?;
    let log = log_file(&launch.work_dir, label)?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut running = Running {
        kind: Kind::Nchan,
        name: Kind::Nchan.name().to_owned(),
        ws: SocketAddr::from(([127, 0, 0, 1], ws_port)),
        http: SocketAddr::from(([127, 0, 0, 1], http_port)),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = TcpStream::connect(running.ws).is_ok() && TcpStream::connect(running.http).is_ok();
        if up {
            return Ok(running);
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(format!(
                "nginx exited with {status} (see {} and {}/error.log)",
                launch.work_dir.join(format!("{label}.log")).display(),
                prefix.display()
            ));
        }
        if Instant::now() > deadline {
            running.stop(Duration::from_secs(1));
            return Err("nginx did not start listening within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A local redis-server (`--save '' --appendonly no`), killed by its PID when dropped.
pub struct Redis {
    /// Its process.
    pub child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts redis-server on a free port and waits until it answers `PING`.
    pub fn start(launch: &Launch, label: &str) -> Result<Redis, String> {
        fs::create_dir_all(&launch.work_dir).map_err(|e| format!("{}: {e}", launch.work_dir.display()))?;
        let [port] = free_ports()?;
        let log = log_file(&launch.work_dir, label)?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .current_dir(&launch.work_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start redis-server (apt-get install redis-server): {e}"))?;
        let mut redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if redis.ping() {
                return Ok(redis);
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!(
                    "redis-server exited with {status} (see {})",
                    launch.work_dir.join(format!("{label}.log")).display()
                ));
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a raw `PING` gets `+PONG`.
    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stream `key`'s entries and the bytes Redis holds for it
    /// (`XLEN`, `MEMORY USAGE … SAMPLES 0`), if it answers.
    pub fn log_figures(&self, key: &str) -> Option<LogFigures> {
        Some(LogFigures {
            entries: self.integer(&format!("XLEN {key}"))?,
            bytes: self.integer(&format!("MEMORY USAGE {key} SAMPLES 0"))?,
        })
    }

    /// The integer reply (`:N`) to an inline command.
    fn integer(&self, command: &str) -> Option<u64> {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).ok()?;
        let reply = std::str::from_utf8(&buf[..n]).ok()?;
        reply.strip_prefix(':')?.trim_end().parse().ok()
    }
}

/// A cluster's shared log at the end of a run, as Redis holds it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LogFigures {
    /// Entries in the stream.
    pub entries: u64,
    /// Bytes Redis holds for it.
    pub bytes: u64,
}

impl Drop for Redis {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(3));
    }
}

/// SIGTERM, then SIGKILL if `child` has not exited after `grace`.
fn terminate(child: &mut std::process::Child, grace: Duration) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `GET /healthz` answers 200 (a cluster node is subscribed at Redis).
pub async fn wait_healthy(node: &Running, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(r) = http::once(node.http, "GET", "/healthz", &[], b"").await {
            if r.status == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Whether redis-server is installed.
pub fn redis_available() -> bool {
    Command::new("redis-server").arg("--version").output().is_ok()
}

/// `N` distinct free ports on 127.0.0.1. All `N` listeners are held until
/// every port is known: one at a time, the kernel may hand out the same port
/// twice (nginx then put both servers on one port, and every publish got 404).
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr().map_err(|e| e.to_string())?.port();
    }
    Ok(ports)
}

fn log_file(dir: &Path, label: &str) -> Result<File, String> {
    let path = dir.join(format!("{label}.log"));
    File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
}
