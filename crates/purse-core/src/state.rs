//! The fold's state and `apply`: accounts, orders, rules, and the last log sequence.
//!
//! `apply` re-checks every invariant of a flow before it changes anything, so a damaged log
//! is reported as a [`FoldError`] and the state stays as it was.

use std::collections::HashMap;
use std::sync::Arc;

/// Keys are caller-chosen strings: a seeded hasher that resists collision floods, and is
/// several times faster than SipHash on the fold's hot path.
type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

#[path = "fold.rs"]
mod fold;
#[path = "state_parts.rs"]
mod parts;
#[path = "residency.rs"]
mod residency;

pub use parts::{OrderPart, StateBuilder};

use crate::flow_map::FlowMap;
use crate::table::StrTable;

use crate::balance::Buckets;
use crate::error::FoldError;
use crate::flow::{Entry, Flow, FlowType, RulesChange};
use crate::lots::{LotCredit, Lots, Take};
use crate::money::Scale;
use crate::rules::RuleSet;
use crate::time::{Timestamp, Zone};

/// What a ledger fixes when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    pub scale: Scale,
    pub zone: Zone,
}

/// An account's status (spec §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AccountStatus {
    #[default]
    Active,
    /// Lost card or dispute: only UNDEDUCT, RELEASE, ADJUST, UNFREEZE and CLOSE are accepted.
    Frozen,
    /// Final: nothing more is accepted.
    Closed,
}

impl AccountStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Frozen => "FROZEN",
            AccountStatus::Closed => "CLOSED",
        }
    }
}

/// One account's projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    /// What the account owns, held value included.
    pub balance: Buckets,
    /// What open holds reserve, per bucket; never more than `balance` (spec §8).
    pub held: Buckets,
    /// What CHARGE and IMPORT put into each bucket, less what UNCHARGE took back.
    pub lifetime: Buckets,
    pub status: AccountStatus,
    /// Holds not yet captured or released.
    pub open_holds: u32,
    /// How many flows this account has.
    pub flow_count: u64,
    /// The lots of GIFT and PRE that still hold value (spec §11): per bucket their values add
    /// up to the balance and their held values to the held value.
    pub lots: Lots,
}

impl Account {
    /// `balance − held` per bucket: the limit of every debit (spec §8).
    pub fn available(&self) -> Buckets {
        // held ≤ balance per bucket is an invariant of apply, so this never goes negative.
        self.balance.checked_sub(&self.held).unwrap_or(Buckets::ZERO)
    }
}

/// What the ledger remembers of every order id: enough to refund, reverse and find it.
///
/// A view: the state keeps a compact form of it ([`StoredOrder`]), a million of them in a
/// million-flow ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<'a> {
    pub flow_id: u64,
    pub flow_type: FlowType,
    pub account_id: &'a str,
    /// The positive amount per bucket the order moved: taken by a DEDUCT, CAPTURE or
    /// TRANSFER_OUT, added by a CHARGE, reserved by a HOLD.
    pub moved: Buckets,
    /// For a DEDUCT or CAPTURE: what UNDEDUCTs gave back so far, per bucket.
    pub refunded: Buckets,
    /// For a CHARGE: the UNCHARGE flow that reversed it. For a HOLD: the CAPTURE or RELEASE
    /// that closed it.
    pub reversed_by: Option<u64>,
    /// For a HOLD: when it expires.
    pub expire_time: Option<Timestamp>,
}

/// An [`Order`] as the state keeps it: the account by its position in the account table
/// instead of a copy of its id, and no reversal as 0 (flow ids start at 1). 80 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredOrder {
    flow_id: u64,
    moved: Buckets,
    refunded: Buckets,
    reversed_by: u64,
    /// The last flow folded here that made or changed it; 0 for one admitted from outside the
    /// state (a snapshot, the ledger's cold store), unchanged since. What
    /// [`State::evict_orders`] goes by.
    changed: u64,
    account: u32,
    flow_type: FlowType,
}

// The size the doc above promises: the orders changed since the last snapshot are held.
const _: () = assert!(std::mem::size_of::<StoredOrder>() == 80);

impl Order<'_> {
    /// For a DEDUCT or CAPTURE: what is left to refund in each bucket.
    pub fn refundable(&self) -> Buckets {
        // refunded ≤ moved per bucket is an invariant of apply, so this never goes negative.
        self.moved.checked_sub(&self.refunded).unwrap_or(Buckets::ZERO)
    }
}

