//! spec §13's first step, alone: a command's own arguments and amounts, which need no state.
//! The ledger checks these before the idempotency record, so a different request under a known
//! `request_id` with a bad argument is refused for the argument.

use purse_core::{Action, Command};

use super::{
    Kind, Model, ACCOUNT_ID_CHARS, EXT_INFO_BYTES, INVALID_AMOUNT, INVALID_ARGUMENT, ORDER_ID_CHARS, PROVIDER_CHARS,
    RECORD_ID_CHARS, REFERENCE_ID_CHARS, REMARK_CHARS, REQUEST_ID_CHARS, SWEEP_ID_CHARS, SWEEP_PREFIX,
};

fn text_ok(text: &str, chars_max: usize) -> Result<(), &'static str> {
    let chars = text.chars().count();
    let control = text.chars().any(|c| {
        let code = u32::from(c);
        code < 0x20 || (0x7f..=0x9f).contains(&code)
    });
    if chars == 0 || chars > chars_max || control {
        return Err(INVALID_ARGUMENT);
    }
    Ok(())
}

fn optional_text_ok(text: &Option<String>, chars_max: usize) -> Result<(), &'static str> {
    match text {
        Some(text) => text_ok(text, chars_max),
        None => Ok(()),
    }
}

/// A remark that is absent or only white space does not say why (spec is silent on blank ones).
fn remark_missing(command: &Command) -> bool {
    command.remark.as_ref().is_none_or(|remark| remark.chars().all(char::is_whitespace))
}

/// The sweep's own commands (spec §11), made by `Command::expire` and `Command::expire_hold`.
fn is_sweep(action: &Action) -> bool {
    matches!(action, Action::Expire { .. } | Action::ExpireHold { .. })
}

impl Model {
    /// spec §13's first step, alone: the command's own arguments and amounts, (1)–(3) below.
    /// The ledger checks these before the idempotency record, so a different request under a
    /// known `request_id` with a bad argument is refused for the argument.
    pub fn arguments(&self, command: &Command, now: i64) -> Result<(), &'static str> {
        let kind = Kind::of(&command.action);
        let order_time = command.biz_date.map_or(now, |time| time.0);
        // (1) string arguments; the sweep's own ids may be longer (a hold's order id inside
        // them), anyone else's may not start as the sweep's do.
        if is_sweep(&command.action) {
            text_ok(&command.request_id, SWEEP_ID_CHARS)?;
            text_ok(&command.outer_order_id, SWEEP_ID_CHARS)?;
        } else {
            text_ok(&command.request_id, REQUEST_ID_CHARS)?;
            text_ok(&command.outer_order_id, ORDER_ID_CHARS)?;
            if command.request_id.starts_with(SWEEP_PREFIX) || command.outer_order_id.starts_with(SWEEP_PREFIX) {
                return Err(INVALID_ARGUMENT);
            }
        }
        text_ok(&command.account_id, ACCOUNT_ID_CHARS)?;
        optional_text_ok(&command.card_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.brand_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.shop_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.operator_id, REFERENCE_ID_CHARS)?;
        if command.remark.as_ref().is_some_and(|remark| remark.chars().count() > REMARK_CHARS) {
            return Err(INVALID_ARGUMENT);
        }
        if command.ext_info.as_ref().is_some_and(|ext| ext.len() > EXT_INFO_BYTES) {
            return Err(INVALID_ARGUMENT);
        }

        // (2) action arguments
        match &command.action {
            Action::Charge { gift: Some(_), trigger_gift: true, .. } => return Err(INVALID_ARGUMENT),
            Action::Undeduct { original_outer_order_id: id, .. }
            | Action::Uncharge { src_outer_order_id: id }
            | Action::Capture { src_outer_order_id: id, .. }
            | Action::Release { src_outer_order_id: id } => text_ok(id, ORDER_ID_CHARS)?,
            Action::Recorded { source, .. } => {
                text_ok(&source.provider, PROVIDER_CHARS)?;
                text_ok(&source.record_id, RECORD_ID_CHARS)?;
            }
            Action::Import { .. } if command.biz_date.is_some_and(|time| time.0 > now) => {
                return Err(INVALID_ARGUMENT);
            }
            // spec §2 (ADJUST), §9 (FREEZE, UNFREEZE, CLOSE) and §11 (CLEAR): a remark is required.
            Action::Adjust { .. } | Action::Freeze | Action::Unfreeze | Action::Close | Action::Clear { .. }
                if remark_missing(command) =>
            {
                return Err(INVALID_ARGUMENT);
            }
            // spec §13: an expiry at or before the hold's own order_time.
            Action::Hold { expire_time: Some(expire_time), .. } if expire_time.0 <= order_time => {
                return Err(INVALID_ARGUMENT);
            }
            // spec §10, §13: the destination is an account id; a transfer needs two accounts.
            Action::Transfer { to_account_id, .. } => {
                // spec is silent on its form: the account_id rule of spec §2.
                text_ok(to_account_id, ACCOUNT_ID_CHARS)?;
                if *to_account_id == command.account_id {
                    return Err(INVALID_ARGUMENT);
                }
            }
            _ => {}
        }

