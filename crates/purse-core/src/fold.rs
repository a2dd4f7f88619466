//! The fold's checks and its commit: every invariant a flow must meet against the state
//! (sequence, order ids, balances, held value, status, per-type rules, transfer pairing), then
//! the change itself. A child of `state.rs`, so it sees the state's private fields.

use super::{Account, AccountStatus, Order, PendingTransfer, State, StoredOrder};
use crate::balance::{Bucket, Buckets};
use crate::error::FoldError;
use crate::flow::{Flow, FlowType};
use crate::lots::{moved_lots, takes_total, LotCredit, LotKey, LotOp, LotOps, Lots, Take, LOT_BUCKETS};

/// What [`check`] worked out for [`commit`].
pub(super) struct Checked {
    after: Buckets,
    held: Buckets,
    lifetime: Buckets,
    /// The account's position in the account table; `None` for a flow that opens it.
    account: Option<usize>,
    lots: LotChange,
}

/// What a flow does to lots (spec §11), worked out by [`check_lots`].
pub(super) struct LotChange {
    /// The changes to the account's lots, checked, in order.
    ops: LotOps,
    /// Which of `ops` holds what this flow's order took or reserved, kept for give-backs
    /// (DEDUCT, CAPTURE, HOLD): its takes move into the order's once applied.
    own: Option<usize>,
    /// The referenced order's takes after this flow (by its flow id; empty: none left).
    source: Option<(u64, Vec<Take>)>,
    /// For a TRANSFER_OUT: the lots its TRANSFER_IN must make, as a flow stores them.
    moved: Vec<LotCredit>,
}

/// Every invariant a flow must meet against the state, without changing it.
pub(super) fn check(state: &State, flow: &Flow) -> Result<Checked, FoldError> {
    let fail = |reason: String| FoldError { sequence: flow.flow_id, reason };
    state.check_sequence(flow.flow_id)?;
    if flow.shares_request() {
        // Written under its TRANSFER_OUT's order id: check_transfer_in checks it is that one.
    } else if let Some(order) = state.orders.get(&flow.outer_order_id) {
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
            match account.status {
                AccountStatus::Closed => return Err(fail("the account is closed".into())),
                // A transfer's settle takes value that has already arrived (docs/cluster.md §4).
                AccountStatus::Frozen if !flow.flow_type.allowed_while_frozen() && !flow.settles_hold() => {
                    return Err(fail(format!("{} on a frozen account", flow.flow_type)))
                }
                _ => {}
            }
        }
        None if flow.flow_type.opens_account() && flow.before.is_zero() => {}
        None => return Err(fail(format!("account {:?} does not exist", flow.account_id))),
    }
    let held_before = account.map_or(Buckets::ZERO, |account| account.held);
    let held = held_before.checked_add(&flow.held).ok_or_else(|| fail("held value overflows".into()))?;
    if let Some(bucket) = held.negative_bucket() {
        return Err(fail(format!("held value in {bucket} would be negative")));
    }
    if let Some(bucket) = Bucket::ALL.into_iter().find(|bucket| held.get(*bucket) > after.get(*bucket)) {
        return Err(fail(format!("held value in {bucket} would exceed the balance")));
    }
    let lifetime_change = check_type_rules(state, flow, account).map_err(fail)?;
    let lifetime_before = account.map_or(Buckets::ZERO, |account| account.lifetime);
    let lifetime =
        lifetime_before.checked_add(&lifetime_change).ok_or_else(|| fail("lifetime total overflows".into()))?;
    let lots = check_lots(state, flow, account).map_err(|reason| fail(format!("lots: {reason}")))?;
    Ok(Checked { after, held, lifetime, account: account_position, lots })
}