/// Everything `decide` needs, and exactly what folding the log produces.
#[derive(Debug, Clone, Default)]
pub struct State {
    config: Config,
    accounts: StrTable<Account>,
    orders: StrTable<StoredOrder>,
    /// `None` is the ledger default, used by accounts whose brand has no rules of its own.
    rules: Map<Option<String>, RuleSet>,
    /// The expiry of every HOLD that has one, by the hold's flow id.
    hold_expiry: FlowMap<Timestamp>,
    /// What each order took from (or reserved in) which lot, by the order's flow id, while it
    /// can still be given back: a DEDUCT's or CAPTURE's until fully refunded, a HOLD's until it
    /// resolves. Orders that touched no lot have no entry.
    /// Each list is shared, never changed in place: copying a shard (`FlowMap`) copies pointers.
    order_takes: FlowMap<Arc<[Take]>>,
    /// The open HOLDs that expire, by (expiry, flow id): what the sweep releases.
    open_hold_expiry: std::collections::BTreeMap<(i64, u64), String>,
    /// A TRANSFER_OUT just folded: the next entry must be its TRANSFER_IN.
    transfer: Option<PendingTransfer>,
    last_sequence: u64,
    /// A fold of one account's flows only (history views, spec §12): log positions increase
    /// but have gaps, and a TRANSFER_IN's lots are taken as it states them.
    sparse: bool,
}

/// What a TRANSFER_IN must match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingTransfer {
    flow_id: u64,
    request_id: String,
    outer_order_id: String,
    from_account_id: String,
    to_account_id: String,
    affected: Buckets,
    /// The lots the TRANSFER_IN must make: what the TRANSFER_OUT took, with their expiry.
    lots: Vec<LotCredit>,
}

impl State {
    pub fn new(config: Config) -> State {
        State { config, ..State::default() }
    }

    /// An empty state with room for `orders` orders without growing (the log's length is known
    /// when a ledger opens; growing a million-entry map rehashes it again and again).
    pub fn with_capacity(config: Config, orders: usize) -> State {
        State { config, orders: StrTable::with_capacity(orders), ..State::default() }
    }

    /// An empty state for folding the flows of one account alone (see [`State::apply_entry`]):
    /// what its history views (spec §12) are folded with.
    pub fn for_one_account(config: Config) -> State {
        State { config, sparse: true, ..State::default() }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// What the order of flow `flow_id` took from (or reserved in) each lot, while it can still
    /// be given back.
    pub fn order_takes(&self, flow_id: u64) -> &[Take] {
        self.order_takes.get(&flow_id).map_or(&[], |takes| &takes[..])
    }

    /// The open HOLDs whose expiry is at or before `now`: `(account_id, hold order id)`.
    pub fn expired_holds(&self, now: Timestamp) -> Vec<(String, String)> {
        self.open_hold_expiry
            .range(..=(now.0, u64::MAX))
            .filter_map(|(_, id)| Some((self.order(id)?.account_id.to_owned(), id.clone())))
            .collect()
    }

    /// The sequence the next log entry must carry. Sequences start at 1.
    pub fn next_sequence(&self) -> u64 {
        self.last_sequence + 1
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts.get(account_id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A copy to iterate over, for a snapshot written beside the writer: it shares the tables'
    /// chunks and the flow maps' shards with this state (copy on write), and its tables have no
    /// index, so it answers no lookup by id (the parts iterators of `state_parts.rs` need none).
    /// Costs the rules and the open expiring holds, copied; nothing in proportion to the log.
    pub fn unindexed_copy(&self) -> State {
        State {
            config: self.config,
            accounts: self.accounts.unindexed_copy(),
            orders: self.orders.unindexed_copy(),
            rules: self.rules.clone(),
            hold_expiry: self.hold_expiry.clone(),
            order_takes: self.order_takes.clone(),
            open_hold_expiry: self.open_hold_expiry.clone(),
            transfer: self.transfer.clone(),
            last_sequence: self.last_sequence,
            sparse: self.sparse,
        }
    }

    /// Moves what changed while an [`State::unindexed_copy`] shared the tables and flow maps
    /// back into their own storage, once the copy is gone (`StrTable::settle`); what a copy
    /// still shares stays where it is. Changes nothing any lookup or iteration gives.
    pub fn settle(&mut self) {
        self.accounts.settle();
        self.orders.settle();
        self.hold_expiry.settle();
        self.order_takes.settle();
    }

    /// Entries changed while a copy shared their storage, not yet settled: a measure of what a
    /// snapshot's copy costs the writer.
    pub fn overlaid(&self) -> usize {
        self.accounts.overlaid() + self.orders.overlaid() + self.hold_expiry.overlaid() + self.order_takes.overlaid()
    }

    /// How many accounts [`State::accounts`] yields.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    pub fn order(&self, outer_order_id: &str) -> Option<Order<'_>> {
        self.orders.get(outer_order_id).map(|order| self.view(order))
    }

    /// Every order id with its order, in the order they were written.
    pub fn orders(&self) -> impl Iterator<Item = (&str, Order<'_>)> {
        self.orders.iter().map(|(id, order)| (id, self.view(order)))
    }

    fn view<'a>(&'a self, order: &StoredOrder) -> Order<'a> {
        Order {
            flow_id: order.flow_id,
            flow_type: order.flow_type,
            account_id: &self.accounts.value_at(order.account as usize).account_id,
            moved: order.moved,
            refunded: order.refunded,
            reversed_by: (order.reversed_by != 0).then_some(order.reversed_by),
            // Only holds have an expiry: no lookup for the million other orders.
            expire_time: match order.flow_type {
                FlowType::Hold => self.hold_expiry.get(&order.flow_id).copied(),
                _ => None,
            },
        }
    }

