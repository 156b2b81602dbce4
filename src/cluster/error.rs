//! What can go wrong in a cluster: setting it up, and publishing through it.

use crate::publish::PublishError;

use super::{MAX_NODE_ID, REPLY_DEADLINE};

/// Why the cluster's settings cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--redis: {0}")]
    Url(#[source] redis::RedisError),
    #[error("--redis-channel must be non-empty, without spaces")]
    Channel,
    #[error("--node-id {0:?} must be 1 to {MAX_NODE_ID} characters out of A-Z a-z 0-9 . _ -")]
    NodeId(String),
    #[error("no random id from the operating system: {0}")]
    Random(getrandom::Error),
}

/// Why a publish through the cluster was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A link is down, or Redis refused the command, or the log is gone.
    #[error("redis unavailable")]
    RedisUnavailable,
    /// Logged, but this node's reader did not deliver it in time.
    #[error(
        "redis unavailable: the message was logged as {id} but this node did not read it back \
         within {REPLY_DEADLINE:?}; it may still be delivered"
    )]
    NotReturned { id: String },
    #[error("no client with id {0:?}")]
    NoClient(String),
    #[error("no client with id {id:?}: no node {node:?} is in the cluster")]
    NoNode { id: String, node: String },
    #[error(
        "node {node:?} did not answer within {REPLY_DEADLINE:?}; the message may still reach client {id:?}"
    )]
    NoAnswer { node: String, id: String },
}

impl From<ClusterError> for PublishError {
    fn from(e: ClusterError) -> PublishError {
        match e {
            ClusterError::NoClient(id) => PublishError::NoClient(id),
            ClusterError::NoNode { .. } => PublishError::NotFound(Box::new(e)),
            ClusterError::RedisUnavailable
            | ClusterError::NotReturned { .. }
            | ClusterError::NoAnswer { .. } => PublishError::Unavailable(Box::new(e)),
        }
    }
}