/// What `flow` does to the account's lots, checked against them: a debit takes only available
/// lot value, a credit's lots add up to it exactly, a give-back returns to the lots it came
/// from. The bucket amounts were checked already; this only decides which lot. Nothing is
/// changed or copied whole: the changes are planned against the lots as they are and tried on a
/// copy of the few they touch.
fn check_lots(state: &State, flow: &Flow, account: Option<&Account>) -> Result<LotChange, String> {
    let mut change = LotChange { ops: LotOps::default(), own: None, source: None, moved: Vec::new() };
    let touches = |buckets: &Buckets| LOT_BUCKETS.into_iter().any(|bucket| !buckets.get(bucket).is_zero());
    if !touches(&flow.affected) && !touches(&flow.held) && flow.lots.is_empty() {
        // REAL only, or no money at all: no lot to look at.
        return Ok(change);
    }
    let empty = Lots::default();
    let lots = account.map_or(&empty, |account| &account.lots);
    let mut debits = Buckets::ZERO;
    let mut credits = Buckets::ZERO;
    for bucket in LOT_BUCKETS {
        let part = flow.affected.get(bucket);
        let (debit, credit) = if part.is_negative() { (part.checked_neg(), None) } else { (None, Some(part)) };
        set(&mut debits, bucket, debit.unwrap_or_default());
        set(&mut credits, bucket, credit.unwrap_or_default());
    }
    let source_flow = || -> Result<u64, String> {
        let id = flow.source_order_id.as_deref().ok_or("no source order")?;
        state.order(id).map(|order| order.flow_id).ok_or_else(|| format!("source order {id:?} unknown"))
    };
    let short = |what: &str| format!("{} has less available lot value than it {what}", flow.flow_type);
    match flow.flow_type {
        FlowType::Hold => {
            let plan = lots.plan_buckets(&flow.held, None).ok_or_else(|| short("reserves"))?;
            change.own = Some(change.ops.len());
            change.ops.push(LotOp::Reserve(plan));
        }
        FlowType::Capture | FlowType::Release | FlowType::TransferOut if flow.source_order_id.is_some() => {
            let hold = source_flow()?;
            let reserved = state.order_takes(hold);
            let mut spend = Vec::new();
            let mut free = Vec::new();
            for bucket in LOT_BUCKETS {
                let mut left = debits.get(bucket).minor();
                for take in reserved.iter().filter(|take| take.bucket == bucket) {
                    let part = take.value.minor().min(left);
                    left -= part;
                    if part > 0 {
                        spend.push(Take { value: crate::Amount::from_minor(part), ..*take });
                    }
                    if take.value.minor() > part {
                        free.push(Take { value: crate::Amount::from_minor(take.value.minor() - part), ..*take });
                    }
                }
                if left != 0 {
                    return Err(format!("{} spends more {bucket} than the hold reserved in lots", flow.flow_type));
                }
            }
            let freed = flow.held.checked_neg().unwrap_or_default();
            if takes_total(reserved) != Some(Buckets { real: crate::Amount::ZERO, ..freed }) {
                return Err("the hold's lots differ from what it reserved".into());
            }
            change.own = Some(change.ops.len());
            change.ops.push(LotOp::SpendReserved(spend));
            change.ops.push(LotOp::Unreserve(free));
            change.source = Some((hold, Vec::new()));
        }
        FlowType::Undeduct if flow.source_order_id.is_some() => {
            let original = source_flow()?;
            let mut rest = state.order_takes(original).to_vec();
            let mut refill = Vec::new();
            for bucket in LOT_BUCKETS {
                let mut left = credits.get(bucket).minor();
                // The last taken is given back first (spec §13).
                for take in rest.iter_mut().rev().filter(|take| take.bucket == bucket) {
                    let part = take.value.minor().min(left);
                    if part > 0 {
                        refill.push(Take { value: crate::Amount::from_minor(part), ..*take });
                        take.value = crate::Amount::from_minor(take.value.minor() - part);
                        left -= part;
                    }
                }
                if left != 0 {
                    return Err(format!("UNDEDUCT gives back more {bucket} than its order took from lots"));
                }
            }
            rest.retain(|take| take.value.is_positive());
            change.ops.push(LotOp::Refill(refill));
            change.source = Some((original, rest));
        }
        FlowType::Expire => {
            let plan = lots.plan_expired(flow.order_time);
            if takes_total(&plan) != Some(debits) {
                return Err(format!(
                    "EXPIRE takes {debits:?}, its lots expired at its time hold {:?}",
                    takes_total(&plan)
                ));
            }
            change.ops.push(LotOp::Take(plan));
        }
        _ => {
            // An UNCHARGE takes from its own CHARGE's lots first; a provider's UNCHARGE names none.
            let first = match (flow.flow_type, &flow.source_order_id) {
                (FlowType::Uncharge, Some(_)) => Some(source_flow()?),
                _ => None,
            };
            let plan = lots.plan_buckets(&debits, first).ok_or_else(|| short("takes"))?;
            if flow.flow_type == FlowType::TransferOut {
                change.moved = LotCredit::stored(moved_lots(&plan));
            }
            if !plan.is_empty() {
                if flow.flow_type == FlowType::Deduct {
                    change.own = Some(change.ops.len());
                }
                change.ops.push(LotOp::Take(plan));
            }
        }
    }
    if flow.makes_lots() {
        let mut made = Buckets::ZERO;
        for (index, credit) in flow.lot_credits().enumerate() {
            if credit.bucket == Bucket::Real || !credit.value.is_positive() {
                return Err(format!("a lot of {} in {}", credit.value.minor(), credit.bucket));
            }
            let sum = made.get(credit.bucket).checked_add(credit.value).ok_or("lots overflow")?;
            set(&mut made, credit.bucket, sum);
            let index = u32::try_from(index).map_err(|_| "too many lots")?;
            let key =
                LotKey::new(credit.expire_time, flow.flow_id, index).ok_or("too many lots, or a flow id past 2^48")?;
            change.ops.push(LotOp::Make(Take { bucket: credit.bucket, key, value: credit.value }));
        }
        if made != credits {
            return Err(format!("the flow's lots add up to {made:?}, its credit to {credits:?}"));
        }
        if flow.shares_request() && !state.sparse {
            let expected = state.transfer.as_ref().map(|pending| pending.lots.as_slice());
            if expected != Some(flow.lots.as_slice()) {
                return Err("TRANSFER_IN's lots differ from what its TRANSFER_OUT took".into());
            }
        }
    } else if !flow.lots.is_empty() {
        return Err(format!("{} of a known order makes no lots", flow.flow_type));
    }
    // A plan made against the lots (Take, Reserve) and a Make hold by construction; what an
    // order kept from earlier (a hold's reservation, a refund's takes) is checked on a copy.
    if change.ops.iter().any(LotOp::rests_on_an_order) {
        lots.check(&change.ops)?;
    }
    Ok(change)
}

