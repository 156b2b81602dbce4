use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use super::*;

/// A request: its connection's id, and a count of the requests alive.
#[derive(Debug)]
struct Item {
    owner: u64,
    alive: Arc<AtomicUsize>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
    }
}

struct FakeQueue(Receiver<Item>);

impl Queue for FakeQueue {
    type Item = Item;
    type Key = u64;

    fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Item>> {
        match self.0.recv_timeout(timeout) {
            Ok(item) => Ok(Some(item)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn owner(item: &Item) -> Option<u64> {
        Some(item.owner)
    }
}

struct Router {
    pickup: Arc<Pickup<FakeQueue>>,
    queue: Sender<Item>,
    alive: Arc<AtomicUsize>,
}

impl Router {
    fn new() -> Router {
        let (queue, rx) = unbounded();
        Router {
            pickup: Arc::new(Pickup::new(FakeQueue(rx))),
            queue,
            alive: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn push(&self, owner: u64) {
        self.alive.fetch_add(1, SeqCst);
        let alive = Arc::clone(&self.alive);
        self.queue.send(Item { owner, alive }).unwrap();
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

#[test]
fn a_thread_alone_takes_its_own_request_and_drops_one_nobody_waits_for() {
    let router = Router::new();
    let ticket = router.pickup.expect(1);
    router.push(7);
    router.push(1);
    let item = router.pickup.take(&ticket, soon(), || false).unwrap();
    assert_eq!(item.owner, 1);
    assert_eq!(router.alive.load(SeqCst), 1, "the request for 7 was dropped");
}

#[test]
fn every_thread_gets_its_own_request_whoever_takes_it_off_the_queue() {
    const THREADS: u64 = 8;
    for round in 0..20 {
        let router = Router::new();
        let tickets: Vec<_> = (0..THREADS).map(|id| router.pickup.expect(id)).collect();
        thread::scope(|s| {
            let takers: Vec<_> = tickets
                .iter()
                .map(|ticket| s.spawn(|| router.pickup.take(ticket, soon(), || false).unwrap().owner))
                .collect();
            // Each round a different order, so the taker is often not the owner.
            for i in 0..THREADS {
                router.push((i * 3 + round) % THREADS);
            }
            for (id, taker) in takers.into_iter().enumerate() {
                assert_eq!(taker.join().unwrap(), id as u64);
            }
        });
    }
}

#[test]
fn a_request_that_arrives_before_its_owner_waits_is_kept_for_it() {
    let router = Router::new();
    let early = router.pickup.expect(1);
    let late = router.pickup.expect(2);
    router.push(2);
    router.push(1);
    assert_eq!(router.pickup.take(&early, soon(), || false).unwrap().owner, 1);
    assert_eq!(router.alive.load(SeqCst), 1, "2's request waits in its place");
    assert_eq!(router.pickup.take(&late, soon(), || false).unwrap().owner, 2);
}

#[test]
fn dropping_a_ticket_drops_the_request_left_for_it() {
    let router = Router::new();
    let gone = router.pickup.expect(2);
    let ticket = router.pickup.expect(1);
    router.push(2);
    router.push(1);
    router.pickup.take(&ticket, soon(), || false).unwrap();
    assert_eq!(router.alive.load(SeqCst), 1);
    drop(gone);
    assert_eq!(router.alive.load(SeqCst), 0);
}

#[test]
fn waiting_ends_when_the_check_says_stop_or_at_the_deadline() {
    let router = Router::new();
    let ticket = router.pickup.expect(1);
    let stopped = router.pickup.take(&ticket, soon(), || true);
    assert!(matches!(stopped, Err(TakeError::Stopped)), "{stopped:?}");
    let late = router.pickup.take(&ticket, Instant::now(), || false);
    assert!(matches!(late, Err(TakeError::TimedOut)), "{late:?}");
    drop(router.queue);
    let broken = router.pickup.take(&ticket, soon(), || false);
    assert!(matches!(broken, Err(TakeError::Queue(_))), "{broken:?}");
}
