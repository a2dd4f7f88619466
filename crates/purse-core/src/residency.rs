//! Which orders the state holds in memory (issue 13, "memory bounded by what is live").
//!
//! A ledger that runs for years has millions of orders, nearly all of them settled. The ledger
//! keeps every order in its cold store (on disk) once a snapshot has them, and the state holds
//! only those it may need soon: the ones changed since that snapshot, the open HOLDs (the expiry
//! sweep walks them), and those the ledger admitted back because a command named them. The
//! fold itself does not change: before a command is decided or a flow folded, the ledger admits
//! every order it names ([`State::admit_order`]), so an order the state does not hold is one
//! that does not exist.

use crate::flow::FlowType;
use crate::lots::Take;
use crate::table::StrTable;
use crate::time::Timestamp;

use super::{OrderPart, State, StoredOrder};

impl State {
    /// Whether the state holds order `outer_order_id` in memory.
    pub fn holds_order(&self, outer_order_id: &str) -> bool {
        self.orders.get(outer_order_id).is_some()
    }

    /// How many orders the state holds in memory.
    pub fn orders_held(&self) -> usize {
        self.orders.len()
    }

    /// Admits an order from the ledger's cold store, with its hold expiry and lot takes, as it
    /// was when last changed. It must not be held already, and its account must exist.
    pub fn admit_order(
        &mut self,
        order: OrderPart<'_>,
        expire_time: Option<Timestamp>,
        takes: Vec<Take>,
    ) -> Result<(), String> {
        let stored = StoredOrder::checked(self, &order)?;
        if expire_time.is_some() && order.flow_type != FlowType::Hold {
            return Err(format!("order {:?}: an expiry on a {}", order.outer_order_id, order.flow_type));
        }
        if takes.iter().any(|take| !take.value.is_positive()) {
            return Err(format!("order {:?}: a lot take that is not positive", order.outer_order_id));
        }
        self.orders
            .insert_new(order.outer_order_id, stored)
            .map_err(|_| format!("order {:?} is held already", order.outer_order_id))?;
        if let Some(expire_time) = expire_time {
            self.hold_expiry.insert(order.flow_id, expire_time);
        }
        if !takes.is_empty() {
            self.order_takes.insert(order.flow_id, takes.into());
        }
        Ok(())
    }

    /// Drops from memory every order no flow after `through` changed, with its hold expiry
    /// and lot takes, except open HOLDs. For the ledger, once its cold store holds every order
    /// as of `through`. Returns how many were dropped.
    pub fn evict_orders(&mut self, through: u64) -> usize {
        let keep = |order: &StoredOrder| {
            order.changed > through || (order.flow_type == FlowType::Hold && order.reversed_by == 0)
        };
        let kept = self.orders.values().filter(|order| keep(order)).count();
        let evicted = self.orders.len() - kept;
        if evicted == 0 {
            return 0;
        }
        let mut orders = StrTable::with_capacity(kept);
        for (id, order) in self.orders.iter() {
            if keep(order) {
                orders.insert_new(id, order.clone()).expect("ids of one table are unique");
            } else {
                self.hold_expiry.remove(&order.flow_id);
                self.order_takes.remove(&order.flow_id);
            }
        }
        self.orders = orders;
        evicted
    }

    /// One order with its hold expiry and lot takes, as the cold store keeps it.
    pub fn order_whole<'a>(&self, outer_order_id: &'a str) -> Option<(OrderPart<'a>, Option<Timestamp>, &[Take])> {
        let part = self.order_part(outer_order_id)?;
        Some((part, self.hold_expiry.get(&part.flow_id).copied(), self.order_takes(part.flow_id)))
    }

    /// Equal but for which orders each holds in memory: accounts, rules, sequence, open holds
    /// and a transfer in progress. `verify` compares the orders one by one.
    pub fn same_but_orders(&self, other: &State) -> bool {
        self.config == other.config
            && self.last_sequence == other.last_sequence
            && self.rules == other.rules
            && self.open_hold_expiry == other.open_hold_expiry
            && self.transfer == other.transfer
            && self.accounts == other.accounts
    }
}

#[cfg(test)]
mod tests {
    use crate::balance::Buckets;
    use crate::money::Amount;
    use crate::state::{Account, Config, OrderPart, State, StateBuilder};

    fn account(id: &str) -> Account {
        Account {
            account_id: id.into(),
            card_id: None,
            brand_id: None,
            balance: Buckets::ZERO,
            held: Buckets::ZERO,
            lifetime: Buckets::ZERO,
            status: Default::default(),
            open_holds: 0,
            flow_count: 0,
            lots: Default::default(),
        }
    }

    fn part(id: &str, flow_id: u64, flow_type: crate::FlowType, reversed_by: Option<u64>) -> OrderPart<'_> {
        OrderPart {
            outer_order_id: id,
            flow_id,
            flow_type,
            account: 0,
            moved: Buckets { real: Amount::from_minor(100), ..Buckets::ZERO },
            refunded: Buckets::ZERO,
            reversed_by,
        }
    }

    fn state() -> State {
        let mut builder = StateBuilder::new(Config::default(), 0);
        builder.account(account("a")).unwrap();
        builder.finish(0).unwrap()
    }

    #[test]
    fn admitted_orders_are_evicted_but_open_holds_stay() {
        use crate::FlowType::{Deduct, Hold};
        let mut state = state();
        state.admit_order(part("d", 1, Deduct, None), None, vec![]).unwrap();
        state.admit_order(part("open", 2, Hold, None), None, vec![]).unwrap();
        state.admit_order(part("closed", 3, Hold, Some(4)), None, vec![]).unwrap();
        let check = |state: &State, id: &str, held: bool| assert_eq!(state.holds_order(id), held, "{id}");
        check(&state, "d", true);
        assert_eq!(state.evict_orders(0), 2);
        check(&state, "d", false);
        check(&state, "open", true);
        check(&state, "closed", false);
        assert_eq!(state.orders_held(), 1);
    }

    #[test]
    fn admitting_refuses_what_cannot_be() {
        use crate::FlowType::{Deduct, Hold};
        let check = |order: OrderPart<'_>, expiry: Option<crate::Timestamp>, named: &str| {
            let mut state = state();
            state.admit_order(part("x", 1, Deduct, None), None, vec![]).unwrap();
            let error = state.admit_order(order, expiry, vec![]).unwrap_err();
            assert!(error.contains(named), "{error}");
            assert_eq!(state.orders_held(), 1, "nothing admitted on {error}");
        };
        check(part("x", 5, Deduct, None), None, "held already");
        check(OrderPart { account: 7, ..part("y", 5, Deduct, None) }, None, "does not exist");
        check(part("y", 5, Hold, Some(5)), None, "reversed by");
        check(part("y", 5, Deduct, None), Some(crate::Timestamp(9)), "an expiry on");
    }
}