        // (2b) lot expiries (spec §11: CHARGE and IMPORT take them). purse-core's rules, which
        // the spec leaves open: only on what credits GIFT or PRE from outside, not for a bucket
        // the command plainly leaves alone, and after the flow's own order_time.
        let given = [command.gift_expire_time, command.pre_expire_time];
        if given.iter().any(Option::is_some) {
            let credits = match &command.action {
                Action::Charge { gift, pre, trigger_gift, .. } => {
                    [*trigger_gift || gift.is_some_and(|gift| gift.minor() > 0), pre.minor() > 0]
                }
                Action::Import { gift, pre, .. } | Action::Open { gift, pre, .. } => {
                    [gift.minor() > 0, pre.minor() > 0]
                }
                Action::Recorded { affected, .. } if matches!(kind, Kind::Charge | Kind::Import) => {
                    [affected.gift.minor() > 0, affected.pre.minor() > 0]
                }
                _ => return Err(INVALID_ARGUMENT),
            };
            for (time, credited) in given.into_iter().zip(credits) {
                if time.is_some() && !credited {
                    return Err(INVALID_ARGUMENT);
                }
            }
        }

        // (3) amounts
        match &command.action {
            Action::Charge { real, gift, pre, .. } => {
                let gift = gift.map_or(0, |gift| gift.minor());
                if real.minor() < 0 || gift < 0 || pre.minor() < 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Import { real, gift, pre } | Action::Open { real, gift, pre } => {
                if real.minor() < 0 || gift.minor() < 0 || pre.minor() < 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Deduct { value } | Action::Hold { value, .. } => {
                if value.minor() <= 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Undeduct { value: Some(value), .. }
            | Action::Capture { value: Some(value), .. }
            | Action::Transfer { value: Some(value), .. } => {
                if value.minor() <= 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Adjust { real, gift, pre } => {
                if real.minor() == 0 && gift.minor() == 0 && pre.minor() == 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Undeduct { value: None, .. }
            | Action::Capture { value: None, .. }
            | Action::Transfer { value: None, .. }
            | Action::Uncharge { .. }
            | Action::Release { .. }
            | Action::Freeze
            | Action::Unfreeze
            | Action::Close
            | Action::Clear { .. }
            | Action::Expire { .. }
            | Action::ExpireHold { .. } => {}
            // Transfers between partitions (purse-cluster) are not part of this model.
            Action::TransferHold { .. }
            | Action::TransferCredit { .. }
            | Action::TransferSettle { .. }
            | Action::TransferAbort { .. } => {}
            Action::Recorded { affected, .. } => {
                // A provider's record: only the signs of its type are checked, and it can state
                // only the six types of spec §2 (purse-core's choice, ingest.md).
                let parts = [affected.real.minor(), affected.gift.minor(), affected.pre.minor()];
                let none_negative = parts.iter().all(|part| *part >= 0);
                let none_positive = parts.iter().all(|part| *part <= 0);
                let nothing = parts.iter().all(|part| *part == 0);
                let fits = match kind {
                    Kind::Import => none_negative,
                    Kind::Charge | Kind::Undeduct => none_negative && !nothing,
                    Kind::Deduct | Kind::Uncharge => none_positive && !nothing,
                    Kind::Adjust => !nothing,
                    _ => false,
                };
                if !fits {
                    return Err(INVALID_AMOUNT);
                }
            }
        }
        Ok(())
    }
}
