//! `decide`: validate a command against the state and compute its flow. Pure.
//!
//! Checks run in a fixed order, so the same bad command always gets the same code
//! (docs/domain.md lists it): arguments, amounts, order-id uniqueness, account, referenced
//! order, balance.

use crate::balance::{Bucket, Buckets};
use crate::command::{
    Action, Command, ACCOUNT_ID_CHARS_MAX, EXT_INFO_BYTES_MAX, ORDER_ID_CHARS_MAX, PROVIDER_CHARS_MAX,
    RECORD_ID_CHARS_MAX, REFERENCE_ID_CHARS_MAX, REMARK_CHARS_MAX, REQUEST_ID_CHARS_MAX, SWEEP_ID_PREFIX,
};
use crate::error::Error;
use crate::flow::{Flow, FlowType, RulesChange};
use crate::money::{Amount, Scale};
use crate::rules::{deduction_split, RuleSet};
use crate::state::{AccountStatus, Order, State};
use crate::time::Timestamp;

/// What comes in from the edge: the sequence the flow will take and the current time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub sequence: u64,
    pub now: Timestamp,
}

/// What a command decided: its flow, and for a transfer the TRANSFER_IN that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The command's flow; for a transfer its TRANSFER_OUT.
    pub flow: Flow,
    /// A transfer's TRANSFER_IN (sequence `flow`'s + 1): fold it right after `flow`, and write
    /// both in one atomic write, or neither.
    pub transfer_in: Option<Box<Flow>>,
}

impl Decision {
    /// The flows in log order: one, or a transfer's two.
    pub fn into_flows(self) -> impl Iterator<Item = Flow> {
        std::iter::once(self.flow).chain(self.transfer_in.map(|flow| *flow))
    }
}

/// The account a command acts on, as `decide` sees it.
struct Subject {
    card_id: Option<String>,
    brand_id: Option<String>,
    before: Buckets,
    held: Buckets,
    available: Buckets,
}

