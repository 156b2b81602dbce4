//! Concurrent publishers: 4 threads × 200 `/sendall` calls reach 20 clients, and every client sees the same sequence of all 800 messages.
//! The same with 3,100 clients, enough for each broadcast to be split over fan-out threads.

mod support;

use std::collections::HashSet;
use std::thread;

use support::TestServer;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 200;
const CLIENTS: usize = 20;

/// Enough clients for three shards (1,024 or more each) with `--fanout-threads 4`.
const SHARDED_CLIENTS: usize = 3_100;
const SHARDED_PER_PUBLISHER: usize = 25;

#[test]
fn every_client_sees_the_same_order() {
    let server = TestServer::start(&[]);
    let clients: Vec<_> = (0..CLIENTS).map(|_| server.client()).collect();
    server.wait_clients(CLIENTS as u64);

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let seq: Vec<String> = (0..PUBLISHERS * PER_PUBLISHER).map(|_| c.next_text()).collect();
                c.close();
                seq
            })
        })
        .collect();

    publish_concurrently(&server, PER_PUBLISHER, CLIENTS);
    let sequences: Vec<Vec<String>> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    assert_one_order(&sequences, PER_PUBLISHER);
    server.wait_clients(0);
    let stats = server.counters();
    assert_eq!(stats.broadcasts, (PUBLISHERS * PER_PUBLISHER) as u64);
    assert_eq!(
        stats.deliveries_queued,
        (PUBLISHERS * PER_PUBLISHER * CLIENTS) as u64
    );
    assert_eq!(stats.sharded_broadcasts, 0, "20 clients are one shard");
}

#[test]
fn sharded_broadcasts_keep_one_order() {
    let server = TestServer::start(&["--fanout-threads", "4"]);
    let mut clients: Vec<_> = (0..SHARDED_CLIENTS).map(|_| server.client()).collect();
    server.wait_clients(SHARDED_CLIENTS as u64);

    // Every message fits in the clients' socket buffers, so they are read
    // after publishing, one client at a time, without a thread each.
    publish_concurrently(&server, SHARDED_PER_PUBLISHER, SHARDED_CLIENTS);
    let total = PUBLISHERS * SHARDED_PER_PUBLISHER;
    let sequences: Vec<Vec<String>> = clients
        .iter_mut()
        .map(|c| (0..total).map(|_| c.next_text()).collect())
        .collect();
    assert_one_order(&sequences, SHARDED_PER_PUBLISHER);
    let stats = server.counters();
    assert_eq!(stats.broadcasts, total as u64);
    assert_eq!(
        stats.sharded_broadcasts, total as u64,
        "every broadcast was split"
    );
    assert_eq!(stats.deliveries_queued, (total * SHARDED_CLIENTS) as u64);
    assert_eq!(stats.slow_clients_dropped, 0);
}

/// `PUBLISHERS` threads each publish `per_publisher` messages `p{p}-{i}`, in order,
/// each reaching `clients`.
fn publish_concurrently(server: &TestServer, per_publisher: usize, clients: usize) {
    let url = server.url("/sendall");
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let url = url.clone();
            thread::spawn(move || {
                let agent = ureq::agent();
                for i in 0..per_publisher {
                    let resp = agent
                        .get(&url)
                        .query("msg", &format!("p{p}-{i}"))
                        .call()
                        .expect("publish");
                    assert_eq!(resp.into_string().unwrap(), format!(r#"{{"clients":{clients}}}"#));
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
}

/// Every client saw every message once, each publisher's in its order, and all in one order.
fn assert_one_order(sequences: &[Vec<String>], per_publisher: usize) {
    let first = &sequences[0];
    assert_eq!(first.len(), PUBLISHERS * per_publisher);
    let distinct: HashSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), first.len(), "no message twice");
    // Each publisher's own messages stay in the order it sent them.
    for p in 0..PUBLISHERS {
        let own: Vec<_> = first
            .iter()
            .filter(|m| m.starts_with(&format!("p{p}-")))
            .collect();
        let expected: Vec<_> = (0..per_publisher).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "publisher {p}'s order");
    }
    for (n, seq) in sequences.iter().enumerate() {
        assert!(seq == first, "client {n} saw a different order than client 0");
    }
}
