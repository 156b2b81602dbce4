//! The refuser thread: answers 503 to connections the acceptor cannot take.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::http_error::error_response;
use crate::threads::{Role, ThreadSpawner};

/// Connections waiting for a 503; more than this are simply closed.
const REFUSE_BACKLOG: usize = 256;
/// How long the refuser waits for a request before answering anyway.
const REFUSE_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// The acceptor's end: hands a connection over with the reason for its 503.
pub struct Refuse(Sender<(TcpStream, &'static str)>);

impl Refuse {
    pub fn send(&self, stream: TcpStream, reason: &'static str) {
        let _ = self.0.try_send((stream, reason));
    }
}

/// Starts the refuser; it ends when the `Refuse` end is dropped.
pub fn start(spawner: &ThreadSpawner) -> io::Result<(Refuse, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::bounded(REFUSE_BACKLOG);
    let thread = spawner.spawn(Role::Service, "refuser".into(), move || refuse_all(&rx))?;
    Ok((Refuse(tx), thread))
}

/// Reads each refused connection's request, then answers 503.
fn refuse_all(queue: &Receiver<(TcpStream, &'static str)>) {
    for (stream, reason) in queue {
        let _ = stream.set_read_timeout(Some(REFUSE_READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REFUSE_READ_TIMEOUT));
        read_request_head(&stream);
        let response = error_response(503, "Service Unavailable", reason, "retry-after: 1\r\n");
        let _ = (&stream).write_all(response.as_bytes());
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// Reads until the end of the request head, a limit, or the timeout, so that
/// closing the socket does not reset it under the client's response.
fn read_request_head(mut stream: &TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}