/// Validates `command` against `state` and returns the flows it produces, or why not.
/// Never changes anything: the caller appends the flows and folds them with [`crate::apply`].
pub fn decide(state: &State, command: &Command, context: &Context) -> Result<Decision, Error> {
    debug_assert_eq!(context.sequence, state.next_sequence(), "decide against a stale state");
    let scale = state.config().scale;
    check_arguments(command, context)?;
    check_sweep_ids(state, command)?;
    if let Some(order) = state.order(&command.outer_order_id) {
        return Err(Error::DuplicateOrder { outer_order_id: command.outer_order_id.clone(), flow_id: order.flow_id });
    }
    let flow_type = command.action.flow_type();
    let subject = match state.account(&command.account_id) {
        // An opening balance is for a new account only; on any other it has nothing to do.
        Some(account) if matches!(command.action, Action::Open { .. }) => {
            return Err(Error::AlreadyOpen { account_id: account.account_id.clone() })
        }
        Some(account) => {
            let destination = match &command.action {
                Action::Transfer { to_account_id, .. } => state.account(to_account_id),
                _ => None,
            };
            // A transfer's settle takes value that has already arrived: a FROZEN source takes
            // it like a RELEASE would be taken.
            let status_type =
                if matches!(command.action, Action::TransferSettle { .. }) { FlowType::Release } else { flow_type };
            check_status(account, destination, status_type)?;
            if flow_type != FlowType::TransferOut {
                // A transfer's card_id names the destination's card.
                check_same("card_id", &command.card_id, &account.card_id, &account.account_id)?;
            }
            check_same("brand_id", &command.brand_id, &account.brand_id, &account.account_id)?;
            Subject {
                card_id: account.card_id.clone(),
                brand_id: account.brand_id.clone(),
                before: account.balance,
                held: account.held,
                available: account.available(),
            }
        }
        None if flow_type.opens_account() => Subject {
            card_id: command.card_id.clone(),
            brand_id: match &command.action {
                Action::TransferCredit { brand_id, .. } => brand_id.clone(),
                _ => command.brand_id.clone(),
            },
            before: Buckets::ZERO,
            held: Buckets::ZERO,
            available: Buckets::ZERO,
        },
        None => return Err(Error::AccountNotFound { account_id: command.account_id.clone() }),
    };
    let order_time = command.biz_date.unwrap_or(context.now);
    let rules = state.rules_for(subject.brand_id.as_deref());
    let lots_of = |account_id: &str| state.account(account_id).map(|account| &account.lots);
    let (affected, held, source_order_id) = match &command.action {
        Action::Charge { real, gift, pre, trigger_gift } => {
            let gift = match (trigger_gift, gift) {
                (true, _) => rules.gift_for(*real).ok_or_else(|| out_of_range("the rule's gift"))?,
                (false, gift) => gift.unwrap_or(Amount::ZERO),
            };
            let affected = Buckets::new(*real, gift, *pre);
            if affected.is_zero() {
                return Err(Error::invalid_amount("CHARGE must add a positive amount to at least one bucket"));
            }
            (affected, Buckets::ZERO, None)
        }
        Action::Import { real, gift, pre } | Action::Open { real, gift, pre } | Action::Adjust { real, gift, pre } => {
            (Buckets::new(*real, *gift, *pre), Buckets::ZERO, None)
        }
        Action::Recorded { affected, .. } => (*affected, Buckets::ZERO, None),
        Action::Deduct { value } => {
            let taken = split_available(&subject, *value, command, rules.deduction_order, scale)?;
            (taken.checked_neg().ok_or_else(|| out_of_range("value"))?, Buckets::ZERO, None)
        }
        Action::Undeduct { original_outer_order_id, value } => {
            let original =
                referenced_order(state, original_outer_order_id, &[FlowType::Deduct, FlowType::Capture], command)?;
            let refund = undeduct_split(&original, *value, original_outer_order_id, scale)?;
            (refund, Buckets::ZERO, Some(original_outer_order_id.clone()))
        }
        Action::Uncharge { src_outer_order_id } => {
            let original = referenced_order(state, src_outer_order_id, &[FlowType::Charge], command)?;
            if let Some(flow_id) = original.reversed_by {
                return Err(Error::AlreadyReversed { outer_order_id: src_outer_order_id.clone(), flow_id });
            }
            let taken = original.moved.checked_neg().ok_or_else(|| out_of_range("the charge"))?;
            (taken, Buckets::ZERO, Some(src_outer_order_id.clone()))
        }
        Action::Hold { value, .. } => {
            let reserved = split_available(&subject, *value, command, rules.deduction_order, scale)?;
            (Buckets::ZERO, reserved, None)
        }
        Action::Capture { src_outer_order_id, value } => {
            let (parts, spent) = crate::holds::capture(state, src_outer_order_id, *value, order_time, command, scale)?;
            let freed = parts.checked_neg().ok_or_else(|| out_of_range("the hold"))?;
            (spent.checked_neg().ok_or_else(|| out_of_range("the capture"))?, freed, Some(src_outer_order_id.clone()))
        }
        Action::Release { src_outer_order_id } => {
            let parts = crate::holds::release(state, src_outer_order_id, command)?;
            let freed = parts.checked_neg().ok_or_else(|| out_of_range("the hold"))?;
            (Buckets::ZERO, freed, Some(src_outer_order_id.clone()))
        }
        Action::ExpireHold { src_outer_order_id, now } => {
            let parts = crate::holds::release_expired(state, src_outer_order_id, *now, command)?;
            let freed = parts.checked_neg().ok_or_else(|| out_of_range("the hold"))?;
            (Buckets::ZERO, freed, Some(src_outer_order_id.clone()))
        }
        Action::Expire { now } => {
            let expirable = lots_of(&command.account_id).map_or(Buckets::ZERO, |lots| lots.expirable(*now));
            if expirable.is_zero() {
                return Err(Error::NothingToExpire { account_id: command.account_id.clone() });
            }
            (expirable.checked_neg().ok_or_else(|| out_of_range("the expiry"))?, Buckets::ZERO, None)
        }
        Action::Clear { buckets } => {
            let mut taken = Buckets::ZERO;
            if buckets.includes(Bucket::Gift) {
                taken.gift = subject.available.gift;
            }
            if buckets.includes(Bucket::Pre) {
                taken.pre = subject.available.pre;
            }
            if taken.is_zero() {
                return Err(Error::invalid_argument(format!(
                    "account {:?} has nothing available in {} to clear",
                    command.account_id,
                    match buckets {
                        crate::ClearBuckets::All => "GIFT or PRE",
                        other => other.as_str(),
                    }
                )));
            }
            (taken.checked_neg().ok_or_else(|| out_of_range("the clear"))?, Buckets::ZERO, None)
        }
        Action::Freeze | Action::Unfreeze | Action::Close => {
            crate::holds::check_status_change(state, command)?;
            (Buckets::ZERO, Buckets::ZERO, None)
        }
        Action::Transfer { to_account_id, value } => {
            crate::holds::check_destination(state, to_account_id, &subject.brand_id, command)?;
            let value = match value {
                Some(value) => *value,
                None => subject.available.total().ok_or_else(|| out_of_range("the balance"))?,
            };
            let moved = split_available(&subject, value, command, rules.deduction_order, scale)?;
            (moved.checked_neg().ok_or_else(|| out_of_range("value"))?, Buckets::ZERO, None)
        }
        Action::TransferHold { value, .. } => {
            let value = match value {
                Some(value) => *value,
                None => subject.available.total().ok_or_else(|| out_of_range("the balance"))?,
            };
            let reserved = split_available(&subject, value, command, rules.deduction_order, scale)?;
            crate::holds::check_lots_movable(state, &command.account_id, &reserved)?;
            (Buckets::ZERO, reserved, None)
        }
        Action::TransferCredit { hold_outer_order_id, parts, brand_id, .. } => {
            if let Some(destination) = state.account(&command.account_id) {
                if destination.brand_id != *brand_id {
                    return Err(Error::invalid_argument(format!(
                        "account {:?} is of another brand than the transfer's source: a transfer stays inside one brand",
                        command.account_id
                    )));
                }
            }
            (*parts, Buckets::ZERO, Some(hold_outer_order_id.clone()))
        }
        Action::TransferSettle { src_outer_order_id, .. } => {
            let parts = crate::holds::release(state, src_outer_order_id, command)?;
            let taken = parts.checked_neg().ok_or_else(|| out_of_range("the hold"))?;
            (taken, taken, Some(src_outer_order_id.clone()))
        }
        Action::TransferAbort { src_outer_order_id } => {
            let parts = crate::holds::release(state, src_outer_order_id, command)?;
            let freed = parts.checked_neg().ok_or_else(|| out_of_range("the hold"))?;
            (Buckets::ZERO, freed, Some(src_outer_order_id.clone()))
        }
    };
    check_result(&subject, &affected, &held, flow_type, command, scale)?;
    check_lifetime(state, command, flow_type, &affected)?;
    let flow = Flow {
        flow_id: context.sequence,
        flow_type,
        request_id: command.request_id.clone(),
        outer_order_id: command.outer_order_id.clone(),
        account_id: command.account_id.clone(),
        card_id: subject.card_id,
        brand_id: subject.brand_id,
        shop_id: command.shop_id.clone(),
        operator_id: command.operator_id.clone(),
        source_order_id,
        order_time,
        before: subject.before,
        affected,
        held,
        expire_time: match &command.action {
            Action::Hold { expire_time, .. } => *expire_time,
            _ => None,
        },
        counterparty: match &command.action {
            Action::Transfer { to_account_id, .. }
            | Action::TransferHold { to_account_id, .. }
            | Action::TransferSettle { to_account_id, .. } => Some(to_account_id.clone()),
            Action::TransferCredit { from_account_id, .. } => Some(from_account_id.clone()),
            _ => None,
        },
        lots: match &command.action {
            Action::TransferCredit { lots, .. } => crate::lots::LotCredit::stored(lots.clone()),
            _ => made_lots(command, &rules, &affected, order_time),
        },
        remark: command.remark.clone(),
        ext_info: command.ext_info.clone(),
        source: match &command.action {
            Action::Recorded { source, .. } => Some(source.clone()),
            _ => None,
        },
    };
    let transfer_in = match &command.action {
        Action::Transfer { .. } => Some(Box::new(crate::holds::transfer_in(state, &flow, command)?)),
        _ => None,
    };
    Ok(Decision { flow, transfer_in })
}

