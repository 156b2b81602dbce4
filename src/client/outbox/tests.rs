//! The backlog path against a scripted socket: partial writes, the handoff
//! between writer thread and direct writes, order, the two bounds, the last
//! frame, and a kill while a write is blocked.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;

use super::mock::{Path, ScriptedSocket};
use super::{Framing, Offer, Outbox, OutboxConfig, FINISHED};
use crate::frame::{self, EncodedFrame};
use crate::stats::Stats;
use crate::threads::ThreadSpawner;
use tungstenite::protocol::frame::coding::CloseCode;

const DEADLINE: Duration = Duration::from_secs(20);
const UNBOUNDED: usize = usize::MAX;

struct Fixture {
    socket: Arc<ScriptedSocket>,
    outbox: Arc<Outbox<ScriptedSocket>>,
    stats: Arc<Stats>,
}

impl Fixture {
    fn new(room: usize, queue_len: usize, queue_bytes: usize) -> Fixture {
        Fixture::framed(room, queue_len, queue_bytes, Framing::WebSocket)
    }

    fn framed(room: usize, queue_len: usize, queue_bytes: usize, framing: Framing) -> Fixture {
        let socket = Arc::new(ScriptedSocket::with_room(room));
        let stats = Arc::new(Stats::default());
        let config = Arc::new(OutboxConfig {
            queue_len,
            queue_bytes,
            write_timeout: Duration::from_secs(10),
            spawner: ThreadSpawner::new(256 * 1024, 256 * 1024, Counter::default()),
            stats: Arc::clone(&stats),
        });
        let outbox = Arc::new(Outbox::new(Arc::clone(&socket), config, framing, "7".into()));
        Fixture {
            socket,
            outbox,
            stats,
        }
    }

    /// Waits until the writer thread is blocked in a write.
    fn wait_writer_blocked(&self) {
        wait_until("the writer blocked on the full socket", || {
            self.socket.blocked() == 1
        });
    }

    /// Waits until the backlog is written and the writer thread has ended
    /// (it held the only other reference to the outbox).
    fn wait_drained(&self) {
        wait_until("the backlog drained and the writer ended", || {
            self.outbox.pending() == 0 && Arc::strong_count(&self.outbox) == 1
        });
    }

    /// Waits until the writer thread has ended.
    fn wait_writer_gone(&self) {
        wait_until("the writer ended", || Arc::strong_count(&self.outbox) == 1);
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// `len` bytes that say which frame they belong to and where in it they are.
fn numbered(n: usize, len: usize) -> EncodedFrame {
    (0..len).map(|i| (n * 31 + i * 7) as u8).collect()
}

fn concat(frames: &[&EncodedFrame]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.iter().copied()).collect()
}

fn slow_close() -> Vec<u8> {
    frame::close(CloseCode::Policy, "slow consumer").to_vec()
}

#[test]
fn a_partial_direct_write_is_resumed_by_the_writer_at_its_offset() {
    let f = Fixture::new(10, UNBOUNDED, UNBOUNDED);
    let (a, b) = (numbered(1, 100), numbered(2, 50));
    assert_eq!(f.outbox.offer(a.clone()), Offer::Queued);
    assert_eq!((f.outbox.pending(), f.outbox.pending_bytes()), (1, 90));
    f.wait_writer_blocked();
    assert_eq!(f.outbox.offer(b.clone()), Offer::Queued);
    assert_eq!((f.outbox.pending(), f.outbox.pending_bytes()), (2, 140));

    f.socket.limit_writes_to(40);
    f.socket.open(1000);
    f.wait_drained();
    assert_eq!(f.socket.out(), concat(&[&a, &b]));
    assert_eq!(f.outbox.pending_bytes(), 0);
    let writes = f.socket.writes();
    assert_eq!(writes[0], (Path::Now, 10));
    assert!(
        writes[1..].iter().all(|(path, _)| *path == Path::Blocking),
        "{writes:?}"
    );
    assert!(writes.len() > 3, "the rest went out in pieces: {writes:?}");
}

#[test]
fn after_the_backlog_drains_the_next_offer_is_a_direct_write() {
    let f = Fixture::new(0, UNBOUNDED, UNBOUNDED);
    let (a, b, c) = (numbered(1, 300), numbered(2, 300), numbered(3, 300));
    assert_eq!(f.outbox.offer(a.clone()), Offer::Queued);
    f.wait_writer_blocked();
    assert_eq!(f.outbox.offer(b.clone()), Offer::Queued);
    f.socket.open(600 + 300);
    f.wait_drained();
    assert!(!f.outbox.writer_running.load(SeqCst));

    assert_eq!(
        f.outbox.offer(c.clone()),
        Offer::Written,
        "no writer thread for a socket with room"
    );
    assert_eq!(Arc::strong_count(&f.outbox), 1, "and none was started");
    assert_eq!(f.socket.writes().last(), Some(&(Path::Now, 300)));
    assert_eq!(f.socket.out(), concat(&[&a, &b, &c]));
}

/// A tiny deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn concurrent_offers_keep_their_order_through_direct_writes_and_the_writer() {
    const THREADS: usize = 4;
    const FRAMES: usize = 400;
    let f = Fixture::new(0, UNBOUNDED, UNBOUNDED);
    f.socket.limit_writes_to(1500);
    // The registry lock: it orders offers, the outbox must keep that order.
    let expected = Arc::new(Mutex::new(Vec::new()));
    let offerers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (outbox, expected) = (Arc::clone(&f.outbox), Arc::clone(&expected));
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9 + t as u64);
                for i in 0..FRAMES {
                    let frame = numbered(t * FRAMES + i, 1 + rng.below(3000));
                    let mut expected = expected.lock();
                    assert!(outbox.offer(frame.clone()).accepted());
                    expected.extend_from_slice(&frame);
                    drop(expected);
                    if i % 50 == 49 {
                        // Let the writer catch up now and then, so it hands back.
                        wait_until("the backlog drained", || outbox.pending() == 0);
                    }
                }
            })
        })
        .collect();
    // The peer: reads in bursts whenever its socket buffer is nearly full,
    // sometimes enough for the writer to drain and direct writes to succeed.
    let mut rng = Rng(42);
    while !offerers.iter().all(|o| o.is_finished()) {
        if f.socket.room() < 4096 {
            f.socket.open(1 + rng.below(20_000));
        }
        thread::yield_now();
    }
    for offerer in offerers {
        offerer.join().expect("offerer");
    }
    f.socket.open(usize::MAX / 2);
    f.wait_drained();
    assert!(
        f.socket.out() == *expected.lock(),
        "bytes out differ from bytes offered"
    );

    let writes = f.socket.writes();
    let handoffs = writes
        .windows(2)
        .filter(|w| w[0].0 == Path::Blocking && w[1].0 == Path::Now)
        .count();
    assert!(
        handoffs > 0,
        "the writer handed back to direct writes at least once"
    );
    assert!(writes.iter().any(|(path, _)| *path == Path::Blocking));
}

