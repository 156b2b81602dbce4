//! The pod list that `/pods` serves and `/sendpods` broadcasts (the tutorial's Kubernetes demo).

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::frame::PayloadKind;
use crate::publish::Payload;

/// The tutorial's three pods, served when no `--pods` file is given.
pub const DEFAULT_PODS_JSON: &str = r#"[{"PodName":"pod-101","PodImage":"nginx:1.18","PodNode":"node1"},{"PodName":"pod-76xs","PodImage":"alpine:3.12","PodNode":"node2"},{"PodName":"pod-F#ff3","PodImage":"tomcat:8","PodNode":"node3"}]"#;

/// One pod, with the tutorial's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    #[serde(rename = "PodName")]
    pub name: String,
    /// The container image it runs.
    #[serde(rename = "PodImage")]
    pub image: String,
    /// The node it runs on.
    #[serde(rename = "PodNode")]
    pub node: String,
}

/// The pod list, validated and encoded once: as JSON text and as a ready text frame.
#[derive(Debug, Clone)]
pub struct PodList {
    /// Compact JSON, as `/pods` returns it.
    pub json: String,
    /// The same JSON as a text message, its frame encoded once, as `/sendpods` publishes it.
    pub payload: Payload,
}

/// Why a pod list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    /// The file could not be read.
    #[error("cannot read pod list {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The file is not a JSON array of pods.
    #[error("invalid pod list {path}: {source} (expected a JSON array of {{\"PodName\",\"PodImage\",\"PodNode\"}} objects)")]
    Invalid { path: String, source: serde_json::Error },
}

impl PodList {
    pub fn builtin() -> PodList {
        PodList::from_json(DEFAULT_PODS_JSON, "built-in")
            .unwrap_or_else(|_| unreachable!("the built-in pod list is valid"))
    }

    /// Loads and validates a list from `path`.
    pub fn load(path: &Path) -> Result<PodList, PodsError> {
        let shown = path.display().to_string();
        let text = fs::read_to_string(path).map_err(|source| PodsError::Read {
            path: shown.clone(),
            source,
        })?;
        PodList::from_json(&text, &shown)
    }

    fn from_json(text: &str, origin: &str) -> Result<PodList, PodsError> {
        let pods: Vec<Pod> = serde_json::from_str(text).map_err(|source| PodsError::Invalid {
            path: origin.to_owned(),
            source,
        })?;
        let json = serde_json::to_string(&pods).map_err(|source| PodsError::Invalid {
            path: origin.to_owned(),
            source,
        })?;
        let payload = Payload::encoded(PayloadKind::Json, json.as_bytes());
        Ok(PodList { json, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_round_trips_to_the_tutorial_bytes() {
        assert_eq!(PodList::builtin().json, DEFAULT_PODS_JSON);
    }

    #[test]
    fn a_pod_missing_a_field_is_refused() {
        assert!(PodList::from_json(r#"[{"PodName":"x","PodImage":"y"}]"#, "t").is_err());
        assert!(PodList::from_json(r#"{"PodName":"x"}"#, "t").is_err());
    }
}
