//! Thin wrappers over the crate-private storage records, for the criterion benches in
//! `benches/`, and the random source the benches and `purse bench` share. Not part of the API:
//! hidden from the docs and free to change.
//!
//! They run exactly the code the writer runs per flow (`FlowRecord::from_flow`, bincode
//! `encode`) and the code open/verify run per entry (`decode`, `into_flow`), so the benches
//! measure the real format, not a copy of it.

use purse_core::{Entry, Flow};
use purse_idempotency::Fingerprint;

use crate::record::{Encoding, EntryRecord};

/// Appends the block entry of `flow` (its record as the writer stores it, without the
/// block's `u32` length prefix) to `out`.
pub fn encode_flow(flow: &Flow, fingerprint: &Fingerprint, out: &mut Vec<u8>) {
    EntryRecord::flow(flow, fingerprint).encode(out);
}

/// Decodes a block entry written by [`encode_flow`] back into the flow and its request
/// fingerprint, as opening the ledger does.
pub fn decode_flow(bytes: &[u8]) -> Result<(Flow, Fingerprint), String> {
    match EntryRecord::decode(bytes, Encoding::Varint)?.into_entry()? {
        (Entry::Flow(flow), Some(fingerprint)) => Ok((flow, fingerprint)),
        (entry, _) => Err(format!("entry {} is not a flow with its fingerprint", entry.sequence())),
    }
}

/// splitmix64: small, fast, and the same sequence for the same seed on every machine, so a
/// bench's workload is reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`); the modulo bias is below 2⁻⁴⁰ for the bounds used.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in `0..len` (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).expect("below a usize bound")
    }
}