fn set(buckets: &mut Buckets, bucket: Bucket, amount: crate::Amount) {
    match bucket {
        Bucket::Real => buckets.real = amount,
        Bucket::Gift => buckets.gift = amount,
        Bucket::Pre => buckets.pre = amount,
    }
}

/// Folds a checked flow.
pub(super) fn commit(state: &mut State, flow: &Flow, checked: Checked) {
    let Checked { after, held, lifetime, account, lots } = checked;
    let LotChange { ops, own, source, moved } = lots;
    let account_position = match account {
        Some(position) => position,
        None => {
            let account = Account {
                account_id: flow.account_id.clone(),
                card_id: flow.card_id.clone(),
                brand_id: flow.brand_id.clone(),
                balance: Buckets::ZERO,
                held: Buckets::ZERO,
                lifetime: Buckets::ZERO,
                status: AccountStatus::Active,
                open_holds: 0,
                flow_count: 0,
                lots: Lots::default(),
            };
            state.accounts.insert_new(&flow.account_id, account).expect("the account is new")
        }
    };
    let account = state.accounts.value_at_mut(account_position);
    account.balance = after;
    account.held = held;
    account.lifetime = lifetime;
    account.flow_count += 1;
    for op in ops.iter() {
        account.lots.apply(op).expect("checked by check_lots");
    }
    if let Some(own) = own.and_then(|index| ops.into_nth(index)).map(LotOp::into_takes) {
        if !own.is_empty() {
            state.order_takes.insert(flow.flow_id, own.into());
        }
    }
    if let Some((order, rest)) = source {
        if rest.is_empty() {
            state.order_takes.remove(&order);
        } else {
            state.order_takes.insert(order, rest.into());
        }
    }
    let account = state.accounts.value_at_mut(account_position);
    match flow.flow_type {
        FlowType::Freeze => account.status = AccountStatus::Frozen,
        FlowType::Unfreeze => account.status = AccountStatus::Active,
        FlowType::Close => account.status = AccountStatus::Closed,
        FlowType::Hold => account.open_holds += 1,
        FlowType::Capture | FlowType::Release => account.open_holds -= 1,
        FlowType::TransferOut if flow.settles_hold() => account.open_holds -= 1,
        _ => {}
    }
    match (flow.flow_type, &flow.source_order_id) {
        (FlowType::Undeduct, Some(source)) => {
            let original = state.orders.get_mut(source).expect("checked by check_type_rules");
            original.refunded = original.refunded.checked_add(&flow.affected).expect("checked by check_type_rules");
            original.changed = flow.flow_id;
        }
        (FlowType::Uncharge | FlowType::Capture | FlowType::Release | FlowType::TransferOut, Some(source)) => {
            let order = state.orders.get_mut(source).expect("checked by check_type_rules");
            order.reversed_by = flow.flow_id;
            order.changed = flow.flow_id;
            let hold_flow = order.flow_id;
            if flow.flow_type != FlowType::Uncharge {
                if let Some(expire_time) = state.hold_expiry.get(&hold_flow) {
                    state.open_hold_expiry.remove(&(expire_time.0, hold_flow));
                }
            }
        }
        _ => {}
    }
    state.last_sequence = flow.flow_id;
    match flow.flow_type {
        FlowType::TransferIn if flow.shares_request() => {
            // Its order is the TRANSFER_OUT's, written under the same outer_order_id.
            state.transfer = None;
            return;
        }
        FlowType::TransferOut if state.sparse || flow.settles_hold() => {}
        FlowType::TransferOut => {
            state.transfer = Some(PendingTransfer {
                flow_id: flow.flow_id,
                request_id: flow.request_id.clone(),
                outer_order_id: flow.outer_order_id.clone(),
                from_account_id: flow.account_id.clone(),
                to_account_id: flow.counterparty.clone().expect("checked by check_type_rules"),
                affected: flow.affected,
                lots: moved,
            });
        }
        FlowType::Hold => {
            if let Some(expire_time) = flow.expire_time {
                state.hold_expiry.insert(flow.flow_id, expire_time);
                state.open_hold_expiry.insert((expire_time.0, flow.flow_id), flow.outer_order_id.clone());
            }
        }
        _ => {}
    }
    let moved = match flow.flow_type {
        FlowType::Deduct | FlowType::Capture | FlowType::TransferOut => {
            flow.affected.checked_neg().expect("checked by check_type_rules")
        }
        FlowType::Hold => flow.held,
        _ => flow.affected,
    };
    let order = StoredOrder {
        flow_id: flow.flow_id,
        moved,
        refunded: Buckets::ZERO,
        reversed_by: 0,
        changed: flow.flow_id,
        account: u32::try_from(account_position).expect("at most 2^32 accounts"),
        flow_type: flow.flow_type,
    };
    state.orders.insert_new(&flow.outer_order_id, order).expect("check refused a used order id");
}

