//! Command-line flags (each also read from a `WSPUSH_*` environment variable).
//!
//! `Config` holds the flags as given; `server::Server::start` validates them
//! and derives what the server runs with (the pod list, the client limit).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ipnet::IpNet;

/// How the ping thread pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PingStyle {
    /// A WebSocket Ping frame; browsers answer it by themselves.
    Frame,
    /// A Ping frame and also a text message `ping`, as the tutorial's clients expect.
    Text,
}

/// wspush: push messages from an HTTP call to every connected WebSocket client.
#[derive(Debug, Clone, Parser)]
#[command(name = "wspush", version, about, max_term_width = 100)]
pub struct Config {
    /// Address of the WebSocket listener (clients connect to /echo).
    #[arg(long, env = "WSPUSH_WS_ADDR", default_value = "0.0.0.0:8080")]
    pub ws_addr: SocketAddr,

    /// Address of the HTTP side port (publishing, stats, the page).
    #[arg(long, env = "WSPUSH_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,

    /// Folder of static files served by the HTTP side port.
    #[arg(long, env = "WSPUSH_HTML_DIR", default_value = "html")]
    pub html_dir: PathBuf,

    /// Seconds between pings to each client.
    #[arg(long, env = "WSPUSH_PING_INTERVAL", default_value = "10", value_parser = parse_seconds)]
    pub ping_interval: Duration,

    /// Seconds of silence (no pong, no frame) after which a client is dropped.
    #[arg(long, env = "WSPUSH_PONG_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub pong_timeout: Duration,

    /// `frame`: Ping frames only; `text`: also a text message "ping".
    #[arg(long, env = "WSPUSH_PING_STYLE", value_enum, default_value_t = PingStyle::Frame)]
    pub ping_style: PingStyle,

    /// Messages a client may have waiting before it is dropped as a slow consumer.
    #[arg(long, env = "WSPUSH_QUEUE_LEN", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_len: u32,

    /// Bytes a client may have waiting (broadcasts and echoes together) before it is dropped
    /// as a slow consumer; one message of any size is taken when nothing is waiting.
    #[arg(long, env = "WSPUSH_QUEUE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_bytes: u64,

    /// Most clients at once [default: what the fd, thread and memory-map limits allow, minus a reserve].
    #[arg(long, env = "WSPUSH_MAX_CLIENTS")]
    pub max_clients: Option<usize>,

    /// Largest message (and frame) accepted from a client, in bytes; larger ones get close 1009.
    #[arg(long, env = "WSPUSH_MAX_MESSAGE_BYTES", default_value_t = 65536)]
    pub max_message_bytes: usize,

    /// Largest HTTP request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "WSPUSH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Browser origin allowed to connect (repeatable; `*` = any). None given: pages
    /// whose host is the host the client connected to, and clients that send no Origin.
    #[arg(long = "allowed-origin", env = "WSPUSH_ALLOWED_ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Bearer token every side-port request must carry (`Authorization: Bearer TOKEN`),
    /// except /healthz, /config.json and the page's files.
    #[arg(long, env = "WSPUSH_PUBLISH_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub publish_token: Option<String>,

    /// JSON file with the pod list served by /pods and /sendpods [default: built in].
    #[arg(long, env = "WSPUSH_PODS")]
    pub pods: Option<PathBuf>,

    /// Seconds one blocked write to a client may take before the client is dropped.
    #[arg(long, env = "WSPUSH_WRITE_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub write_timeout: Duration,

    /// Seconds a client has to complete the WebSocket handshake.
    #[arg(long, env = "WSPUSH_HANDSHAKE_TIMEOUT", default_value = "5", value_parser = parse_seconds)]
    pub handshake_timeout: Duration,

    /// Threads a broadcast to many clients is split over (shards of at least
    /// 1,024 clients) [default: the number of CPUs].
    #[arg(long, env = "WSPUSH_FANOUT_THREADS", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub fanout_threads: Option<u16>,

    /// Helper threads routing the side-port requests too large for the router's
    /// socket (a connection's own thread routes the others).
    #[arg(long, env = "WSPUSH_HTTP_THREADS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: u16,

    /// Seconds a side-port client has to send a request head, counted from when its
    /// connection starts waiting for one (also the keep-alive idle timeout).
    #[arg(long, env = "WSPUSH_HTTP_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub http_header_timeout: Duration,

    /// Seconds a side-port client has to send a request body, counted from the end of its head.
    #[arg(long, env = "WSPUSH_HTTP_BODY_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub http_body_timeout: Duration,

    /// Side-port connections open at once; past it, a stalled one is closed to make
    /// room, or the new one gets 503.
    #[arg(long, env = "WSPUSH_HTTP_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub http_max_connections: u32,

    /// Seconds a side-port connection must have waited on its client before a new
    /// connection may take its place at --http-max-connections.
    #[arg(long, env = "WSPUSH_HTTP_EVICT_AFTER", default_value = "1", value_parser = parse_seconds)]
    pub http_evict_after: Duration,

    /// Stack size of each connection's reader thread, in KiB.
    #[arg(long, env = "WSPUSH_READER_STACK_KIB", default_value_t = 128)]
    pub reader_stack_kib: usize,

