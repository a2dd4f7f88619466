//! `verify`: refold the whole log and check every live projection against it.
//!
//! Balances, orders and rules need a second, freshly folded `State` (the fold's own checks need
//! them). The idempotency records and the per-account index are instead checked entry by entry
//! as the log streams past, so verifying a million-flow ledger holds one extra `State`, not a
//! second copy of every projection. The newest snapshot is compared with the fold when the fold
//! reaches its position, record by record as it is read (`snapshot_compare.rs`), so it adds one
//! chunk of memory, not a third copy.

use std::collections::HashMap;

use purse_core::{Entry, State};
use purse_idempotency::Record;

use crate::error::Error;
use crate::ledger::VerifyReport;
use crate::liability::Liability;
use crate::projection::{read_log, CardIndex, DecodedBlock, FlowRef, Projections, ENTRIES_RESERVED_MAX};
use crate::snapshot::{open_at_position, Opened, Snapshotter};
use crate::snapshot_format::cold::{self, ColdStore};
use crate::snapshot_format::compare::{compare, Against};
use crate::store::Store;

/// Checks `live` against the log in `store`, and the newest of `snapshots` against the fold at
/// the position it covers. `Ok` only when every projection equals the fold. A newest snapshot
/// that fails its own checks is a warning (opening skips it too); one that passes them but
/// differs from the fold is `CORRUPTION`, because the next open would trust it.
pub(crate) fn verify(store: &Store, live: &Projections, snapshots: &Snapshotter) -> Result<VerifyReport, Error> {
    let capacity = usize::try_from(live.state.last_sequence()).unwrap_or(0).min(ENTRIES_RESERVED_MAX);
    let mut checker = Checker {
        snapshot: newest_snapshot(store, snapshots),
        snapshots,
        live,
        state: State::with_capacity(live.state.config(), capacity),
        flows_seen_per_account: HashMap::default(),
        live_refs: HashMap::default(),
        flows: 0,
        requests: 0,
        last_block_checksum: 0,
        blocks: 0,
    };
    read_log(store, |block| checker.check_block(block))?;
    checker.finish()
}

/// The newest snapshot, its header and position checked as opening would (the rest is read
/// when the fold reaches it); a failure is warned about.
fn newest_snapshot(store: &Store, snapshots: &Snapshotter) -> Option<(String, Opened)> {
    let snapshot_store = snapshots.store()?;
    let sequence = match snapshot_store.list() {
        Ok(sequences) => *sequences.last()?,
        Err(error) => {
            snapshots.warn(format!("the snapshots could not be listed ({error})"));
            return None;
        }
    };
    let name = snapshot_store.name(sequence);
    match open_at_position(snapshot_store.as_ref(), sequence, store) {
        Ok(opened) => Some((name, opened)),
        Err(reason) => {
            snapshots.warn(format!("snapshot {name} fails its checks ({reason}); the next open will not use it"));
            None
        }
    }
}

struct Checker<'a> {
    /// The newest snapshot, compared with the fold once the fold reaches its position.
    snapshot: Option<(String, Opened)>,
    snapshots: &'a Snapshotter,
    live: &'a Projections,
    /// The fold of the log so far.
    state: State,
    /// How many of each account's flows the log has shown so far.
    flows_seen_per_account: HashMap<String, usize, foldhash::quality::RandomState>,
    /// The live flow index of each account seen (memory's and the cold store's).
    live_refs: HashMap<String, Vec<FlowRef>, foldhash::quality::RandomState>,
    flows: u64,
    /// Flows that have their own idempotency record (all but TRANSFER_IN).
    requests: u64,
    last_block_checksum: u32,
    blocks: u64,
}

/// Every order of the fold, with its hold expiry and lot takes, is the live one (in memory or
/// in the cold store), and the live ledger has no other.
fn same_orders(fold: &State, live: &Projections, cold: &dyn ColdStore) -> Result<bool, Error> {
    for (id, _) in fold.orders() {
        let folded = fold.order_whole(id).expect("an order of the fold");
        let equal = match live.state.order_whole(id) {
            Some(held) => held == folded,
            None => cold::order(cold, id)?
                .is_some_and(|read| (read.part(id), read.expire_time, read.takes.as_slice()) == folded),
        };
        if !equal {
            return Ok(false);
        }
    }
    let ids = cold::order_ids(cold)?;
    let only_held = live.state.orders().filter(|(id, _)| ids.binary_search_by(|other| other.as_str().cmp(id)).is_err());
    Ok(ids.len() + only_held.count() == fold.orders().count())
}

