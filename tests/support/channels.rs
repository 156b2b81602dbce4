//! Channel subscribers (`/ws/…`) and channel publishes, for the channel tests.
#![allow(dead_code)]

use std::thread;

use serde_json::Value;
use tungstenite::Message;

use crate::support::{wait_until, Refused, TestServer, WsClient};

/// A `/ws/…` client that reads envelopes.
pub struct Sub {
    pub ws: WsClient,
}

/// One message an envelope carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub channel: String,
    pub id: String,
    pub data: Value,
}

impl Got {
    /// The id's sequence number (ids are `<epoch>-<seq>`).
    pub fn seq(&self) -> u64 {
        seq_of(&self.id)
    }
}

/// The sequence number of an id `<epoch>-<seq>`.
pub fn seq_of(id: &str) -> u64 {
    id.rsplit_once('-')
        .and_then(|(_, seq)| seq.parse().ok())
        .unwrap_or_else(|| panic!("not an id: {id}"))
}

/// The epoch of an id `<epoch>-<seq>`.
pub fn epoch_of(id: &str) -> &str {
    id.split_once('-')
        .map(|(e, _)| e)
        .unwrap_or_else(|| panic!("not an id: {id}"))
}

impl Sub {
    /// Subscribes to `target` (`orders,billing?since=…`), without reading anything.
    pub fn connect(server: &TestServer, target: &str) -> Sub {
        Sub {
            ws: WsClient::connect(&format!("ws://{}/ws/{target}", server.ws)),
        }
    }

    /// Subscribes to `target` and reads up to its `subscribed`: returns the
    /// client and the `subscribed` id (fails on anything before it).
    pub fn joined(server: &TestServer, target: &str) -> (Sub, String) {
        let mut sub = Sub::connect(server, target);
        let id = sub.expect_subscribed();
        (sub, id)
    }

    /// The handshake's refusal for `target` (fails if it is accepted).
    pub fn refused(server: &TestServer, target: &str) -> Refused {
        match WsClient::try_connect(&format!("ws://{}/ws/{target}", server.ws), &[]) {
            Ok(_) => panic!("/ws/{target} was accepted"),
            Err(refused) => refused,
        }
    }

    /// The next frame, which must be a JSON text.
    pub fn next_json(&mut self) -> Value {
        match self.ws.next() {
            Ok(Message::Text(text)) => {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
            }
            other => panic!("expected a JSON text frame, got {other:?}"),
        }
    }

    /// The next frame, which must be a channel message.
    pub fn next_message(&mut self) -> Got {
        let v = self.next_json();
        as_message(&v).unwrap_or_else(|| panic!("expected a channel message, got {v}"))
    }

    /// `n` channel messages.
    pub fn messages(&mut self, n: usize) -> Vec<Got> {
        (0..n).map(|_| self.next_message()).collect()
    }

    /// The next frame, which must be `{"type":"subscribed",…}`; returns its id.
    pub fn expect_subscribed(&mut self) -> String {
        self.expect_typed("subscribed")["id"]
            .as_str()
            .expect("subscribed has an id")
            .to_owned()
    }

    /// The next frame, which must be `{"type":"reset","id":…}`; returns its id.
    pub fn expect_reset(&mut self) -> String {
        let v = self.expect_typed("reset");
        assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
        v["id"].as_str().expect("reset has an id").to_owned()
    }

    /// The next frame, which must have `"type": kind`.
    pub fn expect_typed(&mut self, kind: &str) -> Value {
        let v = self.next_json();
        assert_eq!(v["type"], kind, "expected a {kind} frame, got {v}");
        v
    }

    /// Sends a text frame.
    pub fn send_text(&mut self, text: &str) {
        self.ws.send_text(text);
    }
}

/// `v` as a channel message, if it is one (exactly channel, id and data).
pub fn as_message(v: &Value) -> Option<Got> {
    let o = v.as_object()?;
    if o.len() != 3 {
        return None;
    }
    Some(Got {
        channel: o.get("channel")?.as_str()?.to_owned(),
        id: o.get("id")?.as_str()?.to_owned(),
        data: o.get("data")?.clone(),
    })
}

/// `GET /publish/{channel}?msg=…`; asserts 200 and returns the answer's `clients` and `id`.
pub fn publish(server: &TestServer, channel: &str, msg: &str) -> (u64, String) {
    let url = server.url(&format!("/publish/{channel}"));
    let response = ureq::get(&url).query("msg", msg).call();
    let body = match response {
        Ok(r) => r.into_string().expect("publish answer"),
        Err(e) => panic!("publish to {channel} failed: {e}"),
    };
    published(&body)
}

/// The `clients` and `id` of a publish answer.
pub fn published(body: &str) -> (u64, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let clients = v["clients"]
        .as_u64()
        .unwrap_or_else(|| panic!("no clients: {body}"));
    let id = v["id"].as_str().unwrap_or_else(|| panic!("no id: {body}"));
    (clients, id.to_owned())
}

/// Publishes `count` messages to `c` (and one to `d` between each, which the
/// readers are not on), returning the ids of those to `c` in order.
pub fn publish_continuously(server: &TestServer, count: usize) -> Vec<String> {
    let agent = ureq::agent();
    let (c, d) = (server.url("/publish/c"), server.url("/publish/d"));
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let answer = agent
            .get(&c)
            .query("msg", &i.to_string())
            .call()
            .expect("publish");
        ids.push(published(&answer.into_string().unwrap()).1);
        agent.get(&d).query("msg", "noise").call().expect("publish");
    }
    ids
}

/// Runs `readers` readers of `c` (each `read(server, reader, count)`, which
/// subscribes, reconnects with a resume point as it likes, and returns the
/// ids it got in order and how often it reconnected) while `count` messages
/// are published to `c`; asserts that each got exactly the published
/// sequence, reconnected more than `min_reconnects` times, and that every
/// reconnect was a resume and none a reset.
pub fn assert_resumes_race_publishes<F>(
    server: &TestServer,
    readers: usize,
    count: usize,
    min_reconnects: usize,
    read: F,
) where
    F: Fn(&TestServer, usize, usize) -> (Vec<String>, usize) + Sync,
{
    let read = &read;
    let (published, results) = thread::scope(|s| {
        let running: Vec<_> = (0..readers)
            .map(|r| s.spawn(move || read(server, r, count)))
            .collect();
        // Every reader is subscribed before the first publish.
        wait_until("every reader subscribed", || {
            server.counters().clients as usize >= readers
        });
        let published = publish_continuously(server, count);
        let results: Vec<_> = running.into_iter().map(|r| r.join().expect("reader")).collect();
        (published, results)
    });
    for (reader, (got, reconnects)) in results.iter().enumerate() {
        assert_eq!(got, &published, "reader {reader}: the channel's exact sequence");
        assert!(
            *reconnects > min_reconnects,
            "reader {reader} resumed only {reconnects} times"
        );
    }
    let stats = server.counters();
    assert_eq!(stats.resets, 0, "the history held everything");
    let total: usize = results.iter().map(|(_, n)| n).sum();
    assert_eq!(stats.resumes, total as u64, "every reconnect was a resume");
}