/// The lots a flow of `command` makes (spec §11): its positive GIFT and PRE parts, with the
/// command's expiries (a CHARGE's gift without one: the rules' `gift_valid_days`). A give-back
/// of a known order makes none: it refills the lots it came from.
fn made_lots(
    command: &Command,
    rules: &RuleSet,
    affected: &Buckets,
    order_time: Timestamp,
) -> Vec<crate::lots::LotCredit> {
    use crate::lots::LotCredit;
    let (gift, pre) = match &command.action {
        // spec §13: "every CHARGE gift", a provider's recorded CHARGE's included.
        Action::Charge { .. } | Action::Recorded { flow_type: FlowType::Charge, .. } => {
            (command.gift_expire_time.or_else(|| rules.gift_expiry(order_time)), command.pre_expire_time)
        }
        Action::Import { .. } | Action::Open { .. } | Action::Recorded { .. } | Action::Adjust { .. } => {
            (command.gift_expire_time, command.pre_expire_time)
        }
        // A TRANSFER_OUT, and every debit or give-back, makes none (the TRANSFER_IN gets its own).
        _ => return Vec::new(),
    };
    if gift.is_none() && pre.is_none() {
        // Plain lots are stored as none (`Flow::lots`): nothing to build for the common credit.
        return Vec::new();
    }
    LotCredit::stored(LotCredit::with_expiry(affected, gift, pre))
}

