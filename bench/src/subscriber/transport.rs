//! A subscriber's transport: connecting over it ([`Subscribe::connect`]) and
//! reading what comes ([`Stream`]), WebSocket frames or events alike, and
//! the payload of a broadcast in either ([`Subscribe::payload`]).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr, TcpStream};

use serde::Serialize;

use super::dialect::Dialect;
use super::envelope::Incoming;
use crate::pool::Step;
use crate::sseclient::{self, Event, Events};
use crate::wsclient::{Client, Frames, Upgrade};

/// What a subscriber connects to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// WebSocket `/echo`: the raw published data in each frame, on `all` (both servers).
    #[default]
    Echo,
    /// WebSocket on a channel's URL: wspush's `/ws/NAME` (envelopes), Nchan's
    /// `/sub/NAME` (`ws+meta.nchan` frames).
    #[value(name = "websocket")]
    WebSocket,
    /// An event stream, as a browser's EventSource reads it: `/events/NAME`
    /// on both servers, resumed with `Last-Event-ID`.
    Sse,
}

impl Transport {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Echo => "echo",
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
        }
    }
}

/// What a subscriber read: a WebSocket message or an event.
#[derive(Debug, Clone, Copy)]
pub enum Received<'a> {
    /// A whole text or binary WebSocket message.
    Frame(&'a [u8]),
    /// An event of a stream.
    Event(Event<'a>),
}

/// A connected subscriber's read side: the frame parser or the event parser.
pub enum Stream {
    /// WebSocket.
    Frames(Frames),
    /// Event stream.
    Events(Events),
}

impl Stream {
    /// Before a reader thread reads on `events` (see [`Frames::before_read`]).
    pub fn before_read(&mut self, sock: &TcpStream, events: u32) -> Option<Step> {
        match self {
            Stream::Frames(f) => f.before_read(sock, events),
            Stream::Events(e) => e.before_read(events),
        }
    }

    /// Reads once from `sock` and hands over every message or event received.
    pub fn read_from(&mut self, sock: &TcpStream, mut on: impl FnMut(Received<'_>)) -> Step {
        match self {
            Stream::Frames(f) => f.read_from(sock, |b| on(Received::Frame(b))),
            Stream::Events(e) => e.read_from(sock, |ev| on(Received::Event(ev))),
        }
    }
}

/// Where and how a subscriber subscribes: the server, its dialect, the transport.
#[derive(Debug, Clone, Copy)]
pub struct Subscribe {
    /// The server's public (WebSocket) port.
    pub addr: SocketAddr,
    /// Its channel interface.
    pub dialect: Dialect,
    /// The transport.
    pub transport: Transport,
}

impl Subscribe {
    /// `/echo` on `addr`: what the broadcast scenarios use.
    pub fn echo(addr: SocketAddr) -> Subscribe {
        Subscribe {
            addr,
            dialect: Dialect::Wspush,
            transport: Transport::Echo,
        }
    }

    /// Connects from `src` to `channel` (ignored for `/echo`), resuming
    /// after `since`. `rcvbuf`: a small receive buffer and an Ethernet-sized
    /// MSS (clients that stop reading). The socket comes back non-blocking.
    pub async fn connect(
        &self,
        src: IpAddr,
        channel: &str,
        since: Option<&str>,
        rcvbuf: Option<u32>,
    ) -> Result<(TcpStream, Stream), String> {
        let d = self.dialect;
        let (target, protocol) = match self.transport {
            Transport::Echo => ("/echo".to_owned(), None),
            Transport::WebSocket => (d.subscribe_target(channel, since), d.protocol()),
            Transport::Sse => {
                let target = d.events_target(channel);
                let (socket, events) = sseclient::connect(self.addr, src, &target, since, rcvbuf).await?;
                return Ok((socket, Stream::Events(events)));
            }
        };
        let up = Upgrade {
            target: &target,
            protocol,
        };
        let (socket, frames) = Client::connect(self.addr, src, &up, rcvbuf).await?.into_parts();
        Ok((socket, Stream::Frames(frames)))
    }

    /// What `r` is, parsed as this server and transport send it.
    pub fn incoming<'a>(&self, r: Received<'a>) -> Result<Incoming<'a>, String> {
        match r {
            Received::Frame(b) => self.dialect.parse(b),
            Received::Event(e) => self.dialect.parse_event(e),
        }
    }

    /// The published data a broadcast message carries; `None` for what is
    /// not a message (a control frame or event, something unparsable).
    pub fn payload<'a>(&self, r: Received<'a>) -> Option<Cow<'a, [u8]>> {
        if let (Transport::Echo, Received::Frame(b)) = (self.transport, r) {
            return Some(Cow::Borrowed(b));
        }
        match self.incoming(r) {
            Ok(Incoming::Message {
                data: Cow::Borrowed(s),
                ..
            }) => Some(Cow::Borrowed(s.as_bytes())),
            Ok(Incoming::Message {
                data: Cow::Owned(s), ..
            }) => Some(Cow::Owned(s.into_bytes())),
            _ => None,
        }
    }
}
