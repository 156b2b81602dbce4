//! The nodes this node has heard announce themselves, for `/cluster`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a node says about itself in `hello` and `here`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its WebSocket URL, as bound.
    #[serde(default)]
    pub ws: String,
    /// Its HTTP side port URL, as bound.
    #[serde(default)]
    pub http: String,
    /// Clients connected to it when it announced.
    #[serde(default)]
    pub clients: u64,
}

/// One node as `/cluster` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberView {
    pub id: String,
    pub ws: String,
    pub http: String,
    /// Clients connected to it when it last announced.
    pub clients: u64,
    /// Milliseconds since its last announcement reached this node.
    pub last_seen_ms: u64,
}

struct Member {
    boot: u64,
    info: MemberInfo,
    last_seen: Instant,
}

/// Nodes by id, with when each was last heard from.
#[derive(Default)]
pub struct Members {
    nodes: HashMap<String, Member>,
    warned_boots: HashSet<u64>,
}

impl Members {
    /// Records an announcement. Returns true when `node` was already seen with
    /// another live boot (two processes with one id), the first time only.
    pub fn saw(&mut self, node: &str, boot: u64, info: MemberInfo, window: Duration) -> bool {
        let now = Instant::now();
        let clash = self
            .nodes
            .get(node)
            .is_some_and(|m| m.boot != boot && now.duration_since(m.last_seen) < window / 6)
            && self.warned_boots.insert(boot);
        self.nodes.insert(
            node.to_owned(),
            Member {
                boot,
                info,
                last_seen: now,
            },
        );
        clash
    }

    /// Forgets a node that said goodbye (only that boot of it).
    pub fn left(&mut self, node: &str, boot: u64) {
        if self.nodes.get(node).is_some_and(|m| m.boot == boot) {
            self.nodes.remove(node);
        }
    }

    /// Nodes heard from within `window`, by id; older ones are forgotten.
    pub fn list(&mut self, window: Duration) -> Vec<MemberView> {
        let now = Instant::now();
        self.nodes
            .retain(|_, m| now.duration_since(m.last_seen) <= window);
        let mut list: Vec<MemberView> = self
            .nodes
            .iter()
            .map(|(id, m)| MemberView {
                id: id.clone(),
                ws: m.info.ws.clone(),
                http: m.info.http.clone(),
                clients: m.info.clients,
                last_seen_ms: now.duration_since(m.last_seen).as_millis() as u64,
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    #[test]
    fn lists_by_id_and_forgets_who_left() {
        let mut m = Members::default();
        assert!(!m.saw("b", 1, MemberInfo::default(), WINDOW));
        assert!(!m.saw("a", 2, MemberInfo::default(), WINDOW));
        let ids: Vec<_> = m.list(WINDOW).into_iter().map(|v| v.id).collect();
        assert_eq!(ids, ["a", "b"]);
        m.left("b", 99);
        assert_eq!(m.list(WINDOW).len(), 2, "another boot's bye is ignored");
        m.left("b", 1);
        assert_eq!(m.list(WINDOW).len(), 1);
        assert!(m.list(Duration::ZERO).len() <= 1);
    }

    #[test]
    fn two_live_boots_with_one_id_clash_once() {
        let mut m = Members::default();
        assert!(!m.saw("a", 1, MemberInfo::default(), WINDOW));
        assert!(m.saw("a", 2, MemberInfo::default(), WINDOW));
        assert!(m.saw("a", 1, MemberInfo::default(), WINDOW));
        assert!(
            !m.saw("a", 2, MemberInfo::default(), WINDOW),
            "each boot is warned about once"
        );
        assert!(!m.saw("a", 1, MemberInfo::default(), WINDOW));
    }
}