/// The sweep's ids are not free: `expire:<TIME>:<account or hold>` (spec §11), at the ledger's zone.
fn check_sweep_ids(state: &State, command: &Command) -> Result<(), Error> {
    let (subject, now) = match &command.action {
        Action::Expire { now } => (command.account_id.as_str(), *now),
        Action::ExpireHold { src_outer_order_id, now } => (src_outer_order_id.as_str(), *now),
        _ => return Ok(()),
    };
    let id = crate::command::sweep_id(now, state.config().zone, subject);
    let remark = command.remark.as_deref() == Some(crate::command::EXPIRED_REMARK);
    if command.request_id != id || command.outer_order_id != id || command.biz_date != Some(now) || !remark {
        return Err(Error::invalid_argument(format!(
            "the sweep writes under request_id = outer_order_id = {id:?} at its own time, remark EXPIRED"
        )));
    }
    Ok(())
}

/// spec §13's first step: the command's own arguments and amounts, which need no state. The
/// ledger runs it before a `request_id`'s conflict (a different request under a known id that is
/// also malformed is refused for what is malformed); `decide` runs it first.
pub fn check_arguments(command: &Command, context: &Context) -> Result<(), Error> {
    check_common(command)?;
    check_action_arguments(command, context)?;
    check_expiries(command)?;
    check_amounts(command)
}

/// `gift_expire_time` and `pre_expire_time` (spec §11): only on what credits GIFT or PRE from
/// outside (CHARGE, IMPORT, an opening balance, a provider's CHARGE or IMPORT), and not for a
/// bucket the command plainly leaves alone. Any time is accepted, one at or before the flow's own
/// order_time too (a migrated balance whose bonus has already expired): the domain has no clock,
/// and such a lot simply goes at the next sweep (spec §13).
fn check_expiries(command: &Command) -> Result<(), Error> {
    let given = [("gift_expire_time", command.gift_expire_time), ("pre_expire_time", command.pre_expire_time)];
    if given.iter().all(|(_, time)| time.is_none()) {
        return Ok(());
    }
    let credits = match &command.action {
        Action::Charge { gift, pre, trigger_gift, .. } => {
            [*trigger_gift || gift.is_some_and(Amount::is_positive), pre.is_positive()]
        }
        Action::Import { gift, pre, .. } | Action::Open { gift, pre, .. } => [gift.is_positive(), pre.is_positive()],
        Action::Recorded { flow_type: FlowType::Charge | FlowType::Import, affected, .. } => {
            [affected.gift.is_positive(), affected.pre.is_positive()]
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "gift_expire_time and pre_expire_time apply to CHARGE and IMPORT only, not {}",
                other.flow_type()
            )))
        }
    };
    for ((field, time), credited) in given.into_iter().zip(credits) {
        if time.is_some() && !credited {
            let bucket = if field.starts_with("gift") { "GIFT" } else { "PRE" };
            return Err(Error::invalid_argument(format!(
                "{field} is given but the {} credits no {bucket}",
                command.action.flow_type()
            )));
        }
    }
    Ok(())
}

/// Splits a debit of `value` (DEDUCT, HOLD, TRANSFER) like a DEDUCT, against what is available.
fn split_available(
    subject: &Subject,
    value: Amount,
    command: &Command,
    order: crate::rules::DeductionOrder,
    scale: Scale,
) -> Result<Buckets, Error> {
    let total = subject.available.total().ok_or_else(|| out_of_range("the balance"))?;
    if value > total || total.is_zero() {
        let flow_type = command.action.flow_type();
        let held = subject.held.total().unwrap_or(Amount::ZERO);
        let message = if held.is_zero() {
            format!(
                "account {:?} holds {} in all, {flow_type} asks for {}",
                command.account_id,
                total.format(scale),
                value.format(scale)
            )
        } else {
            format!(
                "account {:?} has {} available ({} held), {flow_type} asks for {}",
                command.account_id,
                total.format(scale),
                held.format(scale),
                value.format(scale)
            )
        };
        return Err(Error::InsufficientBalance { message });
    }
    Ok(deduction_split(&subject.available, value, order))
}

