//! `verify`'s check of the newest snapshot: its records compared one by one, as they stream
//! past, with the fold of the log at the snapshot's position (and with the live idempotency
//! records and per-account index, which `verify` checks against the log entry by entry, cut at
//! that position). `verify` so holds one chunk of the snapshot at a time, not a second copy of
//! the projections beside the live ones and its own fold.

use std::collections::HashMap;
use std::io::Read;

use purse_core::{OrderPart, State, Timestamp};
use purse_idempotency::{Fingerprint, Record};

use super::read::{account_of, flow_type, read_items, takes_of};
use super::{Covered, Item, HEADER_BYTES};
use crate::projection::{FlowRef, Projections};

/// What the snapshot is compared with: the fold at its position, and the live projections.
pub(crate) struct Against<'a> {
    pub fold: &'a State,
    pub live: &'a Projections,
    /// The fold's idempotency records so far (flows but TRANSFER_INs).
    pub requests: u64,
    /// The fold's flows so far, per account.
    pub seen: &'a HashMap<String, usize, foldhash::quality::RandomState>,
    pub last_block_checksum: u32,
    pub blocks: u64,
}

/// How many of each kind of record the snapshot held, and the first difference found.
struct Comparer<'a> {
    against: Against<'a>,
    covered: Covered,
    accounts: usize,
    orders: usize,
    rules: usize,
    hold_expiries: usize,
    takes: usize,
    open_holds: usize,
    requests: u64,
    indexed: HashMap<String, usize, foldhash::quality::RandomState>,
    difference: Option<String>,
    /// The snapshot holds what memory held only (`Item::Cold`): each record is compared, not
    /// their number or positions.
    cold: bool,
}

/// Compares the rest of a snapshot (after its header) with `against`. `Ok(None)`: it is the
/// fold. `Ok(Some(what))`: it passes its own checks but differs. `Err(why)`: it fails its own
/// checks (a damaged file; opening skips it too).
pub(crate) fn compare(
    reader: &mut (impl Read + Send),
    header: &[u8; HEADER_BYTES],
    covered: Covered,
    against: Against<'_>,
) -> Result<Option<String>, String> {
    let mut comparer = Comparer {
        against,
        covered,
        accounts: 0,
        orders: 0,
        rules: 0,
        hold_expiries: 0,
        takes: 0,
        open_holds: 0,
        requests: 0,
        indexed: HashMap::default(),
        difference: None,
        cold: false,
    };
    read_items(reader, header, |item| comparer.compare(item))?;
    comparer.finish();
    Ok(comparer.difference)
}

