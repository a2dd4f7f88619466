//! Thin wrappers over the crate-private storage records, for the criterion benches in
//! `benches/` only. Not part of the API: hidden from the docs and free to change.
//!
//! They run exactly the code the writer runs per flow (`FlowRecord::from_flow`, bincode
//! `encode`) and the code open/verify run per entry (`decode`, `into_flow`), so the benches
//! measure the real format, not a copy of it.

use purse_core::Flow;
use purse_idempotency::Fingerprint;

use crate::record::{Encoding, EntryRecord, FlowRecord};

/// Appends the block entry of `flow` (its record as the writer stores it, without the
/// block's `u32` length prefix) to `out`.
pub fn encode_flow(flow: &Flow, fingerprint: &Fingerprint, out: &mut Vec<u8>) {
    EntryRecord::Flow(FlowRecord::from_flow(flow, fingerprint)).encode(out);
}

/// Decodes a block entry written by [`encode_flow`] back into the flow and its request
/// fingerprint, as opening the ledger does.
pub fn decode_flow(bytes: &[u8]) -> Result<(Flow, Fingerprint), String> {
    match EntryRecord::decode(bytes, Encoding::Varint)? {
        EntryRecord::Flow(record) => {
            let fingerprint = Fingerprint(record.fingerprint);
            Ok((record.into_flow()?, fingerprint))
        }
        EntryRecord::Rules(record) => Err(format!("entry {} is a rules change, not a flow", record.sequence)),
    }
}
