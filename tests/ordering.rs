//! Concurrent publishers: 4 threads × 200 `/sendall` calls reach 20 clients, and every client sees the same sequence of all 800 messages.

mod support;

use std::collections::HashSet;
use std::thread;

use support::TestServer;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 200;
const CLIENTS: usize = 20;

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

    let url = server.url("/sendall");
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let url = url.clone();
            thread::spawn(move || {
                let agent = ureq::agent();
                for i in 0..PER_PUBLISHER {
                    let resp = agent
                        .get(&url)
                        .query("msg", &format!("p{p}-{i}"))
                        .call()
                        .expect("publish");
                    assert_eq!(resp.into_string().unwrap(), format!(r#"{{"clients":{CLIENTS}}}"#));
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
    let sequences: Vec<Vec<String>> = readers.into_iter().map(|r| r.join().expect("reader")).collect();

    let first = &sequences[0];
    assert_eq!(first.len(), PUBLISHERS * PER_PUBLISHER);
    let distinct: HashSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), first.len(), "no message twice");
    // Each publisher's own messages stay in the order it sent them.
    for p in 0..PUBLISHERS {
        let own: Vec<_> = first
            .iter()
            .filter(|m| m.starts_with(&format!("p{p}-")))
            .collect();
        let expected: Vec<_> = (0..PER_PUBLISHER).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "publisher {p}'s order");
    }
    for (n, seq) in sequences.iter().enumerate() {
        assert!(seq == first, "client {n} saw a different order than client 0");
    }
    server.wait_clients(0);
    let stats = server.counters();
    assert_eq!(stats.broadcasts, (PUBLISHERS * PER_PUBLISHER) as u64);
    assert_eq!(
        stats.deliveries_queued,
        (PUBLISHERS * PER_PUBLISHER * CLIENTS) as u64
    );
}
