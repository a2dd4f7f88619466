//! `/metrics`: the Prometheus text format. Requests by route, status and spec §6 code, latency
//! histograms by route, requests in flight; and, read from the ledger at each scrape, the
//! writer's batches and requests (their ratio is the mean batch size), its largest batch, its
//! fsyncs and the depth of its queue.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~26 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The server's own metrics, and the ledger's gauges filled in at scrape time.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub in_flight: Gauge,
    writer_batches: Gauge<u64, AtomicU64>,
    writer_requests: Gauge<u64, AtomicU64>,
    writer_batch_requests_max: Gauge<u64, AtomicU64>,
    writer_batches_pipelined: Gauge<u64, AtomicU64>,
    fsyncs: Gauge<u64, AtomicU64>,
    queue_depth: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("purse");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests answered, by route, status and error code", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer, by route", latency.clone());
        registry.register("http_requests_in_flight", "Requests being answered now", in_flight.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::<u64, AtomicU64>::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let writer_batches = gauge(&mut registry, "writer_batches", "Batches the writer committed since open");
        let writer_requests = gauge(
            &mut registry,
            "writer_requests",
            "Requests the writer took in those batches (÷ batches: mean batch size)",
        );
        let writer_batch_requests_max =
            gauge(&mut registry, "writer_batch_requests_max", "The largest batch, in requests");
        let writer_batches_pipelined = gauge(
            &mut registry,
            "writer_batches_pipelined",
            "Batches synced by the syncer thread while the next was decided",
        );
        let fsyncs = gauge(&mut registry, "fsyncs", "fdatasync calls since open");
        let queue_depth = gauge(&mut registry, "writer_queue_depth", "Requests waiting for the writer");
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            in_flight,
            writer_batches,
            writer_requests,
            writer_batch_requests_max,
            writer_batches_pipelined,
            fsyncs,
            queue_depth,
        }
    }

    /// The text of a scrape, after the ledger's figures are filled in.
    pub async fn render(&self, ledger: &purse_ledger::Ledger) -> String {
        self.queue_depth.set(u64::try_from(ledger.queue_depth()).unwrap_or(u64::MAX));
        if let Ok(stats) = ledger.stats().await {
            self.writer_batches.set(stats.batches);
            self.writer_requests.set(stats.requests);
            self.writer_batch_requests_max.set(stats.batch_requests_max);
            self.writer_batches_pipelined.set(stats.batches_pipelined);
        }
        if let Ok(fsyncs) = ledger.fsyncs().await {
            self.fsyncs.set(fsyncs);
        }
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &registry) {
            Ok(()) => text,
            Err(error) => format!("# encoding the metrics failed: {error}\n"),
        }
    }
}
