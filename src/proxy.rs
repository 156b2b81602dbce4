//! The client's address behind a reverse proxy: `X-Forwarded-For`, believed
//! only as far as the chain of `--trusted-proxy` addresses that handed it on.
//!
//! The rule: a connection whose TCP peer is not a trusted proxy is the client,
//! whatever headers it sends. From a trusted peer, `X-Forwarded-For` is read
//! from the right, the end each proxy appends to (nginx's
//! `$proxy_add_x_forwarded_for` adds the address it got the request from):
//! trusted addresses are skipped, and the first one that is not trusted is the
//! client. Only that entry and those right of it were written by proxies we
//! trust; anything further left came from the client and could say anything.
//!
//! An entry that is not an address (`unknown`, garbage, an obfuscated name)
//! ends the walk: nothing left of it can be vouched for, so the client is the
//! last address read before it (a trusted one, or the TCP peer). So does a
//! chain longer than [`MAX_HOPS`]. Every header the request carries is read as
//! one list, in order. Empty list elements (`a,,b`) are skipped, as HTTP's
//! list syntax allows. `X-Real-IP` is not read: it names one hop only, and a
//! proxy that does not set it passes the client's own value through, while
//! `X-Forwarded-For` from a trusted proxy always ends in what that proxy saw.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Most `X-Forwarded-For` entries read from the right; past them the walk
/// stops as it does at a malformed entry.
pub const MAX_HOPS: usize = 16;

/// The `--trusted-proxy` networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// Who a connection is from: the TCP peer itself, or the client a trusted
/// proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddr {
    /// No trusted proxy in between: the TCP peer is the client.
    Direct(SocketAddr),
    /// The client's address (no port: proxies do not forward it) and the
    /// trusted proxy the connection came from.
    Forwarded { client: IpAddr, proxy: SocketAddr },
}

/// `127.0.0.1:5555`, or `203.0.113.7 via 127.0.0.1:5555` for logs and `/clients`.
impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Direct(peer) => write!(f, "{peer}"),
            ClientAddr::Forwarded { client, proxy } => write!(f, "{client} via {proxy}"),
        }
    }
}

impl TrustedProxies {
    /// Trusts these networks (`--trusted-proxy`).
    pub fn new(nets: &[IpNet]) -> TrustedProxies {
        TrustedProxies {
            nets: nets.iter().map(IpNet::trunc).collect(),
        }
    }

    /// Whether `ip` is in a trusted network; an IPv4-mapped IPv6 address (a
    /// dual-stack socket's view of an IPv4 peer) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client of a connection from `peer` whose request carried these
    /// `X-Forwarded-For` values: every such header, in the order received, as
    /// bytes (a value that is not UTF-8 is a malformed entry, so it ends the
    /// walk instead of being skipped).
    pub fn client_addr<'a, I>(&self, peer: SocketAddr, forwarded_for: I) -> ClientAddr
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: DoubleEndedIterator,
    {
        if !self.contains(peer.ip()) {
            return ClientAddr::Direct(peer);
        }
        let entries = forwarded_for
            .into_iter()
            .rev()
            .flat_map(|value| value.rsplit(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|entry| !entry.is_empty());
        let mut client = None;
        for entry in entries.take(MAX_HOPS) {
            let Some(ip) = parse_entry(entry) else { break };
            client = Some(ip);
            if !self.contains(ip) {
                break;
            }
        }
        match client {
            Some(client) => ClientAddr::Forwarded { client, proxy: peer },
            None => ClientAddr::Direct(peer),
        }
    }
}

/// One `X-Forwarded-For` entry: an IP address, IPv4 with a port, or IPv6 in
/// brackets with or without a port (some proxies add the port), canonical.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?;
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests;
