//! The simulator's one random source: the shared splitmix64 of `bench_support`, with the few
//! draws a workload and a faulty disk need. Everything random in a run comes from its seed.

use purse_ledger::bench_support;

#[derive(Debug, Clone)]
pub struct Rng(bench_support::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(bench_support::Rng::new(seed))
    }

    /// A new, independent stream: the disk and the workload each draw from their own, so a
    /// change in how often one draws does not shift the other's choices more than it must.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.0.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low).expect("low <= high") + 1;
        low + i64::try_from(self.below(span)).expect("a span of i64 values")
    }

    /// Uniform in `0..len` (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        self.0.index(len)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        per_mille > 0 && self.below(1000) < per_mille
    }

    pub fn coin(&mut self) -> bool {
        self.below(2) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        Some(&items[self.index(items.len())])
    }
}
