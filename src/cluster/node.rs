//! A node's name: checked, random by default, and interned so client ids stay `Copy`.

use std::collections::BTreeSet;
use std::fmt;

use parking_lot::Mutex;

use crate::config::Config;

/// Longest node id.
pub const MAX_NODE_ID: usize = 64;

/// A node's id, interned for the life of the process so client ids stay `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(&'static str);

impl NodeName {
    /// The one shared copy of `name` (each distinct name is kept once, forever).
    pub fn intern(name: &str) -> NodeName {
        static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
        let mut names = NAMES.lock();
        if let Some(known) = names.get(name) {
            return NodeName(known);
        }
        let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(kept);
        NodeName(kept)
    }

    /// The id as text.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Checks a `--node-id`: 1 to 64 characters out of `A-Z a-z 0-9 . _ -`.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_NODE_ID || !id.chars().all(ok_char) {
        return Err(format!(
            "--node-id {id:?} must be 1 to {MAX_NODE_ID} characters out of A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

/// This node's id: `--node-id`, checked, or a random one.
pub fn node_name(config: &Config) -> Result<NodeName, String> {
    let id = match &config.node_id {
        Some(id) => id.clone(),
        None => random_node_id().map_err(|e| format!("no random node id: {e}"))?,
    };
    validate_node_id(&id)?;
    Ok(NodeName::intern(&id))
}

/// A random 64-bit number from the operating system.
pub fn random_u64() -> Result<u64, getrandom::Error> {
    getrandom::u64()
}

/// A fresh node id: 8 hex digits.
pub fn random_node_id() -> Result<String, getrandom::Error> {
    Ok(format!("{:08x}", getrandom::u32()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(validate_node_id("node-a.1_x").is_ok());
        assert!(validate_node_id(&random_node_id().unwrap()).is_ok());
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(MAX_NODE_ID + 1)] {
            assert!(validate_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_interned_once() {
        let a = NodeName::intern("intern-test");
        let b = NodeName::intern(&String::from("intern-test"));
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a.to_string(), "intern-test");
    }

    #[test]
    fn client_ids_name_their_node() {
        use crate::client::ClientId;
        let node = NodeName::intern("node-b");
        assert_eq!(ClientId::on(node, 7).to_string(), "node-b-7");
        assert_eq!(ClientId::local(7).to_string(), "7");
        assert_eq!(ClientId::parse_parts("node-b-7"), Some((Some("node-b"), 7)));
        assert_eq!(ClientId::parse_parts("7"), Some((None, 7)));
        for bad in ["", "-7", "node-", "node-x", "node-+7", "x"] {
            assert_eq!(ClientId::parse_parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_u64().unwrap(), random_u64().unwrap());
    }
}
