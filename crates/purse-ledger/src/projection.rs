//! Projections: everything the ledger derives from the log, held in memory and rebuilt by
//! folding the log on open. Balances and orders (purse-core's `State`), idempotency records,
//! and the per-account flow index used for paging and time windows.

use std::collections::HashMap;

use purse_core::{Config, Entry, Flow, FlowType, RulesChange, State, Timestamp};
use purse_idempotency::{Fingerprint, Index, Record};

use crate::block::Block;
use crate::error::Error;
use crate::store::Store;

/// What the per-account index keeps of each flow: enough to filter without reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowRef {
    pub sequence: u64,
    pub order_time: Timestamp,
    pub flow_type: FlowType,
}

#[derive(Debug, Clone)]
pub(crate) struct Projections {
    pub state: State,
    pub requests: Index,
    pub account_flows: HashMap<String, Vec<FlowRef>>,
    /// The checksum of the last block, which the next block chains to.
    pub last_block_checksum: u32,
    pub blocks: u64,
}

impl Projections {
    pub fn new(config: Config) -> Projections {
        Projections {
            state: State::new(config),
            requests: Index::default(),
            account_flows: HashMap::new(),
            last_block_checksum: 0,
            blocks: 0,
        }
    }

    /// Folds one entry into every projection. On error nothing changed: the core's `apply`
    /// checks before it mutates, and the other projections follow only after it succeeded.
    pub fn fold(&mut self, entry: &Entry, fingerprint: Option<Fingerprint>) -> Result<(), String> {
        match (entry, fingerprint) {
            (Entry::Flow(flow), Some(fingerprint)) => self.fold_flow(flow, fingerprint),
            (Entry::Flow(flow), None) => Err(format!("flow {} has no request fingerprint", flow.flow_id)),
            (Entry::Rules(change), _) => self.fold_rules(change),
        }
    }

    pub fn fold_flow(&mut self, flow: &Flow, fingerprint: Fingerprint) -> Result<(), String> {
        if let Some(record) = self.requests.get(&flow.request_id) {
            return Err(format!(
                "flow {}: request_id {:?} already has flow {}",
                flow.flow_id, flow.request_id, record.flow_id
            ));
        }
        purse_core::apply(&mut self.state, flow).map_err(|error| error.to_string())?;
        self.requests
            .insert(&flow.request_id, Record { fingerprint, flow_id: flow.flow_id })
            .expect("checked above: the request_id is new");
        self.account_flows.entry(flow.account_id.clone()).or_default().push(FlowRef {
            sequence: flow.flow_id,
            order_time: flow.order_time,
            flow_type: flow.flow_type,
        });
        Ok(())
    }

    pub fn fold_rules(&mut self, change: &RulesChange) -> Result<(), String> {
        purse_core::apply_rules(&mut self.state, change).map_err(|error| error.to_string())
    }

    /// Folds the whole log from `store`, validating every block (checksum, chain, sequence)
    /// and every entry (the core's invariants, including each stored before-balance).
    pub fn load(store: &Store, config: Config) -> Result<Projections, Error> {
        let mut projections = Projections::new(config);
        for block in store.blocks() {
            let (key, bytes) = block?;
            let block =
                Block::parse(&key, &bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
            projections.fold_block(&block)?;
        }
        Ok(projections)
    }

    fn fold_block(&mut self, block: &Block<'_>) -> Result<(), Error> {
        let corrupt = |reason: String| Error::Corruption(format!("block at {}: {reason}", block.first_sequence));
        if block.first_sequence != self.state.next_sequence() {
            return Err(corrupt(format!("expected the block to start at {}", self.state.next_sequence())));
        }
        if block.previous_checksum != self.last_block_checksum {
            return Err(corrupt("the hash chain is broken: the previous block is not the one it follows".into()));
        }
        for record in block.records() {
            let (entry, fingerprint) = record.and_then(|record| record.to_entry()).map_err(corrupt)?;
            self.fold(&entry, fingerprint).map_err(corrupt)?;
        }
        self.last_block_checksum = block.checksum;
        self.blocks += 1;
        Ok(())
    }

    /// Compares with projections folded independently; `None` when equal, else what differs.
    pub fn difference(&self, other: &Projections) -> Option<String> {
        if self.state != other.state {
            return Some("balances, orders or rules differ from the fold of the log".into());
        }
        if self.requests != other.requests {
            return Some("idempotency records differ from the fold of the log".into());
        }
        if self.account_flows != other.account_flows {
            return Some("the per-account flow index differs from the fold of the log".into());
        }
        if self.last_block_checksum != other.last_block_checksum || self.blocks != other.blocks {
            return Some("the block chain differs from the log".into());
        }
        None
    }
}
