//! A lean WebSocket client for the load generator: the handshake by hand
//! over tokio ([`Client::connect`]), then a minimal reader of the server's
//! (unmasked) frames on a buffer zero-filled once and reused for the whole
//! connection ([`Frames`]). A reading client leaves tokio after the handshake
//! ([`Client::into_parts`]) for a reader thread's epoll loop (see `pool.rs`),
//! which calls [`Frames::read_from`] once per readiness; [`Client`] itself
//! reads through tokio for the few clients that do more (the soak's churn).
//!
//! It replaces tokio-tungstenite, which zero-filled its read buffer before
//! every read and went through a task wake-up, several wakers and a message
//! allocation per message: at 100,000 deliveries/s that made the load
//! generator cost as much CPU as the server it measures.

mod frames;
mod handshake;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::io::unix::AsyncFd;
use tokio::net::TcpSocket;

pub use frames::Frames;
pub use handshake::Upgrade;
use handshake::{base64, parse_response, request, MAX_RESPONSE};

/// splitmix64: masks and keys need only differ, not be secret, here.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut s = crate::load::now_ns() ^ (u64::from(std::process::id()) << 32);
    s ^= COUNTER.fetch_add(1, Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    next_random(&mut s)
}

/// A socket bound to `src`; `rcvbuf`: a small receive buffer and an
/// Ethernet-sized MSS (for clients that stop reading).
pub(crate) fn client_socket(src: IpAddr, rcvbuf: Option<u32>) -> Result<TcpSocket, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("bind {src}: {e}"))?;
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
        // Loopback's 64 KiB segments make the server's send buffer grow past
        // a megabyte; an Ethernet-sized MSS keeps it near what a real network
        // gives, so a client that stops reading fills it within ~50 KiB.
        socket2::SockRef::from(&sock)
            .set_mss(1460)
            .map_err(|e| format!("TCP_MAXSEG: {e}"))?;
    }
    Ok(sock)
}

/// One WebSocket client connection.
pub struct Client {
    fd: AsyncFd<TcpStream>,
    frames: Frames,
    /// Bytes that came with the handshake response and are not processed yet.
    unprocessed: bool,
}

