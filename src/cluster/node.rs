//! A node's name: checked, or random by default.

use std::sync::Arc;

use super::SetupError;

/// Longest node id.
pub const MAX_NODE_ID: usize = 64;

/// Checks a `--node-id`: 1 to 64 characters out of `A-Z a-z 0-9 . _ -`.
pub fn validate_node_id(id: &str) -> Result<(), SetupError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_NODE_ID || !id.chars().all(ok_char) {
        return Err(SetupError::NodeId(id.to_owned()));
    }
    Ok(())
}

/// This node's id: `given` (`--node-id`), checked, or a random one.
pub fn node_id(given: Option<&str>) -> Result<Arc<str>, SetupError> {
    let id = match given {
        Some(id) => id.to_owned(),
        None => random_node_id()?,
    };
    validate_node_id(&id)?;
    Ok(id.into())
}

/// A fresh node id: 8 hex digits.
fn random_node_id() -> Result<String, SetupError> {
    Ok(format!("{:08x}", getrandom::u32().map_err(SetupError::Random)?))
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
    fn random_ids_differ() {
        assert_ne!(random_node_id().unwrap(), random_node_id().unwrap());
    }
}