#[test]
fn over_the_frame_bound_the_client_is_dropped_as_slow() {
    let f = Fixture::new(0, 3, UNBOUNDED);
    for n in 0..3 {
        assert_eq!(f.outbox.offer(numbered(n, 10)), Offer::Queued);
    }
    assert_eq!(f.outbox.offer(numbered(3, 10)), Offer::Full);
    assert_eq!(f.outbox.offer(numbered(4, 10)), Offer::Closed);
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
    assert!(f.outbox.dropped_slow());
    assert_eq!(
        f.outbox.ended_reason(),
        Some("slow consumer (queue over 3 frames)")
    );
    assert!(f.socket.shutdowns().contains(&Shutdown::Both));
    f.wait_writer_gone();
    assert!(f.socket.out().is_empty());
}

#[test]
fn one_frame_of_any_size_is_taken_when_nothing_waits_but_not_past_the_byte_bound() {
    let f = Fixture::new(0, UNBOUNDED, 100);
    assert_eq!(f.outbox.offer(numbered(1, 1000)), Offer::Queued, "nothing waited");
    assert_eq!(f.outbox.offer(numbered(2, 1)), Offer::Full);
    assert_eq!(
        f.outbox.ended_reason(),
        Some("slow consumer (queue over 100 bytes)")
    );
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
}

#[test]
fn one_frame_of_any_size_is_queued_when_nothing_waits_and_a_direct_write_is_under_way() {
    let f = Fixture::new(0, UNBOUNDED, 100);
    // Another thread holds the write lock (a direct write of its own): the
    // offer goes to the queue, and is taken as nothing is pending yet.
    let writing = f.outbox.write.lock();
    assert_eq!(f.outbox.offer(numbered(1, 1000)), Offer::Queued);
    drop(writing);
    assert_eq!(f.outbox.offer(numbered(2, 1)), Offer::Full);
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
}

#[test]
fn the_byte_bound_counts_queued_frames_and_the_unwritten_rest_of_a_partial_one() {
    let f = Fixture::new(30, UNBOUNDED, 100);
    assert_eq!(f.outbox.offer(numbered(1, 80)), Offer::Queued);
    assert_eq!(f.outbox.pending_bytes(), 50, "30 of 80 written");
    assert_eq!(
        f.outbox.offer(numbered(2, 50)),
        Offer::Queued,
        "exactly at the bound"
    );
    assert_eq!(f.outbox.offer(numbered(3, 1)), Offer::Full);
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
    // Mid-frame: no Close can be put on the wire.
    f.wait_writer_gone();
    assert_eq!(f.socket.out(), numbered(1, 80)[..30].to_vec());
}

#[test]
fn a_stalled_write_is_a_slow_consumer_and_gets_a_close_at_a_frame_boundary() {
    let f = Fixture::new(0, UNBOUNDED, UNBOUNDED);
    assert_eq!(f.outbox.offer(numbered(1, 100)), Offer::Queued);
    f.wait_writer_blocked();
    // The write timeout passes; then the peer reads a little, enough for the Close.
    f.socket.stall(64);
    f.wait_writer_gone();
    assert_eq!(
        f.outbox.ended_reason(),
        Some("slow consumer (a write blocked for 10.0 s)")
    );
    assert!(f.outbox.dropped_slow());
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
    assert_eq!(
        f.socket.out(),
        slow_close(),
        "nothing of the frame was written: room for the Close"
    );
    assert_eq!(f.outbox.offer(numbered(2, 1)), Offer::Closed);
}