fn differs(what: &str, sequence: u64) -> Error {
    Error::Corruption(format!("{what} differ from the fold of the log at entry {sequence}"))
}

impl Checker<'_> {
    fn check_block(&mut self, block: &DecodedBlock) -> Result<(), Error> {
        block.check_follows(self.state.next_sequence(), self.last_block_checksum)?;
        let corrupt = |reason: String| block.corrupt(reason);
        for (entry, fingerprint) in &block.entries {
            let flow = match entry {
                Entry::Rules(change) => {
                    purse_core::apply_rules(&mut self.state, change).map_err(|error| corrupt(error.to_string()))?;
                    continue;
                }
                Entry::Flow(flow) => flow,
            };
            let sequence = flow.flow_id;
            let fingerprint = fingerprint.ok_or_else(|| corrupt(format!("flow {sequence} has no fingerprint")))?;
            // A TRANSFER_IN shares its TRANSFER_OUT's request record.
            let transfer_in = flow.shares_request();
            let expected = Record { fingerprint, flow_id: if transfer_in { sequence - 1 } else { sequence } };
            if self.live.request(&flow.request_id)? != Some(expected) {
                return Err(differs("idempotency records", sequence));
            }
            if !transfer_in {
                self.requests += 1;
            }
            let seen = match self.flows_seen_per_account.get_mut(&flow.account_id) {
                Some(seen) => seen,
                None => self.flows_seen_per_account.entry(flow.account_id.clone()).or_insert(0),
            };
            let reference = FlowRef { sequence, order_time: flow.order_time, flow_type: flow.flow_type };
            if !self.live_refs.contains_key(&flow.account_id) {
                let refs = self.live.flow_refs(&flow.account_id)?.unwrap_or_default();
                self.live_refs.insert(flow.account_id.clone(), refs);
            }
            let indexed = self.live_refs.get(&flow.account_id).and_then(|flows| flows.get(*seen));
            if indexed != Some(&reference) {
                return Err(differs("the per-account flow index", sequence));
            }
            *seen += 1;
            purse_core::apply(&mut self.state, flow).map_err(|error| corrupt(error.to_string()))?;
            self.flows += 1;
        }
        self.last_block_checksum = block.checksum;
        self.blocks += 1;
        let reached =
            self.snapshot.as_ref().is_some_and(|(_, opened)| opened.covered.sequence == self.state.last_sequence());
        if reached {
            self.compare_snapshot()?;
        }
        Ok(())
    }

    /// The newest snapshot against the fold at its position (see `snapshot_compare.rs`). One
    /// that fails its own checks is a warning: opening skips it too.
    fn compare_snapshot(&mut self) -> Result<(), Error> {
        let Some((name, mut opened)) = self.snapshot.take() else { return Ok(()) };
        let against = Against {
            fold: &self.state,
            live: self.live,
            requests: self.requests,
            seen: &self.flows_seen_per_account,
            last_block_checksum: self.last_block_checksum,
            blocks: self.blocks,
        };
        match compare(&mut opened.reader, &opened.header, opened.covered, against) {
            Ok(None) => Ok(()),
            Ok(Some(what)) => Err(Error::Corruption(format!(
                "snapshot {name} differs from the fold of the log at entry {} ({what}); the next open would trust it. \
                 A snapshot is derived data: remove the file and nothing is lost",
                self.state.last_sequence()
            ))),
            Err(reason) => {
                self.snapshots
                    .warn(format!("snapshot {name} fails its checks ({reason}); the next open will not use it"));
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<VerifyReport, Error> {
        let live = self.live;
        let end = self.state.last_sequence();
        let same = match &live.cold {
            None => self.state == live.state,
            Some(cold) => self.state.same_but_orders(&live.state) && same_orders(&self.state, live, cold.as_ref())?,
        };
        if !same {
            return Err(Error::Corruption("balances, orders or rules differ from the fold of the log".into()));
        }
        if self.state.mid_transfer() {
            return Err(Error::Corruption("the log ends between a TRANSFER_OUT and its TRANSFER_IN".into()));
        }
        self.state.check_lots().map_err(|reason| Error::Corruption(format!("expiry lots: {reason}")))?;
        let records = match &live.cold {
            None => live.requests.len() as u64,
            Some(cold) => {
                let only_held = live.requests.iter().map(|(id, _)| cold::request(cold.as_ref(), id));
                let only_held =
                    only_held.collect::<Result<Vec<_>, Error>>()?.iter().filter(|found| found.is_none()).count();
                cold::request_count(cold.as_ref())? + only_held as u64
            }
        };
        if records != self.requests {
            return Err(differs("idempotency records (their number)", end));
        }
        let accounts_indexed = live.state.accounts().count();
        let index_complete = accounts_indexed == self.flows_seen_per_account.len()
            && live.account_flows.keys().all(|account| self.flows_seen_per_account.contains_key(account))
            && self
                .live_refs
                .iter()
                .all(|(account, flows)| self.flows_seen_per_account.get(account) == Some(&flows.len()));
        if !index_complete {
            return Err(differs("the per-account flow index (its length)", end));
        }
        // The card index and the liability totals are derived from the accounts alone: check
        // them against those of the fold (the index in the order the accounts were opened).
        if live.cards != CardIndex::of(&self.state) {
            return Err(differs("the card index", end));
        }
        let any_time = purse_core::Timestamp(0);
        if Liability::of(&live.state, any_time) != Liability::of(&self.state, any_time) {
            return Err(differs("the liability totals", end));
        }
        if live.last_block_checksum != self.last_block_checksum || live.blocks != self.blocks {
            return Err(Error::Corruption("the block chain differs from the log".into()));
        }
        Ok(VerifyReport {
            entries: end,
            flows: self.flows,
            accounts: self.state.accounts().count() as u64,
            blocks: self.blocks,
            repairs: Vec::new(),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::block::BlockWriter;
    use crate::head::Head;
    use crate::record::{EntryRecord, FlowRecord};
    use purse_core::{decide, Action, Amount, Command, Config, Context, Timestamp};
    use purse_idempotency::fingerprint;

    /// A store holding three flows on two accounts, and its projections.
    fn ledger(dir: &std::path::Path) -> (Store, Projections) {
        let mut store = Store::open(dir, true).unwrap();
        store.create_head().unwrap();
        let config = Config::default();
        store.write_config(config.scale, config.zone).unwrap();
        let mut state = State::new(config);
        let mut blocks = BlockWriter::new(0, 1);
        for (index, account) in ["a", "b", "a"].iter().enumerate() {
            let id = format!("r{index}");
            let command = Command::new(&id, &id, account, {
                Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false }
            });
            let flow =
                decide(&state, &command, &Context { sequence: state.next_sequence(), now: Timestamp(0) }).unwrap().flow;
            blocks.push(&EntryRecord::Flow(FlowRecord::from_flow(&flow, &fingerprint(&command))));
            purse_core::apply(&mut state, &flow).unwrap();
        }
        let (written, checksum) = blocks.finish();
        store.append(written, Head { sequence: 3, block_checksum: checksum }).unwrap();
        let projections = Projections::load(&store, config, 3).unwrap();
        (store, projections)
    }

    #[test]
    fn every_projection_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (store, live) = ledger(dir.path());
        let report = verify(&store, &live, &Snapshotter::disabled()).unwrap();
        assert_eq!((report.entries, report.flows, report.accounts), (3, 3, 2));
        type Tamper = fn(&mut Projections);
        let tampered: [(&str, Tamper); 6] = [
            ("a request's record", |live| {
                let record = *live.requests.get("r1").unwrap();
                let mut requests = purse_idempotency::Index::new();
                for (id, other) in live.requests.iter() {
                    let changed = Record { flow_id: other.flow_id + 1, ..record };
                    requests.insert(id, if id == "r1" { changed } else { *other }).unwrap();
                }
                live.requests = requests;
            }),
            ("an extra request", |live| {
                let record = *live.requests.get("r1").unwrap();
                live.requests.insert("ghost", record).unwrap();
            }),
            ("the per-account index", |live| Arc::make_mut(live.account_flows.get_mut("a").unwrap()).reverse()),
            ("an extra indexed account", |live| {
                live.account_flows.insert("ghost".into(), Arc::default());
            }),
            ("the balances", |live| live.state = State::new(live.state.config())),
            ("the card index", |live| live.cards.insert("card-of-nobody", "a")),
        ];
        for (what, tamper) in tampered {
            let mut copy = live.clone();
            tamper(&mut copy);
            let error = verify(&store, &copy, &Snapshotter::disabled()).expect_err(what);
            assert_eq!(error.code(), purse_core::ErrorCode::Corruption, "{what}: {error}");
        }
    }
}
