//! Which browser pages may open a WebSocket: the `Origin` check.

/// The `--allowed-origin` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// `*`: any origin (the tutorial's `CheckOrigin: return true`).
    Any,
    /// Only these origins (`scheme://host[:port]`, compared without case).
    Listed(Vec<String>),
    /// No list given: origins whose host is the host the client connected to, on any port.
    SameHost,
}

impl OriginPolicy {
    /// The policy for the `--allowed-origin` values given.
    pub fn from_flags(origins: &[String]) -> OriginPolicy {
        if origins.iter().any(|o| o.trim() == "*") {
            OriginPolicy::Any
        } else if origins.is_empty() {
            OriginPolicy::SameHost
        } else {
            OriginPolicy::Listed(origins.iter().map(|o| normalise(o)).collect())
        }
    }

    /// Whether a handshake with this `Origin` (if any) and `Host` may proceed.
    /// Clients that send no `Origin` are not browsers and are always allowed.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::Listed(list) => list.contains(&normalise(origin)),
            OriginPolicy::SameHost => {
                let origin_host = origin.split_once("://").map(|(_, rest)| host_of(rest));
                match (origin_host, host.map(host_of)) {
                    (Some(a), Some(b)) => !a.is_empty() && a.eq_ignore_ascii_case(b),
                    _ => false,
                }
            }
        }
    }
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The host part of `host[:port][/path]`, IPv6 brackets kept.
fn host_of(authority: &str) -> &str {
    let authority = authority.split('/').next().unwrap_or("");
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_allows_any_port_and_refuses_other_hosts() {
        let p = OriginPolicy::from_flags(&[]);
        assert!(p.allows(Some("http://127.0.0.1:8081"), Some("127.0.0.1:8080")));
        assert!(p.allows(Some("http://[::1]:8081"), Some("[::1]:8080")));
        assert!(p.allows(None, Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("http://evil.example"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("null"), Some("127.0.0.1:8080")));
    }

    #[test]
    fn listed_origins_match_exactly_and_star_allows_all() {
        let p = OriginPolicy::from_flags(&["https://app.example.com/".into()]);
        assert!(p.allows(Some("https://APP.example.com"), Some("x")));
        assert!(!p.allows(Some("https://app.example.com:444"), Some("x")));
        assert!(OriginPolicy::from_flags(&["*".into()]).allows(Some("http://any"), None));
    }
}
