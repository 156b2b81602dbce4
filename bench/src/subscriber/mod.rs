//! How a load-generator subscriber talks to a server: the server's channel
//! interface ([`Dialect`]), what its messages look like ([`Incoming`]), and
//! the transport it subscribes over ([`Transport`]: WebSocket `/echo`, a
//! channel over WebSocket, or an event stream), connected and read the same
//! way by the reader threads ([`Subscribe`], [`Stream`]).

mod dialect;
mod envelope;
mod transport;

pub use dialect::Dialect;
pub use envelope::Incoming;
pub use transport::{Received, Stream, Subscribe, Transport};
