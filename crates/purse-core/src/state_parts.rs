//! A [`State`] as plain parts, out and back in: what a snapshot of the ledger stores
//! (`purse-ledger/src/snapshot.rs`), so that opening need not fold the whole log.
//!
//! Out: iterators over the state's tables in their own order, borrowing, so a snapshot of a
//! million orders is encoded piece by piece and never copied whole. In: a [`StateBuilder`] fed
//! the same parts in the same order. The parts come from disk, so the builder never panics on
//! them: it re-checks what it can check cheaply (no duplicate ids, an order's account exists,
//! held ≤ balance, lots adding up to the GIFT and PRE balance and held value, flow ids inside
//! the log) and names the first problem. What it cannot check (that the parts are the fold of
//! the log at all) `verify` checks by folding the log and comparing.
//!
//! No serde: the encoding is the ledger's, in its own versioned records.

use super::{Account, Map, State, StoredOrder};
use crate::balance::Buckets;
use crate::flow::FlowType;
use crate::lots::Take;
use crate::rules::RuleSet;
use crate::time::Timestamp;
use crate::Config;

/// One order as a snapshot keeps it: the account by its position in [`State::accounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPart<'a> {
    pub outer_order_id: &'a str,
    pub flow_id: u64,
    pub flow_type: FlowType,
    /// The position of the order's account in [`State::accounts`] (0 for the first opened).
    pub account: u32,
    pub moved: Buckets,
    pub refunded: Buckets,
    /// The UNCHARGE, CAPTURE or RELEASE that closed the order, if any.
    pub reversed_by: Option<u64>,
}

impl State {
    /// Every order in the order written, with its account's position.
    pub fn order_parts(&self) -> impl Iterator<Item = OrderPart<'_>> {
        self.orders.iter().map(|(id, order)| OrderPart {
            outer_order_id: id,
            flow_id: order.flow_id,
            flow_type: order.flow_type,
            account: order.account,
            moved: order.moved,
            refunded: order.refunded,
            reversed_by: (order.reversed_by != 0).then_some(order.reversed_by),
        })
    }

    /// Every rules set, by brand (`None`: the ledger default), in no particular order.
    pub fn rules_parts(&self) -> impl Iterator<Item = (Option<&str>, &RuleSet)> {
        self.rules.iter().map(|(brand, rules)| (brand.as_deref(), rules))
    }

    /// The expiry of every HOLD that has one, by the hold's flow id, in no particular order.
    pub fn hold_expiry_parts(&self) -> impl Iterator<Item = (u64, Timestamp)> + '_ {
        self.hold_expiry.iter().map(|(flow_id, time)| (*flow_id, *time))
    }

    /// What each order still able to give back took from which lot, in no particular order.
    pub fn order_takes_parts(&self) -> impl Iterator<Item = (u64, &[Take])> {
        self.order_takes.iter().map(|(flow_id, takes)| (*flow_id, takes.as_slice()))
    }

    /// The open HOLDs that expire: `(expiry, flow id, order id)`, soonest first.
    pub fn open_hold_expiry_parts(&self) -> impl Iterator<Item = (Timestamp, u64, &str)> {
        self.open_hold_expiry.iter().map(|((time, flow_id), id)| (Timestamp(*time), *flow_id, id.as_str()))
    }
}

/// Builds a [`State`] from its parts, checking each as it comes (see the module comment).
/// Accounts must come before the orders that name them, and every order before the open hold
/// expiries that name it.
#[derive(Debug)]
pub struct StateBuilder {
    state: State,
}

fn insert_unique<K: std::hash::Hash + Eq, V>(map: &mut Map<K, V>, key: K, value: V, what: &str) -> Result<(), String> {
    match map.insert(key, value) {
        None => Ok(()),
        Some(_) => Err(format!("two {what}")),
    }
}

impl StateBuilder {
    /// An empty state of `config`, with room for `orders` orders.
    pub fn new(config: Config, orders: usize) -> StateBuilder {
        StateBuilder { state: State::with_capacity(config, orders) }
    }

    /// Adds the next account (accounts in the order they were opened).
    pub fn account(&mut self, account: Account) -> Result<(), String> {
        check_account(&account).map_err(|reason| format!("account {:?}: {reason}", account.account_id))?;
        let id = account.account_id.clone();
        self.state.accounts.insert_new(&id, account).map(|_| ()).map_err(|_| format!("two accounts {id:?}"))
    }

