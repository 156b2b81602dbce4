//! The figures as `/stats` and `/metrics` show them, from one place.
//!
//! The Prometheus registry is built once at startup: the counters of `Stats`
//! are registered as themselves (shared atomics), and what is read at scrape
//! time (clients connected, uptime, the publisher's figures) by a collector.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry as PromRegistry;

use crate::publish::Publish;
use crate::registry::Registry;
use crate::stats::{Figure, FigureValue, Stats, StatsSnapshot};

/// Every figure of the server, for `/stats`, `/metrics` and `Server::stats`.
pub struct Metrics {
    registry: PromRegistry,
    live: Arc<Live>,
}

/// What is read when asked: it has no counter of its own.
struct Live {
    stats: Arc<Stats>,
    clients: Arc<Registry>,
    publisher: Arc<dyn Publish>,
}

impl Live {
    /// The history's gauges, then the publisher's figures.
    fn figures(&self) -> Vec<Figure> {
        let totals = self.clients.history_totals();
        let gauge = |name, help, value: usize| Figure {
            name,
            help,
            value: FigureValue::Gauge(value as u64),
        };
        let mut figures = vec![
            gauge(
                "channels",
                "Channels with subscribers or stored messages, `all` included",
                totals.channels,
            ),
            gauge("history_messages", "Messages stored for resumes", totals.messages),
            gauge(
                "history_bytes",
                "Heap the stored messages hold (capped by --history-bytes)",
                totals.bytes,
            ),
        ];
        figures.extend(self.publisher.figures());
        figures
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Live")
    }
}

impl Metrics {
    pub fn new(stats: Arc<Stats>, clients: Arc<Registry>, publisher: Arc<dyn Publish>) -> Metrics {
        let mut registry = PromRegistry::with_prefix("wspush");
        stats.register(&mut registry);
        let live = Arc::new(Live {
            stats,
            clients,
            publisher,
        });
        registry.register_collector(Box::new(LiveCollector(Arc::clone(&live))));
        Metrics { registry, live }
    }

    /// Every figure now, as `/stats` shows it.
    pub fn snapshot(&self) -> StatsSnapshot {
        let live = &self.live;
        live.stats.snapshot(live.clients.len(), live.figures())
    }

    /// The Prometheus text format (OpenMetrics), names prefixed `wspush_`.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[derive(Debug)]
struct LiveCollector(Arc<Live>);

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let live = &self.0;
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
        let clients = gauge(live.clients.len() as u64);
        clients.encode(encoder.encode_descriptor(
            "clients",
            "Clients connected now",
            None,
            clients.metric_type(),
        )?)?;
        let uptime = gauge(live.stats.uptime_seconds());
        uptime.encode(encoder.encode_descriptor(
            "uptime_seconds",
            "Seconds since the server started",
            None,
            uptime.metric_type(),
        )?)?;
        for figure in live.figures() {
            match figure.value {
                FigureValue::Count(n) => {
                    let counter = ConstCounter::new(n);
                    let metric =
                        encoder.encode_descriptor(figure.name, figure.help, None, counter.metric_type())?;
                    counter.encode(metric)?;
                }
                FigureValue::Flag(b) => {
                    let flag = gauge(u64::from(b));
                    let metric =
                        encoder.encode_descriptor(figure.name, figure.help, None, flag.metric_type())?;
                    flag.encode(metric)?;
                }
                FigureValue::Gauge(n) => {
                    let level = gauge(n);
                    let metric =
                        encoder.encode_descriptor(figure.name, figure.help, None, level.metric_type())?;
                    level.encode(metric)?;
                }
                FigureValue::Text(_) => {}
            }
        }
        Ok(())
    }
}
