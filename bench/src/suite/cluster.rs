//! The two-node runs: a local Redis and two wspush nodes sharing it, the
//! clients spread over both, publishes through node A; and what Redis itself
//! spent on the shared log (its CPU, the log's memory).

use std::time::Duration;

use crate::channels::{self, ChannelOutcome, ChannelSpec};
use crate::load::{self, Outcome, Spec};
use crate::pool::Pool;
use crate::servers::{self, Launch, Running};

use super::CLUSTER_NAME;

/// The nodes' `--redis-channel`: the log is `bench.log`.
const PREFIX: &str = "bench";

/// Starts Redis and nodes A and B, waits until both are up, runs `f` on them,
/// stops all three (also when a start fails).
fn with_cluster<T>(
    rt: &tokio::runtime::Runtime,
    launch: &Launch,
    label: &str,
    f: impl FnOnce(&[&Running], &servers::Redis) -> T,
) -> Result<T, String> {
    // Dropping it (also on an error below) kills redis-server by its pid.
    let redis = servers::Redis::start(launch, &format!("{label}-redis"))?;
    let a = servers::start_wspush_node(launch, &format!("{label}-a"), redis.port, PREFIX, "bench-a")?;
    let b = match servers::start_wspush_node(launch, &format!("{label}-b"), redis.port, PREFIX, "bench-b") {
        Ok(b) => b,
        Err(e) => {
            a.stop(Duration::from_secs(5));
            return Err(e);
        }
    };
    let ready = rt.block_on(async {
        for node in [&a, &b] {
            if !servers::wait_healthy(node, Duration::from_secs(15)).await {
                return Err(format!(
                    "node at {} never answered /healthz 200 within 15 s",
                    node.http
                ));
            }
        }
        Ok(())
    });
    let out = ready.map(|()| f(&[&a, &b], &redis));
    a.stop(Duration::from_secs(5));
    b.stop(Duration::from_secs(5));
    drop(redis);
    out
}

/// A broadcast scenario over the two nodes, with Redis's CPU and its log's size.
pub fn load(
    rt: &tokio::runtime::Runtime,
    pool: &Pool,
    launch: &Launch,
    label: &str,
    spec: &Spec,
) -> Result<Outcome, String> {
    with_cluster(rt, launch, label, |nodes, redis| {
        let others = [("redis".to_owned(), redis.pid())];
        let outcome = rt.block_on(load::run(pool, nodes, &others, spec));
        Outcome {
            // The name the suite's summaries look for.
            server: CLUSTER_NAME.to_owned(),
            redis_log: redis.log_figures(&format!("{PREFIX}.log")),
            ..outcome
        }
    })
}

/// A channel scenario (`cluster-resume-storm`) over the two nodes.
pub fn channels(
    rt: &tokio::runtime::Runtime,
    pool: &Pool,
    launch: &Launch,
    label: &str,
    spec: &ChannelSpec,
    setup: channels::Setup,
) -> Result<ChannelOutcome, String> {
    let outcome = with_cluster(rt, launch, label, |nodes, _| {
        rt.block_on(channels::run(pool, nodes, spec, setup))
    })??;
    Ok(ChannelOutcome {
        server: CLUSTER_NAME.to_owned(),
        ..outcome
    })
}