    /// Adds the next order (orders in the order written).
    pub fn order(&mut self, order: OrderPart<'_>) -> Result<(), String> {
        let named = format!("order {:?}", order.outer_order_id);
        if order.account as usize >= self.state.accounts.len() {
            return Err(format!("{named}: account #{} does not exist", order.account));
        }
        if order.flow_id == 0 || order.reversed_by.is_some_and(|by| by <= order.flow_id) {
            return Err(format!("{named}: flow {} reversed by {:?}", order.flow_id, order.reversed_by));
        }
        if order.moved.negative_bucket().is_some() || order.refunded.negative_bucket().is_some() {
            return Err(format!("{named}: a negative amount"));
        }
        let stored = StoredOrder {
            flow_id: order.flow_id,
            moved: order.moved,
            refunded: order.refunded,
            reversed_by: order.reversed_by.unwrap_or(0),
            account: order.account,
            flow_type: order.flow_type,
        };
        self.state.orders.insert_new(order.outer_order_id, stored).map(|_| ()).map_err(|_| format!("two {named}"))
    }

    /// Adds the rules of `brand_id` (`None`: the ledger default).
    pub fn rules(&mut self, brand_id: Option<String>, rules: RuleSet) -> Result<(), String> {
        insert_unique(&mut self.state.rules, brand_id, rules, "rules sets for one brand")
    }

    pub fn hold_expiry(&mut self, flow_id: u64, expire_time: Timestamp) -> Result<(), String> {
        insert_unique(&mut self.state.hold_expiry, flow_id, expire_time, "hold expiries for one flow")
    }

    pub fn order_takes(&mut self, flow_id: u64, takes: Vec<Take>) -> Result<(), String> {
        if takes.is_empty() || takes.iter().any(|take| !take.value.is_positive()) {
            return Err(format!("the lot takes of flow {flow_id} are empty or not positive"));
        }
        insert_unique(&mut self.state.order_takes, flow_id, takes, "lot take lists for one flow")
    }

    /// Adds an open HOLD that expires; its order must be there already.
    pub fn open_hold_expiry(
        &mut self,
        expire_time: Timestamp,
        flow_id: u64,
        outer_order_id: String,
    ) -> Result<(), String> {
        match self.state.orders.get(&outer_order_id) {
            Some(order) if order.flow_id == flow_id && order.flow_type == FlowType::Hold => {}
            _ => return Err(format!("an expiring hold {outer_order_id:?} (flow {flow_id}) that is no HOLD order")),
        }
        match self.state.open_hold_expiry.insert((expire_time.0, flow_id), outer_order_id) {
            None => Ok(()),
            Some(_) => Err(format!("two expiring holds of flow {flow_id}")),
        }
    }

    /// The state, folded up to `last_sequence`: no part may name a later flow.
    pub fn finish(mut self, last_sequence: u64) -> Result<State, String> {
        let beyond = |flow_id: u64| flow_id > last_sequence;
        if let Some(order) = self.state.orders.values().find(|order| beyond(order.flow_id.max(order.reversed_by))) {
            return Err(format!("order of flow {} is beyond entry {last_sequence}", order.flow_id));
        }
        let flow_ids = self.state.hold_expiry.keys().chain(self.state.order_takes.keys());
        if let Some(flow_id) = flow_ids.copied().find(|flow_id| beyond(*flow_id)) {
            return Err(format!("flow {flow_id} is beyond entry {last_sequence}"));
        }
        self.state.last_sequence = last_sequence;
        Ok(self.state)
    }
}

/// What can be checked of one account alone: no negative bucket, held ≤ balance, sums inside
/// `i64`, and its lots holding exactly its GIFT and PRE (spec §11).
fn check_account(account: &Account) -> Result<(), String> {
    let negative = account.balance.negative_bucket().or(account.held.negative_bucket());
    if let Some(bucket) = negative {
        return Err(format!("a negative {bucket} balance or held value"));
    }
    match account.balance.checked_sub(&account.held) {
        Some(free) if free.negative_bucket().is_none() => {}
        _ => return Err("holds more than its balance".into()),
    }
    if account.balance.total().is_none() || account.lifetime.total().is_none() {
        return Err("a TOTAL outside i64".into());
    }
    let (value, held) = account.lots.totals().ok_or("lot values overflow")?;
    for bucket in crate::lots::LOT_BUCKETS {
        if value.get(bucket) != account.balance.get(bucket) || held.get(bucket) != account.held.get(bucket) {
            return Err(format!("its {bucket} lots do not add up to its balance and held value"));
        }
    }
    Ok(())
}
