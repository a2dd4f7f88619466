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

use super::{Account, State, StoredOrder};
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

impl StoredOrder {
    /// An order from outside the fold (a snapshot, the cold store), as far as it can be checked
    /// alone: its account exists, and a reversal comes after it. Unchanged since (`changed` 0).
    pub(super) fn checked(state: &State, order: &OrderPart<'_>) -> Result<StoredOrder, String> {
        // The message is made only on failure: a million orders pass here on every open.
        let named = || format!("order {:?}", order.outer_order_id);
        if order.account as usize >= state.accounts.len() {
            return Err(format!("{}: account #{} does not exist", named(), order.account));
        }
        if order.flow_id == 0 || order.reversed_by.is_some_and(|by| by <= order.flow_id) {
            return Err(format!("{}: flow {} reversed by {:?}", named(), order.flow_id, order.reversed_by));
        }
        Ok(StoredOrder {
            flow_id: order.flow_id,
            moved: order.moved,
            refunded: order.refunded,
            reversed_by: order.reversed_by.unwrap_or(0),
            changed: 0,
            account: order.account,
            flow_type: order.flow_type,
        })
    }
}

impl<'a> OrderPart<'a> {
    fn of(outer_order_id: &'a str, order: &StoredOrder) -> OrderPart<'a> {
        OrderPart {
            outer_order_id,
            flow_id: order.flow_id,
            flow_type: order.flow_type,
            account: order.account,
            moved: order.moved,
            refunded: order.refunded,
            reversed_by: (order.reversed_by != 0).then_some(order.reversed_by),
        }
    }
}

impl State {
    /// Every order in the order written, with its account's position.
    pub fn order_parts(&self) -> impl Iterator<Item = OrderPart<'_>> {
        self.orders.iter().map(|(id, order)| OrderPart::of(id, order))
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
        self.order_takes.iter().map(|(flow_id, takes)| (*flow_id, &takes[..]))
    }

    /// The position of an account in [`State::accounts`] (the order opened).
    pub fn account_position(&self, account_id: &str) -> Option<usize> {
        self.accounts.position(account_id)
    }

    /// The position of an order in [`State::orders`] (the order written).
    pub fn order_position(&self, outer_order_id: &str) -> Option<usize> {
        self.orders.position(outer_order_id)
    }

