//! The event stream of one connection, parsed as the HTML standard's
//! EventSource does: lines ended by LF or CRLF; `event:`, `data:` and `id:`
//! fields (one space after the colon dropped); a blank line dispatches the
//! event (none when it had no `data:`); comments (`:` lines) and other fields
//! ignored. The last `id:` seen stays the last event id until another comes,
//! as EventSource's `lastEventId` does. A lone CR as a line end (which
//! neither server sends) is not handled.

use std::net::TcpStream;

use crate::pool::{Step, HANGUP};
use crate::recvbuf::RecvBuf;

/// The longest line or event accepted.
const MAX_EVENT: usize = 16 << 20;

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Its type: `message` unless an `event:` line named another.
    pub kind: &'a str,
    /// The last event id at its dispatch (empty when none was ever given).
    pub id: &'a str,
    /// Its `data:` lines, joined with LF.
    pub data: &'a str,
}

/// A connection's receive buffer and parser state, apart from the socket.
pub struct Events {
    recv: RecvBuf,
    /// The event being read.
    kind: String,
    data: String,
    has_data: bool,
    last_id: String,
    /// Comment lines read (`: ping` keep-alives, Nchan's `: hi`).
    pub comments: u64,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    /// A parser with an empty buffer.
    pub fn new() -> Events {
        Events {
            recv: RecvBuf::default(),
            kind: String::new(),
            data: String::new(),
            has_data: false,
            last_id: String::new(),
            comments: 0,
        }
    }

    /// The receive buffer (the response head is read into it too).
    pub(super) fn recv(&mut self) -> &mut RecvBuf {
        &mut self.recv
    }

    /// Parses every complete line received, handing each dispatched event to `on_event`.
    pub fn process(&mut self, mut on_event: impl FnMut(Event<'_>)) -> Result<(), String> {
        while let Some(nl) = self.recv.received().iter().position(|&b| b == b'\n') {
            let taken = self.recv.take(nl + 1);
            let mut line = self.recv.at(taken.start..taken.end - 1);
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = std::str::from_utf8(line).map_err(|_| "a line that is not UTF-8".to_owned())?;
            if line.is_empty() {
                self.dispatch(&mut on_event);
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some(("", _)) => {
                    self.comments += 1;
                    continue;
                }
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => value.clone_into(&mut self.kind),
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                    self.has_data = true;
                }
                "id" if !value.contains('\0') => value.clone_into(&mut self.last_id),
                _ => {}
            }
            if self.data.len() > MAX_EVENT {
                return Err(format!("an event over {MAX_EVENT} bytes"));
            }
        }
        if self.recv.received().len() > MAX_EVENT {
            return Err(format!("a line over {MAX_EVENT} bytes"));
        }
        Ok(())
    }

    /// The end of an event: hands it over if it had data, and starts the next.
    fn dispatch(&mut self, on_event: &mut impl FnMut(Event<'_>)) {
        if self.has_data {
            self.data.pop(); // the LF after the last data line
            on_event(Event {
                kind: if self.kind.is_empty() {
                    "message"
                } else {
                    &self.kind
                },
                id: &self.last_id,
                data: &self.data,
            });
        }
        self.kind.clear();
        self.data.clear();
        self.has_data = false;
    }

    /// Reads once from `sock` (non-blocking) and handles the events received.
    pub fn read_from(&mut self, sock: &TcpStream, on_event: impl FnMut(Event<'_>)) -> Step {
        match self.recv.read_from(sock, 0) {
            Ok(filled) => filled.step(self.process(on_event).is_ok()),
            Err(step) => step,
        }
    }

    /// Before a reader thread reads on `events`: an event stream client never
    /// writes, so only a readable (or hung-up) socket needs a read.
    pub fn before_read(&self, events: u32) -> Option<Step> {
        (events & (libc::EPOLLIN as u32 | HANGUP) == 0).then_some(Step::Drained)
    }
}