impl Client {
    /// Connects from `src` to `ws` and completes the handshake for `up`.
    /// `rcvbuf`: a small receive buffer and an Ethernet-sized MSS (clients that stop reading).
    pub async fn connect(
        ws: SocketAddr,
        src: IpAddr,
        up: &Upgrade<'_>,
        rcvbuf: Option<u32>,
    ) -> Result<Client, String> {
        let stream = client_socket(src, rcvbuf)?
            .connect(ws)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        // Non-blocking, as tokio left it.
        let stream = stream.into_std().map_err(|e| e.to_string())?;
        // SAFETY: the std::net::TcpStream owns its descriptor, and the AsyncFd owns the stream.
        let fd = unsafe { AsyncFd::register(stream) }.map_err(|e| format!("register: {e}"))?;
        let mut random = seed();
        let key = base64(
            &[
                next_random(&mut random).to_ne_bytes(),
                next_random(&mut random).to_ne_bytes(),
            ]
            .concat(),
        );
        let mut client = Client {
            fd,
            frames: Frames::new(random),
            unprocessed: false,
        };
        client.frames.queue(request(ws, up, &key).as_bytes());
        client.flush().await.map_err(|e| format!("handshake: {e}"))?;
        loop {
            match client.fill().await {
                Ok(0) => return Err("handshake: connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("handshake: {e}")),
            }
            let f = &mut client.frames;
            if let Some(len) =
                parse_response(f.received(), &key, up.protocol).map_err(|e| format!("handshake: {e}"))?
            {
                f.consume(len);
                client.unprocessed = !f.received().is_empty();
                return Ok(client);
            }
            if f.received().len() >= MAX_RESPONSE {
                return Err("handshake: response head too long".into());
            }
        }
    }

    /// The socket (non-blocking, no longer registered with tokio) and the frame
    /// state, bytes that came with the handshake included, for a reader thread.
    pub fn into_parts(self) -> (TcpStream, Frames) {
        (self.fd.into_inner(), self.frames)
    }

    /// Waits until the socket is readable and reads once; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        loop {
            let spare = self.frames.spare();
            let free = spare.len();
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(spare)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < free {
                        // Drained: wait for the next event instead of an EAGAIN read.
                        guard.clear_ready();
                    }
                    self.frames.filled(n);
                    return Ok(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Waits for data and reads it once (bytes that came with the handshake first).
    async fn read(&mut self) -> Result<(), String> {
        if std::mem::take(&mut self.unprocessed) {
            return Ok(());
        }
        match self.fill().await {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes the queued frames (cancel-safe: what was written is dropped from the queue at once).
    async fn flush(&mut self) -> io::Result<()> {
        while self.frames.must_write() {
            let mut guard = self.fd.writable().await?;
            let out = self.frames.queued();
            match guard.try_io(|fd| fd.get_ref().write(out)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => {
                    self.frames.written(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Reads once and handles what came, dropping the messages: `Ok(false)` after the server's Close.
    pub async fn skip(&mut self) -> Result<bool, String> {
        self.read().await?;
        let open = self.frames.process(|_| {})?;
        if self.frames.must_write() {
            self.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(open)
    }

    /// Sends a Close frame (then [`Client::skip`] until `Ok(false)` or an error waits for the reply).
    pub async fn close(&mut self) -> Result<(), String> {
        self.frames.queue_close();
        self.flush().await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::frames::tests::{client_frames, frame};
    use super::frames::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
    use super::handshake::tests::response;
    use super::*;

    /// A server on loopback that accepts one connection, reads the request
    /// head and hands both to `script`; its address and thread.
    pub(crate) fn scripted_server(
        script: impl FnOnce(TcpStream, String) + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // A read the client never answers fails the test instead of hanging it.
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0);
                req.extend_from_slice(&b[..n]);
            }
            script(s, String::from_utf8(req).unwrap());
        });
        (addr, server)
    }

    /// A whole connection against a scripted server on loopback: the message
    /// sent in the same segment as the 101 response, a ping, a Close.
    #[test]
    fn client_against_a_scripted_server() {
        let (addr, server) = scripted_server(|mut s, req| {
            assert!(req.starts_with("GET /echo HTTP/1.1\r\n"), "{req}");
            let key = req
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_owned();
            let mut out = response(&key);
            out.extend(frame(true, OP_TEXT, b"newest"));
            s.write_all(&out).unwrap();
            s.write_all(&frame(true, OP_PING, b"ping!")).unwrap();
            let mut pong = [0u8; 11];
            s.read_exact(&mut pong).unwrap();
            assert_eq!(client_frames(&pong), [(OP_PONG, b"ping!".to_vec())]);
            s.write_all(&frame(true, OP_TEXT, &[b'y'; 200])).unwrap();
            s.write_all(&frame(true, OP_CLOSE, &1000u16.to_be_bytes()))
                .unwrap();
            let mut close = [0u8; 8];
            s.read_exact(&mut close).unwrap();
            assert_eq!(
                client_frames(&close),
                [(OP_CLOSE, 1000u16.to_be_bytes().to_vec())]
            );
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let messages = rt.block_on(async {
            let mut c = Client::connect(addr, "127.0.0.1".parse().unwrap(), &Upgrade::ECHO, None)
                .await
                .unwrap();
            let mut messages = Vec::new();
            loop {
                c.read().await.unwrap();
                let open = c.frames.process(|m| messages.push(m.to_vec())).unwrap();
                if c.frames.must_write() {
                    c.flush().await.unwrap();
                }
                if !open {
                    break;
                }
            }
            messages
        });
        server.join().unwrap();
        assert_eq!(messages, [b"newest".to_vec(), vec![b'y'; 200]]);
    }
}