#[test]
fn a_write_stalled_mid_frame_ends_without_a_close() {
    let f = Fixture::new(10, UNBOUNDED, UNBOUNDED);
    let a = numbered(1, 100);
    assert_eq!(f.outbox.offer(a.clone()), Offer::Queued);
    f.wait_writer_blocked();
    f.socket.stall(64);
    f.wait_writer_gone();
    assert_eq!(f.stats.slow_clients_dropped.get(), 1);
    assert_eq!(
        f.socket.out(),
        a[..10].to_vec(),
        "a Close inside a frame would corrupt it"
    );
    assert!(f.socket.shutdowns().contains(&Shutdown::Both));
}

#[test]
fn a_close_is_the_last_frame_written() {
    let f = Fixture::new(0, UNBOUNDED, UNBOUNDED);
    let (a, b) = (numbered(1, 200), numbered(2, 200));
    let close = frame::close(CloseCode::Away, "going away");
    assert_eq!(f.outbox.offer(a.clone()), Offer::Queued);
    assert_eq!(f.outbox.offer(b.clone()), Offer::Queued);
    assert!(f.outbox.close(close.clone()));
    assert!(f.outbox.is_closing());
    assert_eq!(f.outbox.offer(numbered(3, 10)), Offer::Closed);
    assert!(!f.outbox.close(close.clone()), "one Close only");

    f.socket.open(10_000);
    f.wait_drained();
    assert_eq!(f.socket.out(), concat(&[&a, &b, &close]));
    assert_eq!(f.socket.shutdowns(), [Shutdown::Write]);
    assert_eq!(f.outbox.phase.load(SeqCst), FINISHED);
    assert_eq!(f.stats.slow_clients_dropped.get(), 0);
}

#[test]
fn a_kill_during_a_backlog_ends_the_writer_and_refuses_what_follows() {
    let f = Fixture::new(10, UNBOUNDED, UNBOUNDED);
    let a = numbered(1, 100);
    assert_eq!(f.outbox.offer(a.clone()), Offer::Queued);
    assert_eq!(f.outbox.offer(numbered(2, 100)), Offer::Queued);
    f.wait_writer_blocked();
    f.outbox.kill();
    f.wait_writer_gone();
    assert_eq!(f.outbox.offer(numbered(3, 10)), Offer::Closed);
    f.socket.open(10_000);
    assert_eq!(f.socket.out(), a[..10].to_vec(), "nothing written after the kill");
    assert!(f.socket.shutdowns().iter().all(|s| *s == Shutdown::Both));
    assert!(!f.outbox.dropped_slow(), "a kill is not a slow consumer");
    assert_eq!(f.stats.slow_clients_dropped.get(), 0);
}

#[test]
fn a_failed_direct_write_kills_the_socket() {
    let f = Fixture::new(100, UNBOUNDED, UNBOUNDED);
    f.socket.fail_with(io::ErrorKind::ConnectionReset);
    assert_eq!(f.outbox.offer(numbered(1, 10)), Offer::Failed);
    assert!(f.outbox.is_closing());
    assert_eq!(f.outbox.offer(numbered(2, 10)), Offer::Closed);
    assert_eq!(f.socket.shutdowns(), [Shutdown::Both]);
}

#[test]
fn an_event_stream_ends_with_its_own_bytes_and_shuts_both_sides() {
    // The last bytes shut both sides: that is what wakes an event stream's reader.
    let f = Fixture::framed(10_000, UNBOUNDED, UNBOUNDED, Framing::EventStream);
    let (a, end) = (numbered(1, 100), numbered(2, 20));
    assert_eq!(f.outbox.offer(a.clone()), Offer::Written);
    assert!(f.outbox.close(end.clone()));
    assert_eq!(f.socket.out(), concat(&[&a, &end]));
    assert_eq!(f.socket.shutdowns(), [Shutdown::Both]);

    // A slow consumer at an event boundary is told so in a comment, not a Close frame.
    let slow = Fixture::framed(0, UNBOUNDED, UNBOUNDED, Framing::EventStream);
    assert_eq!(slow.outbox.offer(numbered(1, 100)), Offer::Queued);
    slow.wait_writer_blocked();
    slow.socket.stall(64);
    slow.wait_writer_gone();
    assert!(slow.outbox.dropped_slow());
    assert_eq!(slow.socket.out(), crate::sse::SLOW_CONSUMER);
}

/// Every connection has an outbox: keep it small (152 bytes on 64-bit, 2026-12-02).
#[cfg(target_pointer_width = "64")]
#[test]
fn an_outbox_stays_small() {
    assert!(std::mem::size_of::<Outbox<std::net::TcpStream>>() <= 152);
}
