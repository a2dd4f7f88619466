//! The fold's state and `apply`: accounts, orders, rules, and the last log sequence.
//!
//! `apply` re-checks every invariant of a flow before it changes anything, so a damaged log
//! is reported as a [`FoldError`] and the state stays as it was.

use std::collections::HashMap;

/// Keys are caller-chosen strings: a seeded hasher that resists collision floods, and is
/// several times faster than SipHash on the fold's hot path.
type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

use crate::table::StrTable;

use crate::balance::{Bucket, Buckets};
use crate::error::FoldError;
use crate::flow::{Entry, Flow, FlowType, RulesChange};
use crate::money::Scale;
use crate::rules::RuleSet;
use crate::time::Zone;

/// What a ledger fixes when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    pub scale: Scale,
    pub zone: Zone,
}

/// One account's projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub balance: Buckets,
    /// What CHARGE and IMPORT put into each bucket, less what UNCHARGE took back.
    pub lifetime: Buckets,
    /// How many flows this account has.
    pub flow_count: u64,
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
    /// The positive amount per bucket the order moved: taken by a DEDUCT, added by a CHARGE.
    pub moved: Buckets,
    /// For a DEDUCT: what UNDEDUCTs gave back so far, per bucket.
    pub refunded: Buckets,
    /// For a CHARGE: the UNCHARGE flow that reversed it.
    pub reversed_by: Option<u64>,
}

/// An [`Order`] as the state keeps it: the account by its position in the account table
/// instead of a copy of its id, and no reversal as 0 (flow ids start at 1). 72 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredOrder {
    flow_id: u64,
    moved: Buckets,
    refunded: Buckets,
    reversed_by: u64,
    account: u32,
    flow_type: FlowType,
}

// The size the doc above promises: a million of them are held by a million-flow ledger.
const _: () = assert!(std::mem::size_of::<StoredOrder>() == 72);

impl Order<'_> {
    /// For a DEDUCT: what is left to refund in each bucket.
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
    last_sequence: u64,
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

    pub fn config(&self) -> Config {
        self.config
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
        }
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
        self.config == other.config
            && self.last_sequence == other.last_sequence
            && self.rules == other.rules
            && self.accounts == other.accounts
            && self.orders.len() == other.orders.len()
            && self.orders().all(|(id, order)| other.order(id) == Some(order))
    }
}

impl Eq for State {}

/// Folds a rules change.
pub fn apply_rules(state: &mut State, change: &RulesChange) -> Result<(), FoldError> {
    state.check_sequence(change.sequence)?;
    state.rules.insert(change.brand_id.clone(), change.rules.clone());
    state.last_sequence = change.sequence;
    Ok(())
}

/// Folds one flow onto the state. Every invariant is checked first; on error nothing changed.
pub fn apply(state: &mut State, flow: &Flow) -> Result<(), FoldError> {
    let checked = check(state, flow)?;
    commit(state, flow, checked);
    Ok(())
}

/// What [`check`] worked out for [`commit`].
struct Checked {
    after: Buckets,
    lifetime: Buckets,
    /// The account's position in the account table; `None` for a flow that opens it.
    account: Option<usize>,
}

/// Every invariant a flow must meet against the state, without changing it.
fn check(state: &State, flow: &Flow) -> Result<Checked, FoldError> {
    let fail = |reason: String| FoldError { sequence: flow.flow_id, reason };
    state.check_sequence(flow.flow_id)?;
    if let Some(order) = state.orders.get(&flow.outer_order_id) {
        return Err(fail(format!("outer_order_id {:?} already used by flow {}", flow.outer_order_id, order.flow_id)));
    }
    let after = flow.after().ok_or_else(|| fail("after-balance overflows".into()))?;
    if let Some(bucket) = flow.before.negative_bucket().or(after.negative_bucket()) {
        return Err(fail(format!("bucket {bucket} would be negative")));
    }
    if after.total().is_none() || flow.order_value().is_none() {
        return Err(fail("TOTAL overflows".into()));
    }
    let account_position = state.accounts.position(&flow.account_id);
    let account = account_position.map(|position| state.accounts.value_at(position));
    match account {
        Some(account) => {
            if account.balance != flow.before {
                return Err(fail(format!("before {:?} differs from the fold's {:?}", flow.before, account.balance)));
            }
            if account.card_id != flow.card_id || account.brand_id != flow.brand_id {
                return Err(fail("card_id or brand_id differs from the account's".into()));
            }
        }
        None if flow.flow_type.opens_account() && flow.before.is_zero() => {}
        None => return Err(fail(format!("account {:?} does not exist", flow.account_id))),
    }
    let lifetime_change = check_type_rules(state, flow).map_err(fail)?;
    let lifetime_before = account.map_or(Buckets::ZERO, |account| account.lifetime);
    let lifetime =
        lifetime_before.checked_add(&lifetime_change).ok_or_else(|| fail("lifetime total overflows".into()))?;
    Ok(Checked { after, lifetime, account: account_position })
}