/// No bucket negative, none holding less than is held in it, TOTAL in range.
fn check_result(
    subject: &Subject,
    affected: &Buckets,
    held: &Buckets,
    flow_type: FlowType,
    command: &Command,
    scale: Scale,
) -> Result<(), Error> {
    let before = subject.before;
    let after = before.checked_add(affected).ok_or_else(|| out_of_range("the resulting balance"))?;
    let held_after = subject.held.checked_add(held).ok_or_else(|| out_of_range("the held value"))?;
    // A negative bucket is the real fault even when the other buckets' sum also overflows.
    if let Some(bucket) = after.negative_bucket() {
        return Err(Error::InsufficientBalance {
            message: format!(
                "account {:?} holds {} in {bucket}, {} needs {}",
                command.account_id,
                before.get(bucket).format(scale),
                flow_type,
                affected.get(bucket).checked_neg().unwrap_or(Amount::ZERO).format(scale)
            ),
        });
    }
    if let Some(bucket) = Bucket::ALL.into_iter().find(|bucket| after.get(*bucket) < held_after.get(*bucket)) {
        return Err(Error::InsufficientBalance {
            message: format!(
                "account {:?} has {} available in {bucket} ({} of its {} held), {} needs {}",
                command.account_id,
                subject.available.get(bucket).format(scale),
                subject.held.get(bucket).format(scale),
                before.get(bucket).format(scale),
                flow_type,
                affected.get(bucket).checked_neg().unwrap_or(Amount::ZERO).format(scale)
            ),
        });
    }
    if after.total().is_none() {
        return Err(out_of_range("the resulting TOTAL"));
    }
    Ok(())
}

/// spec §9: a CLOSED account accepts nothing, a FROZEN one only what may touch a frozen card.
/// FREEZE passes (FREEZE of a FROZEN account is the argument error of [`crate::holds`]). A
/// transfer's destination is checked here too (spec §10 "either side"), and over both sides
/// `ACCOUNT_CLOSED` comes before `ACCOUNT_FROZEN` (spec §13), all before card and brand.
fn check_status(
    account: &crate::state::Account,
    destination: Option<&crate::state::Account>,
    flow_type: FlowType,
) -> Result<(), Error> {
    let sides = || std::iter::once(account).chain(destination);
    if let Some(closed) = sides().find(|side| side.status == AccountStatus::Closed) {
        return Err(Error::AccountClosed { account_id: closed.account_id.clone() });
    }
    let source_refuses = !flow_type.allowed_while_frozen() && flow_type != FlowType::Freeze;
    if account.status == AccountStatus::Frozen && source_refuses {
        return Err(Error::AccountFrozen { account_id: account.account_id.clone() });
    }
    if let Some(frozen) = destination.filter(|destination| destination.status == AccountStatus::Frozen) {
        return Err(Error::AccountFrozen { account_id: frozen.account_id.clone() });
    }
    Ok(())
}

/// Validates a rules change for `brand_id` (`None`: the ledger default) and sequences it.
pub fn decide_rules(brand_id: Option<&str>, rules: RuleSet, context: &Context) -> Result<RulesChange, Error> {
    if let Some(brand) = brand_id {
        check_text("brand_id", brand, REFERENCE_ID_CHARS_MAX)?;
    }
    rules.check()?;
    Ok(RulesChange { sequence: context.sequence, brand_id: brand_id.map(str::to_owned), rules })
}

/// The longest id the sweep writes: the prefix, a time, a colon and a hold's order id.
const SWEEP_ID_CHARS_MAX: usize = SWEEP_ID_PREFIX.len() + 19 + 1 + ORDER_ID_CHARS_MAX;

fn out_of_range(what: &str) -> Error {
    Error::invalid_amount(format!("{what} would leave the range of signed 64-bit minor units"))
}

fn check_text(field: &str, value: &str, chars_max: usize) -> Result<(), Error> {
    // Ids are nearly always ASCII, where a byte is a character and the control characters are
    // the bytes below 0x20 and 0x7F: checked without decoding (this runs on the writer, for
    // every id of every command).
    let ascii = value.is_ascii();
    let chars = if ascii { value.len() } else { value.chars().count() };
    if chars == 0 || chars > chars_max {
        return Err(Error::invalid_argument(format!("{field} must be 1 to {chars_max} characters, got {chars}")));
    }
    let control =
        if ascii { value.bytes().any(|byte| byte < 0x20 || byte == 0x7f) } else { value.chars().any(char::is_control) };
    if control {
        return Err(Error::invalid_argument(format!("{field} must not contain control characters")));
    }
    Ok(())
}

fn check_optional(field: &str, value: &Option<String>, chars_max: usize) -> Result<(), Error> {
    value.as_deref().map_or(Ok(()), |value| check_text(field, value, chars_max))
}