    /// Stack size of a backlog writer thread, in KiB.
    #[arg(long, env = "WSPUSH_WRITER_STACK_KIB", default_value_t = 64)]
    pub writer_stack_kib: usize,

    /// tungstenite's read buffer per connection, in bytes (it grows for a larger frame).
    #[arg(long, env = "WSPUSH_READ_BUFFER_BYTES", default_value_t = 1024)]
    pub read_buffer_bytes: usize,

    /// Channels one /ws/… connection may subscribe to, not counting `all`.
    #[arg(long, env = "WSPUSH_MAX_CHANNELS_PER_CLIENT", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_channels_per_client: u16,

    /// Messages kept per channel for clients that resume (?since=) or ask for ?last=N.
    #[arg(long, env = "WSPUSH_HISTORY_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub history_size: u32,

    /// Seconds a stored message is kept.
    #[arg(long, env = "WSPUSH_HISTORY_TTL", default_value = "300", value_parser = parse_seconds)]
    pub history_ttl: Duration,

    /// Bytes all stored messages may hold together (their frames and bookkeeping);
    /// past it the oldest message of any channel goes first.
    #[arg(long, env = "WSPUSH_HISTORY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub history_bytes: u64,

    /// Most messages one resume or ?last=N sends; a resume that needs more gets a reset.
    #[arg(long, env = "WSPUSH_RECOVERY_MAX", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub recovery_max: u32,

    /// Redis to share publishes with other nodes through, `redis://HOST:PORT[/DB]`
    /// [default: none, this node alone].
    #[arg(long, env = "WSPUSH_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// Prefix of the Redis keys and pub/sub channels (with --redis): the log is
    /// `<prefix>.log`.
    #[arg(long, env = "WSPUSH_REDIS_CHANNEL", default_value = "wspush")]
    pub redis_channel: String,

    /// About how many entries the Redis log keeps at most (`XADD MAXLEN ~`),
    /// besides dropping those older than --history-ttl + 60 s (with --redis).
    #[arg(long, env = "WSPUSH_REDIS_STREAM_MAX_LEN", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_stream_max_len: u64,

    /// This node's id in a cluster: A-Z a-z 0-9 . _ - [default: random, printed at startup].
    #[arg(long, env = "WSPUSH_NODE_ID")]
    pub node_id: Option<String>,

    /// Network of a reverse proxy whose X-Forwarded-For names the client (repeatable;
    /// a CIDR like 10.0.0.0/8, or one address). Connections from elsewhere are their own client.
    #[arg(long = "trusted-proxy", env = "WSPUSH_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,

    /// Secret that subscribe tokens (HS256 JWTs) are signed with: a connection must then
    /// carry a token covering its channels. Without it ANYONE who reaches the WebSocket
    /// port may subscribe to ANY channel.
    #[arg(long, env = "WSPUSH_SUBSCRIBE_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = crate::token::parse_secret, conflicts_with = "subscribe_secret_file")]
    pub subscribe_secret: Option<crate::token::Secret>,

    /// File holding the subscribe secret, read at startup (trailing line breaks dropped).
    #[arg(long, env = "WSPUSH_SUBSCRIBE_SECRET_FILE", value_name = "PATH", value_parser = crate::token::read_secret_file)]
    pub subscribe_secret_file: Option<crate::token::Secret>,

    /// Longest lifetime, in seconds, of a token made by POST /tokens; longer requests are refused.
    #[arg(long, env = "WSPUSH_MAX_TOKEN_TTL", value_name = "SECONDS", default_value_t = crate::token::DEFAULT_MAX_TOKEN_TTL, value_parser = clap::value_parser!(u64).range(1..=crate::token::MAX_TOKEN_TTL))]
    pub max_token_ttl: u64,
}

impl Config {
    /// The subscribe secret, from `--subscribe-secret` or `--subscribe-secret-file`
    /// (clap refuses both at once); `None`: anyone may subscribe.
    pub fn subscribe_key(&self) -> Option<&crate::token::Secret> {
        self.subscribe_secret
            .as_ref()
            .or(self.subscribe_secret_file.as_ref())
    }
}

/// A token must not be empty: an empty one would let requests without any token in.
fn parse_token(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the token must not be empty (leave the flag out to run without one)".into());
    }
    Ok(s.to_owned())
}

/// Parses a positive number of seconds, fractions allowed ("0.5").
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("`{s}` must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A network `ADDR/PREFIX`, or one address (a /32 or /128).
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or a network like 10.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_refuse_nonsense() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn an_empty_token_is_refused() {
        assert!(Config::try_parse_from(["wspush", "--publish-token", ""]).is_err());
        assert!(Config::try_parse_from(["wspush", "--publish-token", "x"]).is_ok());
    }

    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        let config = Config::try_parse_from([
            "wspush",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1,::1",
        ])
        .unwrap();
        let nets: Vec<String> = config.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert!(Config::try_parse_from(["wspush"])
            .unwrap()
            .trusted_proxies
            .is_empty());
        for bad in ["10.0.0.0/33", "proxy.example", ""] {
            assert!(
                Config::try_parse_from(["wspush", "--trusted-proxy", bad]).is_err(),
                "{bad:?}"
            );
        }
    }
}
