//! Concurrent publishers: 4 threads × 200 `/sendall` calls reach 20 clients, and every client sees the same sequence of all 800 messages.
//! The same with 3,100 clients, enough for each broadcast to be split over fan-out threads.
//! Channels: concurrent publishers on several channels reach clients on different channel sets; every client sees increasing ids, exactly its channels' messages, and any two clients agree on the order of the messages they both got.

#[path = "support/channels.rs"]
mod channels;
mod support;

use std::collections::{HashMap, HashSet};
use std::thread;

use channels::Sub;
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

/// The channel publisher `p`'s `i`-th message goes to.
fn channel_of(p: usize, i: usize) -> &'static str {
    ["a", "b", "c", "all"][(p * 3 + i) % 4]
}

#[test]
fn clients_on_different_channels_agree_on_one_order() {
    const PER: usize = 120;
    let server = TestServer::start(&[]);
    let sets = ["a", "b", "a,b", "b,c", "a,b,c", "all", "c,a"];
    let expect = |set: &str| {
        (0..PUBLISHERS)
            .flat_map(|p| (0..PER).map(move |i| channel_of(p, i)))
            .filter(|c| *c == "all" || set.split(',').any(|s| s == *c))
            .count()
    };
    let readers: Vec<_> = sets
        .iter()
        .map(|set| {
            let (mut sub, _) = Sub::joined(&server, set);
            let n = expect(set);
            thread::spawn(move || sub.messages(n))
        })
        .collect();
    let answers: Vec<Vec<(String, String)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let server = &server;
                s.spawn(move || {
                    (0..PER)
                        .map(|i| {
                            (
                                format!("p{p}-{i}"),
                                channels::publish(server, channel_of(p, i), &format!("p{p}-{i}")).1,
                            )
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("publisher"))
            .collect()
    });
    let id_of: HashMap<String, String> = answers.into_iter().flatten().collect();
    let got: Vec<Vec<channels::Got>> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    for (set, messages) in sets.iter().zip(&got) {
        let seqs: Vec<u64> = messages.iter().map(channels::Got::seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{set}: ids increase");
        for m in messages {
            let data = m.data.as_str().expect("text");
            assert_eq!(id_of[data], m.id, "{set}: the id its publish was answered");
            assert!(
                m.channel == "all" || set.split(',').any(|s| s == m.channel),
                "{set}: {m:?}"
            );
        }
        let distinct: HashSet<_> = messages.iter().map(|m| &m.id).collect();
        assert_eq!(distinct.len(), messages.len(), "{set}: nothing twice");
    }
    for (x, mx) in got.iter().enumerate() {
        for my in &got[x + 1..] {
            let in_y: HashSet<_> = my.iter().map(|m| &m.data).collect();
            let in_x: HashSet<_> = mx.iter().map(|m| &m.data).collect();
            let common_x: Vec<_> = mx.iter().map(|m| &m.data).filter(|d| in_y.contains(d)).collect();
            let common_y: Vec<_> = my.iter().map(|m| &m.data).filter(|d| in_x.contains(d)).collect();
            assert_eq!(
                common_x, common_y,
                "two clients disagree on the order of what both got"
            );
        }
    }
}