    /// One order as [`State::order_parts`] gives it.
    pub fn order_part<'a>(&self, outer_order_id: &'a str) -> Option<OrderPart<'a>> {
        self.orders.get(outer_order_id).map(|order| OrderPart::of(outer_order_id, order))
    }

    /// The expiry of the HOLD of flow `flow_id`, if it has one.
    pub fn hold_expiry_of(&self, flow_id: u64) -> Option<Timestamp> {
        self.hold_expiry.get(&flow_id).copied()
    }

    /// The order id of the open HOLD of flow `flow_id` expiring at `expire_time`, if any.
    pub fn open_hold_expiry_of(&self, expire_time: Timestamp, flow_id: u64) -> Option<&str> {
        self.open_hold_expiry.get(&(expire_time.0, flow_id)).map(String::as_str)
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

/// An insert's outcome: an error if the key held something already.
fn unique<V>(previous: Option<V>, what: &str) -> Result<(), String> {
    match previous {
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
        let stored = StoredOrder::checked(&self.state, &order)?;
        self.state
            .orders
            .insert_new(order.outer_order_id, stored)
            .map(|_| ())
            .map_err(|_| format!("two orders {:?}", order.outer_order_id))
    }

    /// Adds the rules of `brand_id` (`None`: the ledger default).
    pub fn rules(&mut self, brand_id: Option<String>, rules: RuleSet) -> Result<(), String> {
        unique(self.state.rules.insert(brand_id, rules), "rules sets for one brand")
    }

    pub fn hold_expiry(&mut self, flow_id: u64, expire_time: Timestamp) -> Result<(), String> {
        unique(self.state.hold_expiry.insert(flow_id, expire_time), "hold expiries for one flow")
    }

    pub fn order_takes(&mut self, flow_id: u64, takes: Vec<Take>) -> Result<(), String> {
        if takes.is_empty() || takes.iter().any(|take| !take.value.is_positive()) {
            return Err(format!("the lot takes of flow {flow_id} are empty or not positive"));
        }
        unique(self.state.order_takes.insert(flow_id, takes.into()), "lot take lists for one flow")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lots::{Lot, LotKey, Lots};
    use crate::money::Amount;
    use crate::{AccountStatus, Bucket};

    fn account(id: &str, balance: Buckets, held: Buckets, lots: Vec<Lot>) -> Account {
        Account {
            account_id: id.into(),
            card_id: None,
            brand_id: None,
            balance,
            held,
            lifetime: balance,
            status: AccountStatus::Active,
            open_holds: 0,
            flow_count: 1,
            lots: Lots::from_lots(lots).unwrap(),
        }
    }

    fn lot(bucket: Bucket, flow_id: u64, value: i64, held: i64) -> Lot {
        let key = LotKey::new(Some(Timestamp(2_000_000_000)), flow_id, 0).unwrap();
        Lot { bucket, key, value: Amount::from_minor(value), held: Amount::from_minor(held) }
    }

    fn order(id: &str, flow_id: u64, account: u32) -> OrderPart<'_> {
        OrderPart {
            outer_order_id: id,
            flow_id,
            flow_type: FlowType::Hold,
            account,
            moved: Buckets::from_minor(5, 0, 0),
            refunded: Buckets::ZERO,
            reversed_by: None,
        }
    }

    /// A small state with one of everything, built part by part.
    fn built() -> Result<StateBuilder, String> {
        let mut builder = StateBuilder::new(Config::default(), 4);
        let balance = Buckets::from_minor(100, 30, 0);
        let held = Buckets::from_minor(5, 10, 0);
        builder.account(account("a", balance, held, vec![lot(Bucket::Gift, 1, 30, 10)]))?;
        builder.account(account("b", Buckets::from_minor(7, 0, 0), Buckets::ZERO, vec![]))?;
        builder.order(order("h", 3, 0))?;
        builder.rules(None, RuleSet::default())?;
        builder.hold_expiry(3, Timestamp(2_000_000_000))?;
        let take = Take {
            bucket: Bucket::Gift,
            key: LotKey::new(Some(Timestamp(2_000_000_000)), 1, 0).unwrap(),
            value: Amount::from_minor(10),
        };
        builder.order_takes(3, vec![take])?;
        builder.open_hold_expiry(Timestamp(2_000_000_000), 3, "h".into())?;
        Ok(builder)
    }

    #[test]
    fn parts_round_trip() {
        let state = built().unwrap().finish(3).unwrap();
        let mut again = StateBuilder::new(state.config(), 0);
        for account in state.accounts() {
            again.account(account.clone()).unwrap();
        }
        for order in state.order_parts() {
            again.order(order).unwrap();
        }
        for (brand, rules) in state.rules_parts() {
            again.rules(brand.map(str::to_owned), rules.clone()).unwrap();
        }
        for (flow_id, time) in state.hold_expiry_parts() {
            again.hold_expiry(flow_id, time).unwrap();
        }
        for (flow_id, takes) in state.order_takes_parts() {
            again.order_takes(flow_id, takes.to_vec()).unwrap();
        }
        for (time, flow_id, id) in state.open_hold_expiry_parts() {
            again.open_hold_expiry(time, flow_id, id.to_owned()).unwrap();
        }
        let again = again.finish(state.last_sequence()).unwrap();
        assert_eq!(again, state);
        assert_eq!(again.expired_holds(Timestamp(2_000_000_000)), [("a".to_owned(), "h".to_owned())]);
        assert_eq!(again.order("h").unwrap().account_id, "a");
    }

    /// Each damage to the parts is refused with an error that names it, never a panic.
    #[test]
    fn bad_parts_are_refused() {
        type Damage = fn(&mut StateBuilder) -> Result<(), String>;
        let check = |damage: Damage, expect: &str| {
            let error = built().and_then(|mut builder| {
                damage(&mut builder)?;
                builder.finish(3).map(|_| ())
            });
            match error {
                Err(message) => assert!(message.contains(expect), "{expect}: {message}"),
                Ok(()) => panic!("{expect}: accepted"),
            }
        };
        fn plain(id: &str, balance: Buckets, held: Buckets) -> Account {
            account(id, balance, held, vec![])
        }
        check(|b| b.account(plain("a", Buckets::ZERO, Buckets::ZERO)), "two accounts");
        check(
            |b| b.account(plain("c", Buckets::from_minor(1, 0, 0), Buckets::from_minor(2, 0, 0))),
            "more than its balance",
        );
        check(|b| b.account(plain("c", Buckets::from_minor(-1, 0, 0), Buckets::ZERO)), "negative");
        check(|b| b.account(plain("c", Buckets::from_minor(0, 5, 0), Buckets::ZERO)), "lots do not add up");
        check(|b| b.account(plain("c", Buckets::from_minor(i64::MAX, 1, 0), Buckets::ZERO)), "outside i64");
        check(|b| b.order(order("h", 9, 0)), "two order");
        check(|b| b.order(order("x", 9, 2)), "account #2 does not exist");
        check(|b| b.order(OrderPart { reversed_by: Some(2), ..order("x", 2, 0) }), "reversed by");
        check(|b| b.order(order("x", 4, 1)), "beyond entry 3");
        check(|b| b.rules(None, RuleSet::default()), "two rules");
        check(|b| b.hold_expiry(3, Timestamp(0)), "two hold expiries");
        check(|b| b.hold_expiry(8, Timestamp(0)), "flow 8 is beyond");
        check(|b| b.order_takes(2, vec![]), "empty");
        check(|b| b.open_hold_expiry(Timestamp(0), 3, "nope".into()), "no HOLD order");
        check(|b| b.open_hold_expiry(Timestamp(2_000_000_000), 3, "h".into()), "two expiring holds");
        let out_of_order = Lots::from_lots(vec![lot(Bucket::Pre, 1, 1, 0), lot(Bucket::Gift, 1, 1, 0)]);
        assert!(out_of_order.unwrap_err().contains("out of order"));
        assert!(Lots::from_lots(vec![lot(Bucket::Gift, 1, 1, 2)]).unwrap_err().contains("cannot be"));
        assert!(Lots::from_lots(vec![lot(Bucket::Real, 1, 1, 0)]).unwrap_err().contains("cannot be"));
    }
}
