//! What the examples share: the rate and latency percentiles of a run of callers.

use std::time::Instant;

/// Collects the callers' latencies (µs) of a run of `count` operations begun at `started`;
/// answers (operations/s, p50 µs, p99 µs).
pub async fn summary(
    started: Instant,
    count: usize,
    callers: Vec<tokio::task::JoinHandle<Vec<u128>>>,
) -> (f64, u128, u128) {
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.extend(caller.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |fraction: usize| latencies[(latencies.len() * fraction / 100).min(latencies.len() - 1)];
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)] // a rate, not money
    let rate = count as f64 / seconds;
    (rate, at(50), at(99))
}