    /// spec §11's invariant over every account: per bucket its lots add up to its GIFT and PRE
    /// balance, their held values to its held value, and no lot holds more than it has. The fold
    /// keeps it flow by flow; `verify` checks it whole.
    pub fn check_lots(&self) -> Result<(), String> {
        for account in self.accounts() {
            let (value, held) = account.lots.totals().ok_or("lot values overflow")?;
            for bucket in crate::lots::LOT_BUCKETS {
                if value.get(bucket) != account.balance.get(bucket) || held.get(bucket) != account.held.get(bucket) {
                    return Err(format!(
                        "account {:?}: its {bucket} lots hold {} ({} held), the balance is {} ({} held)",
                        account.account_id,
                        value.get(bucket).minor(),
                        held.get(bucket).minor(),
                        account.balance.get(bucket).minor(),
                        account.held.get(bucket).minor()
                    ));
                }
            }
            if let Some(lot) = account.lots.iter().find(|lot| lot.held > lot.value || !lot.value.is_positive()) {
                return Err(format!("account {:?}: a lot holds {:?}", account.account_id, lot));
            }
        }
        Ok(())
    }

    /// Whether the last entry folded was a TRANSFER_OUT still waiting for its TRANSFER_IN: a
    /// log must never end there.
    pub fn mid_transfer(&self) -> bool {
        self.transfer.is_some()
    }

    /// The rules set for exactly this brand (or the default with `None`), if any were set.
    pub fn rules_set_for(&self, brand_id: Option<&str>) -> Option<&RuleSet> {
        self.rules.get(&brand_id.map(str::to_owned))
    }

    /// The rules in force for an account of `brand_id`: the brand's, else the ledger default,
    /// else [`RuleSet::default`].
    pub fn rules_for(&self, brand_id: Option<&str>) -> RuleSet {
        brand_id
            .and_then(|brand| self.rules.get(&Some(brand.to_owned())))
            .or_else(|| self.rules.get(&None))
            .cloned()
            .unwrap_or_default()
    }

    /// Folds one log entry.
    pub fn apply_entry(&mut self, entry: &Entry) -> Result<(), FoldError> {
        match entry {
            Entry::Flow(flow) => apply(self, flow),
            Entry::Rules(change) => apply_rules(self, change),
        }
    }

    fn check_sequence(&self, sequence: u64) -> Result<(), FoldError> {
        if self.sparse {
            return if sequence > self.last_sequence {
                Ok(())
            } else {
                Err(FoldError { sequence, reason: format!("sequence {sequence} after {}", self.last_sequence) })
            };
        }
        if let Some(pending) = &self.transfer {
            if sequence == self.next_sequence() && pending.flow_id + 1 == sequence {
                // Checked further by the flow's own rules: only its TRANSFER_IN may come here.
            } else {
                return Err(FoldError { sequence, reason: "a TRANSFER_OUT is not followed by its TRANSFER_IN".into() });
            }
        }
        if sequence != self.next_sequence() {
            return Err(FoldError {
                sequence,
                reason: format!("sequence gap: expected {}, found {sequence}", self.next_sequence()),
            });
        }
        Ok(())
    }
}

/// Equal when they hold the same accounts, orders, rules and sequence, whatever order the
/// accounts were opened in.
impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.same_but_orders(other)
            && self.hold_expiry == other.hold_expiry
            && self.order_takes == other.order_takes
            && self.orders.len() == other.orders.len()
            && self.orders().all(|(id, order)| other.order(id) == Some(order))
    }
}

impl Eq for State {}

/// Folds a rules change.
pub fn apply_rules(state: &mut State, change: &RulesChange) -> Result<(), FoldError> {
    state.check_sequence(change.sequence)?;
    if state.transfer.is_some() {
        return Err(FoldError { sequence: change.sequence, reason: "a rules change inside a transfer".into() });
    }
    state.rules.insert(change.brand_id.clone(), change.rules.clone());
    state.last_sequence = change.sequence;
    Ok(())
}

/// Folds one flow onto the state. Every invariant is checked first; on error nothing changed.
/// The checks and the fold itself are in `fold.rs`.
pub fn apply(state: &mut State, flow: &Flow) -> Result<(), FoldError> {
    let checked = fold::check(state, flow)?;
    fold::commit(state, flow, checked);
    Ok(())
}