/// Folds a checked flow.
fn commit(state: &mut State, flow: &Flow, checked: Checked) {
    let Checked { after, lifetime, account } = checked;
    let account_position = match account {
        Some(position) => position,
        None => {
            let account = Account {
                account_id: flow.account_id.clone(),
                card_id: flow.card_id.clone(),
                brand_id: flow.brand_id.clone(),
                balance: Buckets::ZERO,
                lifetime: Buckets::ZERO,
                flow_count: 0,
            };
            state.accounts.insert_new(&flow.account_id, account).expect("the account is new")
        }
    };
    let account = state.accounts.value_at_mut(account_position);
    account.balance = after;
    account.lifetime = lifetime;
    account.flow_count += 1;
    match (flow.flow_type, &flow.source_order_id) {
        (FlowType::Undeduct, Some(source)) => {
            let original = state.orders.get_mut(source).expect("checked by check_type_rules");
            original.refunded = original.refunded.checked_add(&flow.affected).expect("checked by check_type_rules");
        }
        (FlowType::Uncharge, Some(source)) => {
            state.orders.get_mut(source).expect("checked by check_type_rules").reversed_by = flow.flow_id;
        }
        _ => {}
    }
    let moved = match flow.flow_type {
        FlowType::Deduct => flow.affected.checked_neg().expect("checked by check_type_rules"),
        _ => flow.affected,
    };
    let order = StoredOrder {
        flow_id: flow.flow_id,
        moved,
        refunded: Buckets::ZERO,
        reversed_by: 0,
        account: u32::try_from(account_position).expect("at most 2^32 accounts"),
        flow_type: flow.flow_type,
    };
    state.orders.insert_new(&flow.outer_order_id, order).expect("check refused a used order id");
    state.last_sequence = flow.flow_id;
}

/// The per-type rules a flow must satisfy. Returns the flow's change to the lifetime totals.
fn check_type_rules(state: &State, flow: &Flow) -> Result<Buckets, String> {
    let affected = flow.affected;
    if flow.source.is_some() {
        // A provider's record decided this flow: only its signs are ours to check.
        if let Some(fault) = flow.flow_type.sign_fault(&affected) {
            return Err(fault.to_owned());
        }
        if flow.source_order_id.is_some() {
            return Err("a provider flow references no order".into());
        }
        let counts_in_lifetime = matches!(flow.flow_type, FlowType::Charge | FlowType::Import | FlowType::Uncharge);
        return Ok(if counts_in_lifetime { affected } else { Buckets::ZERO });
    }
    let all_at_least_zero = affected.negative_bucket().is_none();
    let all_at_most_zero = Bucket::ALL.into_iter().all(|bucket| !affected.get(bucket).is_positive());
    let source = || -> Result<Order<'_>, String> {
        let id = flow.source_order_id.as_ref().ok_or("source order missing")?;
        let order = state.order(id).ok_or_else(|| format!("source order {id:?} does not exist"))?;
        if order.account_id != flow.account_id {
            return Err(format!("source order {id:?} belongs to another account"));
        }
        Ok(order)
    };
    match flow.flow_type {
        FlowType::Charge | FlowType::Import => {
            if !all_at_least_zero {
                return Err(format!("{} with a negative part", flow.flow_type));
            }
            if flow.flow_type == FlowType::Charge && affected.is_zero() {
                return Err("CHARGE of nothing".into());
            }
            Ok(affected)
        }
        FlowType::Deduct => {
            if !all_at_most_zero || affected.is_zero() {
                return Err("DEDUCT must take a positive amount and add nothing".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Undeduct => {
            let original = source()?;
            if original.flow_type != FlowType::Deduct {
                return Err("UNDEDUCT of an order that is not a DEDUCT".into());
            }
            if !all_at_least_zero || affected.is_zero() {
                return Err("UNDEDUCT must give back a positive amount".into());
            }
            let refunded = original.refunded.checked_add(&affected).ok_or("refund overflows")?;
            if let Some(bucket) =
                Bucket::ALL.into_iter().find(|bucket| refunded.get(*bucket) > original.moved.get(*bucket))
            {
                return Err(format!("refunds exceed the original DEDUCT in {bucket}"));
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Uncharge => {
            let original = source()?;
            if original.flow_type != FlowType::Charge {
                return Err("UNCHARGE of an order that is not a CHARGE".into());
            }
            if let Some(by) = original.reversed_by {
                return Err(format!("CHARGE already reversed by flow {by}"));
            }
            if original.moved.checked_neg() != Some(affected) {
                return Err("UNCHARGE must take back exactly what the CHARGE added".into());
            }
            Ok(affected)
        }
        FlowType::Adjust => {
            if affected.is_zero() {
                return Err("ADJUST of nothing".into());
            }
            Ok(Buckets::ZERO)
        }
    }
}