/// The per-type rules a flow must satisfy. Returns the flow's change to the lifetime totals.
fn check_type_rules(state: &State, flow: &Flow, account: Option<&Account>) -> Result<Buckets, String> {
    let affected = flow.affected;
    let holds = matches!(flow.flow_type, FlowType::Hold | FlowType::Capture | FlowType::Release) || flow.settles_hold();
    if !holds && !flow.held.is_zero() {
        return Err(format!("{} must not change held value", flow.flow_type));
    }
    if flow.flow_type != FlowType::Hold && flow.expire_time.is_some() {
        return Err(format!("{} has no expiry", flow.flow_type));
    }
    let transfer = matches!(flow.flow_type, FlowType::TransferOut | FlowType::TransferIn);
    // A transfer hold (docs/cluster.md §4) names its destination too.
    let names_other = transfer || flow.flow_type == FlowType::Hold;
    if (transfer && flow.counterparty.is_none()) || (!names_other && flow.counterparty.is_some()) {
        return Err("only a transfer names another account".into());
    }
    if flow.flow_type == FlowType::Hold && flow.counterparty.is_some() && flow.expire_time.is_some() {
        return Err("a transfer hold never expires".into());
    }
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
    let no_source = || {
        if flow.source_order_id.is_some() {
            Err(format!("{} references no order", flow.flow_type))
        } else {
            Ok(())
        }
    };
    let unchanged = || {
        if affected.is_zero() {
            Ok(Buckets::ZERO)
        } else {
            Err(format!("{} must not change the balance", flow.flow_type))
        }
    };
    match flow.flow_type {
        FlowType::Charge | FlowType::Import => {
            no_source()?;
            if !all_at_least_zero {
                return Err(format!("{} with a negative part", flow.flow_type));
            }
            if flow.flow_type == FlowType::Charge && affected.is_zero() {
                return Err("CHARGE of nothing".into());
            }
            Ok(affected)
        }
        FlowType::Deduct => {
            no_source()?;
            if !all_at_most_zero || affected.is_zero() {
                return Err("DEDUCT must take a positive amount and add nothing".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Undeduct => {
            let original = source()?;
            if !matches!(original.flow_type, FlowType::Deduct | FlowType::Capture) {
                return Err("UNDEDUCT of an order that is not a DEDUCT or CAPTURE".into());
            }
            if !all_at_least_zero || affected.is_zero() {
                return Err("UNDEDUCT must give back a positive amount".into());
            }
            let refunded = original.refunded.checked_add(&affected).ok_or("refund overflows")?;
            if let Some(bucket) =
                Bucket::ALL.into_iter().find(|bucket| refunded.get(*bucket) > original.moved.get(*bucket))
            {
                return Err(format!("refunds exceed the original {} in {bucket}", original.flow_type));
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
            no_source()?;
            if affected.is_zero() {
                return Err("ADJUST of nothing".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Hold => {
            no_source()?;
            if flow.held.negative_bucket().is_some() || flow.held.is_zero() {
                return Err("HOLD must reserve a positive amount".into());
            }
            if flow.expire_time.is_some_and(|expire| expire <= flow.order_time) {
                return Err("HOLD expires at or before its own order_time".into());
            }
            unchanged()
        }
        FlowType::Capture | FlowType::Release => {
            let hold = source()?;
            if hold.flow_type != FlowType::Hold {
                return Err(format!("{} of an order that is not a HOLD", flow.flow_type));
            }
            if let Some(by) = hold.reversed_by {
                return Err(format!("HOLD already resolved by flow {by}"));
            }
            if hold.moved.checked_neg() != Some(flow.held) {
                return Err(format!("{} must free exactly what the HOLD reserved", flow.flow_type));
            }
            if flow.flow_type == FlowType::Release {
                return unchanged();
            }
            let spent = affected.checked_neg().ok_or("capture overflows")?;
            if !all_at_most_zero || affected.is_zero() {
                return Err("CAPTURE must spend a positive amount and add nothing".into());
            }
            if Bucket::ALL.into_iter().any(|bucket| spent.get(bucket) > hold.moved.get(bucket)) {
                return Err("CAPTURE spends more than the HOLD reserved".into());
            }
            if hold.expire_time.is_some_and(|expire| flow.order_time >= expire) {
                return Err("CAPTURE at or after the HOLD's expiry".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Freeze | FlowType::Unfreeze | FlowType::Close => {
            no_source()?;
            let status = account.map(|account| account.status);
            match (flow.flow_type, status) {
                (FlowType::Freeze, Some(AccountStatus::Active)) | (FlowType::Unfreeze, Some(AccountStatus::Frozen)) => {
                }
                (FlowType::Close, Some(_)) => {
                    let account = account.expect("matched Some");
                    if !account.balance.is_zero() || !account.held.is_zero() || account.open_holds > 0 {
                        return Err("CLOSE of an account that still holds value or an open hold".into());
                    }
                }
                (flow_type, status) => return Err(format!("{flow_type} of an account that is {status:?}")),
            }
            unchanged()
        }
        FlowType::TransferOut if flow.settles_hold() => {
            let hold = source()?;
            if hold.flow_type != FlowType::Hold {
                return Err("a settling TRANSFER_OUT of an order that is not a HOLD".into());
            }
            if let Some(by) = hold.reversed_by {
                return Err(format!("HOLD already resolved by flow {by}"));
            }
            if hold.moved.checked_neg() != Some(flow.held) || hold.moved.checked_neg() != Some(affected) {
                return Err("a settling TRANSFER_OUT takes and frees exactly what the HOLD reserved".into());
            }
            if flow.counterparty.as_deref() == Some(flow.account_id.as_str()) {
                return Err("a transfer to the same account".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::TransferOut => {
            no_source()?;
            if !all_at_most_zero || affected.is_zero() {
                return Err("TRANSFER_OUT must take a positive amount and add nothing".into());
            }
            if flow.counterparty.as_deref() == Some(flow.account_id.as_str()) {
                return Err("a transfer to the same account".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::Expire | FlowType::Clear => {
            no_source()?;
            if !all_at_most_zero || affected.is_zero() || !affected.real.is_zero() {
                return Err(format!("{} must take from GIFT or PRE only", flow.flow_type));
            }
            Ok(Buckets::ZERO)
        }
        FlowType::TransferIn if state.sparse || !flow.shares_request() => {
            // A transfer between partitions: its source order (the hold) is in another one.
            if !all_at_least_zero || affected.is_zero() {
                return Err("TRANSFER_IN must add a positive amount".into());
            }
            Ok(Buckets::ZERO)
        }
        FlowType::TransferIn => {
            no_source()?;
            let out = state.transfer.as_ref().ok_or("TRANSFER_IN without its TRANSFER_OUT")?;
            let matches = out.flow_id + 1 == flow.flow_id
                && out.request_id == flow.request_id
                && out.outer_order_id == flow.outer_order_id
                && out.to_account_id == flow.account_id
                && flow.counterparty.as_deref() == Some(out.from_account_id.as_str())
                && out.affected.checked_neg() == Some(affected);
            if !matches {
                return Err("TRANSFER_IN does not match its TRANSFER_OUT".into());
            }
            Ok(Buckets::ZERO)
        }
    }
}