fn check_common(command: &Command) -> Result<(), Error> {
    let sweep = matches!(command.action, Action::Expire { .. } | Action::ExpireHold { .. });
    if sweep {
        // `expire:<TIME>:<hold order id>` may pass the limits of ids a caller chooses.
        check_text("request_id", &command.request_id, SWEEP_ID_CHARS_MAX)?;
        check_text("outer_order_id", &command.outer_order_id, SWEEP_ID_CHARS_MAX)?;
    } else {
        check_text("request_id", &command.request_id, REQUEST_ID_CHARS_MAX)?;
        check_text("outer_order_id", &command.outer_order_id, ORDER_ID_CHARS_MAX)?;
        for (field, id) in [("request_id", &command.request_id), ("outer_order_id", &command.outer_order_id)] {
            if id.starts_with(SWEEP_ID_PREFIX) {
                return Err(Error::invalid_argument(format!(
                    "{field} {id:?}: ids starting with {SWEEP_ID_PREFIX:?} are the expiry sweep's"
                )));
            }
        }
    }
    check_text("account_id", &command.account_id, ACCOUNT_ID_CHARS_MAX)?;
    check_optional("card_id", &command.card_id, REFERENCE_ID_CHARS_MAX)?;
    check_optional("brand_id", &command.brand_id, REFERENCE_ID_CHARS_MAX)?;
    check_optional("shop_id", &command.shop_id, REFERENCE_ID_CHARS_MAX)?;
    check_optional("operator_id", &command.operator_id, REFERENCE_ID_CHARS_MAX)?;
    if let Some(remark) = &command.remark {
        if remark.chars().count() > REMARK_CHARS_MAX {
            return Err(Error::invalid_argument(format!("remark must be at most {REMARK_CHARS_MAX} characters")));
        }
    }
    if let Some(ext_info) = &command.ext_info {
        if ext_info.len() > EXT_INFO_BYTES_MAX {
            return Err(Error::invalid_argument(format!("ext_info must be at most {EXT_INFO_BYTES_MAX} bytes")));
        }
    }
    Ok(())
}

fn check_action_arguments(command: &Command, context: &Context) -> Result<(), Error> {
    match &command.action {
        Action::Charge { gift: Some(_), trigger_gift: true, .. } => {
            Err(Error::invalid_argument("gift_value cannot be given with trigger_gift=true: the rule decides the gift"))
        }
        Action::Undeduct { original_outer_order_id, .. } => {
            check_text("outer_order_id (the original DEDUCT)", original_outer_order_id, ORDER_ID_CHARS_MAX)
        }
        Action::Uncharge { src_outer_order_id } => {
            check_text("src_outer_order_id", src_outer_order_id, ORDER_ID_CHARS_MAX)
        }
        Action::Recorded { source, .. } => {
            check_text("provider", &source.provider, PROVIDER_CHARS_MAX)?;
            check_text("provider record id", &source.record_id, RECORD_ID_CHARS_MAX)
        }
        Action::Import { .. } | Action::Open { .. } => match command.biz_date {
            Some(time) if time > context.now => {
                Err(Error::invalid_argument("IMPORT order_time must not be in the future"))
            }
            _ => Ok(()),
        },
        Action::Adjust { .. } | Action::Freeze | Action::Unfreeze | Action::Close | Action::Clear { .. }
            if command.remark.as_deref().is_none_or(|remark| remark.trim().is_empty()) =>
        {
            Err(Error::invalid_argument(format!("{} requires a remark saying why", command.action.flow_type())))
        }
        Action::Capture { src_outer_order_id, .. } | Action::Release { src_outer_order_id } => {
            check_text("src_outer_order_id", src_outer_order_id, ORDER_ID_CHARS_MAX)
        }
        Action::Hold { expire_time: Some(expire_time), .. } => {
            if *expire_time <= command.biz_date.unwrap_or(context.now) {
                Err(Error::invalid_argument("expire_time must be after the hold's own order_time"))
            } else {
                Ok(())
            }
        }
        Action::Transfer { to_account_id, .. } => {
            check_text("to_account_id", to_account_id, ACCOUNT_ID_CHARS_MAX)?;
            if *to_account_id == command.account_id {
                return Err(Error::invalid_argument("a transfer needs two accounts: to_account_id is the source"));
            }
            Ok(())
        }
        Action::Hold { .. } if crate::command::is_transfer_hold(&command.outer_order_id) => {
            Err(Error::invalid_argument(format!(
                "outer_order_id {:?}: ids ending in {:?} are transfers' holds",
                command.outer_order_id,
                crate::command::TRANSFER_HOLD_SUFFIX
            )))
        }
        Action::TransferHold { to_account_id, .. } => {
            check_text("to_account_id", to_account_id, ACCOUNT_ID_CHARS_MAX)?;
            if *to_account_id == command.account_id {
                return Err(Error::invalid_argument("a transfer needs two accounts: to_account_id is the source"));
            }
            if !crate::command::is_transfer_hold(&command.outer_order_id) {
                return Err(Error::invalid_argument(format!(
                    "a transfer hold's outer_order_id ends in {:?}",
                    crate::command::TRANSFER_HOLD_SUFFIX
                )));
            }
            Ok(())
        }
        Action::TransferCredit { from_account_id, hold_outer_order_id, lots, .. } => {
            check_text("from_account_id", from_account_id, ACCOUNT_ID_CHARS_MAX)?;
            check_text("hold_outer_order_id", hold_outer_order_id, ORDER_ID_CHARS_MAX)?;
            if *from_account_id == command.account_id {
                return Err(Error::invalid_argument("a transfer needs two accounts"));
            }
            if lots.len() >= crate::lots::LOTS_PER_FLOW_MAX as usize {
                return Err(Error::invalid_argument("a transfer moves more lots than one flow holds"));
            }
            Ok(())
        }
        Action::TransferSettle { src_outer_order_id, to_account_id } => {
            check_text("src_outer_order_id", src_outer_order_id, ORDER_ID_CHARS_MAX)?;
            check_text("to_account_id", to_account_id, ACCOUNT_ID_CHARS_MAX)
        }
        Action::TransferAbort { src_outer_order_id } => {
            check_text("src_outer_order_id", src_outer_order_id, ORDER_ID_CHARS_MAX)
        }
        _ => Ok(()),
    }
}

