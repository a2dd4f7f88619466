//! The decisions of spec §8–§10 that need more than a split: which hold a CAPTURE or RELEASE
//! closes, what a status change requires, and both sides of a transfer.

use crate::balance::Buckets;
use crate::command::{Action, Command};
use crate::decide::{partial_split, referenced_order};
use crate::error::Error;
use crate::flow::{Flow, FlowType};
use crate::money::{Amount, Scale};
use crate::state::{AccountStatus, Order, State};
use crate::time::Timestamp;

/// The open HOLD `id` of the command's account, or why not. A transfer's hold is closed only by
/// its transfer (`transfer`: the caller is that transfer's settle or abort), any other only by
/// a CAPTURE, RELEASE or the sweep.
fn open_hold<'a>(state: &'a State, id: &str, command: &Command) -> Result<Order<'a>, Error> {
    let hold = referenced_order(state, id, &[FlowType::Hold], command)?;
    let transfer = matches!(command.action, Action::TransferSettle { .. } | Action::TransferAbort { .. });
    if crate::command::is_transfer_hold(id) != transfer {
        return Err(Error::invalid_argument(if transfer {
            format!("hold {id:?} is not a transfer's")
        } else {
            format!("hold {id:?} is a transfer's: only its transfer settles or releases it")
        }));
    }
    if let Some(flow_id) = hold.reversed_by {
        return Err(Error::AlreadyReversed { outer_order_id: id.to_owned(), flow_id });
    }
    Ok(hold)
}

/// A CAPTURE of `value` (default: all) of the HOLD `id` at `order_time`: the hold's parts
/// (all freed) and the parts spent.
pub(crate) fn capture(
    state: &State,
    id: &str,
    value: Option<Amount>,
    order_time: Timestamp,
    command: &Command,
    scale: Scale,
) -> Result<(Buckets, Buckets), Error> {
    let hold = open_hold(state, id, command)?;
    if let Some(expire_time) = hold.expire_time.filter(|expire_time| order_time >= *expire_time) {
        return Err(Error::HoldExpired {
            message: format!(
                "hold {id:?} expired at {}; it can only be released",
                state.config().zone.format_local(expire_time)
            ),
        });
    }
    let parts = hold.moved;
    let total = parts.total().ok_or_else(|| Error::invalid_amount("the hold leaves the range"))?;
    let value = value.unwrap_or(total);
    if value > total {
        return Err(Error::invalid_amount(format!(
            "hold {id:?} holds {}, CAPTURE asks for {}",
            total.format(scale),
            value.format(scale)
        )));
    }
    let spent = if value == total { parts } else { partial_split(parts, parts, value)? };
    Ok((parts, spent))
}

/// A transfer hold of `reserved` must move lots of fewer expiries than one TRANSFER_IN holds.
pub(crate) fn check_lots_movable(state: &State, account_id: &str, reserved: &Buckets) -> Result<(), Error> {
    let plan = state.account(account_id).and_then(|account| account.lots.plan_buckets(reserved, None));
    let moved = plan.map_or(0, |plan| crate::lots::moved_lots(&plan).len());
    if moved >= crate::lots::LOTS_PER_FLOW_MAX as usize {
        return Err(Error::invalid_argument(format!(
            "the transfer would move lots of {moved} different expiries, more than one flow holds; move less at a time"
        )));
    }
    Ok(())
}

/// A transfer hold's parts and the lots they hold (with their expiries), for the TRANSFER_IN
/// of a transfer between partitions: what its settle takes.
pub fn transfer_hold_credit<'a>(state: &'a State, id: &str) -> Option<(Order<'a>, Vec<crate::lots::LotCredit>)> {
    let hold = state.order(id).filter(|order| order.flow_type == FlowType::Hold && crate::is_transfer_hold(id))?;
    let lots = crate::lots::moved_lots(state.order_takes(hold.flow_id));
    Some((hold, crate::lots::LotCredit::stored(lots)))
}

/// A RELEASE of the HOLD `id`: its parts, all freed. Works after the hold's expiry too.
pub(crate) fn release(state: &State, id: &str, command: &Command) -> Result<Buckets, Error> {
    Ok(open_hold(state, id, command)?.moved)
}

/// The sweep's RELEASE of the HOLD `id`, which must have expired at `now` (spec §11).
pub(crate) fn release_expired(state: &State, id: &str, now: Timestamp, command: &Command) -> Result<Buckets, Error> {
    let hold = open_hold(state, id, command)?;
    match hold.expire_time {
        Some(expire_time) if expire_time <= now => Ok(hold.moved),
        _ => Err(Error::invalid_argument(format!(
            "hold {id:?} has not expired at {}: the sweep releases only expired holds",
            state.config().zone.format_local(now)
        ))),
    }
}

