//! The suite's scenarios: what each does, its group for `--only`, and
//! whether a run without `--only` includes it.

use crate::channels::ChannelSpec;
use crate::connect::ConnectSpec;
use crate::load::{Publish, Spec};
use crate::rtt::RttSpec;
use crate::subscriber::Transport;
use crate::Common;

/// What a scenario does.
pub enum Work {
    /// Broadcasts to every client (`load.rs`).
    Load(Spec),
    /// Publish round trips (`rtt.rs`).
    Rtt(RttSpec),
    /// Channels (`channels/`).
    Channels(ChannelSpec),
    /// Connecting open and with subscribe tokens (`connect.rs`).
    Connect(ConnectSpec),
}

/// One scenario of the suite.
pub struct Scenario {
    /// Its name (tables, JSON file).
    pub name: String,
    /// Its group (`--only`).
    pub group: &'static str,
    /// What it does.
    pub work: Work,
}

/// Every scenario, in the order the suite runs them.
pub fn scenarios(common: &Common) -> Vec<Scenario> {
    let spec = |clients, slow, payload, publish| common.spec(clients, slow, payload, publish);
    let rate = |count, per_sec| Publish::Rate { count, per_sec };
    let load = |name: String, group, spec| Scenario {
        name,
        group,
        work: Work::Load(spec),
    };
    let mut v = Vec::new();
    for n in [1_000, 5_000, 10_000] {
        v.push(load(
            format!("fanout-{n}"),
            "fanout",
            spec(n, 0, 100, rate(100, 10.0)),
        ));
    }
    v.push(load(
        "fanout-10000-1k".into(),
        "fanout",
        spec(10_000, 0, 1024, rate(100, 10.0)),
    ));
    v.push(load(
        "capacity-15000".into(),
        "capacity",
        spec(15_000, 0, 100, rate(100, 5.0)),
    ));
    let flood = Publish::Flood {
        secs: 10.0,
        publishers: 4,
    };
    v.push(load(
        "throughput-1000".into(),
        "throughput",
        spec(1_000, 0, 100, flood),
    ));
    // 1% of 10,000 stop reading. 1 KiB payloads, so that 100 broadcasts
    // (100 KiB) overflow a stopped client's socket buffers and exercise the
    // server's backlog path; compared with fanout-10000-1k.
    v.push(load(
        "slow-10000".into(),
        "slow",
        spec(9_900, 100, 1024, rate(100, 10.0)),
    ));
    // Two wspush nodes × 5,000 clients sharing one local Redis, published
    // through node A; run side by side with one wspush holding all 10,000.
    v.push(load(
        "cluster-2x5000".into(),
        "cluster",
        spec(10_000, 0, 100, rate(100, 10.0)),
    ));
    for clients in [1_000, 10] {
        v.push(Scenario {
            name: format!("publish-rtt-{clients}"),
            group: "publish-rtt",
            work: Work::Rtt(RttSpec {
                clients,
                publishes: 2_000,
                warm_up: 50,
                payload: 100,
                handshake_concurrency: common.handshake_concurrency,
                source_ips: common.source_ips,
            }),
        });
    }
    // Issue 13: what checking a subscribe token adds to a connection.
    v.push(Scenario {
        name: "connect-token-10000".into(),
        group: "connect-token",
        work: Work::Connect(ConnectSpec {
            clients: 10_000,
            handshake_concurrency: common.handshake_concurrency,
            source_ips: common.source_ips,
        }),
    });
    // Issue 11's channels, each beside Nchan with one channel per URL.
    for (name, group, spec) in [
        ("channels-100x100", "channels", ChannelSpec::many()),
        ("channel-isolation", "isolation", ChannelSpec::isolation()),
        ("resume-storm", "resume", ChannelSpec::storm(Transport::WebSocket)),
    ] {
        v.push(Scenario {
            name: name.into(),
            group,
            work: Work::Channels(spec),
        });
    }
    // Issue 12's event streams: the fan-out runs wspush over SSE and over
    // WebSocket (`/ws/all`, the same envelopes) and Nchan's EventSource
    // subscriber side by side.
    v.push(Scenario {
        name: "sse-fanout-10000".into(),
        group: "sse",
        work: Work::Load(Spec {
            transport: Transport::Sse,
            ..spec(10_000, 0, 100, rate(100, 10.0))
        }),
    });
    v.push(Scenario {
        name: "sse-resume-storm".into(),
        group: "sse",
        work: Work::Channels(ChannelSpec::storm(Transport::Sse)),
    });
    // The resume storm over two nodes sharing a Redis log, each client
    // reconnecting to the other node; side by side with one wspush.
    v.push(Scenario {
        name: "cluster-resume-storm".into(),
        group: "cluster",
        work: Work::Channels(ChannelSpec::storm(Transport::WebSocket)),
    });
    v
}

/// The names `--only` accepts: every group and every scenario.
pub fn known_names(common: &Common) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in scenarios(common) {
        for n in [s.group.to_owned(), s.name] {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}