fn check_amounts(command: &Command) -> Result<(), Error> {
    let at_least_zero = |field: &str, amount: Amount| {
        if amount.is_negative() {
            Err(Error::invalid_amount(format!("{field} must not be negative")))
        } else {
            Ok(())
        }
    };
    let positive = |field: &str, amount: Amount| {
        if amount.is_positive() {
            Ok(())
        } else {
            Err(Error::invalid_amount(format!("{field} must be positive")))
        }
    };
    match &command.action {
        Action::Charge { real, gift, pre, .. } => {
            at_least_zero("real_value", *real)?;
            at_least_zero("gift_value", gift.unwrap_or(Amount::ZERO))?;
            at_least_zero("pre_value", *pre)
        }
        Action::Import { real, gift, pre } | Action::Open { real, gift, pre } => {
            at_least_zero("real_value", *real)?;
            at_least_zero("gift_value", *gift)?;
            at_least_zero("pre_value", *pre)
        }
        Action::Deduct { value } => positive("value", *value),
        Action::Undeduct { value, .. } => value.map_or(Ok(()), |value| positive("value", value)),
        Action::Adjust { real, gift, pre } => {
            if Buckets::new(*real, *gift, *pre).is_zero() {
                Err(Error::invalid_amount("ADJUST must change at least one bucket"))
            } else {
                Ok(())
            }
        }
        Action::Hold { value, .. } => positive("value", *value),
        Action::Capture { value, .. } | Action::Transfer { value, .. } | Action::TransferHold { value, .. } => {
            value.map_or(Ok(()), |value| positive("value", value))
        }
        Action::TransferCredit { parts, lots, .. } => {
            at_least_zero("real_value", parts.real)?;
            at_least_zero("gift_value", parts.gift)?;
            at_least_zero("pre_value", parts.pre)?;
            if parts.is_zero() || parts.total().is_none() {
                return Err(Error::invalid_amount("a transfer moves a positive amount"));
            }
            let mut in_lots = Buckets::ZERO;
            for lot in lots {
                if lot.bucket == Bucket::Real || !lot.value.is_positive() {
                    return Err(Error::invalid_amount("a transfer's lots are positive GIFT or PRE"));
                }
                let sum = in_lots.get(lot.bucket).checked_add(lot.value).ok_or_else(|| out_of_range("the lots"))?;
                match lot.bucket {
                    Bucket::Gift => in_lots.gift = sum,
                    _ => in_lots.pre = sum,
                }
            }
            if !lots.is_empty() && (in_lots.gift != parts.gift || in_lots.pre != parts.pre) {
                return Err(Error::invalid_amount("a transfer's lots add up to other GIFT and PRE than it moves"));
            }
            Ok(())
        }
        Action::Uncharge { .. }
        | Action::Release { .. }
        | Action::Freeze
        | Action::Unfreeze
        | Action::Close
        | Action::Clear { .. }
        | Action::Expire { .. }
        | Action::ExpireHold { .. }
        | Action::TransferSettle { .. }
        | Action::TransferAbort { .. } => Ok(()),
        Action::Recorded { flow_type, affected, .. } => match flow_type.sign_fault(affected) {
            Some(fault) => Err(Error::invalid_amount(fault)),
            None => Ok(()),
        },
    }
}