/// FREEZE, UNFREEZE and CLOSE: what each needs of the account (its status passed
/// `check_status` already: a CLOSED account never gets here).
pub(crate) fn check_status_change(state: &State, command: &Command) -> Result<(), Error> {
    let account = state.account(&command.account_id).expect("decide checked the account exists");
    let flow_type = command.action.flow_type();
    match (flow_type, account.status) {
        (FlowType::Freeze, AccountStatus::Frozen) => {
            Err(Error::invalid_argument(format!("account {:?} is already frozen", account.account_id)))
        }
        (FlowType::Unfreeze, AccountStatus::Active) => {
            Err(Error::invalid_argument(format!("account {:?} is not frozen", account.account_id)))
        }
        (FlowType::Close, _) => {
            let mut left = Vec::new();
            if !account.balance.is_zero() {
                left.push(format!(
                    "a balance of REAL {}, GIFT {}, PRE {}",
                    account.balance.real.format(state.config().scale),
                    account.balance.gift.format(state.config().scale),
                    account.balance.pre.format(state.config().scale)
                ));
            }
            if account.open_holds > 0 {
                left.push(format!("{} open hold(s)", account.open_holds));
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(Error::invalid_argument(format!(
                    "account {:?} cannot be closed: it still has {}",
                    account.account_id,
                    left.join(" and ")
                )))
            }
        }
        _ => Ok(()),
    }
}

/// A transfer's destination: an existing one must be of the source's brand, and a card_id
/// given must be its own. (Its status was checked with the source's, in `decide`.)
pub(crate) fn check_destination(
    state: &State,
    to_account_id: &str,
    brand_id: &Option<String>,
    command: &Command,
) -> Result<(), Error> {
    let Some(destination) = state.account(to_account_id) else { return Ok(()) };
    if destination.brand_id != *brand_id {
        let name =
            |brand: &Option<String>| brand.as_ref().map_or("no brand".to_owned(), |brand| format!("brand {brand:?}"));
        return Err(Error::invalid_argument(format!(
            "account {to_account_id:?} has {}, the source {}: a transfer stays inside one brand",
            name(&destination.brand_id),
            name(brand_id)
        )));
    }
    if let Some(card_id) = command.card_id.as_ref().filter(|card_id| destination.card_id.as_ref() != Some(card_id)) {
        return Err(Error::invalid_argument(format!(
            "card_id {card_id:?} is not account {to_account_id:?}'s ({})",
            destination.card_id.as_deref().map_or("none".to_owned(), |card| format!("{card:?}"))
        )));
    }
    Ok(())
}

/// The TRANSFER_IN of the TRANSFER_OUT `out`: the same request and order, the opposite change,
/// on the destination (opened with the source's brand and the command's card if new).
pub(crate) fn transfer_in(state: &State, out: &Flow, command: &Command) -> Result<Flow, Error> {
    let to_account_id = out.counterparty.clone().expect("a TRANSFER_OUT names its destination");
    let destination = state.account(&to_account_id);
    let before = destination.map_or(Buckets::ZERO, |account| account.balance);
    let affected = out.affected.checked_neg().ok_or_else(|| Error::invalid_amount("the transfer leaves the range"))?;
    let after = before.checked_add(&affected).filter(|after| after.total().is_some());
    if after.is_none() {
        return Err(Error::invalid_amount(format!(
            "account {to_account_id:?} would leave the range of signed 64-bit minor units"
        )));
    }
    // The lots the TRANSFER_OUT takes, planned as its fold will take them: moved with their expiry.
    let taken = out.affected.checked_neg().unwrap_or_default();
    let source_lots = state.account(&out.account_id).map(|account| &account.lots);
    let plan = source_lots.and_then(|lots| lots.plan_buckets(&taken, None)).ok_or_else(|| {
        Error::InsufficientBalance { message: format!("account {:?} lacks the lots to move", out.account_id) }
    })?;
    let moved = crate::lots::moved_lots(&plan);
    if moved.len() >= crate::lots::LOTS_PER_FLOW_MAX as usize {
        return Err(Error::invalid_argument(format!(
            "the transfer would move lots of {} different expiries, more than one flow holds; move less at a time",
            moved.len()
        )));
    }
    Ok(Flow {
        flow_id: out.flow_id + 1,
        flow_type: FlowType::TransferIn,
        request_id: out.request_id.clone(),
        outer_order_id: out.outer_order_id.clone(),
        account_id: to_account_id,
        card_id: destination.map_or_else(|| command.card_id.clone(), |account| account.card_id.clone()),
        brand_id: destination.map_or_else(|| out.brand_id.clone(), |account| account.brand_id.clone()),
        shop_id: out.shop_id.clone(),
        operator_id: out.operator_id.clone(),
        source_order_id: None,
        order_time: out.order_time,
        before,
        affected,
        held: Buckets::ZERO,
        expire_time: None,
        counterparty: Some(out.account_id.clone()),
        lots: crate::lots::LotCredit::stored(moved),
        remark: out.remark.clone(),
        ext_info: out.ext_info.clone(),
        source: None,
    })
}