impl Comparer<'_> {
    /// Notes the first difference; keeps reading, so a damaged file is still told apart.
    fn differs(&mut self, equal: bool, what: impl FnOnce() -> String) {
        if !equal && self.difference.is_none() {
            self.difference = Some(what());
        }
    }

    fn compare(&mut self, item: &mut Item<'static>) -> Result<(), String> {
        let fold = self.against.fold;
        let live = self.against.live;
        match item {
            Item::Start(start) => {
                let config = fold.config();
                let equal = start.scale == config.scale.decimals()
                    && start.zone_offset_seconds == config.zone.offset_seconds()
                    && start.last_sequence == fold.last_sequence()
                    && self.covered.block_checksum == self.against.last_block_checksum
                    && self.covered.blocks == self.against.blocks;
                self.differs(equal, || "its scale, zone or position".into());
            }
            Item::Account(record) => {
                let position = self.accounts;
                let account = account_of(record)?;
                let equal = fold.account_position(&account.account_id) == Some(position)
                    && fold.account(&account.account_id) == Some(&account);
                self.differs(equal, || format!("account {:?}", account.account_id));
                self.accounts += 1;
            }
            Item::Order(record) => {
                let position = self.orders;
                let part = OrderPart {
                    outer_order_id: &record.outer_order_id,
                    flow_id: record.flow_id,
                    flow_type: flow_type(record.flow_type)?,
                    account: record.account,
                    moved: crate::record::array_to_buckets(record.moved),
                    refunded: crate::record::array_to_buckets(record.refunded),
                    reversed_by: (record.reversed_by != 0).then_some(record.reversed_by),
                };
                let equal = (self.cold || fold.order_position(part.outer_order_id) == Some(position))
                    && fold.order_part(part.outer_order_id) == Some(part);
                let id = part.outer_order_id.to_owned();
                self.differs(equal, || format!("order {id:?}"));
                self.orders += 1;
            }
            Item::Rules(record) => match crate::record::EntryRecord::clone(record).into_entry()? {
                (purse_core::Entry::Rules(change), _) => {
                    let equal = fold.rules_set_for(change.brand_id.as_deref()) == Some(&change.rules);
                    self.differs(equal, || format!("the rules of {:?}", change.brand_id));
                    self.rules += 1;
                }
                (purse_core::Entry::Flow(_), _) => return Err("a flow where a rules set belongs".into()),
            },
            Item::HoldExpiry(flow_id, time) => {
                let (flow_id, time) = (*flow_id, Timestamp(*time));
                self.differs(fold.hold_expiry_of(flow_id) == Some(time), || format!("the expiry of hold {flow_id}"));
                self.hold_expiries += 1;
            }
            Item::OrderTakes(flow_id, takes) => {
                let flow_id = *flow_id;
                let takes = takes_of(takes)?;
                self.differs(fold.order_takes(flow_id) == takes.as_slice(), || format!("the lot takes of {flow_id}"));
                self.takes += 1;
            }
            Item::OpenHoldExpiry(time, flow_id, order_id) => {
                let found = fold.open_hold_expiry_of(Timestamp(*time), *flow_id);
                let flow_id = *flow_id;
                self.differs(found == Some(&**order_id), || format!("the expiring hold {flow_id}"));
                self.open_holds += 1;
            }
            Item::Request(request_id, fingerprint, flow_id) => {
                let record = Record { fingerprint: Fingerprint(*fingerprint), flow_id: *flow_id };
                let live_record = live.request(request_id).map_err(|error| error.to_string())?;
                let equal = *flow_id <= self.covered.sequence && live_record == Some(record);
                self.differs(equal, || format!("the idempotency record of {request_id:?}"));
                self.requests += 1;
            }
            Item::AccountFlows(account_id, refs) => {
                let offset = self.indexed.get(&**account_id).copied().unwrap_or(0);
                let refs = refs
                    .iter()
                    .map(|&(sequence, order_time, tag)| {
                        Ok(FlowRef { sequence, order_time: Timestamp(order_time), flow_type: flow_type(tag)? })
                    })
                    .collect::<Result<Vec<FlowRef>, String>>()?;
                let account = account_id.to_string();
                let equal = if self.cold {
                    // Memory's latest references: each must be the live index's (checked
                    // against the log by `verify`).
                    let all = live.flow_refs(&account).map_err(|error| error.to_string())?.unwrap_or_default();
                    refs.iter().all(|one| {
                        all.binary_search_by_key(&one.sequence, |other| other.sequence).is_ok_and(|at| all[at] == *one)
                    })
                } else {
                    let indexed =
                        live.account_flows.get(&**account_id).and_then(|all| all.get(offset..offset + refs.len()));
                    indexed == Some(refs.as_slice())
                };
                self.differs(equal, || format!("the flow index of {account:?}"));
                self.indexed.insert(account, offset + refs.len());
            }
            Item::End(_) => {}
            Item::Cold => self.cold = true,
        }
        Ok(())
    }

    /// Every kind of record as many as the fold has.
    fn finish(&mut self) {
        let fold = self.against.fold;
        let counts = [
            (self.accounts, fold.accounts().count(), "accounts"),
            (self.orders, fold.orders().count(), "orders"),
            (self.rules, fold.rules_parts().count(), "rules sets"),
            (self.hold_expiries, fold.hold_expiry_parts().count(), "hold expiries"),
            (self.takes, fold.order_takes_parts().count(), "lot take lists"),
            (self.open_holds, fold.open_hold_expiry_parts().count(), "expiring holds"),
        ];
        // With the cold store, the snapshot holds a part of the orders and of what belongs to
        // them: each was compared above.
        let partial = ["orders", "hold expiries", "lot take lists"];
        for (held, folded, what) in counts {
            if self.cold && partial.contains(&what) {
                continue;
            }
            self.differs(held == folded, || format!("the number of {what} ({held}, the fold {folded})"));
        }
        if self.cold {
            return;
        }
        self.differs(self.requests == self.against.requests, || "the number of idempotency records".into());
        let seen = self.against.seen;
        let index_complete = self.indexed.len() == seen.len()
            && self.indexed.iter().all(|(account, flows)| seen.get(account) == Some(flows));
        self.differs(index_complete, || "the per-account flow index (its length)".into());
    }
}