/// A card_id or brand_id given with a command must be the account's own.
fn check_same(field: &str, given: &Option<String>, fixed: &Option<String>, account_id: &str) -> Result<(), Error> {
    match given {
        Some(given) if Some(given) != fixed.as_ref() => Err(Error::invalid_argument(format!(
            "{field} {given:?} is not account {account_id:?}'s ({})",
            fixed.as_deref().map_or("none".to_owned(), |fixed| format!("{fixed:?}"))
        ))),
        _ => Ok(()),
    }
}

/// "a CHARGE", "an IMPORT": flow type names that start with a vowel sound.
fn article(flow_type: FlowType) -> &'static str {
    if flow_type.as_str().starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

pub(crate) fn referenced_order<'a>(
    state: &'a State,
    id: &str,
    expected: &[FlowType],
    command: &Command,
) -> Result<Order<'a>, Error> {
    let order = state.order(id).ok_or_else(|| Error::OrderNotFound { outer_order_id: id.to_owned() })?;
    if !expected.contains(&order.flow_type) {
        let names: Vec<&str> = expected.iter().map(|flow_type| flow_type.as_str()).collect();
        return Err(Error::invalid_argument(format!(
            "order {id:?} is {} {}, {} needs a {}",
            article(order.flow_type),
            order.flow_type,
            command.action.flow_type(),
            names.join(" or ")
        )));
    }
    if order.account_id != command.account_id {
        return Err(Error::invalid_argument(format!(
            "order {id:?} belongs to account {:?}, not {:?}",
            order.account_id, command.account_id
        )));
    }
    Ok(order)
}

/// spec §2 UNDEDUCT: the full rest exactly, or a partial refund split by the original's parts.
fn undeduct_split(original: &Order, value: Option<Amount>, id: &str, scale: Scale) -> Result<Buckets, Error> {
    let rest = original.refundable();
    let rest_total = rest.total().ok_or_else(|| out_of_range("the refundable rest"))?;
    let value = value.unwrap_or(rest_total);
    if rest_total.is_zero() || value > rest_total {
        return Err(Error::RefundExceedsOriginal {
            message: format!(
                "{} {id:?} has {} left to refund, asked for {}",
                original.flow_type,
                rest_total.format(scale),
                value.format(scale)
            ),
        });
    }
    if value == rest_total {
        return Ok(rest);
    }
    partial_split(original.moved, rest, value)
}

/// A part `value` (0 < value < TOTAL of `rest`) of `rest`, split by the parts of `moved`, the
/// original it is a rest of (spec §2's partial UNDEDUCT; a partial CAPTURE uses it with the
/// hold's parts as both).
pub(crate) fn partial_split(moved: Buckets, rest: Buckets, value: Amount) -> Result<Buckets, Error> {
    let moved_total = moved.total().ok_or_else(|| out_of_range("the original"))?.minor();
    debug_assert!(value.is_positive() && Some(value) < rest.total(), "a partial split of {value:?} from {rest:?}");
    let share = |part: Amount| value.ratio_half_up(part.minor(), moved_total).ok_or_else(|| out_of_range("the refund"));
    let mut gift = share(moved.gift)?.min(rest.gift).min(value);
    let mut pre = share(moved.pre)?.min(rest.pre).min(Amount::from_minor(value.minor() - gift.minor()));
    let mut real = Amount::from_minor(value.minor() - gift.minor() - pre.minor());
    if real > rest.real {
        let mut excess = real.minor() - rest.real.minor();
        real = rest.real;
        let to_gift = excess.min(rest.gift.minor() - gift.minor());
        gift = Amount::from_minor(gift.minor() + to_gift);
        excess -= to_gift;
        let to_pre = excess.min(rest.pre.minor() - pre.minor());
        pre = Amount::from_minor(pre.minor() + to_pre);
        excess -= to_pre;
        debug_assert_eq!(excess, 0, "value ≤ rest total leaves no excess");
    }
    let refund = Buckets { real, gift, pre };
    debug_assert_eq!(refund.total(), Some(value));
    debug_assert!(Bucket::ALL.into_iter().all(|bucket| refund.get(bucket) <= rest.get(bucket)));
    Ok(refund)
}

/// Lifetime totals must stay in range too: a CHARGE or IMPORT that would overflow them is refused.
fn check_lifetime(state: &State, command: &Command, flow_type: FlowType, affected: &Buckets) -> Result<(), Error> {
    if !matches!(flow_type, FlowType::Charge | FlowType::Import | FlowType::Uncharge) {
        return Ok(());
    }
    let lifetime = state.account(&command.account_id).map_or(Buckets::ZERO, |account| account.lifetime);
    let after = lifetime.checked_add(affected).ok_or_else(|| out_of_range("the lifetime totals"))?;
    after.total().map(|_| ()).ok_or_else(|| out_of_range("the lifetime totals"))
}
